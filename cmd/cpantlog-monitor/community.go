package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/CPAN-Security/cpan-tlog/client/audit"
	"github.com/CPAN-Security/cpan-tlog/internal/httpserver"
	"github.com/CPAN-Security/cpan-tlog/monitor"
	"github.com/CPAN-Security/cpan-tlog/monitor/community"
	"github.com/CPAN-Security/cpan-tlog/monitor/community/web"
	"github.com/CPAN-Security/cpan-tlog/monitor/notify"
)

const communityUsage = `Usage: cpantlog-monitor community --public-url URL --mail-from ADDR --smtp HOST:PORT [flags]

Follow the log as 'follow' does, and serve a community: CPAN authors and
users subscribe on the pages (--pages), confirm through a link mailed to
them, and each hears of the uploads, deletions and index changes that touch
what they watch (a PAUSE id, distributions, namespaces, a path glob), by
mail, webhook or their own Atom feed. An author who declares how releases
are made (a Sigstore issuer and repository/workflow) hears of matching
uploads in a periodic digest and of any other upload at once.

The pages listen on loopback: put them behind your TLS front end at
--public-url. /metrics and /healthz stay on --listen.

Examples:
  cpantlog-monitor community --policy policy --state monitor-state \
    --public-url https://monitor.example.org --mail-from cpantlog@example.org \
    --smtp mail.example.org:587 --smtp-user cpantlog --smtp-password-file /etc/cpantlog/smtp-password \
    --advisories installed

Flags:
`

// communityFlags are the flags of 'cpantlog-monitor community'.
type communityFlags struct {
	publicURL, pages, logURL          string
	smtp, smtpUser, smtpPasswordFile  string
	smtpStartTLS, mailFrom, smtpHelo  string
	smtpCA                            string
	digestEvery                       time.Duration
	advisories                        string
	expectGrace                       time.Duration
	allowPrivateWebhooks, trustXFF    bool
	perAddress, perSource, maxSubscrs int
}

func addCommunityFlags(fs *flag.FlagSet) *communityFlags {
	c := &communityFlags{}
	fs.StringVar(&c.publicURL, "public-url", "", "the `URL` the pages are reached at through your front end: links in mails and feeds point there (required)")
	fs.StringVar(&c.pages, "pages", "127.0.0.1:7382", "`ADDR` the subscription pages listen on (loopback: serve them through a TLS front end)")
	fs.StringVar(&c.logURL, "entry-url", "", "`URL` of an entry page of the log's explorer, %d standing for the index (default: the log's URL + /entry/%d when it is http(s))")
	fs.StringVar(&c.smtp, "smtp", "", "SMTP server `HOST:PORT` mail goes out through (required)")
	fs.StringVar(&c.smtpUser, "smtp-user", "", "SMTP user `NAME` (authentication only after STARTTLS)")
	fs.StringVar(&c.smtpPasswordFile, "smtp-password-file", "", "`FILE` holding the SMTP password (not a flag value: those show in ps)")
	fs.StringVar(&c.smtpStartTLS, "smtp-starttls", "opportunistic", "`MODE`: opportunistic (STARTTLS when offered; required for --smtp-user) or require")
	fs.StringVar(&c.smtpHelo, "smtp-helo", "", "`NAME` for EHLO (default: the host of --public-url)")
	fs.StringVar(&c.smtpCA, "smtp-ca", "", "PEM `FILE` of the CA certificates the SMTP server's is checked against (default: the system's)")
	fs.DurationVar(&c.digestEvery, "digest-every", 24*time.Hour, "how often each subscriber's digest (expected uploads, what was logged for them) is sent")
	fs.StringVar(&c.mailFrom, "mail-from", "", "sender `ADDR` of the mails (required)")
	fs.StringVar(&c.advisories, "advisories", "", "CPAN security advisories (CPAN::Audit's database): 'installed' (Debian's libcpan-audit-perl) or a JSON `FILE`; releases fixing one are named in messages")
	fs.DurationVar(&c.expectGrace, "expect-grace", time.Hour, "how long after a release is audited its Sigstore bundle may follow before a subscriber who declared one is alerted (0: at the end of the round)")
	fs.BoolVar(&c.allowPrivateWebhooks, "allow-private-webhooks", false, "let subscribers' webhooks reach loopback and private addresses (testing only: otherwise the monitor is a way into your network)")
	fs.BoolVar(&c.trustXFF, "trust-forwarded-for", false, "rate-limit by the front end's X-Forwarded-For instead of the connection's address (only behind a front end that sets it)")
	fs.IntVar(&c.perAddress, "limit-per-address", 0, "mails to one address per day from the subscribe page (default 3)")
	fs.IntVar(&c.perSource, "limit-per-source", 0, "subscribe requests per source address per hour (default 20)")
	fs.IntVar(&c.maxSubscrs, "max-subscribers", 0, "subscriptions kept, pending or confirmed (default 100000)")
	return c
}

