package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/client/launch"
	"github.com/CPAN-Security/cpan-tlog/client/noverify"
	"github.com/CPAN-Security/cpan-tlog/client/proxy"
	"github.com/CPAN-Security/cpan-tlog/internal/httpserver"
)

const execSummary = `exec [proxy flags] -- COMMAND [ARGS...]

Runs COMMAND (cpanm, carton, cpan, cpm, or anything else that fetches from CPAN) with
every way it could fetch from CPAN pointed at a verifying proxy started on a free
loopback port: the http(s) proxy variables in every spelling (nothing exempted; https is
never tunnelled), wget's and curl's configuration files (your ~/.wgetrc and ~/.curlrc
are not read), CPAN.pm's proxy and mirror settings, Carton's mirror and its fallback
mirrors, cpm's mirror and resolver; PERL_CPANM_OPT is ignored.

Into the clients it knows (cpanm, cpanm-tlog, carton, carton-tlog, cpan) it also loads
the Perl hook of cpan-tlog (built into this program): every archive and index file is
verified by the proxy where it arrives, before anything is unpacked or built, so a
file:// or directory mirror, which no proxy sees, is verified too. Your PERL5OPT is then
ignored (it could unload the hook). CPANTLOG_NOVERIFY (comma-separated patterns, such as
authors/id/M/MY/MYCOMPANY) lets what it names through unverified: each such file is
listed as "not verified (exempt by PATTERN)".

After COMMAND it hashes every archive and index file the clients left where they keep
what they fetched, whatever its first bytes, and refuses the run if any of them is
neither verified nor exempt. It prints each file once with its verdict, and the reason
of every refusal (cpanm and CPAN.pm hide them). With several logs in the policy (a
log-key rotation), its proxy asks the first (--origin chooses another); a mirror's
proof from any log of the policy verifies.

Exit status, the first that applies:
  1  something was refused, or COMMAND used a file that was not verified
  2  something could not be checked (log or upstream unreachable, a file unreadable),
     CPANTLOG_NOVERIFY is invalid, or COMMAND succeeded while nothing at all was
     verified or exempt
  4  COMMAND failed (its own exit status is printed)
  0  COMMAND succeeded and everything it fetched was verified (or exempt)`

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
	// The exemptions are read first: a mistake in them stops everything.
	// COMMAND gets the variable unchanged, for the hook.
	patterns, err := noverify.FromEnv()
	if err != nil {
		return client.ExitUsage, err
	}
	tmp, err := os.MkdirTemp("", "cpantlog-exec-")
	if err != nil {
		return client.ExitUsage, err
	}
	defer os.RemoveAll(tmp)
	// The hook reads the same policy as exec, from a file.
	policy, err := execPolicy(c, tmp)
	if err != nil {
		return client.ExitUsage, err
	}
	v, err := c.firstLogVerifier()
	if err != nil {
		return client.ExitUsage, err
	}
	var tok [32]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return client.ExitUsage, err
	}
	token := hex.EncodeToString(tok[:])
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
	if err == nil {
		// exec's proxy alone has the hook's endpoints.
		cfg := p.Config()
		cfg.CheckToken, cfg.Exempt = token, exemptBy(patterns)
		p, err = proxy.New(cfg)
	}
	if err != nil {
		ln.Close()
		return client.ExitUsage, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- httpserver.Run(ctx, httpserver.New(p, 10*time.Minute), ln, 5*time.Second) }()
	proxyURL := "http://" + ln.Addr().String()

	plan, err := launch.New(command, os.Environ(), proxyURL, tmp, &launch.Hook{Check: proxyURL + "/.cpantlog/check", Token: token, Policy: policy})
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
	if plan.Hooked != "" {
		fmt.Fprintf(stderr, "cpantlog: with the verifying hook (%s) loaded into %s\n", plan.Hooked, filepath.Base(command[0]))
	}
	if s := patterns.String(); s != "" {
		fmt.Fprintf(stderr, "cpantlog: exempt from verification (CPANTLOG_NOVERIFY): %s\n", s)
	}
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
	judgeUsed(journal, used)
	journal.Summary(stderr)
	return execVerdict(stderr, command[0], journal, ee), nil
}

// judgeUsed records in the journal each file a client used that was
// neither verified (by the proxy, or through the check endpoint) nor
// exempt (its bytes, or the subject it is the file of when the hook sent
// no bytes): an uncompressed index file shares the verdict of the .gz it
// is exactly the decompression of.
func judgeUsed(journal *proxy.Journal, used []launch.UsedFile) {
	ok := func(sum [32]byte) bool {
		if journal.Verified(sum) {
			return true
		}
		_, exempt := journal.Exempt(sum)
		return exempt
	}
	exemptName := func(name string) bool {
		_, exempt := journal.ExemptName(filepath.Base(name))
		return exempt
	}
	for _, u := range used {
		switch {
		case u.Unreadable != "":
			journal.Unchecked(u.Name, "the command may have used this file, but it could not be read, so it was not checked: "+u.Unreadable)
		case u.Unverified != "":
			journal.Refused(u.Name, "the command may have used this file, and it is "+u.Unverified)
		case ok(u.SHA256), u.Gzip != nil && ok(*u.Gzip), exemptName(u.Name):
		case journal.Judged(u.SHA256), u.Gzip != nil && journal.Judged(*u.Gzip):
			// The hook had these bytes checked and they were refused or
			// could not be checked: listed once, under their CPAN path
			// (a failed download's leftover, a refused archive).
		default:
			journal.Unverified(u.Name)
		}
	}
}

// execPolicy returns the absolute path of the policy file exec uses, for
// the hook. A policy that is not a regular file (a pipe, as from
// --policy <(...), which can be read once) is read now and written to dir,
// and exec then reads that copy too.
func execPolicy(c *common, dir string) (string, error) {
	if st, err := os.Stat(c.policy); err != nil || st.Mode().IsRegular() {
		// A missing policy is the verifier's to report.
		return filepath.Abs(c.policy)
	}
	b, err := os.ReadFile(c.policy)
	if err != nil {
		return "", fmt.Errorf("read the policy: %w", err)
	}
	copied := filepath.Join(dir, "policy")
	if err := os.WriteFile(copied, b, 0o600); err != nil {
		return "", err
	}
	c.policy = copied
	return copied, nil
}

// exemptBy decides the proxy's exemption requests: pattern must be one of
// the user's own patterns, and match subject.
func exemptBy(patterns *noverify.Patterns) func(subject, pattern string) bool {
	if patterns.String() == "" {
		return nil
	}
	own := strings.Split(patterns.String(), ",")
	return func(subject, pattern string) bool {
		if !slices.Contains(own, pattern) {
			return false
		}
		one, err := noverify.Parse(pattern)
		if err != nil {
			return false
		}
		_, ok := one.Match(subject)
		return ok
	}
}

// execExitCommandFailed is exec's exit status when COMMAND failed and
// nothing was refused or unchecked: apart from 1 and 2, which cpanm and
// others also use for their own failures.
const execExitCommandFailed = 4

// execVerdict decides exec's exit status: refused beats could not check
// beats COMMAND's own failure, whatever COMMAND exited.
func execVerdict(stderr io.Writer, name string, journal *proxy.Journal, failed *exec.ExitError) int {
	verified, refused, unchecked := journal.Counts()
	exempt := journal.Exempted()
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
	case verified == 0 && exempt == 0:
		fmt.Fprintf(stderr, "cpantlog: %s succeeded, but nothing was fetched through the verifying proxy, so nothing was verified: if it installed anything, that came from elsewhere\n", name)
		return client.ExitUsage
	}
	return 0
}
