package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/testing/ca"

	"github.com/CPAN-Security/cpan-tlog/client/sigstore"
	"github.com/CPAN-Security/cpan-tlog/internal/sigstoretest"
	"github.com/CPAN-Security/cpan-tlog/internal/testbrowser"
	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
	"github.com/CPAN-Security/cpan-tlog/internal/testsmtp"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
)

// TestCommunityEndToEnd (#38) runs the real cpantlog-monitor community
// process against a real log (verifying Sigstore bundles against a
// virtual Sigstore's trusted root), a real SMTP server (Debian's aiosmtpd,
// with STARTTLS and AUTH required) and headless Chromium:
//
//   - Alice, Bob and Carol subscribe on the pages; each gets a
//     confirmation mail; Alice and Bob follow the link in the browser and
//     press Confirm; Carol never does.
//   - Alice declares that Foo's releases come from her GitHub workflow.
//     Foo-1.1 with a bundle from that workflow is in Alice's digest only;
//     Foo-1.2 in her directory without a bundle is an alert mail to her
//     in the round that audits it.
//   - A forged 02packages moves Bob's Bar::Baz to Alice's Foo-1.2: both
//     get an alert naming the log indexes of the two versions.
//   - Carol, whose rule matches all of it, receives only her confirmation.
//   - Bob unsubscribes with the mail's one-click link and hears nothing
//     more.
//   - The monitor is killed (SIGKILL) while the SMTP server holds its
//     reply to a message it has stored: after the restart that one message
//     is sent again (same Message-ID), and no other message twice.
func TestCommunityEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: a log, the monitor process, aiosmtpd and Chromium")
	}
	bin := buildMonitor(t)
	mail := testsmtp.Start(t, testsmtp.HoldReply("alice@example.org", "Crash-1.0.tar.gz", 30*time.Second))
	b := testbrowser.Start(t, testbrowser.Options{})

	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := sigstore.LoadTrustedRoot(sigstoretest.TrustedRootFile(t, vs))
	if err != nil {
		t.Fatal(err)
	}
	tl := testlog.Start(t, tlog.Config{DataDir: t.TempDir(), Sigstore: verifier})
	const when = "2026-12-01T00:00:00Z"
	const pk = "modules/02packages.details.txt.gz"
	tl.Add(t, "authors/id/B/BO/BOB/Bar-1.0.tar.gz", []byte("bar 1.0"), when, true)                                     // 0
	tl.Add(t, "authors/id/A/AL/ALICE/Foo-1.0.tar.gz", []byte("foo 1.0"), when, true)                                   // 1
	tl.Add(t, pk, packagesGz("Bar::Baz 1.0 B/BO/BOB/Bar-1.0.tar.gz", "Foo 1.0 A/AL/ALICE/Foo-1.0.tar.gz"), when, true) // 2

	dir := t.TempDir()
	policy := filepath.Join(dir, "policy")
	os.WriteFile(policy, []byte(fmt.Sprintf("log %s %s\nquorum none\n", tl.VerifierKey(), tl.URL)), 0o644)
	password := filepath.Join(dir, "smtp-password")
	os.WriteFile(password, []byte(mail.Password+"\n"), 0o600)
	pages, metrics := freeAddr(t), freeAddr(t)
	public := "http://" + pages
	mon := &monitorProcess{t: t, bin: bin, args: []string{"community", "--policy", policy, "--state", filepath.Join(dir, "state"),
		"--public-url", public, "--pages", pages, "--listen", metrics,
		"--smtp", mail.Addr, "--smtp-user", mail.Username, "--smtp-password-file", password, "--smtp-ca", mail.CertFile, "--smtp-starttls", "require",
		"--mail-from", "monitor@example.org", "--interval", "300ms", "--expect-grace", "0", "--digest-every", "2s"}}
	mon.start()
	waitHTTP(t, public+"/subscribe")

	subscribe := func(email, rules string) {
		b.Navigate(public + "/subscribe")
		b.Find("#email").Type(email)
		b.Find("#rules").Clear()
		b.Find("#rules").Type(rules)
		b.Find("#subscribe").Click()
		b.WaitFor("#sent")
	}
	const issuer = "https://token.actions.githubusercontent.com"
	subscribe("alice@example.org", "author ALICE\nexpect issuer="+issuer+" workflow=https://github.com/alice/foo/.github/workflows/release.yml dists=Foo")
	subscribe("bob@example.org", "author BOB")
	subscribe("carol@example.org", "author ALICE\nauthor BOB")
	mail.WaitFor(t, 3, 20*time.Second)
	confirmLink := regexp.MustCompile(`https?://\S+/confirm\?t=[A-Za-z0-9_-]+`)
	for _, who := range []string{"alice@example.org", "bob@example.org"} {
		ms := mailsTo(mail, who)
		if len(ms) != 1 {
			t.Fatalf("%s got %d mails before confirming, want the confirmation", who, len(ms))
		}
		link := confirmLink.FindString(ms[0].text)
		if link == "" {
			t.Fatalf("no confirmation link in the mail to %s:\n%s", who, ms[0].text)
		}
		b.Navigate(link)
		b.WaitFor("#confirm").Click()
		b.WaitFor("#confirmed")
	}

	// While the monitor is stopped (so that one round audits them all): an
	// expected release, one without its bundle, and a forged index.
	mon.stop()
	foo11 := []byte("foo 1.1")
	tl.Add(t, "authors/id/A/AL/ALICE/Foo-1.1.tar.gz", foo11, when, true) // 3
	bundle := sigstoretest.BundleFor(t, vs, "https://github.com/alice/foo/.github/workflows/release.yml@refs/tags/v1.1", issuer, foo11)
	tl.AddBundle(t, "authors/id/A/AL/ALICE/Foo-1.1.tar.gz.sigstore.json", bundle, when) // 4
	if recs, err := tl.History("authors/id/A/AL/ALICE/Foo-1.1.tar.gz.sigstore.json"); err != nil || len(recs) != 1 || recs[0].Entry.Sigstore == nil {
		t.Fatalf("the log did not record the bundle's identity: %v %+v", err, recs)
	}
	tl.Add(t, "authors/id/A/AL/ALICE/Foo-1.2.tar.gz", []byte("foo 1.2"), when, true)                                     // 5
	tl.Add(t, pk, packagesGz("Bar::Baz 1.1 A/AL/ALICE/Foo-1.2.tar.gz", "Foo 1.2 A/AL/ALICE/Foo-1.2.tar.gz"), when, true) // 6
	mon.start()

	// Within the round: the alerts. Bob's is the owner change alone.
	bobAlert := waitMail(t, mail, "bob@example.org", "Bar::Baz")
	aliceAlert := waitMail(t, mail, "alice@example.org", "Foo-1.2.tar.gz")
	for who, m := range map[string]received{"alice": aliceAlert, "bob": bobAlert} {
		for _, want := range []*regexp.Regexp{
			regexp.MustCompile(`index-owner-changed`),
			regexp.MustCompile(`log index:\s+6\b`),
			regexp.MustCompile(`prev index:\s+2 \(the previous version`),
		} {
			if !want.MatchString(m.text) {
				t.Errorf("%s's alert lacks %s:\n%s", who, want, m.text)
			}
		}
		if m.header.Get("List-Unsubscribe") == "" || m.header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" || !strings.Contains(m.text, "Unsubscribe:") {
			t.Errorf("%s's alert has no unsubscribe link: %v\n%s", who, m.header, m.text)
		}
	}
	if !strings.Contains(aliceAlert.text, "Foo-1.2.tar.gz") || strings.Contains(aliceAlert.text, "Foo-1.1.tar.gz") {
		t.Errorf("Alice's alert must name Foo-1.2 (no bundle) and not the expected Foo-1.1:\n%s", aliceAlert.text)
	}
	digest := waitMail(t, mail, "alice@example.org", "digest")
	if !strings.Contains(digest.text, "expected: ") || !strings.Contains(digest.text, "Foo-1.1.tar.gz") || strings.Contains(digest.text, "ALERT") {
		t.Errorf("Alice's digest should list Foo-1.1 as expected:\n%s", digest.text)
	}
	for _, m := range mailsTo(mail, "bob@example.org") {
		if strings.Contains(m.text, "Foo-1.1") {
			t.Errorf("Bob heard of Alice's expected release:\n%s", m.text)
		}
	}

	// Bob unsubscribes with the one-click link of his alert.
	resp, err := http.Post(strings.Trim(bobAlert.header.Get("List-Unsubscribe"), "<>"), "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("one-click unsubscribe: %s", resp.Status)
	}
	bobBefore := len(mailsTo(mail, "bob@example.org"))

	// A crash mid-delivery: the server stores the alert about Crash-1.0
	// and holds its reply; the monitor is killed while it waits.
	tl.Add(t, "authors/id/B/BO/BOB/Bar-1.1.tar.gz", []byte("bar 1.1"), when, true)
	tl.Add(t, "authors/id/A/AL/ALICE/Crash-1.0.tar.gz", []byte("crash"), when, true)
	waitMail(t, mail, "alice@example.org", "Crash-1.0.tar.gz")
	mon.kill()
	mon.start()
	deadline := time.Now().Add(30 * time.Second)
	for len(mailsWith(mail, "alice@example.org", "Crash-1.0.tar.gz")) < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	crash := mailsWith(mail, "alice@example.org", "Crash-1.0.tar.gz")
	if len(crash) != 2 || crash[0].header.Get("Message-Id") != crash[1].header.Get("Message-Id") {
		t.Fatalf("after the crash Alice has %d mails about Crash-1.0, want the one repeated with its Message-ID", len(crash))
	}
	time.Sleep(2 * time.Second) // a few more rounds: nothing else goes out twice
	// The operator sees the subscriptions and deliveries on /metrics, and
	// /healthz is well.
	body := get(t, "http://"+metrics+"/metrics")
	for _, want := range []string{
		`cpantlog_community_subscribers{state="confirmed"} 1`,                        // Alice; Bob left
		`cpantlog_community_subscribers{state="pending"} 1`,                          // Carol
		`cpantlog_community_messages_delivered_total{channel="mail",kind="alert"} 1`, // the repeat, since the restart
		`cpantlog_community_bounces_total 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if got := get(t, "http://"+metrics+"/healthz"); got != "ok\n" {
		t.Errorf("/healthz: %q", got)
	}
	mon.stop()
	seen := map[string]int{}
	for _, m := range mail.Messages() {
		seen[m.Header.Get("Message-Id")]++
	}
	for id, n := range seen {
		if n > 1 && id != crash[0].header.Get("Message-Id") {
			t.Errorf("message %s was sent %d times", id, n)
		}
	}
	if n := len(mailsTo(mail, "bob@example.org")); n != bobBefore {
		t.Errorf("Bob got %d mails after unsubscribing", n-bobBefore)
	}
	if ms := mailsTo(mail, "carol@example.org"); len(ms) != 1 || !confirmLink.MatchString(ms[0].text) {
		t.Errorf("Carol, unconfirmed, got %d mails, want only her confirmation", len(ms))
	}
	// The monitor greets the relay with its public host (an address
	// literal here, bracketed as RFC 5321 wants).
	if !slices.ContainsFunc(mail.Commands(), func(c string) bool { return strings.HasPrefix(c, "EHLO [127.0.0.1]") }) {
		t.Errorf("no EHLO [127.0.0.1] among the commands the relay saw: %q", mail.Commands())
	}
	for _, m := range mail.Messages() {
		if !m.TLS || !m.Authenticated {
			t.Errorf("a mail went out without STARTTLS and AUTH: %+v", m.Header)
		}
	}
}

// received is a mail as read: its headers and its decoded text.
type received struct {
	header mail.Header
	text   string
}

func mailsTo(s *testsmtp.Server, addr string) []received {
	var out []received
	for _, m := range s.Messages() {
		if len(m.To) != 1 || m.To[0] != addr {
			continue
		}
		body := m.Body
		if strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			body, _ = io.ReadAll(quotedprintable.NewReader(bytes.NewReader(m.Body)))
		}
		out = append(out, received{header: m.Header, text: m.Header.Get("Subject") + "\n" + string(body)})
	}
	return out
}

func mailsWith(s *testsmtp.Server, addr, substr string) []received {
	var out []received
	for _, m := range mailsTo(s, addr) {
		if strings.Contains(m.text, substr) {
			out = append(out, m)
		}
	}
	return out
}

// waitMail waits for a mail to addr holding substr.
func waitMail(t *testing.T, s *testsmtp.Server, addr, substr string) received {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if ms := mailsWith(s, addr, substr); len(ms) > 0 {
			return ms[0]
		}
		time.Sleep(100 * time.Millisecond)
	}
	var got []string
	for _, m := range mailsTo(s, addr) {
		got = append(got, m.text)
	}
	t.Fatalf("no mail to %s with %q in 30s; it has:\n%s", addr, substr, strings.Join(got, "\n----\n"))
	return received{}
}

var buildOnce struct {
	sync.Once
	bin string
	err error
}

// buildMonitor builds this command once per test binary.
func buildMonitor(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		d, err := os.MkdirTemp("", "cpantlog-monitor-bin")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.bin = filepath.Join(d, "cpantlog-monitor")
		out, err := exec.Command("go", "build", "-o", buildOnce.bin, ".").CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.bin
}

// monitorProcess runs the built command, stopped or killed by the test.
type monitorProcess struct {
	t      *testing.T
	bin    string
	args   []string
	cmd    *exec.Cmd
	done   chan struct{}
	output testlog.SyncBuffer
}

func (p *monitorProcess) start() {
	p.t.Helper()
	p.cmd = exec.Command(p.bin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.output, &p.output
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(p.cmd, p.done)
	p.t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if p.t.Failed() {
			p.t.Logf("cpantlog-monitor's output:\n%s", p.output.String())
		}
	})
	// Its pages answer once it is up.
	u := "http://" + p.args[indexOf(p.args, "--pages")+1] + "/subscribe"
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			p.t.Fatalf("cpantlog-monitor exited: %s", p.output.String())
		default:
		}
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("cpantlog-monitor's pages did not come up: %s", p.output.String())
}

// stop ends it as an operator would (SIGTERM) and waits.
func (p *monitorProcess) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.t.Fatalf("cpantlog-monitor did not stop on SIGTERM: %s", p.output.String())
	}
}

// kill ends it as a crash would.
func (p *monitorProcess) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

func indexOf(args []string, s string) int {
	for i, a := range args {
		if a == s {
			return i
		}
	}
	return -1
}

func get(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func waitHTTP(t *testing.T, u string) {
	t.Helper()
	if _, err := url.Parse(u); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// packagesGz is an 02packages.details.txt.gz of "Package version path"
// lines (given sorted as PAUSE sorts them).
func packagesGz(lines ...string) []byte {
	s := fmt.Sprintf("File:         02packages.details.txt\nLine-Count:   %d\n\n", len(lines))
	for _, l := range lines {
		s += l + "\n"
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(s))
	zw.Close()
	return buf.Bytes()
}
