// Command cpantlog-server runs the cpan-tlog transparency log.
//
//	cpantlog-server [serve] [flags]   run the log (the default)
//	cpantlog-server keygen [flags]    make the log's key before its first start
//	cpantlog-server reindex [flags]   rebuild the lookup index from the tree
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/CPAN-Security/cpan-tlog/client/sigstore"
	"github.com/CPAN-Security/cpan-tlog/internal/cli"
	"github.com/CPAN-Security/cpan-tlog/internal/httpserver"
	"github.com/CPAN-Security/cpan-tlog/internal/linebuf"
	"github.com/CPAN-Security/cpan-tlog/internal/minicpan"
	"github.com/CPAN-Security/cpan-tlog/internal/tesseralog"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/log/ingest"
	"github.com/CPAN-Security/cpan-tlog/log/prooftree"
	"github.com/CPAN-Security/cpan-tlog/log/web"
)

const usage = `cpantlog-server runs cpan-tlog, the transparency log of CPAN uploads.

Usage:
  cpantlog-server [serve] [flags]    run the log (the default command)
  cpantlog-server keygen [flags]     write log.key and log.vkey, then exit
  cpantlog-server reindex [flags]    rebuild the lookup index from the tree
  cpantlog-server check-data [flags] check a data directory (a backup, a restore) before serving it
  cpantlog-server import --mirror DIR [flags]   back-fill from a local CPAN tree
  cpantlog-server migrate --to s3 [flags]       move a POSIX log to S3 + MySQL/MariaDB
  cpantlog-server publish-proofs --to DIR       write the proof tree (tlog/proofs/) into a mirror
  cpantlog-server sample-mirror --to DIR        a small CPAN mirror of testdata/, logged, to try cpanm with
  cpantlog-server demo               the whole story (log, witness, monitor, client) in a temp directory

With no arguments it serves the log stored in ./cpantlog-data on
127.0.0.1:8080, creating the signing key and the ingest token on first start.

Run 'cpantlog-server COMMAND -h' for the flags of a command, and
'cpantlog-server --version' for the version. Exit status: 0 done, 1 failed,
2 usage error, 130 (143) an import interrupted by Ctrl-C (SIGTERM), or a
server stopped at once by a second one.

A serving log re-reads its ingest tokens (DATA/ingest.token: one token a
line, 'NAME TOKEN') on SIGHUP and when the file changes. On SIGINT or
SIGTERM it says what it waits for (adds in flight, a checkpoint the
witnesses cosign) and stops within the shutdown bound; a second signal
stops it at once, losing no acknowledged entry.
`

func main() {
	args := os.Args[1:]
	switch {
	case cli.IsVersion(args):
		fmt.Println(cli.Version("cpantlog-server"))
		return
	case len(args) > 1 && args[0] == "help":
		args = []string{args[1], "-h"} // help COMMAND is COMMAND -h
	case cli.IsHelp(args):
		fmt.Print(usage)
		return
	}
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(args)
	case "demo":
		err = demoCmd(args, os.Stdout)
	case "publish-proofs":
		err = publishProofs(args)
	case "keygen":
		err = keygen(args)
	case "reindex":
		err = reindex(args)
	case "check-data":
		err = checkData(args, os.Stdout)
	case "import":
		err = importCmd(args)
	case "migrate":
		err = migrateCmd(args)
	case "sample-mirror":
		err = sampleMirror(args)
	default:
		fmt.Fprintf(os.Stderr, "cpantlog-server: unknown command %q\n\n%s", cmd, usage)
		os.Exit(cli.ExitUsage)
	}
	if line := errorLine(cmd, err); line != "" {
		fmt.Fprintln(os.Stderr, line)
	}
	os.Exit(cli.ExitCode(err, 1))
}

// errorLine is what the command says of err: nothing for none or -h, an
// interruption's message as it is, else the error after the command.
func errorLine(cmd string, err error) string {
	var ie *interruptedError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ""
	case errors.As(err, &ie):
		return err.Error()
	}
	return fmt.Sprintf("cpantlog-server %s: %v", cmd, err)
}

