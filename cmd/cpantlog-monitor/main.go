// Command cpantlog-monitor audits a cpan-tlog log for third parties.
//
//	cpantlog-monitor --policy FILE --state DIR [--log URL] [--watch FILE] [--once] ...
//	cpantlog-monitor audit-mirror --mirror URL|DIR --policy FILE --state DIR
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/CPAN-Security/cpan-tlog/client"
	cmdcli "github.com/CPAN-Security/cpan-tlog/internal/cli"
	"github.com/CPAN-Security/cpan-tlog/internal/httpserver"
	"github.com/CPAN-Security/cpan-tlog/monitor"
	"github.com/CPAN-Security/cpan-tlog/monitor/community"
)

const usage = `cpantlog-monitor audits a cpan-tlog log: it verifies every checkpoint against a
trust policy, proves each consistent with the last, downloads every entry,
rebuilds the tree, and reports anything odd.

Usage:
  cpantlog-monitor [follow] [flags]            follow the log (or --once: one round)
  cpantlog-monitor audit-mirror --mirror URL|DIR [flags]
                                               compare a CPAN mirror with the log
  cpantlog-monitor community --public-url URL --smtp HOST:PORT --mail-from ADDR [flags]
                                               follow the log for subscribers: CPAN
                                               authors hear of uploads and index
                                               changes touching what they watch
  cpantlog-monitor --version

Run 'cpantlog-monitor COMMAND -h' (or 'help COMMAND') for a command's flags.

Exit codes with --once and audit-mirror: 0 clean, 1 findings, 2 error,
3 security finding (fork, rollback, bad signature, root or tile mismatch,
a path PAUSE never lets change logged with new content (path-rewritten),
or logged again after its delete (upload-after-delete), split view, anything that cannot be audited where a hijack could hide).

Finding kinds: checkpoint-bad-signature, checkpoint-untrusted,
checkpoint-rollback, checkpoint-fork, root-mismatch, tile-mismatch,
split-view, checkpoint-stale-view, entry-malformed, path-rewritten, upload-after-delete, uploader-mismatch, watched,
sigstore-identity-changed, sigstore-identity-missing, mirror-unlogged,
mirror-mismatch, mirror-missing; every logged 02packages and 06perms
version is diffed with the previous one (its bytes from the log, else
--mirror): index-unlogged-file (security), index-owner-changed,
index-version-down, index-package-removed, perms-changed, and
index-version-unavailable (security) when neither gives the bytes.
What the monitor cannot audit is a finding, never a warning:
log-unauditable (security: a bundle, tile or checkpoint the log serves
that cannot be read; the audit stops before a bundle),
index-version-unauditable (security for 02packages: a version that is
malformed or too large; what was found before the point it fails is
reported, and it is not what the next version is compared with),
mirror-unauditable (security: a file, symlink, directory or CHECKSUMS of
the mirror that cannot be read or judged).

The --watch file holds one rule per line ('#' comments):
  dist Try-Tiny                      uploads and deletions of a distribution
  author ETHER                       anything in ETHER's directory or by ETHER
  path authors/id/E/ET/ETHER/*.zip   paths matching a glob

Flags:
`

// subUsage is each command's -h, before its flags.
var subUsage = map[string]string{
	"follow": `Usage: cpantlog-monitor follow [flags]   (the default command)

Follow the log: each round verifies the new checkpoint (log signature,
witness quorum, consistency with the last), downloads and checks every new
entry, rebuilds the tree, runs the rules, diffs every new index version,
and delivers new findings to stdout, --hook and --webhook. With --once, one
round (exit 0 clean, 1 findings, 3 security).

Examples:
  cpantlog-monitor --policy policy --state monitor-state --once
  cpantlog-monitor follow --policy policy --state monitor-state --watch watch.txt --webhook https://alerts.example.org/cpantlog

Flags:
`,
	"community": communityUsage,
	"audit-mirror": `Usage: cpantlog-monitor audit-mirror --mirror URL|DIR [flags]

Compare a CPAN mirror with the log: every file it serves under authors/id/
must be logged with the same size and sha256 (mirror-unlogged,
mirror-mismatch), and every logged upload must be there (mirror-missing).
A symlink is judged by the bytes it resolves to, as a web server serves
them; what cannot be read (an unreadable or oversized file or CHECKSUMS, a
dangling symlink, a directory that cannot be listed, a CHECKSUMS over 8 MiB)
is mirror-unauditable.
Exit 0 clean, 1 findings, 2 error, 3 security finding.

Examples:
  cpantlog-monitor audit-mirror --mirror /srv/cpan --policy policy --state monitor-state
  cpantlog-monitor audit-mirror --mirror https://cpan.metacpan.org --policy policy --state monitor-state

Flags:
`,
}

