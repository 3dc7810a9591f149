// Command cpantlog-witness is a C2SP tlog-witness that cosigns the
// checkpoints of the logs it is configured for.
//
//	cpantlog-witness keygen --data DIR --name NAME
//	cpantlog-witness serve --data DIR --config FILE [--log-list URL|FILE] [--listen 127.0.0.1:7380]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/internal/cli"
	"github.com/CPAN-Security/cpan-tlog/internal/httpserver"
	"github.com/CPAN-Security/cpan-tlog/witness"
)

const usage = `cpantlog-witness cosigns transparency log checkpoints (C2SP tlog-witness, current
text) after checking each is consistent with the last one it cosigned for that log.

Usage:
  cpantlog-witness keygen --data DIR --name NAME [--algorithm ed25519|ml-dsa-44]
                                                     write the witness's keys
  cpantlog-witness serve --data DIR --config FILE [--log-list URL|FILE]
                      [--listen 127.0.0.1:7380]      cosign checkpoints over HTTP
  cpantlog-witness --version

The config lists the logs to witness, one 'log <vkey> [<url>]' line each
(C2SP tlog-policy; '#' comments). Send SIGHUP to reload it; state is kept.
--log-list URL|FILE adds the logs of a c2sp.org/tlog-list (re-read hourly and
on SIGHUP); a list only adds logs, never removes or changes one.
Run 'cpantlog-witness COMMAND -h' for a command's flags. Exit status: 0 done,
1 failed, 2 usage error.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(cli.ExitUsage)
	}
	if cli.IsVersion(os.Args[1:]) {
		fmt.Println(cli.Version("cpantlog-witness"))
		return
	}
	args := os.Args[1:]
	if len(args) > 1 && args[0] == "help" {
		args = []string{args[1], "-h"} // help COMMAND is COMMAND -h
	}
	var err error
	switch args[0] {
	case "keygen":
		err = keygen(args[1:])
	case "serve":
		err = serve(args[1:])
	case "help", "-h", "--help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "cpantlog-witness: unknown command %q\n\n%s", args[0], usage)
		os.Exit(cli.ExitUsage)
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "cpantlog-witness %s: %v\n", args[0], err)
	}
	os.Exit(cli.ExitCode(err, 1))
}

// newFlags is a flag set whose -h says what the command does, with
// examples.
func newFlags(name, summary string, examples ...string) *flag.FlagSet {
	fs := flag.NewFlagSet("cpantlog-witness "+name, flag.ContinueOnError) // named as typed, for cli.Parse's "run '... -h'"
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: cpantlog-witness %s [flags]\n\n%s\n\nExamples:\n", name, summary)
		for _, e := range examples {
			fmt.Fprintf(fs.Output(), "  %s\n", e)
		}
		fmt.Fprint(fs.Output(), "\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs
}

func keygen(args []string) error {
	fs := newFlags("keygen", "Write the witness's signing key (witness.key, 0600) and its verifier key (witness.vkey,\nprinted too) into --data, as C2SP tlog-cosignature defines them: Ed25519 (vkey type 0x04,\nwhich every verifier knows) or ML-DSA-44 (type 0x06, post-quantum; a cosignature is 3.2 kB\nof base64 instead of 100 bytes). It refuses to overwrite a key.",
		"cpantlog-witness keygen --data /var/lib/cpantlog-witness --name witness.example.org",
		"cpantlog-witness keygen --data /var/lib/cpantlog-witness-pq --name pq.witness.example.org --algorithm ml-dsa-44")
	dir := fs.String("data", "cpantlog-witness-data", "data `DIR` for witness.key (0600) and witness.vkey")
	name := fs.String("name", "", "the witness's `NAME`, e.g. witness.example.org")
	algorithm := fs.String("algorithm", string(witness.Ed25519), "cosignature `ALG`: ed25519 or ml-dsa-44")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	alg, err := witness.ParseAlgorithm(*algorithm)
	if err != nil {
		return &cli.UsageError{Err: fmt.Errorf("--algorithm: %w; nothing was written", err)}
	}
	if *name == "" {
		return cli.Usagef("--name is required")
	}
	if err := client.CheckKeyName(*name); err != nil {
		return &cli.UsageError{Err: fmt.Errorf("--name: %w; nothing was written", err)}
	}
	vkey, err := witness.KeygenWith(*dir, *name, alg)
	if err != nil {
		return err
	}
	fmt.Println(vkey)
	return nil
}

func serve(args []string) error {
	fs := newFlags("serve", "Serve C2SP tlog-witness: POST /add-checkpoint cosigns a checkpoint of a configured log that is\nconsistent with the last one cosigned; GET /<hex sha256(origin)>/checkpoint reads it back;\n/metrics for Prometheus. SIGHUP reloads --config and re-reads --log-list; the state is kept.\n--log-list adds a c2sp.org/tlog-list's new logs (kept in DIR/learned-logs.list); it never removes or changes one.", "cpantlog-witness serve --data /var/lib/cpantlog-witness --config /etc/cpantlog/witness.config",
		"cpantlog-witness serve --data /var/lib/cpantlog-witness --log-list https://example.org/lists/testing/log-list.1")
	dir := fs.String("data", "cpantlog-witness-data", "data `DIR`: witness.key, witness.vkey, state/, evidence/")
	configFile := fs.String("config", "", "`FILE` of 'log <vkey> [<url>]' lines naming the logs to witness")
	listen := fs.String("listen", "127.0.0.1:7380", "`ADDR` to listen on (loopback by default)")
	ratePerLog := fs.Float64("rate", witness.DefaultRatePerLog, "add-checkpoint requests per second allowed per log")
	lists := addLogListFlags(fs)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if err := lists.check(*configFile); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := lists.baseConfig(*configFile)
	if err != nil {
		return err
	}
	w, err := witness.Open(*dir, cfg, *ratePerLog, logger)
	if err != nil {
		return err
	}
	ll, err := lists.open(w, cfg)
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			lists.reload(logger, *configFile, ll)
		}
	}()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("%w (choose another address with --listen)", err)
	}
	fmt.Printf("cpan-tlog witness serving on http://%s\n  verifier key: %s\n  logs: %d\n", ln.Addr(), w.VerifierKey(), ll.Known())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	lists.run(ctx, ll)
	return httpserver.Run(ctx, httpserver.New(w.Handler(), 30*time.Second), ln, 10*time.Second)
}

func loadConfig(p string) (*witness.Config, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	cfg, err := witness.ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return cfg, nil
}