// newFlags is a command's flag set; its -h says what the command does,
// with examples.
func newFlags(name, summary string, examples ...string) *flag.FlagSet {
	fs := flag.NewFlagSet("cpantlog-server "+name, flag.ContinueOnError) // named as typed, for cli.Parse's "run '... -h'"
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: cpantlog-server %s [flags]\n\n%s\n\nExamples:\n", name, summary)
		for _, e := range examples {
			fmt.Fprintf(fs.Output(), "  %s\n", e)
		}
		fmt.Fprint(fs.Output(), "\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs
}

// serveGCPercent is serve's GOGC unless the environment sets one.
const serveGCPercent = 400

func serve(args []string) error {
	fs := newFlags("serve", "Serve the log: POST /add to log an upload, GET /checkpoint, /tile/..., /lookup, /proof\nto read it, /metrics for Prometheus.", "cpantlog-server serve --data /var/lib/cpantlog --listen 127.0.0.1:8080 --policy /etc/cpantlog/policy", "cpantlog-server serve --follow https://cpan.metacpan.org")
	cfg := tlog.Config{}
	fs.StringVar(&cfg.DataDir, "data", "cpantlog-data", "data `DIR`: keys, ingest token, Tessera tree, lookup index")
	listen := fs.String("listen", "127.0.0.1:8080", "`ADDR` to listen on (loopback by default; put a TLS proxy in front to expose it)")
	fs.StringVar(&cfg.Origin, "origin", "", "checkpoint `ORIGIN` of a new log (default "+tlog.DefaultOrigin+"); must match the key of an existing one")
	fs.DurationVar(&cfg.CheckpointInterval, "checkpoint-interval", 0, "how often to publish a checkpoint (default 1s)")
	fs.StringVar(&cfg.Storage, "storage", tlog.StoragePOSIX, "storage driver: posix (the tree under --data/tree; one writer) or s3 (Tessera's storage/aws: an S3 bucket and a MySQL/MariaDB database, shared by any number of writers with the same log.key and ingest.token)")
	fs.BoolVar(&cfg.Frozen, "frozen", false, "serve a retired log read-only for good (the old log of a key rotation): reads and proofs as they were, adds refused with 405 naming --successor; needs log.vkey and the tree in --data")
	fs.StringVar(&cfg.Successor, "successor", "", "with --frozen: the new log's `URL`, which refused adds are pointed to")
	fs.BoolVar(&cfg.ReadOnly, "read-only", false, "serve the read API (and explorer) of a log another server writes: needs log.vkey in --data; with posix, --data/tree must be the writer's tree (a shared mount)")
	fs.StringVar(&cfg.S3.Endpoint, "s3-endpoint", "", "S3 server URL for non-AWS servers (path-style addressing); empty for AWS. Credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or shared config")
	fs.StringVar(&cfg.S3.Bucket, "s3-bucket", "", "S3 bucket holding the tiles (create it first)")
	fs.StringVar(&cfg.S3.Region, "s3-region", "us-east-1", "S3 region")
	fs.BoolVar(&cfg.S3.CreateBucket, "s3-create-bucket", false, "create the S3 bucket if it does not exist")
	fs.StringVar(&cfg.S3.DSN, "mysql-dsn", "", "MySQL/MariaDB DSN for sequencing, e.g. cpantlog:secret@tcp(127.0.0.1:3306)/cpantlog (create the database first)")
	var follow repeated
	fs.Var(&follow, "follow", "a CPAN mirror `URL` whose RECENT files and index files to follow, logging each new upload, deletion and index version (repeatable)")
	followInterval := fs.Duration("follow-interval", time.Minute, "time between polls of each --follow mirror")
	trustedRoot := fs.String("sigstore-trusted-root", "", "Sigstore trusted_root.json: verify .sigstore.json bundles as they are logged and record the signer's identity (no network at verification time)")
	policy := fs.String("policy", "", "trust policy `FILE` whose witnesses must cosign each checkpoint before it is published")
	debugListen := fs.String("debug-listen", "", "serve Go's /debug/pprof profiles on this address (off by default; keep it on loopback)")
	publicURL := fs.String("public-url", "", "the log's public base URL, for links in the explorer's Atom feeds")
	noExplorer := fs.Bool("no-explorer", false, "do not serve the web explorer at /")
	explorerMirror := fs.String("explorer-mirror", web.DefaultMirror, "the CPAN mirror `URL` the explorer's entry pages link each file to")
	fs.IntVar(&cfg.MaxConns, "max-conns", 0, "most HTTP connections open at once; beyond it a new one gets 503 (default: from the open-file limit, keeping descriptors for the storage)")
	fs.DurationVar(&cfg.MaxPublishLag, "max-publish-lag", tlog.DefaultMaxPublishLag, "/healthz answers 503 when acknowledged entries wait longer than this for a published checkpoint (witness quorum not met, publishing failing)")
	fs.BoolVar(&cfg.AllowMissingIndexFiles, "allow-missing-index-files", false, "serve even though the bytes of logged index file versions are missing (lost for good and announced: monitors report each); by default the server refuses to start")
	fs.BoolVar(&cfg.WitnessFailOpen, "witness-fail-open", false, "publish checkpoints even when the witness quorum cannot be met (default: keep accepting adds, publish nothing until the witnesses answer)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef("unexpected arguments %q", fs.Args())
	}
	if cfg.ReadOnly && len(follow) > 0 {
		return cli.Usagef("--follow needs the writer, not a --read-only front end")
	}
	if cfg.Frozen && len(follow) > 0 {
		return cli.Usagef("--follow logs new entries, which a --frozen log takes no more of: follow with the new log")
	}
	if cfg.Successor != "" && !cfg.Frozen {
		return cli.Usagef("--successor goes with --frozen")
	}
	if cfg.Successor != "" {
		// It is echoed in every refused add: an http(s) URL, nothing else.
		u, err := url.Parse(cfg.Successor)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.String() != cfg.Successor {
			return cli.Usagef("--successor %q: want the new log's URL, http:// or https://, with no white space or control characters", cfg.Successor)
		}
	}
	if cfg.Origin != "" {
		if err := tlog.CheckOrigin(cfg.Origin); err != nil {
			return &cli.UsageError{Err: fmt.Errorf("%w; nothing was written", err)}
		}
	}
	if *policy != "" {
		b, err := os.ReadFile(*policy)
		if err != nil {
			return err
		}
		cfg.WitnessPolicy = b
	}
	if *trustedRoot != "" {
		v, err := sigstore.LoadTrustedRoot(*trustedRoot)
		if err != nil {
			return err
		}
		cfg.Sigstore = v
	}
	// The collector runs a quarter as often as Go's default unless GOGC
	// says otherwise: a server's live heap is small (tens of MB), its adds
	// allocate, and under load the collector took a tenth of its CPU
	// (issue 39). The heap may grow to five times the live one.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
	// One log line per add costs a write(2) each under load (issue 39):
	// lines are batched, warnings and errors written at once.
	stderr := linebuf.New(os.Stderr, 0)
	defer stderr.Close() // before main prints serve's error; nowhere to report its own
	logger := slog.New(linebuf.Handler(slog.NewTextHandler(stderr, nil), stderr))
	cfg.Logger = logger
	klog.SetSlogLogger(slog.New(tesseralog.New(logger.Handler(), 0))) // Tessera logs through klog: one log stream, one line a message

	// A second signal exits at once: its message follows the buffered
	// lines, and all are written before the process ends.
	ctx, stop := serveSignals(stderr, func(code int) { stderr.Close(); os.Exit(code) })
	defer stop()
	// From the first signal on, lines are written at once (Close writes
	// through): the operator watches the shutdown say what it waits for,
	// and the burst of adds is over.
	go func() { <-ctx.Done(); stderr.Close() }()
	// SIGHUP reloads the ingest tokens; caught from here on, so that one
	// sent while the log opens does not end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// Listen first: a bad address must fail before keys are created.
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("%w (is another server on that address? choose one with --listen)", err)
	}
	l, err := tlog.Open(ctx, cfg)
	if err != nil {
		ln.Close()
		return err
	}
	if !*noExplorer {
		ex, err := web.New(l, cfg.WitnessPolicy, *publicURL)
		if ex != nil {
			ex.Mirror = *explorerMirror
		}
		if err != nil {
			l.Shutdown(context.Background())
			return err
		}
		l.Mount(ex.Register)
	}
	abs, _ := filepath.Abs(cfg.DataDir)
	fmt.Printf(`cpan-tlog log %q serving on http://%s
  verifier key:  %s
  data:          %s
  ingest token:  %s
  add an entry:  curl -H "Authorization: Bearer $(cat %s)" -d '{"path":...}' http://%s/add
`, l.Origin(), ln.Addr(), l.VerifierKey(), abs, filepath.Join(abs, tlog.TokenFile), filepath.Join(abs, tlog.TokenFile), ln.Addr())
	if *debugListen != "" {
		dln, err := net.Listen("tcp", *debugListen)
		if err != nil {
			return fmt.Errorf("--debug-listen: %w", err)
		}
		dmux := http.NewServeMux()
		dmux.HandleFunc("/debug/pprof/", pprof.Index)
		dmux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		dmux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		go httpserver.Run(ctx, httpserver.New(dmux, 5*time.Minute), dln, time.Second)
	}
	go func() {
		for range hup {
			l.ReloadTokens() // logs what it did, or why not
		}
	}()
	for _, m := range follow {
		f := &ingest.Follower{Log: l, Mirror: m, Interval: *followInterval, Logger: logger}
		go f.Run(ctx)
		fmt.Printf("  following:     %s (every %s)\n", m, *followInterval)
	}
	return tlog.Serve(ctx, l, ln)
}

