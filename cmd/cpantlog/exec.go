package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/client/launch"
	"github.com/CPAN-Security/cpan-tlog/client/proxy"
	"github.com/CPAN-Security/cpan-tlog/internal/httpserver"
)

const execSummary = `exec [proxy flags] -- COMMAND [ARGS...]

Runs COMMAND (cpanm, carton, cpan, cpm, or anything else that fetches from CPAN) with
every way it could fetch from CPAN pointed at a verifying proxy started on a free
loopback port: the http(s) proxy variables (nothing exempted; https is never tunnelled),
Carton's mirror and its fallback mirrors, cpm's mirror and resolver. At the end it prints
what was verified and every refusal with its reason (cpanm and CPAN.pm hide them).

Exit status: COMMAND's when it failed; else 1 when anything was refused, 2 when
something could not be checked (log or upstream unreachable), 0 when all verified.

  cpantlog exec -- cpanm Test::Fatal
  cpantlog exec --upstream http://mirror.local/cpan -- carton install`

func execCmd(args []string, stdout, stderr io.Writer) (int, error) {
	i := slices.Index(args, "--")
	if i < 0 || i == len(args)-1 {
		return client.ExitUsage, errors.New("say what to run after --, e.g. cpantlog exec -- cpanm Try::Tiny")
	}
	command := args[i+1:]
	fs, c := newFlags("exec", execSummary, stderr)
	pf := addProxyFlags(fs)
	verbose := fs.Bool("v", false, "print the proxy's decisions as they happen")
	if rest, err := parse(fs, args[:i]); err != nil {
		return client.ExitUsage, err
	} else if len(rest) > 0 {
		return client.ExitUsage, fmt.Errorf("unexpected arguments %q before --", rest)
	}
	v, err := c.verifier(true)
	if err != nil {
		return client.ExitUsage, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return client.ExitUsage, err
	}
	logOut := io.Discard
	if *verbose {
		logOut = stderr
	}
	journal := &proxy.Journal{}
	// The proxy's own address is a host it serves, so a request to it
	// through the proxy variables is served like a mirror request.
	p, err := pf.newProxy(v, slog.New(slog.NewTextHandler(logOut, nil)), journal, ln.Addr().String())
	if err != nil {
		ln.Close()
		return client.ExitUsage, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- httpserver.Run(ctx, httpserver.New(p, 10*time.Minute), ln, 5*time.Second) }()
	proxyURL := "http://" + ln.Addr().String()

	tmp, err := os.MkdirTemp("", "cpantlog-exec-")
	if err != nil {
		cancel()
		return client.ExitUsage, err
	}
	defer os.RemoveAll(tmp)
	argv, err := launch.Args(command, proxyURL, tmp)
	if err != nil {
		cancel()
		return client.ExitUsage, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = launch.Env(os.Environ(), proxyURL)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	fmt.Fprintf(stderr, "cpantlog: running %q through the verifying proxy %s (log %s, upstream %s)\n", command, proxyURL, v.Log.Origin, pf.upstream)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)
	runErr := cmd.Start()
	if runErr == nil {
		go func() {
			for s := range signals {
				cmd.Process.Signal(s)
			}
		}()
		runErr = cmd.Wait()
	}
	cancel()
	<-served
	journal.Summary(stderr)
	_, refused, unchecked := journal.Counts()
	var ee *exec.ExitError
	switch {
	case errors.As(runErr, &ee):
		fmt.Fprintf(stderr, "cpantlog: %s failed (%v)\n", command[0], runErr)
		return max(ee.ExitCode(), 1), nil
	case runErr != nil:
		return client.ExitUsage, fmt.Errorf("run %s: %w", command[0], runErr)
	case refused > 0:
		fmt.Fprintf(stderr, "cpantlog: %d requests refused: do not trust what was installed without them\n", refused)
		return client.ExitNotVerified, nil
	case unchecked > 0:
		fmt.Fprintf(stderr, "cpantlog: %d requests could not be checked (log or upstream unreachable)\n", unchecked)
		return client.ExitUsage, nil
	}
	return 0, nil
}
