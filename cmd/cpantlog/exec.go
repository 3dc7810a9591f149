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
wget's and curl's configuration files (your ~/.wgetrc and ~/.curlrc are not read),
CPAN.pm's proxy and mirror settings, Carton's mirror and its fallback mirrors, cpm's
mirror and resolver; PERL_CPANM_OPT is ignored. After COMMAND it hashes every archive
and index file the clients left where they keep what they fetched, and refuses the run
if any of them is not what the proxy verified. It prints each file once with its
verdict, and the reason of every refusal (cpanm and CPAN.pm hide them).

Exit status, the first that applies:
  1  something was refused, or COMMAND used a file that was not verified
  2  something could not be checked (log or upstream unreachable), or COMMAND
     succeeded while nothing at all was verified
  4  COMMAND failed (its own exit status is printed)
  0  COMMAND succeeded and everything it fetched was verified`

func execCmd(args []string, stdout, stderr io.Writer) (int, error) {
	fs, c := newFlags("exec", execSummary, stderr,
		"cpantlog exec -- cpanm Test::Fatal",
		"cpantlog exec --upstream http://mirror.local/cpan -- carton install")
	pf := addProxyFlags(fs)
	verbose := fs.Bool("v", false, "print the proxy's decisions as they happen")
	i := slices.Index(args, "--")
	if i < 0 || i == len(args)-1 {
		if slices.ContainsFunc(args, func(a string) bool { return a == "-h" || a == "-help" || a == "--help" }) {
			fs.Usage()
			return client.ExitUsage, flag.ErrHelp
		}
		return client.ExitUsage, errors.New("say what to run after --, e.g. cpantlog exec -- cpanm Try::Tiny (cpantlog exec -h explains)")
	}
	command := args[i+1:]
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
	plan, err := launch.New(command, os.Environ(), proxyURL, tmp)
	if err != nil {
		cancel()
		return client.ExitUsage, err
	}
	cmd := exec.Command(plan.Argv[0], plan.Argv[1:]...)
	cmd.Env = plan.Env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	for _, n := range plan.Notes {
		fmt.Fprintf(stderr, "cpantlog: %s\n", n)
	}
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
	var ee *exec.ExitError
	if runErr != nil && !errors.As(runErr, &ee) {
		return client.ExitUsage, fmt.Errorf("run %s: %w", command[0], runErr)
	}
	// Fail closed: whatever a client used must be what the proxy verified.
	used, err := plan.Used()
	if err != nil {
		fmt.Fprintf(stderr, "cpantlog: could not list what %s fetched: %v\n", command[0], err)
		return client.ExitUsage, nil
	}
	for _, u := range used {
		if !journal.Verified(u.SHA256) {
			journal.Unverified(u.Name)
		}
	}
	journal.Summary(stderr)
	return execVerdict(stderr, command[0], journal, ee), nil
}

// execExitCommandFailed is exec's exit status when COMMAND failed and
// nothing was refused or unchecked: apart from 1 and 2, which cpanm and
// others also use for their own failures.
const execExitCommandFailed = 4

// execVerdict decides exec's exit status: refused beats could not check
// beats COMMAND's own failure, whatever COMMAND exited.
func execVerdict(stderr io.Writer, name string, journal *proxy.Journal, failed *exec.ExitError) int {
	verified, refused, unchecked := journal.Counts()
	switch {
	case refused > 0:
		fmt.Fprintf(stderr, "cpantlog: %d files refused or used unverified: do not trust what %s installed\n", refused, name)
		return client.ExitNotVerified
	case unchecked > 0:
		fmt.Fprintf(stderr, "cpantlog: %d files could not be checked (log or upstream unreachable): nothing was proven either way\n", unchecked)
		return client.ExitUsage
	case failed != nil:
		fmt.Fprintf(stderr, "cpantlog: %s failed (%v)\n", name, failed)
		return execExitCommandFailed
	case verified == 0:
		fmt.Fprintf(stderr, "cpantlog: %s succeeded, but nothing was fetched through the verifying proxy, so nothing was verified: if it installed anything, that came from elsewhere\n", name)
		return client.ExitUsage
	}
	return 0
}
