package main

import (
	"context"
	"errors"
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

func proxyCmd(args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("proxy", "proxy --upstream URL [--listen 127.0.0.1:7373] [--host H]...\n\n"+
		"A CPAN mirror that denies by default: it serves a file under authors/id/A/AB/ID/ only after\n"+
		"the log proves it is the file CPAN published, an index file (02packages, 06perms, 01mailrc)\n"+
		"only when logged and not stale, a CHECKSUMS only when it parses; anything else is 403.\n"+
		"Use it with\n"+
		"  cpanm --mirror http://127.0.0.1:7373 --mirror-only ...\n"+
		"or as http_proxy=http://127.0.0.1:7373 for cpanm's plain-http mirrors.", stderr)
	listen := fs.String("listen", "127.0.0.1:7373", "address to listen on (loopback by default)")
	upstream := fs.String("upstream", "https://cpan.metacpan.org", "the CPAN mirror to fetch from")
	cacheDir, _ := os.UserCacheDir()
	files := fs.String("files", filepath.Join(cacheDir, "cpantlog", "verified"), "cache of verified files (empty to disable)")
	hosts := hostList{}
	fs.Var(&hosts, "host", "a `HOST` served in http_proxy mode (from --upstream), besides the upstream's own and www.cpan.org, cpan.metacpan.org, backpan.perl.org (repeatable)")
	maxLag := fs.Duration("max-index-lag", client.DefaultMaxIndexLag, "refuse an index file older than the newest logged version of it by more than this")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	hosts = append(hosts, proxy.DefaultHosts...)
	v, err := c.verifier(true)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	p, err := proxy.New(proxy.Config{Upstream: *upstream, Hosts: hosts, Verifier: v, CacheDir: *files, MaxIndexLag: *maxLag, Logger: logger})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("%w (choose another address with --listen)", err)
	}
	fmt.Fprintf(stdout, "cpantlog proxy on http://%s, verifying %s against %s\n  cpanm --mirror http://%s --mirror-only Some::Module\n", ln.Addr(), *upstream, v.Log.Origin, ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = httpserver.Run(ctx, httpserver.New(p, 10*time.Minute), ln, 10*time.Second)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