// start opens the community in the monitor's state, routes the monitor's
// findings and uploads to it and serves its pages until ctx ends.
func (c *communityFlags) start(ctx context.Context, m *monitor.Monitor, logLoc, stateDir string, reg prometheus.Registerer, logger *slog.Logger) (*community.Community, error) {
	var missing []string
	for flagName, v := range map[string]string{"--public-url": c.publicURL, "--smtp": c.smtp, "--mail-from": c.mailFrom} {
		if v == "" {
			missing = append(missing, flagName)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("community needs %s", strings.Join(missing, ", "))
	}
	helo := c.smtpHelo
	if u, err := url.Parse(c.publicURL); helo == "" && err == nil {
		// EHLO names the monitor by its public host; an address literal
		// is written as RFC 5321 says.
		helo = u.Hostname()
		if ip, err := netip.ParseAddr(helo); err == nil {
			helo = "[" + ip.String() + "]"
			if ip.Is6() {
				helo = "[IPv6:" + ip.String() + "]"
			}
		}
	}
	smtp := &notify.SMTP{Addr: c.smtp, From: c.mailFrom, Username: c.smtpUser, HeloName: helo, StartTLS: c.smtpStartTLS, Timeout: 30 * time.Second, TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12}}
	if c.smtpCA != "" {
		pem, err := os.ReadFile(c.smtpCA)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--smtp-ca %s: no PEM certificate in it", c.smtpCA)
		}
		smtp.TLSConfig.RootCAs = pool
	}
	if c.smtpPasswordFile != "" {
		b, err := os.ReadFile(c.smtpPasswordFile)
		if err != nil {
			return nil, err
		}
		smtp.Password = strings.TrimRight(string(b), "\r\n")
	} else if c.smtpUser != "" {
		return nil, errors.New("--smtp-user needs --smtp-password-file")
	}
	cfg := community.Config{BaseURL: strings.TrimSuffix(c.publicURL, "/"), LogURL: c.logURL, StateDir: stateDir, Sender: smtp,
		Webhook: &notify.Webhook{AllowPrivate: c.allowPrivateWebhooks}, From: c.mailFrom, ExpectGrace: c.expectGrace,
		DigestEvery: c.digestEvery, Limits: community.Limits{PerAddress: c.perAddress, PerSource: c.perSource, MaxSubscribers: c.maxSubscrs}, Logger: logger, Registerer: reg}
	if cfg.ExpectGrace == 0 {
		cfg.ExpectGrace = -1 // community.Config: negative is "at the end of the round"
	}
	if cfg.LogURL == "" && (strings.HasPrefix(logLoc, "http://") || strings.HasPrefix(logLoc, "https://")) {
		cfg.LogURL = strings.TrimSuffix(logLoc, "/") + "/entry/%d"
	}
	switch c.advisories {
	case "":
	case "installed":
		db, err := audit.LoadInstalledDB(ctx)
		if err != nil {
			return nil, fmt.Errorf("--advisories installed: %w", err)
		}
		cfg.Advisories = db
	default:
		b, err := os.ReadFile(c.advisories)
		if err != nil {
			return nil, err
		}
		db, err := audit.ParseDB(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.advisories, err)
		}
		cfg.Advisories = db
	}
	com, err := community.Open(m.DB(), cfg)
	if err != nil {
		return nil, err
	}
	m.SetRouter(com)
	ln, err := net.Listen("tcp", c.pages)
	if err != nil {
		return nil, fmt.Errorf("%w (choose another --pages)", err)
	}
	go httpserver.Run(ctx, httpserver.New(web.Handler(com, web.Options{TrustForwardedFor: c.trustXFF}), 30*time.Second), ln, 5*time.Second)
	logger.Info("serving the community pages", "listen", ln.Addr().String(), "public", c.publicURL)
	return com, nil
}