// serveSignals is a context that the first SIGINT or SIGTERM ends (the
// server then shuts down gracefully, saying what it waits for); a second
// one stops the process at once with exit 128+signal, said on w.
// Stopping there loses no acknowledged entry: an add is acknowledged only
// once Tessera has stored it durably (a SIGKILL loses none either); what
// no checkpoint covers yet is published after the next start.
func serveSignals(w io.Writer, exit func(int)) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-ch:
			cancel()
		case <-ctx.Done():
			return
		}
		s := <-ch
		fmt.Fprintf(w, "cpantlog-server: %s again: stopping now, without waiting for a checkpoint; every acknowledged entry is stored, and is published after the next start\n", s)
		exit(signalCause{s}.status())
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel()
	}
}

type repeated []string

func (r *repeated) String() string     { return fmt.Sprint(*r) }
func (r *repeated) Set(s string) error { *r = append(*r, s); return nil }

func importCmd(args []string) error {
	// Tessera logs through klog, a global: set once a process, here.
	klog.SetSlogLogger(slog.New(tesseralog.New(slog.NewTextHandler(os.Stderr, nil), 0)))
	return importRun(args, os.Stdout, os.Stderr)
}

func importRun(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("import", "Back-fill the log from a local CPAN tree (DIR/authors/id/...), oldest upload first (file\nmtime, then path), checking each file against its directory's CHECKSUMS and skipping paths\nalready logged: safe to interrupt and re-run. Stop the server first.\nInterrupted (Ctrl-C, SIGTERM), it publishes what it logged and exits 130 (143 for SIGTERM).", "cpantlog-server import --mirror /srv/cpan --data cpantlog-data")
	dir := fs.String("data", "cpantlog-data", "data directory of the log")
	mirror := fs.String("mirror", "", "the local CPAN tree")
	trustedRoot := fs.String("sigstore-trusted-root", "", "Sigstore trusted_root.json: verify .sigstore.json bundles and record the signer's identity")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if *mirror == "" {
		return cli.Usagef("--mirror DIR is required")
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	var err error
	ctx, stop := notifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := tlog.Config{DataDir: *dir, Logger: logger}
	if *trustedRoot != "" {
		if cfg.Sigstore, err = sigstore.LoadTrustedRoot(*trustedRoot); err != nil {
			return err
		}
	}
	l, err := tlog.Open(ctx, cfg)
	if err != nil {
		if ie := interruption(ctx, 0); ie != nil {
			return ie
		}
		return err
	}
	st, ierr := ingest.Import(ctx, l, *mirror, stderr, logger)
	// Publish what was logged, even after an interruption.
	serr := l.Shutdown(context.Background())
	fmt.Fprintf(stdout, "import: %d files, %d logged, %d already logged, %d failed\n", st.Files, st.Logged, st.Skipped, st.Failed)
	if st.Unsigned > 0 {
		fmt.Fprintf(stdout, "import: %d Sigstore bundles did not verify and were logged as plain uploads, with no identity (see the warnings above)\n", st.Unsigned)
	}
	if ie := interruption(ctx, st.Logged); ie != nil {
		if serr != nil {
			ie.msg += fmt.Sprintf(" (publishing a checkpoint of what was logged failed: %v; the next run or start publishes it)", serr)
		}
		return ie
	}
	if ierr != nil {
		return ierr
	}
	if serr != nil {
		return serr
	}
	if st.Failed > 0 {
		return fmt.Errorf("%d files were not logged; see the errors above", st.Failed)
	}
	return nil
}

// interruptedError is a command stopped by a signal: its message is said
// as it is, and its exit status is a shell's for that signal.
type interruptedError struct {
	msg    string
	status int
}

func (e *interruptedError) Error() string   { return e.msg }
func (e *interruptedError) ExitStatus() int { return e.status }

// interruption is the error of an import that ctx's signal stopped after
// logging n files, or nil when no signal came.
func interruption(ctx context.Context, n int) *interruptedError {
	var sc signalCause
	if !errors.As(context.Cause(ctx), &sc) {
		return nil
	}
	return &interruptedError{
		msg:    fmt.Sprintf("import interrupted: %s logged so far; run the same command again to resume (files already logged are skipped)", files(n)),
		status: sc.status(),
	}
}

func files(n int) string {
	if n == 1 {
		return "1 file"
	}
	return fmt.Sprintf("%d files", n)
}

// signalCause is why a notifyContext ended: the signal that came.
type signalCause struct{ sig os.Signal }

func (c signalCause) Error() string { return c.sig.String() + " signal received" }

// status is the exit status a shell gives a process the signal ended:
// 128 plus its number (130 for SIGINT, 143 for SIGTERM).
func (c signalCause) status() int {
	if s, ok := c.sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 130
}

// notifyContext is signal.NotifyContext whose context.Cause is a
// signalCause naming the signal. A second signal is caught too: the
// command finishes what it must (publishing what it logged) before it
// exits.
func notifyContext(parent context.Context, sigs ...os.Signal) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	go func() {
		select {
		case s := <-ch:
			cancel(signalCause{s})
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel(context.Canceled)
	}
}

func keygen(args []string) error {
	fs := newFlags("keygen", "Write the log's signing key (log.key, 0600) and verifier key (log.vkey) into the data\ndirectory without serving, so witnesses can be configured before the first start.", "cpantlog-server keygen --data cpantlog-data --origin cpan-tlog.example.org/log")
	dir := fs.String("data", "cpantlog-data", "data directory")
	origin := fs.String("origin", tlog.DefaultOrigin, "checkpoint origin, e.g. cpan-tlog.example.org/log")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if err := tlog.CheckOrigin(*origin); err != nil {
		return &cli.UsageError{Err: fmt.Errorf("%w; nothing was written", err)}
	}
	vkey, err := tlog.Keygen(*dir, *origin)
	if err != nil {
		return err
	}
	fmt.Println(vkey)
	return nil
}

func reindex(args []string) error {
	fs := newFlags("reindex", "Rebuild the lookup index from the log's tree, up to the latest checkpoint. Stop the\nserver first; it catches up the rest on start.", "cpantlog-server reindex --data cpantlog-data")
	dir := fs.String("data", "cpantlog-data", "data directory")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	n, err := tlog.Reindex(context.Background(), *dir, os.Stderr)
	if err != nil {
		return err
	}
	fmt.Printf("lookup index rebuilt: %d entries\n", n)
	return nil
}

func migrateCmd(args []string) error {
	fs := newFlags("migrate", "Move the POSIX log in --data to S3 + MySQL/MariaDB (Tessera's storage/aws), rebuilding\nthe tree there and checking its root against the source checkpoint. Stop the server first;\nthen run 'serve --storage s3' with the same --data and S3 flags.", "cpantlog-server migrate --to s3 --data cpantlog-data --s3-endpoint http://127.0.0.1:7070 --s3-bucket tlog --mysql-dsn 'user:pw@tcp(127.0.0.1:3306)/tlog'")
	from := fs.String("from", "", "the source, posix:DIR (default posix:<--data>)")
	dir := fs.String("data", "cpantlog-data", "data directory of the log (keys, lookup index; the POSIX tree to move)")
	to := fs.String("to", "s3", "the target storage: s3")
	var cfg tlog.Config
	fs.StringVar(&cfg.S3.Endpoint, "s3-endpoint", "", "S3 server URL for non-AWS servers")
	fs.StringVar(&cfg.S3.Bucket, "s3-bucket", "", "S3 bucket (create it first, or pass --s3-create-bucket)")
	fs.StringVar(&cfg.S3.Region, "s3-region", "us-east-1", "S3 region")
	fs.StringVar(&cfg.S3.DSN, "mysql-dsn", "", "MySQL/MariaDB DSN (create the database first)")
	fs.BoolVar(&cfg.S3.CreateBucket, "s3-create-bucket", false, "create the S3 bucket if it does not exist")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if *from != "" {
		d, ok := strings.CutPrefix(*from, "posix:")
		if !ok {
			return fmt.Errorf("--from %q: only posix:DIR can be migrated", *from)
		}
		*dir = d
	}
	if *to != "s3" && *to != "s3:" {
		return fmt.Errorf("--to %q: only s3 is supported", *to)
	}
	cfg.Storage = tlog.StorageS3
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	klog.SetSlogLogger(slog.New(tesseralog.New(logger.Handler(), 0)))
	size, root, err := tlog.Migrate(context.Background(), *dir, cfg)
	if err != nil {
		return err
	}
	fmt.Printf("migrated %d entries, root %x; now run: cpantlog-server serve --data %s --storage s3 --s3-bucket %s --mysql-dsn ...\n", size, root, *dir, cfg.S3.Bucket)
	return nil
}

func sampleMirror(args []string) error {
	fs := newFlags("sample-mirror", "Build a small CPAN mirror from a directory of distribution files (--from, default the\n"+
		"repository's testdata/): the files, each author directory's CHECKSUMS, 02packages and\n"+
		"01mailrc, as PAUSE would publish them; log them in the running log (with the ingest token\n"+
		"in --data), and once a checkpoint the log's witness policy accepts covers them, copy the\n"+
		"log's proofs into the mirror (tlog/proofs/). Then install from it through the log:\n"+
		"'cpantlog exec --upstream DIR -- cpanm ...'.",
		"cpantlog-server sample-mirror --to cpan-mirror",
		"cpantlog-server sample-mirror --from testdata --to cpan-mirror --log http://127.0.0.1:8080 --data cpantlog-data")
	from := fs.String("from", "testdata", "`DIR` holding distribution files under authors/id/")
	to := fs.String("to", "", "the mirror's root `DIR` (created)")
	logURL := fs.String("log", "http://127.0.0.1:8080", "the running log's `URL`")
	dir := fs.String("data", "cpantlog-data", "the log's data `DIR` (its ingest token, and its proofs to copy)")
	wait := fs.Duration("wait", time.Minute, "how long to wait for the proofs")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if *to == "" {
		return cli.Usagef("--to DIR is required")
	}
	tokens, err := tlog.ReadTokenFile(filepath.Join(*dir, tlog.TokenFile))
	if err != nil {
		return fmt.Errorf("%w (is %s the running log's data directory? pass --data)", err, *dir)
	}
	t, err := minicpan.Build(sampleDir(*from), *to)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *wait+time.Minute)
	defer cancel()
	if err := minicpan.Log(ctx, *logURL, tokens[0].Value, t, time.Now()); err != nil {
		return fmt.Errorf("%w (is the log running at %s? pass --log)", err, *logURL)
	}
	fmt.Printf("mirror:  %s (%d distributions, CHECKSUMS, 02packages, 01mailrc), logged in %s\n", *to, len(t.Uploads), *logURL)
	// Wait for the proof of every file the mirror holds now, not for as
	// many proofs as it has files: a second run over the same mirror logs
	// a new 02packages, and the proof of the old one must not stand in
	// for it.
	copied, kept, missing, err := publish(*dir, *to, *wait)
	switch {
	case err != nil:
		fmt.Printf("proofs:  not all copied (%v); run 'cpantlog-server publish-proofs --data %s --to %s' later\n", err, *dir, *to)
	case len(missing) > 0:
		fmt.Printf("proofs:  %s; run 'cpantlog-server publish-proofs --data %s --to %s' later\n", missingText(missing), *dir, *to)
	default:
		fmt.Printf("proofs:  %s/tlog/proofs/ (%d files, %d new): every file of the mirror has its proof\n", *to, copied+kept, copied)
	}
	fmt.Printf("next:    cpantlog exec --upstream %s -- cpanm -n -L local Try::Tiny\n", *to)
	return nil
}

