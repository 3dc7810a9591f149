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
	"path/filepath"
	"syscall"
	"time"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/client/proxy"
	"github.com/CPAN-Security/cpan-tlog/internal/httpserver"
)

type hostList []string

func (h *hostList) String() string     { return fmt.Sprint(*h) }
func (h *hostList) Set(s string) error { *h = append(*h, s); return nil }

// proxyFlags are the flags proxy and exec share.
type proxyFlags struct {
	upstream, files, proofs string
	hosts                   hostList
	maxLag                  time.Duration
}

func addProxyFlags(fs *flag.FlagSet) *proxyFlags {
	pf := &proxyFlags{}
	cacheDir, _ := os.UserCacheDir()
	fs.StringVar(&pf.upstream, "upstream", "https://cpan.metacpan.org", "the CPAN mirror to fetch from: a `URL`, or a local CPAN tree (a directory holding authors/ and modules/)")
	fs.StringVar(&pf.files, "files", filepath.Join(cacheDir, "cpantlog", "verified"), "cache `DIR` of verified files (empty to disable)")
	fs.Var(&pf.hosts, "host", "a `HOST` served in http_proxy mode (from --upstream), besides the upstream's own and www.cpan.org, cpan.metacpan.org, backpan.perl.org, cpanmetadb.plackperl.org (repeatable)")
	fs.StringVar(&pf.proofs, "proofs", "", "mirror root `URL` whose tlog/proofs/ holds the log's proofs (default: --upstream; off: never): a file with a proof there verifies with no contact with the log")
	fs.DurationVar(&pf.maxLag, "max-index-lag", client.DefaultMaxIndexLag, "refuse an index file once a later version of it (in the log's order) was logged more than this ago")
	return pf
}

func (pf *proxyFlags) newProxy(v *client.Verifier, logger *slog.Logger, journal *proxy.Journal, extraHosts ...string) (*proxy.Proxy, error) {
	hosts := append(append(append([]string{}, pf.hosts...), proxy.DefaultHosts...), extraHosts...)
	return proxy.New(proxy.Config{Upstream: pf.upstream, Hosts: hosts, Verifier: v, CacheDir: pf.files, MaxIndexLag: pf.maxLag, Proofs: pf.proofs, Journal: journal, Logger: logger})
}

const proxySummary = `proxy --upstream URL [--listen 127.0.0.1:7373] [--host H]...

A CPAN mirror that denies by default: it serves a file under authors/id/A/AB/ID/ only after
the log proves it is the file CPAN published, an index file (02packages, 06perms, 01mailrc)
only when logged and not stale, a CHECKSUMS only when it parses; anything else is 403.
Use it with 'cpanm --mirror http://127.0.0.1:7373 --mirror-only', or as
http_proxy=http://127.0.0.1:7373 for cpanm's default flow (cpanmetadb and www.cpan.org,
both answered from --upstream). 'cpantlog exec' does this for you.

With several logs in the policy (a log-key rotation), it asks the first (--origin
chooses another); a mirror's proof from any log of the policy verifies.`

func proxyCmd(args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("proxy", proxySummary, stderr,
		"cpantlog proxy --upstream https://cpan.metacpan.org",
		"cpanm --mirror http://127.0.0.1:7373 --mirror-only Try::Tiny    # in another shell")
	listen := fs.String("listen", "127.0.0.1:7373", "`ADDR` to listen on (loopback by default)")
	pf := addProxyFlags(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	v, err := c.firstLogVerifier()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("%w (choose another address with --listen)", err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	p, err := pf.newProxy(v, logger, nil, ln.Addr().String())
	if err != nil {
		ln.Close()
		return err
	}
	fmt.Fprintf(stdout, "cpantlog proxy on http://%s, verifying %s against %s\n  cpanm --mirror http://%s --mirror-only Some::Module\n", ln.Addr(), pf.upstream, v.Log.Origin, ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = httpserver.Run(ctx, httpserver.New(p, 10*time.Minute), ln, 10*time.Second)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
