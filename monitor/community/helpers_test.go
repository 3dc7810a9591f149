package community

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/CPAN-Security/cpan-tlog/monitor"
	"github.com/CPAN-Security/cpan-tlog/monitor/notify"
)

// recorder is a notify.Sender that keeps what it was given; fail, when
// set, decides the answer to each mail.
type recorder struct {
	mu   sync.Mutex
	sent []notify.Mail
	fail func(notify.Mail) error
}

func (r *recorder) Send(ctx context.Context, m notify.Mail) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(m); err != nil {
			return err
		}
	}
	r.sent = append(r.sent, m)
	return nil
}

func (r *recorder) to(addr string) []notify.Mail {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []notify.Mail
	for _, m := range r.sent {
		if m.To == addr {
			out = append(out, m)
		}
	}
	return out
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.sent = nil
	r.mu.Unlock()
}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// world is a community monitor over a real bbolt file in a temp dir.
type world struct {
	t     *testing.T
	dir   string
	db    *bolt.DB
	c     *Community
	mail  *recorder
	clock *clock
	cfg   Config
	reg   *prometheus.Registry // the registry of the community opened last
}

func newWorld(t *testing.T, tweak ...func(*Config)) *world {
	t.Helper()
	w := &world{t: t, dir: t.TempDir(), mail: &recorder{}, clock: &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}}
	w.cfg = Config{BaseURL: "https://monitor.example", LogURL: "https://log.example/entry/%d", StateDir: w.dir, Sender: w.mail,
		Now: w.clock.now, Registerer: prometheus.NewRegistry(), From: "monitor@monitor.example"}
	for _, f := range tweak {
		f(&w.cfg)
	}
	w.open()
	t.Cleanup(func() {
		if w.db != nil {
			w.db.Close()
		}
	})
	return w
}

// open (re)opens the bbolt file and the community on it, as a restart does.
func (w *world) open() {
	w.t.Helper()
	if w.db != nil {
		w.db.Close()
	}
	db, err := bolt.Open(filepath.Join(w.dir, "state.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		w.t.Fatal(err)
	}
	w.db = db
	cfg := w.cfg
	w.reg = prometheus.NewRegistry()
	cfg.Registerer = w.reg
	w.c, err = Open(db, cfg)
	if err != nil {
		w.t.Fatal(err)
	}
}

// subscribe subscribes and confirms addr with the rules text.
func (w *world) subscribe(addr, rules string) *Subscriber {
	w.t.Helper()
	r, e, err := ParseRequestText(rules)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.c.Subscribe(context.Background(), Request{Email: addr, Rules: r, Expect: e, Mail: true}, "192.0.2."+addr[:1]); err != nil {
		w.t.Fatal(err)
	}
	tok := w.confirmToken(addr)
	s, err := w.c.Confirm(context.Background(), tok)
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// confirmToken reads the token from the last confirmation mail to addr.
func (w *world) confirmToken(addr string) string {
	w.t.Helper()
	ms := w.mail.to(addr)
	for i := len(ms) - 1; i >= 0; i-- {
		if tok, ok := tokenIn(ms[i].Text, "/confirm?t="); ok {
			return tok
		}
	}
	w.t.Fatalf("no confirmation mail to %s", addr)
	return ""
}

func tokenIn(text, marker string) (string, bool) {
	_, rest, ok := strings.Cut(text, marker)
	if !ok {
		return "", false
	}
	end := strings.IndexAny(rest, " \r\n")
	if end < 0 {
		end = len(rest)
	}
	return rest[:end], true
}

func (w *world) route(events ...monitor.Event) {
	w.t.Helper()
	err := w.db.Update(func(tx *bolt.Tx) error { return w.c.Route(tx, events) })
	if err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) deliver() {
	w.t.Helper()
	if err := w.c.Deliver(context.Background()); err != nil {
		w.t.Fatal(err)
	}
}

func upload(idx uint64, path, uploader string) monitor.Event {
	author := strings.Split(path, "/")[4]
	base := path[strings.LastIndexByte(path, '/')+1:]
	dist, version := base, ""
	if i := strings.LastIndexByte(base, '-'); i > 0 {
		dist, version = base[:i], strings.TrimSuffix(base[i+1:], ".tar.gz")
	}
	return monitor.Event{Upload: &monitor.Upload{Index: idx, Time: time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC), Kind: "add", Path: path,
		SHA256: strings.Repeat("ab", 32), Size: 1234, Uploader: uploader, Author: author, Dist: dist, Version: version}}
}

func bundle(idx uint64, signs string, id *monitor.Identity) monitor.Event {
	ev := upload(idx, signs, "X")
	u := ev.Upload
	u.Path, u.Signs, u.Identity = signs+".sigstore.json", signs, id
	return ev
}

var ghIssuer = "https://token.actions.githubusercontent.com"

func ghIdentity(repo, workflow string) *monitor.Identity {
	return &monitor.Identity{Issuer: ghIssuer, SAN: "https://github.com/" + repo + "/" + workflow + "@refs/tags/v1",
		SourceRepo: "https://github.com/" + repo, BuildConfig: "https://github.com/" + repo + "/" + workflow + "@refs/tags/v1"}
}

// metric is the value of the series name{labels} in the world's registry
// (0 when absent).
func (w *world) metric(name string, labels ...string) float64 {
	w.t.Helper()
	mfs, err := w.reg.Gather()
	if err != nil {
		w.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

// queued counts the items in every subscriber's queue.
func (w *world) queued() int {
	n := 0
	w.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bQueue).Stats().KeyN
		return nil
	})
	return n
}

// digestCrashed is a world where a@example.org, who declared Foo's
// identity, has one expected upload, and the process crashed after
// sending the digest and before recording it (then reopened).
func digestCrashed(t *testing.T) *world {
	t.Helper()
	w := newWorld(t)
	w.subscribe("a@example.org", "author ALICE\nexpect issuer="+ghIssuer+" repository=alice/Foo")
	p := "authors/id/A/AL/ALICE/Foo-1.0.tar.gz"
	w.route(upload(1, p, "ALICE"), bundle(2, p, ghIdentity("alice/Foo", "w.yml")))
	w.deliver()
	w.mail.reset()
	w.clock.add(25 * time.Hour)
	w.c.testAfterSend = func() { panic("crash") }
	func() {
		defer func() { recover() }()
		w.c.Digest(ctx)
	}()
	w.open()
	return w
}