type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(s string) error { *r = append(*r, s); return nil }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	switch {
	case cmdcli.IsVersion(args):
		fmt.Fprintln(stdout, cmdcli.Version("cpantlog-monitor"))
		return 0
	case len(args) > 1 && args[0] == "help":
		args = []string{args[1], "-h"} // help COMMAND is COMMAND -h
	case cmdcli.IsHelp(args):
		args = []string{"-h"}
	}
	mirror := len(args) > 0 && args[0] == "audit-mirror"
	sub := ""
	if len(args) > 0 && (args[0] == "audit-mirror" || args[0] == "follow" || args[0] == "community") {
		sub, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("cpantlog-monitor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		if s, ok := subUsage[sub]; ok {
			fmt.Fprint(stderr, s)
		} else {
			fmt.Fprint(stderr, usage)
		}
		fs.PrintDefaults()
	}
	defaultPolicy, _ := client.PolicyFile()
	policyFile := fs.String("policy", defaultPolicy, "trust policy `FILE` naming the log (and its URL), witnesses and quorum ($CPANTLOG_POLICY, else ~/.config/cpantlog/policy, as every cpantlog tool)")
	logURL := fs.String("log", "", "the log's `URL` or tile directory (default: the policy's URL)")
	stateDir := fs.String("state", "cpantlog-monitor-state", "state `DIR`: position, rule memory, trusted checkpoint, evidence")
	watchFile := fs.String("watch", "", "`FILE` of watch rules")
	once := fs.Bool("once", false, "run one round and exit (0 clean, 1 findings, 3 security)")
	asJSON := fs.Bool("json", false, "print findings as JSON lines")
	hook := fs.String("hook", "", "shell `COMMAND` run per finding, details in CPANTLOG_FINDING_* variables")
	webhook := fs.String("webhook", "", "`URL` to POST each finding to as JSON")
	interval := fs.Duration("interval", time.Minute, "time between rounds when following")
	listen := fs.String("listen", "127.0.0.1:7381", "`ADDR` for /metrics and /healthz when following (empty: none)")
	mirrorLoc := fs.String("mirror", "", "a CPAN mirror's URL or local directory: audit-mirror compares it with the log; when following, an index version the log does not give back is fetched from it (checked against the log) to diff it")
	var peers repeated
	fs.Var(&peers, "peer", "another view of the log's checkpoint to compare (`URL|FILE`; repeatable); every witness of the policy with a URL is one already")
	noWitnessPeers := fs.Bool("no-witness-peers", false, "do not compare with the policy's witnesses' latest cosigned checkpoints")
	bulkAudit := fs.Int("bulk-audit", monitor.DefaultBulkAudit, "an audit of at least `N` new entries (more than the paths already on record, as in a first audit) checks paths for rewrites at its end, sorting on disk, instead of in a table of every path held in memory: a first audit of 10M entries then needs about 30 MB instead of 100; 0 or negative: never")
	var com *communityFlags
	if sub == "community" {
		com = addCommunityFlags(fs)
	}
	maxViewLag := fs.Duration("max-view-lag", time.Hour, "report checkpoint-stale-view when a peer saw the log sign a larger tree this long ago and the log still shows this monitor an older one")
	command := "cpantlog-monitor"
	if sub != "" {
		command += " " + sub
	}
	if err := cmdcli.ParseAs(fs, args, command); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "%s: %v\n", command, err)
		return 2
	}
	fail := func(err error) int { fmt.Fprintf(stderr, "cpantlog-monitor: %v\n", err); return 2 }
	pb, err := os.ReadFile(*policyFile)
	if err != nil {
		return fail(fmt.Errorf("%w (pass --policy)", err))
	}
	policy, err := client.ParsePolicy(pb)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", *policyFile, err))
	}
	var watch []monitor.WatchRule
	if *watchFile != "" {
		b, err := os.ReadFile(*watchFile)
		if err != nil {
			return fail(err)
		}
		if watch, err = monitor.ParseWatch(b); err != nil {
			return fail(fmt.Errorf("%s: %w", *watchFile, err))
		}
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	cfg := monitor.Config{Log: *logURL, Policy: policy, StateDir: *stateDir, Watch: watch, Peers: peers, NoWitnessPeers: *noWitnessPeers, MaxViewLag: *maxViewLag, Progress: stderr, Logger: logger, BulkAudit: *bulkAudit}
	if *bulkAudit <= 0 {
		cfg.BulkAudit = -1
	}
	if !mirror {
		cfg.Mirror = *mirrorLoc
	}
	m, err := monitor.New(cfg)
	if err != nil {
		return fail(err)
	}
	defer func() {
		// The state is durable without it; what fails here (saving the path
		// table) only makes the next start rebuild that table.
		if err := m.Close(); err != nil {
			logger.Warn("closing the state", "err", err)
		}
	}()
	sinks := []monitor.Sink{monitor.WriterSink{W: stdout, JSON: *asJSON}}
	if *hook != "" {
		sinks = append(sinks, monitor.HookSink{Command: *hook})
	}
	if *webhook != "" {
		sinks = append(sinks, monitor.WebhookSink{URL: *webhook})
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var subscribers *community.Community
	if com != nil {
		logLoc := *logURL
		if logLoc == "" {
			logLoc = policy.Logs[0].URL
		}
		if subscribers, err = com.start(ctx, m, logLoc, *stateDir, m.Registerer(), logger); err != nil {
			return fail(err)
		}
		m.AddHealthCheck(subscribers.Unhealthy)
	}

	round := func() (int, error) {
		var err error
		if mirror {
			err = m.AuditMirror(ctx, *mirrorLoc)
		} else {
			err = m.Sync(ctx)
		}
		// Deliver even after an error: findings recorded before it stand.
		code := 0
		derr := m.DeliverEach(ctx, func(f monitor.Finding) {
			code = max(code, 1)
			if f.Security {
				code = 3
			}
		}, sinks...)
		if subscribers != nil {
			// What the round routed to subscribers goes out now; a
			// channel that fails keeps its messages for the next round.
			derr = errors.Join(derr, subscribers.Deliver(ctx), subscribers.Digest(ctx))
		}
		return code, errors.Join(err, derr)
	}
	if *once || mirror {
		if mirror && *mirrorLoc == "" {
			return fail(errors.New("audit-mirror needs --mirror URL|DIR"))
		}
		code, err := round()
		if err != nil {
			fmt.Fprintf(stderr, "cpantlog-monitor: %v\n", err)
			return max(code, 2)
		}
		if !mirror {
			audited, _ := m.Audited()
			fmt.Fprintf(stderr, "cpantlog-monitor: audited %d entries of %s (checkpoint size %d): %s\n", audited, policy.Logs[0].Origin, m.LastCheckpointSize(), summary(code))
		}
		return code
	}
	if *listen != "" {
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			return fail(fmt.Errorf("%w (choose another --listen, or --listen '' for none)", err))
		}
		// /healthz: 503 with the reason when the last round failed or none
		// completed within three intervals (at least five minutes).
		maxAge := max(3**interval, 5*time.Minute)
		go httpserver.Run(ctx, httpserver.New(m.Handler(maxAge), 30*time.Second), ln, 5*time.Second)
	}
	audited, _ := m.Audited()
	logger.Info("following the log", "origin", policy.Logs[0].Origin, "audited", audited, "interval", *interval, "state", *stateDir, "metrics", *listen)
	for {
		_, err := round()
		m.RoundDone(err)
		if err != nil {
			logger.Error("round failed; retrying next interval", "err", err)
		}
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(*interval):
		}
	}
}

func summary(code int) string {
	switch code {
	case 0:
		return "no findings"
	case 3:
		return "SECURITY findings above"
	}
	return "findings above"
}
