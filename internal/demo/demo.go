// Package demo runs the whole cpan-tlog story in a temporary directory on
// the real CPAN tarballs in testdata/: a log, a witness, logging, a
// cosigned checkpoint, a monitor, a verification, a tampered tarball
// refused, and (when cpanm is installed) a real cpanm install through the
// log and a tampered tarball it meets, each step narrated for a newcomer.
package demo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/client/proxy"
	"github.com/CPAN-Security/cpan-tlog/internal/httpserver"
	"github.com/CPAN-Security/cpan-tlog/internal/minicpan"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
	"github.com/CPAN-Security/cpan-tlog/monitor"
	"github.com/CPAN-Security/cpan-tlog/witness"
)

// Run tells the story on w, using the tarballs under testdata/authors/id.
func Run(ctx context.Context, w io.Writer, testdata string) (err error) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	files, err := tarballs(testdata)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "cpantlog-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	step := func(n int, title, text string) {
		fmt.Fprintf(w, "\n== %d. %s ==\n%s\n", n, title, text)
	}

	// 1. Keys first, so the witness can be told which log to trust.
	logDir := filepath.Join(dir, "log")
	logVKey, err := tlog.Keygen(logDir, tlog.DefaultOrigin)
	if err != nil {
		return err
	}
	wDir := filepath.Join(dir, "witness")
	wVKey, err := witness.Keygen(wDir, "w1.example")
	if err != nil {
		return err
	}
	wcfg, _ := witness.ParseConfig([]byte("log " + logVKey + "\n"))
	wit, err := witness.Open(wDir, wcfg, 0, quiet)
	if err != nil {
		return err
	}
	wURL, err := serve(ctx, wit.Handler())
	if err != nil {
		return err
	}
	step(1, "A witness", fmt.Sprintf("A witness (w1.example) runs on %s. It cosigns a checkpoint of the log only if it is\n"+
		"consistent with the last one it cosigned, so the log cannot show two histories.\n  witness key: %s", wURL, wVKey))

	policyText := fmt.Sprintf("log %s %%s\nwitness w1 %s %s\ngroup g1 all w1\nquorum g1\n", logVKey, wVKey, wURL)
	l, err := tlog.Open(ctx, tlog.Config{DataDir: logDir, WitnessPolicy: []byte(fmt.Sprintf(policyText, "")),
		CheckpointInterval: 200 * time.Millisecond, BatchMaxAge: 10 * time.Millisecond, ShutdownTimeout: 5 * time.Second, Logger: quiet})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	logURL := "http://" + ln.Addr().String()
	done := make(chan struct{})
	go func() { tlog.Serve(ctx, l, ln); close(done) }()
	defer func() { cancel(); <-done }()
	step(2, "A log", fmt.Sprintf("The log runs on %s, with Tessera's POSIX storage in %s.\n"+
		"It signs checkpoints with its key and publishes one only after the witness cosigned it.\n  log key: %s", logURL, logDir, logVKey))

	var text strings.Builder
	for _, f := range files {
		e := &entry.Entry{Kind: entry.Upload, Path: f.Path, Size: f.Size, SHA256: f.SHA256, Uploader: strings.Split(f.Path, "/")[4], Time: time.Now().UTC().Truncate(time.Second)}
		res, err := l.Add(ctx, e)
		if err != nil {
			return fmt.Errorf("log %s: %w", f.Path, err)
		}
		fmt.Fprintf(&text, "  index %d: %s (%d bytes)\n", res.Index, f.Path, f.Size)
	}
	step(3, "Logging real CPAN tarballs", fmt.Sprintf("PAUSE would send each upload; here we log the %d sample tarballs:\n%s", len(files), strings.TrimRight(text.String(), "\n")))

	policyFile := filepath.Join(dir, "policy")
	os.WriteFile(policyFile, []byte(fmt.Sprintf(policyText, logURL)), 0o644)
	policy, err := client.ParsePolicy([]byte(fmt.Sprintf(policyText, logURL)))
	if err != nil {
		return err
	}
	cp, err := waitCheckpoint(ctx, policy, logURL, uint64(len(files)))
	if err != nil {
		return err
	}
	step(4, "The cosigned checkpoint", fmt.Sprintf("The log's signed statement of its tree, cosigned by the witness:\n%s\n  cosigned by: %s",
		indent(string(cp.Raw)), strings.Join(cp.CosignedBy, ", ")))

	m, err := monitor.New(monitor.Config{Policy: policy, StateDir: filepath.Join(dir, "monitor"), Logger: quiet})
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Sync(ctx); err != nil {
		return err
	}
	var findings bytes.Buffer
	fs, err := m.Deliver(ctx, monitor.WriterSink{W: &findings})
	if err != nil {
		return err
	}
	audited, _ := m.Audited()
	result := "no findings: the log is consistent and every entry checks out"
	if len(fs) > 0 {
		result = fmt.Sprintf("%d findings:\n%s", len(fs), indent(findings.String()))
	}
	step(5, "A monitor audits the log", fmt.Sprintf("An auditor downloaded all %d entries, rebuilt the Merkle tree, matched the checkpoint's root\n"+
		"and checked every entry against PAUSE's rules: %s.", audited, result))

	st, err := client.OpenState(filepath.Join(dir, "client-state"))
	if err != nil {
		return err
	}
	v, err := client.NewVerifier(policy, "", "", st, filepath.Join(dir, "client-cache"))
	if err != nil {
		return err
	}
	first := files[0]
	res, err := v.VerifyFile(ctx, first)
	if err != nil {
		return fmt.Errorf("verify %s: %w", first.Path, err)
	}
	step(6, "A user verifies a tarball", "Before installing, cpantlog verify (or the cpanm proxy) hashes the file and asks the log:\n"+indent(res.Summary()))

	b, err := os.ReadFile(filepath.Join(testdata, filepath.FromSlash(first.Path)))
	if err != nil {
		return err
	}
	b[len(b)/2] ^= 1
	tampered, _ := client.HashReader(bytes.NewReader(b), first.Path)
	_, err = v.VerifyFile(ctx, tampered)
	if err == nil {
		return fmt.Errorf("a tampered copy of %s verified", first.Path)
	}
	step(7, "A hostile mirror serves a tampered copy", fmt.Sprintf("One byte of %s changed. The mirror's CHECKSUMS could be forged too,\n"+
		"but the log cannot be: REFUSED (exit code %d)\n%s", first.Path, client.ExitCode(err), indent(err.Error())))

	if err := cpanmStep(ctx, step, dir, testdata, logURL, l.Token(), v); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nThat is cpan-tlog. Everything ran in %s, now removed.\n", dir)
	return nil
}

