// Command cpantlog is the cpan-tlog user's tool: it verifies CPAN files
// against the transparency log before anyone installs them.
//
//	cpantlog verify FILE [--path authors/id/...]        online
//	cpantlog verify --proof FILE.tlog-proof FILE        offline
//	cpantlog proof PATH [-o FILE.tlog-proof]            save a proof for later
//
// Exit codes: 0 verified, 1 not verified (a signature that does not verify
// included), 2 usage or I/O error, 3 security error (evidence signed by a
// trusted key: a fork or a rollback).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/client/sigstore"
	cmdcli "github.com/CPAN-Security/cpan-tlog/internal/cli"
)

const usage = `cpantlog verifies CPAN files against cpan-tlog, the transparency log of CPAN.

Usage:
  cpantlog verify FILE [--path authors/id/A/AB/ABC/FILE]   verify online
  cpantlog verify --proof FILE.tlog-proof FILE             verify offline, no network
  cpantlog proof PATH [-o OUT]                             fetch and save a tlog-proof
  cpantlog proxy --upstream URL [--listen 127.0.0.1:7373]  a CPAN mirror that verifies first
  cpantlog exec [proxy flags] -- COMMAND...                run cpanm, carton, cpan, cpm through it
  cpantlog snapshot cpanfile.snapshot [--mirror URL|DIR]   verify what a Carton snapshot pins
  cpantlog audit cpanfile.snapshot|local/                  ... and list the CPAN security advisories for it
  cpantlog init --log URL --key VKEY [--witness ...]       write the trust policy every tool reads

Every command takes --policy FILE (default $CPANTLOG_POLICY, else
~/.config/cpantlog/policy, which the Perl tools read too) and --state DIR
(default $CPANTLOG_STATE, else ~/.local/state/cpantlog), where the newest
checkpoint trusted per log is kept so that a rollback or fork of the log is
caught.

Exit codes: 0 verified, 1 not verified (a signature that does not verify
included), 2 usage or I/O error, 3 security error (evidence signed by a
trusted key: a fork or a rollback).

Run 'cpantlog COMMAND -h' for a command's flags, 'cpantlog --version' for the version.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return client.ExitUsage
	}
	if cmdcli.IsVersion(args) {
		fmt.Fprintln(stdout, cmdcli.Version("cpantlog"))
		return 0
	}
	var err error
	switch args[0] {
	case "verify":
		err = verify(args[1:], stdout, stderr)
	case "proof":
		err = proofCmd(args[1:], stdout, stderr)
	case "proxy":
		err = proxyCmd(args[1:], stdout, stderr)
	case "exec":
		code, err := execCmd(args[1:], stdout, stderr)
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if err != nil {
			fmt.Fprintf(stderr, "cpantlog exec: %v\n", err)
		}
		return code
	case "snapshot":
		err = snapshotCmd(args[1:], stdout, stderr)
	case "init":
		err = initCmd(args[1:], stdout, stderr)
	case "audit":
		err = auditCmd(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		if len(args) > 1 && args[1] != "help" && !strings.HasPrefix(args[1], "-") {
			// help COMMAND is COMMAND -h.
			return run([]string{args[1], "-h"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "cpantlog: unknown command %q\n\n%s", args[0], usage)
		return client.ExitUsage
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "cpantlog %s: %v\n", args[0], err)
	}
	return client.ExitCode(err)
}

// common are the flags every command takes.
type common struct {
	policy, state, log, origin, cache string
	policyNotice                      string // said when the policy is read from the old Perl location
	stderr                            io.Writer
	crossCheck                        bool
	maxViewLag                        time.Duration
}

// newFlags is a command's flag set; its -h prints the summary (whose
// first line is the usage), the examples and the flags.
func newFlags(name, summary string, stderr io.Writer, examples ...string) (*flag.FlagSet, *common) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: cpantlog %s\n\nExamples:\n", summary)
		for _, e := range examples {
			fmt.Fprintf(stderr, "  %s\n", e)
		}
		fmt.Fprint(stderr, "\nFlags:\n")
		fs.PrintDefaults()
	}
	c := &common{stderr: stderr}
	cache, _ := os.UserCacheDir()
	policy, notice := client.PolicyFile()
	c.policyNotice = notice
	fs.StringVar(&c.policy, "policy", policy, "trust policy `FILE`: the log's key and URL, witnesses and quorum ($CPANTLOG_POLICY; 'cpantlog init' writes it)")
	fs.StringVar(&c.state, "state", client.StateDir(), "`DIR` of the newest trusted checkpoint per log ($CPANTLOG_STATE)")
	fs.StringVar(&c.log, "log", "", "read the log from this `URL` or tile directory instead of the policy's URL")
	fs.StringVar(&c.origin, "origin", "", "which log (`ORIGIN`) of the policy, when it names several (without it, verify and proof ask each log in the policy's order, verify --proof takes the log the proof names, and proxy, exec, snapshot and audit ask the first)")
	fs.StringVar(&c.cache, "cache", filepath.Join(cache, "cpantlog", "tiles"), "cache `DIR` of immutable tiles (empty to disable)")
	fs.BoolVar(&c.crossCheck, "cross-check", true, "now and then (at most hourly) compare the log's checkpoint with a policy witness's latest cosigned one: a fork or a view kept stale is a security error (only when the policy names witnesses with URLs)")
	fs.DurationVar(&c.maxViewLag, "max-view-lag", client.DefaultMaxViewLag, "with --cross-check: how long the log may show you an older tree than a witness cosigned")
	return fs, c
}

// parse parses flags that may stand before or after positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := cmdcli.ParseAs(fs, args, "cpantlog "+fs.Name()); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func (c *common) verifier(online bool) (*client.Verifier, error) {
	p, st, err := c.load()
	if err != nil {
		return nil, err
	}
	return c.verifierFor(p, st, c.origin, online)
}

// load reads the policy and opens the trusted state.
func (c *common) load() (*client.Policy, *client.State, error) {
	if old, _ := client.PolicyFile(); c.policyNotice != "" && c.policy == old {
		fmt.Fprintf(c.stderr, "cpantlog: %s\n", c.policyNotice)
	}
	b, err := os.ReadFile(c.policy)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (write one with 'cpantlog init --log URL --key VKEY', or pass --policy)", err)
	}
	p, err := client.ParsePolicy(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", c.policy, err)
	}
	st, err := client.OpenState(c.state)
	if err != nil {
		return nil, nil, err
	}
	return p, st, nil
}

// verifierFor is the verifier of the policy's log origin ("" when the
// policy names one log).
func (c *common) verifierFor(p *client.Policy, st *client.State, origin string, online bool) (*client.Verifier, error) {
	v, err := client.NewVerifier(p, origin, c.log, st, c.cache)
	if err != nil {
		return nil, err
	}
	if !online {
		v.Fetcher = nil // offline means no network at all
		return v, nil
	}
	if c.crossCheck && slices.ContainsFunc(p.Witnesses, func(w client.PolicyWitness) bool { return w.URL != "" }) {
		v.CrossCheck = &client.CrossCheck{MaxViewLag: c.maxViewLag}
	}
	return v, nil
}

// verifiers are the logs an online command asks: the --origin one, the
// policy's only one, or, when the policy names several (a log-key
// rotation: the new log and the frozen old one) and no --origin, every
// one in the policy's order.
func (c *common) verifiers() ([]*client.Verifier, error) {
	p, st, err := c.load()
	if err != nil {
		return nil, err
	}
	if c.origin != "" || len(p.Logs) == 1 {
		v, err := c.verifierFor(p, st, c.origin, true)
		if err != nil {
			return nil, err
		}
		return []*client.Verifier{v}, nil
	}
	if c.log != "" {
		return nil, errors.New("the policy names several logs: say with --origin which one --log serves")
	}
	var vs []*client.Verifier
	for _, l := range p.Logs {
		v, err := c.verifierFor(p, st, l.Origin, true)
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	return vs, nil
}

// firstLogVerifier is the verifier of the log a command that checks many
// files (proxy, exec, snapshot, audit) asks: the --origin one, else the policy's first log (with
// several, the newest, by the operator's order); a mirror's proof from
// any log of the policy still verifies (VerifyProof takes the log the
// proof names).
func (c *common) firstLogVerifier() (*client.Verifier, error) {
	p, st, err := c.load()
	if err != nil {
		return nil, err
	}
	origin := c.origin
	if origin == "" {
		origin = p.Logs[0].Origin
	}
	return c.verifierFor(p, st, origin, true)
}

// proofVerifier is the verifier of the log a proof's checkpoint names,
// when the policy names several logs and --origin does not choose.
func (c *common) proofVerifier(raw []byte) (*client.Verifier, error) {
	p, st, err := c.load()
	if err != nil {
		return nil, err
	}
	origin := c.origin
	if origin == "" && len(p.Logs) > 1 {
		l, err := p.LogOfProof(raw)
		if err != nil {
			return nil, err
		}
		origin = l.Origin
	}
	return c.verifierFor(p, st, origin, false)
}

// firstLog asks each log of vs in turn until one verifies: the verdict
// of the first that does, a security error at once (signed evidence
// stands whatever another log says), else a refusal ("not in the log")
// when every log answered, or "could not check" (exit 2) when one could
// not be asked.
func firstLog(vs []*client.Verifier, f func(*client.Verifier) (*client.Result, error)) (*client.Verifier, *client.Result, error) {
	if len(vs) == 1 {
		res, err := f(vs[0])
		return vs[0], res, err
	}
	var why []string
	unchecked := false
	for _, v := range vs {
		res, err := f(v)
		switch client.ExitCode(err) {
		case client.ExitOK:
			return v, res, nil
		case client.ExitSecurity:
			return v, nil, err
		case client.ExitUsage:
			unchecked = true
		}
		why = append(why, fmt.Sprintf("log %s: %s", v.Log.Origin, strings.TrimPrefix(err.Error(), client.ErrNotVerified.Error()+": ")))
	}
	if unchecked {
		return nil, nil, &client.CouldNotCheckError{Reason: "no log of the policy verified it, and not every log could be asked: " + strings.Join(why, "; ")}
	}
	return nil, nil, client.NotVerified("no log of the policy holds it as logged: %s", strings.Join(why, "; "))
}

func verify(args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("verify", "verify FILE [--path P] | verify --proof FILE.tlog-proof FILE\n\n"+
		"Verify a file against the log: online (the log's entry, its inclusion in a checkpoint the\n"+
		"policy trusts, consistency with the newest checkpoint seen), or offline from a saved proof.\n"+
		"Exit status: 0 verified, 1 not verified (a bad signature included), 2 usage or could not check,\n"+
		"3 security error (the log signed views that conflict: a fork or a rollback).", stderr,
		"cpantlog verify ~/.cpanm/work/*/Try-Tiny-0.31.tar.gz --path authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz",
		"cpantlog verify --proof Try-Tiny-0.31.tar.gz.tlog-proof Try-Tiny-0.31.tar.gz")
	cpanPath := fs.String("path", "", "the file's CPAN path, authors/id/A/AB/ABC/FILE (guessed from FILE's location when it lies in a CPAN tree)")
	proofFile := fs.String("proof", "", "verify offline against this tlog-proof instead of asking the log")
	var idp sigstore.Policy
	fs.StringVar(&idp.Issuer, "identity-issuer", "", "also verify FILE's Sigstore bundle yourself and demand this OIDC issuer")
	fs.StringVar(&idp.SAN, "identity-san", "", "... and this certificate SAN (an email or workflow URI)")
	fs.StringVar(&idp.SANRegexp, "identity-san-regexp", "", "... or a SAN matching this regexp")
	fs.StringVar(&idp.SourceRepo, "identity-repo", "", "... and this source repository URI")
	bundleFile := fs.String("bundle", "", "the Sigstore bundle (default FILE.sigstore.json)")
	trustedRoot := fs.String("sigstore-trusted-root", "", "Sigstore trusted_root.json for --identity-* checks")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return errors.New("want exactly one FILE")
	}
	// An incomplete identity policy is a usage error, said before any file
	// is read or the log asked (it failed late, as "not verified").
	identity := idp.Issuer != "" || idp.SAN != "" || idp.SANRegexp != "" || idp.SourceRepo != ""
	if identity && (idp.Issuer == "" || (idp.SAN == "" && idp.SANRegexp == "")) {
		return errors.New("an identity check needs --identity-issuer and --identity-san (or --identity-san-regexp); --identity-repo only adds to them")
	}
	if identity && *trustedRoot == "" {
		return errors.New("--identity-* needs --sigstore-trusted-root FILE")
	}
	name := pos[0]
	if _, err := os.Stat(name); err != nil {
		return err // "no such file or directory", before any guessing
	}
	if *cpanPath == "" {
		if p, ok := client.GuessPath(name); ok {
			*cpanPath = p
		} else if *proofFile == "" {
			return fmt.Errorf("cannot tell the CPAN path of %s: pass --path authors/id/A/AB/ABC/%s", name, path.Base(filepath.ToSlash(name)))
		}
	}
	file, err := client.HashFile(name, *cpanPath)
	if err != nil {
		return err
	}
	var v *client.Verifier
	var res *client.Result
	if *proofFile != "" {
		raw, err := os.ReadFile(*proofFile)
		if err != nil {
			return err
		}
		if v, err = c.proofVerifier(raw); err != nil {
			return err
		}
		if res, err = v.VerifyProof(raw, file); err != nil {
			return err
		}
	} else {
		vs, err := c.verifiers()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if v, res, err = firstLog(vs, func(v *client.Verifier) (*client.Result, error) { return v.VerifyFile(ctx, file) }); err != nil {
			return err
		}
	}
	fmt.Fprint(stdout, res.Summary())
	if !identity {
		return nil
	}
	sv, err := sigstore.LoadTrustedRoot(*trustedRoot)
	if err != nil {
		return err
	}
	if *bundleFile == "" {
		*bundleFile = name + sigstore.BundleSuffix
	}
	bundle, err := os.ReadFile(*bundleFile)
	if err != nil {
		return fmt.Errorf("%w (pass --bundle FILE)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := sv.VerifyLogged(ctx, v, file, bundle, &idp)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "  sigstore: signed by %s (issuer %s), repository %s\n", s.SAN, s.Issuer, orNone(s.SourceRepo))
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none recorded"
	}
	return s
}

func proofCmd(args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("proof", "proof PATH [-o OUT]\n\n"+
		"Fetch the log's c2sp.org/tlog-proof of a CPAN path, verified against the policy, for\n"+
		"'cpantlog verify --proof' with no network later.", stderr,
		"cpantlog proof authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz -o Try-Tiny-0.31.tar.gz.tlog-proof")
	out := fs.String("o", "", "where to write the proof (default: the file name of PATH plus .tlog-proof)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return errors.New("want exactly one CPAN PATH")
	}
	// An input error before the policy is read or the log asked.
	if err := client.CheckPath(pos[0]); err != nil {
		return err
	}
	vs, err := c.verifiers()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, res, err := firstLog(vs, func(v *client.Verifier) (*client.Result, error) { return v.FetchProof(ctx, pos[0]) })
	if err != nil {
		return err
	}
	if *out == "" {
		*out = path.Base(pos[0]) + ".tlog-proof"
	}
	if err := os.WriteFile(*out, res.Proof, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %s at index %d, checkpoint size %d, cosigned by: %s\n", *out, res.Entry.Path, res.Index, res.Checkpoint.Size, cosigners(res))
	return nil
}

func cosigners(r *client.Result) string {
	if len(r.Checkpoint.CosignedBy) == 0 {
		return "none"
	}
	return fmt.Sprint(r.Checkpoint.CosignedBy)
}
