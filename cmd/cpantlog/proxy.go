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

	"github.com/CPAN-Security/cpan-tlog/client/proxy"
	"github.com/CPAN-Security/cpan-tlog/internal/httpserver"
)

type hostList []string

func (h *hostList) String() string     { return fmt.Sprint(*h) }
func (h *hostList) Set(s string) error { *h = append(*h, s); return nil }

func proxyCmd(args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("proxy", "proxy --upstream URL [--listen 127.0.0.1:7373] [--host H]...\n\n"+
		"A CPAN mirror that serves a file under authors/id/ only after the log proves it is the\n"+
		"file CPAN published; index files pass through. Use it with\n"+
		"  cpanm --mirror http://127.0.0.1:7373 --mirror-only ...\n"+
		"or as http_proxy=http://127.0.0.1:7373 for cpanm's plain-http mirrors.", stderr)
	listen := fs.String("listen", "127.0.0.1:7373", "address to listen on (loopback by default)")
	upstream := fs.String("upstream", "https://cpan.metacpan.org", "the CPAN mirror to fetch from")
	cacheDir, _ := os.UserCacheDir()
	files := fs.String("files", filepath.Join(cacheDir, "cpantlog", "verified"), "cache of verified files (empty to disable)")
	hosts := hostList{}
	fs.Var(&hosts, "host", "a CPAN host served in http_proxy mode, besides the upstream's (repeatable; default www.cpan.org, cpan.metacpan.org, backpan.perl.org)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if len(hosts) == 0 {
		hosts = proxy.DefaultHosts
	}
	v, err := c.verifier(true)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	p, err := proxy.New(proxy.Config{Upstream: *upstream, Hosts: hosts, Verifier: v, CacheDir: *files, Logger: logger})
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
