package proxy

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
)

// MetaDBHost is cpanmetadb, the resolver cpanm asks first by default. In
// forward-proxy mode the proxy answers it itself from the newest
// 02packages it verified, so cpanm's default flow is verified end to end.
const MetaDBHost = "cpanmetadb.plackperl.org"

// MetaCPANHost is MetaCPAN's API, which cpanm asks when cpanmetadb does
// not answer. The proxy answers its /v1/download_url/NAME from the same
// verified 02packages.
const MetaCPANHost = "fastapi.metacpan.org"

// packagesPath is the index the proxy answers cpanmetadb from.
const packagesPath = "modules/02packages.details.txt.gz"

// metaDBRefresh is how long a verified 02packages answers before the
// proxy fetches and verifies the upstream's again.
const metaDBRefresh = time.Minute

// maxPackagesSize bounds the uncompressed 02packages (about 30 MB today).
const maxPackagesSize = 512 << 20

// packageIndex is a verified 02packages, by package name.
type packageIndex struct {
	mu       sync.Mutex
	packages map[string]cpan.Package
	fetched  time.Time
}

// serveMetaDB answers cpanmetadb's API: /v1.0/package/NAME from the
// verified 02packages; /v1.0/history/NAME is 404 (one index holds only the
// current release of each package; cpanm then falls back to the mirror's
// 02packages, which the proxy verifies too).
func (p *Proxy) serveMetaDB(w http.ResponseWriter, r *http.Request) {
	rest, _ := strings.CutPrefix(r.URL.Path, "/v1.0/")
	kind, name, _ := strings.Cut(rest, "/")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	switch {
	case kind == "history":
		p.decide(r, "not_found", "", "cpanmetadb history is not served")
		http.Error(w, "cpantlog answers cpanmetadb's /v1.0/package/ from the verified 02packages; it has no release history", http.StatusNotFound)
		return
	case kind != "package" || !cpan.ValidPackage(name):
		p.refuse(w, r, r.URL.Path, "not a cpanmetadb /v1.0/package/NAME request")
		return
	}
	pkg, ok := p.resolve(w, r, name)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/yaml")
	fmt.Fprintf(w, "---\ndistfile: %s\nversion: %s\n", pkg.Path, pkg.Version)
}

// serveMetaCPAN answers MetaCPAN's /v1/download_url/NAME from the verified
// 02packages. A request for a version range or a development release is
// 404: one index holds only the current release of each package.
func (p *Proxy) serveMetaCPAN(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, "/v1/download_url/")
	w.Header().Set("Content-Type", "application/json")
	switch {
	case !ok || !cpan.ValidPackage(name):
		p.decide(r, "not_found", "", "not a MetaCPAN download_url request the proxy answers")
		http.Error(w, `{"code":404,"message":"cpantlog answers only /v1/download_url/NAME from the verified 02packages"}`, http.StatusNotFound)
		return
	case r.URL.RawQuery != "":
		p.decide(r, "not_found", "", "version ranges are not answered")
		http.Error(w, `{"code":404,"message":"cpantlog answers from the verified 02packages, which holds only the current release"}`, http.StatusNotFound)
		return
	}
	pkg, ok := p.resolve(w, r, name)
	if !ok {
		return
	}
	b, _ := json.Marshal(map[string]string{"status": "latest", "version": pkg.Version,
		"download_url": "http://cpan.metacpan.org/" + pkg.CPANPath()})
	w.Write(b)
}

// resolve finds a package in the verified 02packages, or answers the
// request itself (404, or the reason the index could not be verified).
func (p *Proxy) resolve(w http.ResponseWriter, r *http.Request, name string) (cpan.Package, bool) {
	pkgs, err := p.verifiedPackages(r)
	if err != nil {
		p.failed(w, r, packagesPath, err)
		return cpan.Package{}, false
	}
	pkg, ok := pkgs[name]
	if !ok {
		p.decide(r, "not_found", "", "no package "+name+" in the verified 02packages")
		http.Error(w, "Not found", http.StatusNotFound)
		return cpan.Package{}, false
	}
	p.decide(r, "resolved", "", name+" is "+pkg.CPANPath()+" in the verified 02packages")
	return pkg, true
}

// verifiedPackages returns the upstream's 02packages, verified against the
// log (logged and not stale), at most metaDBRefresh old.
func (p *Proxy) verifiedPackages(r *http.Request) (map[string]cpan.Package, error) {
	ctx := r.Context()
	p.index.mu.Lock()
	defer p.index.mu.Unlock()
	if p.index.packages != nil && time.Since(p.index.fetched) < metaDBRefresh {
		return p.index.packages, nil
	}
	tmp, file, _, err := p.download(ctx, packagesPath)
	if tmp != nil {
		defer func() { tmp.Close(); os.Remove(tmp.Name()) }()
	}
	if err != nil {
		return nil, fmt.Errorf("fetch %s from the upstream mirror: %w", packagesPath, err)
	}
	vctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	res, how, err := p.verify(vctx, file)
	if err != nil {
		return nil, err
	}
	p.decideFile(r, "verified", packagesPath, fmt.Sprintf("index version %d, checkpoint %d, %s (for resolver answers)", res.Index, res.Checkpoint.Size, how), &file.SHA256)
	tmp.Seek(0, io.SeekStart)
	zr, err := gzip.NewReader(tmp)
	if err != nil {
		return nil, client.NotVerified("%s is logged but is not gzip: %v", packagesPath, err)
	}
	pr, err := cpan.NewPackagesReader(io.LimitReader(zr, maxPackagesSize))
	if err != nil {
		return nil, client.NotVerified("%s: %v", packagesPath, err)
	}
	pkgs := map[string]cpan.Package{}
	for {
		pkg, err := pr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, client.NotVerified("%s: %v", packagesPath, err)
		}
		pkgs[pkg.Name] = pkg
	}
	p.index.packages, p.index.fetched = pkgs, time.Now()
	return pkgs, nil
}