// publish copies the proof tree of the log in dir into the mirror to
// until every file of the mirror has its proof there (prooftree.Missing),
// or wait has passed: the log writes a proof once a checkpoint its
// witness policy accepts covers the entry. It returns how many proofs it
// copied, how many were there already, and the mirror's files still
// without a proof.
func publish(dir, to string, wait time.Duration) (copied, kept int, missing []string, err error) {
	deadline := time.Now().Add(wait)
	for {
		var c, k int
		c, k, err = prooftree.Publish(dir, to)
		copied += c
		kept = k - (copied - c) // the last pass keeps what the earlier ones copied
		if err == nil {
			if missing, err = prooftree.Missing(to); err != nil {
				return copied, kept, nil, err // the mirror cannot be read: waiting will not help
			}
			if len(missing) == 0 {
				return copied, kept, nil, nil
			}
		}
		if !time.Now().Before(deadline) {
			return copied, kept, missing, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// missingText says which files of a mirror have no proof, and why that
// may be.
func missingText(missing []string) string {
	n := min(len(missing), 3)
	more := ""
	if len(missing) > n {
		more = fmt.Sprintf(" and %d more", len(missing)-n)
	}
	what := fmt.Sprintf("%d files of the mirror have", len(missing))
	if len(missing) == 1 {
		what = "1 file of the mirror has"
	}
	return fmt.Sprintf("%s no proof in it yet (%s%s): not logged, or no checkpoint the log's witness policy accepts covers it yet (is the witness quorum met?)",
		what, strings.Join(missing[:n], ", "), more)
}

func publishProofs(args []string) error {
	fs := newFlags("publish-proofs", "Copy the log's proof tree into a CPAN mirror's root as tlog/proofs/<path>.tlog-proof, for\n"+
		"its rsync: one c2sp.org/tlog-proof per upload and index version, written once a witnessed\n"+
		"checkpoint covers it. Only files the mirror lacks or holds with other bytes are written,\n"+
		"each atomically, so it is idempotent and can be interrupted and run again. Then every file\n"+
		"of the mirror (under authors/id/ but CHECKSUMS, and the index files, each version by its\n"+
		"content) must have its proof: a client that verifies with the mirror's proofs alone refuses\n"+
		"one that has none. Those still without one after --wait are listed (exit 1): the log has not\n"+
		"logged them, or no witnessed checkpoint covers them yet; run it again later. A damaged file\n"+
		"in the log's tree is not copied but reported (exit 1): the server rewrites it when it\n"+
		"starts or is asked for it. The server may be running.",
		"cpantlog-server publish-proofs --data cpantlog-data --to /srv/cpan",
		"cpantlog-server publish-proofs --data cpantlog-data --to /srv/cpan --wait 1m   # after an rsync that brought a new 02packages")
	dir := fs.String("data", "cpantlog-data", "the log's data `DIR`")
	to := fs.String("to", "", "the mirror's root `DIR` (tlog/proofs/ is created in it)")
	wait := fs.Duration("wait", 0, "how long to wait for the log to write the proofs the mirror still lacks")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if *to == "" {
		return cli.Usagef("--to DIR is required")
	}
	copied, kept, missing, err := publish(*dir, *to, *wait)
	if err != nil {
		return err
	}
	fmt.Printf("published %d new proofs into %s (%d already there)\n", copied, filepath.Join(*to, "tlog", "proofs"), kept)
	if len(missing) > 0 {
		return fmt.Errorf("%s; run publish-proofs again later (or with --wait)", missingText(missing))
	}
	return nil
}