// cpanmStep installs with the real cpanm through the verifying proxy, from
// a small mirror of testdata logged in the log, then from the same mirror
// with a tampered tarball. Without cpanm it says how to get it.
func cpanmStep(ctx context.Context, step func(int, string, string), dir, testdata, logURL, token string, v *client.Verifier) error {
	cpanm, err := exec.LookPath("cpanm")
	if err != nil {
		step(8, "cpanm installs through the log", "cpanm is not installed (Debian: apt install cpanminus), so this step is skipped;\n"+
			"README.md's \"Verify your cpanm installs\" shows it.")
		return nil
	}
	mirror := filepath.Join(dir, "mirror")
	tree, err := minicpan.Build(testdata, mirror)
	if err != nil {
		return err
	}
	if err := minicpan.Log(ctx, logURL, token, tree, time.Now()); err != nil {
		return err
	}
	install := func(module string) (string, *proxy.Journal, error) {
		journal := &proxy.Journal{}
		p, err := proxy.New(proxy.Config{Upstream: mirror, Verifier: v, Journal: journal, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			return "", nil, err
		}
		purl, err := serve(ctx, p)
		if err != nil {
			return "", nil, err
		}
		cmd := exec.CommandContext(ctx, cpanm, "--mirror", purl, "--mirror-only", "-n", "-L", filepath.Join(dir, "local"), module)
		cmd.Env = append(os.Environ(), "HOME="+filepath.Join(dir, "home"), "PERL_CPANM_HOME="+filepath.Join(dir, "cpanm"),
			"http_proxy=", "HTTP_PROXY=", "https_proxy=", "HTTPS_PROXY=", "PERL_CPANM_OPT=")
		out, err := cmd.CombinedOutput()
		var lines []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "Successfully installed") || strings.HasPrefix(l, "! ") {
				lines = append(lines, l)
			}
		}
		return strings.Join(lines, "\n"), journal, err
	}
	out, journal, err := install("Test::Fatal")
	if err != nil {
		return fmt.Errorf("cpanm Test::Fatal through the log: %w\n%s", err, out)
	}
	var summary bytes.Buffer
	journal.Summary(&summary)
	step(8, "cpanm installs through the log", "cpanm --mirror <verifying proxy> --mirror-only Test::Fatal, from a mirror of the samples\n"+
		"(CHECKSUMS, 02packages) whose every file the proxy checked against the log first:\n"+indent(out)+"\n"+indent(summary.String()))

	bad := filepath.Join(mirror, "authors", "id", "N", "NE", "NEILB", "Text-Diff-1.45.tar.gz")
	f, err := os.OpenFile(bad, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	f.Write([]byte("x"))
	f.Close()
	out, journal, err = install("Text::Diff")
	if err == nil {
		return fmt.Errorf("cpanm installed a tampered Text-Diff:\n%s", out)
	}
	summary.Reset()
	journal.Summary(&summary)
	step(9, "cpanm meets a tampered tarball", "The mirror's Text-Diff-1.45.tar.gz gained one byte. cpanm asks for it, the proxy refuses it,\n"+
		"and nothing of it is installed:\n"+indent(out)+"\n"+indent(summary.String()))
	return nil
}

func tarballs(testdata string) ([]client.File, error) {
	var out []client.File
	root := filepath.Join(testdata, "authors", "id")
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(testdata, p)
		f, err := client.HashFile(p, filepath.ToSlash(rel))
		out = append(out, f)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%w (run the demo from the repository root, or pass --testdata DIR)", err)
	}
	return out, nil
}

// serve runs h on a loopback port until ctx ends.
func serve(ctx context.Context, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go httpserver.Run(ctx, httpserver.New(h, 30*time.Second), ln, time.Second)
	return "http://" + ln.Addr().String(), nil
}

func waitCheckpoint(ctx context.Context, p *client.Policy, url string, size uint64) (*client.Checkpoint, error) {
	f, err := client.NewFetcher(url, "")
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		raw, err := f.ReadCheckpoint(ctx)
		if err == nil {
			if cp, err := p.VerifyCheckpoint(raw); err == nil && cp.Size >= size {
				return cp, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no cosigned checkpoint of size %d after 30s", size)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
