package community

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	subscribers *prometheus.GaugeVec   // by state
	delivered   *prometheus.CounterVec // by channel, kind
	failures    *prometheus.CounterVec // by channel
	bounces     prometheus.Counter
	rateLimited prometheus.Counter
	queued      prometheus.Gauge // items queued after the last Deliver
	routed      prometheus.Counter
}

func newMetrics(c *Community, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		subscribers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cpantlog_community_subscribers", Help: "Community monitor subscriptions by state (pending, confirmed, suspended).",
		}, []string{"state"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cpantlog_community_messages_delivered_total", Help: "Messages delivered, by channel (mail, webhook) and kind (alert, digest, confirmation, notice).",
		}, []string{"channel", "kind"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cpantlog_community_delivery_failures_total", Help: "Deliveries that failed, by channel.",
		}, []string{"channel"}),
		bounces: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cpantlog_community_bounces_total", Help: "Mails refused permanently by the recipient's server.",
		}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cpantlog_community_rate_limited_total", Help: "Subscribe requests refused by a rate limit.",
		}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cpantlog_community_queue_items", Help: "Alert items left queued after the last delivery.",
		}),
		routed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cpantlog_community_items_routed_total", Help: "Items routed to subscribers (one per subscriber a logged thing touches).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	oldest := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cpantlog_community_queue_oldest_age_seconds", Help: "Age of the oldest alert left queued after the last delivery (0: none).",
	}, func() float64 {
		c.healthMu.Lock()
		defer c.healthMu.Unlock()
		if c.oldestQueue.IsZero() {
			return 0
		}
		return c.now().Sub(c.oldestQueue).Seconds()
	})
	for _, col := range []prometheus.Collector{m.subscribers, m.delivered, m.failures, m.bounces, m.rateLimited, m.queued, m.routed, oldest} {
		if err := reg.Register(col); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("community: metrics already registered (one Community per registry): %w", err)
			}
			return nil, err
		}
	}
	return m, nil
}

// Unhealthy says why the community monitor needs its operator: an alert
// queued longer than Config.MaxQueueAge (mail or webhooks failing, or
// Deliver not running). "" when healthy.
func (c *Community) Unhealthy() string {
	c.healthMu.Lock()
	defer c.healthMu.Unlock()
	if c.oldestQueue.IsZero() {
		return ""
	}
	if age := c.now().Sub(c.oldestQueue); age > c.cfg.MaxQueueAge {
		return fmt.Sprintf("community: an alert has waited %s in the delivery queue (bound %s): mail or webhooks are failing", age.Round(time.Second), c.cfg.MaxQueueAge)
	}
	return ""
}
