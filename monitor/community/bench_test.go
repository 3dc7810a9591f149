package community

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/CPAN-Security/cpan-tlog/monitor"
	"github.com/CPAN-Security/cpan-tlog/monitor/notify"
)

type nopSender struct{ n int }

func (s *nopSender) Send(ctx context.Context, m notify.Mail) error { s.n++; return nil }

// benchWorld fills a real bbolt file with n confirmed subscribers, each
// with 1 to 5 rules drawn as CPAN authors would write them (their PAUSE
// id, a few distributions, now and then a namespace, a path glob or an
// expectation), over a CPAN-sized population: 14,000 active authors and
// 40,000 distributions.
const (
	benchAuthors = 14000
	benchDists   = 40000
)

func benchAuthor(i int) string { return fmt.Sprintf("AU%05d", i) }
func benchDist(i int) string   { return fmt.Sprintf("Dist-N%05d", i) }
func benchPath(author string, dist string, v int) string {
	return fmt.Sprintf("authors/id/%s/%s/%s/%s-%d.tar.gz", author[:1], author[:2], author, dist, v)
}

func benchWorld(b *testing.B, n int) (*Community, *bolt.DB, *nopSender) {
	b.Helper()
	dir := b.TempDir()
	db, err := bolt.Open(filepath.Join(dir, "state.db"), 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	snd := &nopSender{}
	c, err := Open(db, Config{BaseURL: "https://m.example", StateDir: dir, Sender: snd, ExpectGrace: -1, Logger: nil})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Now().UTC()
	err = db.Update(func(tx *bolt.Tx) error {
		for i := range n {
			a := rng.IntN(benchAuthors)
			s := &Subscriber{ID: newID(), Email: fmt.Sprintf("u%d@example.org", i), Confirmed: true, Created: now, ConfirmedAt: now, LastDigest: now, Mail: true,
				Rules: []Rule{{KindAuthor, benchAuthor(a)}}}
			for range rng.IntN(5) {
				switch rng.IntN(10) {
				case 0:
					s.Rules = append(s.Rules, Rule{KindNamespace, fmt.Sprintf("Dist::N%05d::*", rng.IntN(benchDists))})
				case 1:
					au := benchAuthor(rng.IntN(benchAuthors))
					s.Rules = append(s.Rules, Rule{KindPath, fmt.Sprintf("authors/id/%s/%s/%s/*", au[:1], au[:2], au)})
				case 2:
					s.Rules = append(s.Rules, Rule{KindNamespace, fmt.Sprintf("Dist::N%05d", rng.IntN(benchDists))})
				default:
					s.Rules = append(s.Rules, Rule{KindDist, benchDist(rng.IntN(benchDists))})
				}
			}
			if rng.IntN(4) == 0 {
				s.Expect = []Expectation{{Issuer: ghIssuer, Repository: "o/r"}}
			}
			if err := putSubscriber(tx, s); err != nil {
				return err
			}
			if err := tx.Bucket(bEmails).Put([]byte(s.Email), []byte(s.ID)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return c, db, snd
}

// benchEvents is a batch of uploads by random authors of random
// distributions (some authors upload more: a quarter of the batch comes
// from 1% of the authors).
func benchEvents(rng *rand.Rand, n int, base uint64) []monitor.Event {
	evs := make([]monitor.Event, n)
	for i := range evs {
		a := rng.IntN(benchAuthors)
		if rng.IntN(4) == 0 {
			a = rng.IntN(benchAuthors / 100)
		}
		au, d := benchAuthor(a), rng.IntN(benchDists)
		evs[i] = monitor.Event{Upload: &monitor.Upload{Index: base + uint64(i), Time: time.Now().UTC(), Kind: "add", Path: benchPath(au, benchDist(d), i),
			SHA256: "00", Size: 1000, Uploader: au, Author: au, Dist: benchDist(d), Version: fmt.Sprint(i)}}
	}
	return evs
}

// BenchmarkRoute routes batches of 1,000 uploads to 1k and 10k
// subscribers and delivers what they queued; it reports the cost per
// event (routing and delivery, the bbolt commit included), the messages
// per batch, and the state's bytes per subscriber.
func BenchmarkRoute(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			c, db, snd := benchWorld(b, n)
			var size int64
			db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil })
			rng := rand.New(rand.NewPCG(3, 4))
			// The index is built once per change of the subscriptions:
			// measure it apart.
			t0 := time.Now()
			db.Update(func(tx *bolt.Tx) error { return c.Route(tx, nil) })
			build := time.Since(t0)
			const batch = 1000
			base := uint64(0)
			var routing, delivering time.Duration
			for b.Loop() {
				evs := benchEvents(rng, batch, base)
				base += batch
				t0 := time.Now()
				if err := db.Update(func(tx *bolt.Tx) error { return c.Route(tx, evs) }); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if err := c.Deliver(context.Background()); err != nil {
					b.Fatal(err)
				}
				routing += t1.Sub(t0)
				delivering += time.Since(t1)
			}
			b.StopTimer()
			var after int64
			db.View(func(tx *bolt.Tx) error { after = tx.Size(); return nil })
			b.ReportMetric(float64(after)/float64(n), "state-bytes/subscriber-after")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/event")
			b.ReportMetric(float64(snd.n)/float64(b.N), "mails/batch")
			b.ReportMetric(float64(routing.Nanoseconds())/float64(b.N*batch), "route-ns/event")
			b.ReportMetric(float64(delivering.Nanoseconds())/float64(max(snd.n, 1)), "deliver-ns/mail")
			b.ReportMetric(float64(size)/float64(n), "state-bytes/subscriber")
			b.ReportMetric(float64(build.Microseconds())/1000, "index-build-ms")
		})
	}
}
