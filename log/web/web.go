// Package web is cpan-tlog's explorer: server-rendered pages of the log
// (home, search, distribution, author, entry), Atom feeds, and a small
// script that verifies in the browser what the pages show: the
// checkpoint's signature by the log key, the witness quorum's
// cosignatures (Ed25519 with WebCrypto, ML-DSA-44 with the vendored
// @noble/post-quantum in assets/vendor), each entry's inclusion proof, and
// a local file's sha256 and size against the entries logged for it. The
// pages name the keys it checks against and, without JavaScript, show the
// server's own answer labelled as such. Pages are plain html/template
// with no external assets under a strict Content-Security-Policy; every
// list is paginated.
package web

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	flog "github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
	"github.com/CPAN-Security/cpan-tlog/log/index"
)

// The vendored npm files (assets/vendor) include names starting with "_",
// which a plain directory pattern leaves out.
//
//go:embed assets all:assets/vendor
var assets embed.FS

// PageSize is how many entries a page or feed shows.
const PageSize = 50

// MaxQuery bounds a search query.
const MaxQuery = 300

// csp allows the page's own scripts and, by its hash, the one inline
// script: layout.html's import map, which lets the vendored ML-DSA module
// (assets/vendor) find its dependencies.
var csp = "default-src 'none'; script-src 'self' '" + importMapHash() + "'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Explorer serves the pages of one log.
type Explorer struct {
	log       *tlog.Log
	pages     map[string]*template.Template
	witnesses []client.PolicyWitness
	// quorum is the log's witness policy as the page's script evaluates
	// it (JSON), "" without one.
	quorum string
	// keys are the keys the page's script checks against, shown on the
	// page so that a reader can compare them with their own policy.
	keys *keysView
	base string // absolute URL for feeds, e.g. https://cpan-tlog.example.org
	// Mirror is the CPAN mirror entry pages link the file to (default
	// DefaultMirror).
	Mirror string
}

// DefaultMirror is where entry pages link a file by default.
const DefaultMirror = "https://cpan.metacpan.org"

// New returns the explorer of l. policy, when not nil, is the log's
// witness policy, so the home page can name who cosigned. base is the
// public URL used in feeds ("" for relative links).
func New(l *tlog.Log, policy []byte, base string) (*Explorer, error) {
	if policy == nil {
		return newExplorer(l, nil, nil, base)
	}
	p, err := client.ParsePolicy(policy)
	return newExplorer(l, p, err, base)
}

// newExplorer is New with the policy parsed: p, or the error that
// parsing it gave (both nil without a policy).
func newExplorer(l *tlog.Log, p *client.Policy, policyErr error, base string) (*Explorer, error) {
	e := &Explorer{log: l, pages: map[string]*template.Template{}, base: strings.TrimSuffix(base, "/")}
	e.keys = &keysView{Log: describeKey(l.VerifierKey())}
	switch {
	case policyErr != nil:
		// The log runs with a policy the explorer cannot read: its script
		// must not check the log's signature alone and call that
		// verified. It says it could not check the witnesses.
		e.keys.HasPolicy = true
		e.keys.PolicyError = policyErr.Error()
		b, _ := json.Marshal(map[string]string{"error": policyErr.Error()})
		e.quorum = string(b)
	case p != nil:
		e.keys.HasPolicy = true
		e.witnesses = p.Witnesses
		e.quorum = quorumJSON(p)
		if e.quorum != "" {
			e.keys.Quorum = p.QuorumName
		}
		for _, w := range p.Witnesses {
			k := describeKey(w.VKey)
			k.Role = w.Name
			e.keys.Witnesses = append(e.keys.Witnesses, k)
		}
	}
	funcs := template.FuncMap{
		// anySigstore: a Sigstore column only when a row has an identity.
		"anySigstore": func(rows []row) bool {
			return slices.ContainsFunc(rows, func(r row) bool { return r.Sigstore != nil })
		},
		// short shortens a hash in lists; its title and the entry page
		// have it whole.
		"short": func(h string) string {
			if len(h) <= 16 {
				return h
			}
			return h[:16] + "…"
		},
	}
	for _, page := range []string{"home", "list", "entry", "message", "dists"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "assets/layout.html", "assets/"+page+".html")
		if err != nil {
			return nil, err
		}
		e.pages[page] = t
	}
	return e, nil
}

// keysView is the keys a page's verification uses, as the page shows them.
type keysView struct {
	Log       keyView
	Witnesses []keyView
	// HasPolicy: the log runs with a witness policy; Quorum is its quorum,
	// or PolicyError says why the explorer could not read it.
	HasPolicy           bool
	Quorum, PolicyError string
}

// keyView is one verifier key: its role (a witness's name in the policy),
// its key name and ID, its type and the whole vkey.
type keyView struct{ Role, Name, ID, Type, VKey string }

// describeKey names a signed-note verifier key's parts for people.
func describeKey(vkey string) keyView {
	k := keyView{VKey: vkey, Type: "unknown type"}
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return k
	}
	k.Name, k.ID = parts[0], parts[1]
	if b, err := base64.StdEncoding.DecodeString(parts[2]); err == nil && len(b) > 0 {
		switch b[0] {
		case 0x01:
			k.Type = "Ed25519"
		case 0x04:
			k.Type = "Ed25519 cosignature/v1"
		case 0x06:
			k.Type = "ML-DSA-44 cosignature"
		default:
			k.Type = fmt.Sprintf("type 0x%02x", b[0])
		}
	}
	return k
}

// importMapRE finds layout.html's import map.
var importMapRE = regexp.MustCompile(`(?s)<script type="importmap">(.*?)</script>`)

// importMapHash is the CSP source that allows layout.html's import map.
func importMapHash() string {
	b, err := assets.ReadFile("assets/layout.html")
	if err != nil {
		panic(err)
	}
	m := importMapRE.FindSubmatch(b)
	if m == nil {
		panic("layout.html has no import map")
	}
	sum := sha256.Sum256(m[1])
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// quorumJSON is what the page's script needs to check a checkpoint's
// cosignatures against the policy: the witnesses' keys, the groups and
// the quorum's name.
func quorumJSON(p *client.Policy) string {
	if p.QuorumName == "none" {
		return ""
	}
	type group struct {
		Need    int      `json:"need"`
		Members []string `json:"members"`
	}
	q := struct {
		Witnesses map[string]string `json:"witnesses"`
		Groups    map[string]group  `json:"groups"`
		Quorum    string            `json:"quorum"`
	}{Witnesses: map[string]string{}, Groups: map[string]group{}, Quorum: p.QuorumName}
	for _, w := range p.Witnesses {
		q.Witnesses[w.Name] = w.VKey
	}
	for n, g := range p.Groups {
		q.Groups[n] = group{Need: g.Need, Members: g.Members}
	}
	b, _ := json.Marshal(q)
	return string(b)
}

// Register adds the explorer's routes to mux.
func (e *Explorer) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", e.home)
	mux.HandleFunc("GET /search", e.search)
	mux.HandleFunc("GET /dist/{name}", e.dist)
	mux.HandleFunc("GET /author/{id}", e.author)
	mux.HandleFunc("GET /entry/{index}", e.entry)
	mux.HandleFunc("GET /index-files", e.indexFiles)
	mux.HandleFunc("GET /feed.atom", e.feed)
	mux.HandleFunc("GET /dist/{name}/feed.atom", e.feed)
	mux.HandleFunc("GET /author/{id}/feed.atom", e.feed)
	mux.HandleFunc("GET /static/{file}", e.static)
	mux.HandleFunc("GET /static/vendor/{file...}", e.vendor)
}

// row is an entry as a table shows it.
type row struct {
	Index                              uint64
	Kind, Path, SHA256, Uploader, Time string
	Size                               uint64
	Sigstore                           *entry.Sigstore
	ProofName, Dist, Leaf, LeafB64     string
	// Warning says what is odd about the entry, for people to see.
	Warning string
}

func toRow(r index.Record) row {
	e := r.Entry
	out := row{Index: r.Index, Kind: string(e.Kind), Path: e.Path, Uploader: e.Uploader, Time: e.Time.Format(entry.TimeFormat),
		Size: e.Size, Sigstore: e.Sigstore, ProofName: path.Base(e.Path) + ".tlog-proof",
		Dist: cpan.ParseDistInfo(e.Path).Dist, Leaf: string(r.Leaf), LeafB64: base64.StdEncoding.EncodeToString(r.Leaf)}
	if e.Kind == entry.Upload || e.Kind == entry.Index {
		out.SHA256 = hex.EncodeToString(e.SHA256[:])
	}
	if id, err := cpan.ValidatePath(e.Path); e.Kind == entry.Upload && err == nil && id != e.Uploader {
		out.Warning = fmt.Sprintf("Uploaded by %s into %s's directory. PAUSE does not let an author upload into another's directory; monitors report this as uploader-mismatch.", e.Uploader, id)
	}
	return out
}

// page is what every template gets.
type page struct {
	Title, Heading, Message, Query, Feed, Next string
	// FileURL is the entry's file on the mirror, on entry pages.
	FileURL      string
	Origin, VKey string
	// Quorum is the witness policy for the page's script (JSON), or "".
	Quorum     string
	Entries    []row
	Dists      []string
	Entry      *row
	Checkpoint *checkpointView
	// Keys are the keys the page's script verifies against (home and
	// entry pages).
	Keys *keysView
	// Server is the server's own answer about an entry, shown until (and
	// unless) the browser verifies it itself.
	Server string
}

type checkpointView struct {
	Size      uint64
	Root      string
	Cosigners []cosigner
}

type cosigner struct{ Name, Time string }

func (e *Explorer) render(w http.ResponseWriter, code int, name string, p page) {
	p.Origin, p.VKey, p.Quorum = e.log.Origin(), e.log.VerifierKey(), e.quorum
	var b bytes.Buffer
	if err := e.pages[name].ExecuteTemplate(&b, "layout", p); err != nil {
		e.log.Logger().Error("explorer: render", "page", name, "err", err)
		http.Error(w, "the page could not be rendered; the details are in the server's log", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(code)
	w.Write(b.Bytes())
}

// internal logs err, which may name files on the server, and shows a
// page without it.
func (e *Explorer) internal(w http.ResponseWriter, err error) {
	e.log.Logger().Error("explorer", "err", err)
	e.fail(w, http.StatusInternalServerError, "Error", "Something failed on the server; its operators find the details in its log.")
}

func (e *Explorer) fail(w http.ResponseWriter, code int, heading, format string, args ...any) {
	e.render(w, code, "message", page{Title: heading, Heading: heading, Message: fmt.Sprintf(format, args...)})
}

// before reads ?before=N for pagination.
func before(r *http.Request) (uint64, error) {
	s := r.URL.Query().Get("before")
	if s == "" {
		return 0, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

func rows(recs []index.Record) []row {
	out := make([]row, len(recs))
	for i, r := range recs {
		out[i] = toRow(r)
	}
	return out
}

// next is the link to the page after recs, if it was full.
func next(u *url.URL, recs []index.Record) string {
	if len(recs) < PageSize {
		return ""
	}
	q := u.Query()
	q.Set("before", strconv.FormatUint(recs[len(recs)-1].Index, 10))
	return u.Path + "?" + q.Encode()
}

func (e *Explorer) home(w http.ResponseWriter, r *http.Request) {
	b, err := before(r)
	if err != nil {
		e.fail(w, http.StatusBadRequest, "Bad page", "?before= must be an entry index")
		return
	}
	recs, err := e.log.Index().Recent(index.Page{Limit: PageSize, Before: b})
	if err != nil {
		e.internal(w, err)
		return
	}
	e.render(w, http.StatusOK, "home", page{Title: "CPAN transparency log", Feed: "/feed.atom", Entries: rows(recs), Next: next(r.URL, recs), Checkpoint: e.checkpoint(r), Keys: e.keys})
}

// checkpoint describes the latest checkpoint and who cosigned it.
func (e *Explorer) checkpoint(r *http.Request) *checkpointView {
	raw, err := e.log.Reader().ReadCheckpoint(r.Context())
	if err != nil {
		return nil
	}
	v, err := note.NewVerifier(e.log.VerifierKey())
	if err != nil {
		return nil
	}
	cp, _, _, err := flog.ParseCheckpoint(raw, e.log.Origin(), v)
	if err != nil {
		return nil
	}
	out := &checkpointView{Size: cp.Size, Root: base64.StdEncoding.EncodeToString(cp.Hash)}
	for _, w := range e.witnesses {
		n, err := note.Open(raw, note.VerifierList(w.Verifier))
		if err != nil || len(n.Sigs) != 1 {
			continue
		}
		c := cosigner{Name: w.Name}
		if t, err := fnote.CoSigV1Timestamp(n.Sigs[0]); err == nil {
			c.Time = t.UTC().Format(time.RFC3339)
		}
		out.Cosigners = append(out.Cosigners, c)
	}
	return out
}

var (
	hexRE   = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
	pauseRE = regexp.MustCompile(`^[A-Z][A-Z0-9-]+$`)
	distRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]*$`)
)

// search sends a query where it belongs: a sha256 to its files, a path to
// its entry, a PAUSE id to the author, anything else to a distribution.
func (e *Explorer) search(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	switch {
	case q == "":
		e.fail(w, http.StatusBadRequest, "Empty search", "Type a distribution name (Try-Tiny), a PAUSE id (ETHER), a path (authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz) or a sha256.")
		return
	case len(q) > MaxQuery || !utf8.ValidString(q) || strings.ContainsFunc(q, func(c rune) bool { return c < 0x20 || c == 0x7f }):
		e.fail(w, http.StatusBadRequest, "Bad search", "A query is at most %d printable characters.", MaxQuery)
		return
	}
	ix := e.log.Index()
	switch {
	case hexRE.MatchString(q):
		b, _ := hex.DecodeString(strings.ToLower(q))
		recs, err := ix.BySHA256([32]byte(b))
		if err != nil {
			e.internal(w, err)
			return
		}
		if len(recs) > PageSize {
			recs = recs[:PageSize]
		}
		p := page{Title: "sha256 " + q, Heading: "Files with sha256 " + strings.ToLower(q), Query: q, Entries: rows(recs)}
		if len(recs) == 0 {
			p.Message = "This log has no entry with this sha256. That is all it can say: it knows only what it has logged, which may not be every file CPAN has published. If the file should be a CPAN release, search for its name and compare its sha256 with the logged one."
		}
		e.render(w, statusFor(recs), "list", p)
	case strings.HasPrefix(q, cpan.AuthorsPrefix) || strings.HasPrefix(q, "/"+cpan.AuthorsPrefix):
		p := strings.TrimPrefix(q, "/")
		if _, err := cpan.ValidatePath(p); err != nil {
			e.fail(w, http.StatusBadRequest, "Bad path", "%v", err)
			return
		}
		recs, err := ix.ByPath(p)
		if err != nil {
			e.internal(w, err)
			return
		}
		if len(recs) == 1 {
			http.Redirect(w, r, fmt.Sprintf("/entry/%d", recs[0].Index), http.StatusSeeOther)
			return
		}
		e.render(w, statusFor(recs), "list", page{Title: p, Heading: "Entries for " + p, Query: q, Entries: rows(recs)})
	case cpan.IsIndexPath(strings.TrimPrefix(q, "/")) || isIndexName(q):
		http.Redirect(w, r, "/index-files?q="+url.QueryEscape(q), http.StatusSeeOther)
	case strings.Count(q, "/") == 1:
		// AUTHOR/File-1.0.tar.gz, as CPAN clients and people write them.
		id, file, _ := strings.Cut(q, "/")
		id = strings.ToUpper(id)
		if !cpan.ValidID(id) || file == "" {
			e.fail(w, http.StatusBadRequest, "Bad search", "%q is not AUTHOR/file.", q)
			return
		}
		e.searchPath(w, r, q, fmt.Sprintf("%s%s/%s/%s/%s", cpan.AuthorsPrefix, id[:1], id[:2], id, file))
	case isFileName(q):
		e.searchFileName(w, r, q)
	case len(q) <= cpan.MaxIDLength && pauseRE.MatchString(strings.ToUpper(q)) && !strings.ContainsAny(q, ":.") && e.searchAuthorOrDist(w, r, q):
	case distRE.MatchString(strings.ReplaceAll(q, "::", "-")):
		e.searchDist(w, r, q, strings.ReplaceAll(q, "::", "-"))
	default:
		e.fail(w, http.StatusBadRequest, "Bad search", "%q is neither a distribution, a PAUSE id, a file name, a path nor a sha256.", q)
	}
}

// searchPath shows the entries at a CPAN path: the entry itself when
// there is one.
func (e *Explorer) searchPath(w http.ResponseWriter, r *http.Request, q, p string) {
	if _, err := cpan.ValidatePath(p); err != nil {
		e.render(w, http.StatusBadRequest, "message", page{Title: "Bad path", Heading: "Bad path", Query: q, Message: err.Error()})
		return
	}
	recs, err := e.log.Index().ByPath(p)
	if err != nil {
		e.internal(w, err)
		return
	}
	if len(recs) == 1 {
		http.Redirect(w, r, fmt.Sprintf("/entry/%d?q=%s", recs[0].Index, url.QueryEscape(q)), http.StatusSeeOther)
		return
	}
	e.render(w, statusFor(recs), "list", page{Title: p, Heading: "Entries for " + p, Query: q, Entries: rows(recs)})
}

// isFileName reports whether q looks like a distribution file's name.
func isFileName(q string) bool {
	return !strings.Contains(q, "/") && cpan.ParseDistInfo(q).Extension != ""
}

// searchFileName finds a file by its name alone, through its distribution.
func (e *Explorer) searchFileName(w http.ResponseWriter, r *http.Request, q string) {
	dist := cpan.ParseDistInfo(q).Dist
	recs, err := e.log.Index().ByDist(dist, index.Page{Limit: 1000})
	if err != nil {
		e.internal(w, err)
		return
	}
	recs = slices.DeleteFunc(recs, func(rec index.Record) bool { return path.Base(rec.Entry.Path) != q })
	if len(recs) == 1 {
		http.Redirect(w, r, fmt.Sprintf("/entry/%d?q=%s", recs[0].Index, url.QueryEscape(q)), http.StatusSeeOther)
		return
	}
	e.render(w, statusFor(recs), "list", page{Title: q, Heading: "Files named " + q, Query: q, Entries: rows(recs)})
}

// searchAuthorOrDist settles a word that could be a PAUSE id typed in any
// case or a distribution: an exact distribution wins, then an author with
// uploads. It answers and returns true, or returns false to go on.
func (e *Explorer) searchAuthorOrDist(w http.ResponseWriter, r *http.Request, q string) bool {
	id := strings.ToUpper(q)
	if q != id {
		if recs, err := e.log.Index().ByDist(q, index.Page{Limit: 1}); err == nil && len(recs) > 0 {
			return false // a distribution of that exact name
		}
		if recs, err := e.log.Index().ByAuthor(id, index.Page{Limit: 1}); err != nil || len(recs) == 0 {
			return false
		}
	}
	http.Redirect(w, r, "/author/"+url.PathEscape(id)+"?q="+url.QueryEscape(q), http.StatusSeeOther)
	return true
}

// searchDist goes to a distribution, or lists the distributions whose
// names start with what was typed.
func (e *Explorer) searchDist(w http.ResponseWriter, r *http.Request, q, dist string) {
	if recs, err := e.log.Index().ByDist(dist, index.Page{Limit: 1}); err == nil && len(recs) > 0 {
		http.Redirect(w, r, "/dist/"+url.PathEscape(dist)+"?q="+url.QueryEscape(q), http.StatusSeeOther)
		return
	}
	if e.searchRelease(w, r, q, dist) {
		return
	}
	names, err := e.log.Index().DistsWithPrefix(dist, PageSize)
	if err != nil {
		e.internal(w, err)
		return
	}
	if len(names) == 1 {
		http.Redirect(w, r, "/dist/"+url.PathEscape(names[0])+"?q="+url.QueryEscape(q), http.StatusSeeOther)
		return
	}
	code := http.StatusOK
	if len(names) == 0 {
		code = http.StatusNotFound
	}
	e.render(w, code, "dists", page{Title: q, Heading: "Distributions starting with " + dist, Query: q, Dists: names})
}

// searchRelease settles Dist-Version (Try-Tiny-0.31), as people name a
// release without its extension: the release's file, or its files. It
// answers and returns true, or returns false to go on.
func (e *Explorer) searchRelease(w http.ResponseWriter, r *http.Request, q, release string) bool {
	info := cpan.ParseDistInfo(release + ".tar.gz")
	if info.Dist == "" || info.Version == "" || info.Dist == release {
		return false
	}
	// The distribution's name as logged, whatever the case typed.
	names, err := e.log.Index().DistsWithPrefix(info.Dist, PageSize)
	if err != nil {
		return false
	}
	i := slices.IndexFunc(names, func(n string) bool { return strings.EqualFold(n, info.Dist) })
	if i < 0 {
		return false
	}
	recs, err := e.log.Index().ByDist(names[i], index.Page{Limit: 1000})
	if err != nil {
		return false
	}
	recs = slices.DeleteFunc(recs, func(rec index.Record) bool {
		d := cpan.ParseDistInfo(path.Base(rec.Entry.Path))
		return !strings.EqualFold(d.Dist, info.Dist) || d.Version != info.Version
	})
	switch len(recs) {
	case 0:
		return false
	case 1:
		http.Redirect(w, r, fmt.Sprintf("/entry/%d?q=%s", recs[0].Index, url.QueryEscape(q)), http.StatusSeeOther)
	default:
		e.render(w, http.StatusOK, "list", page{Title: q, Heading: "Files of " + release, Query: q, Entries: rows(recs)})
	}
	return true
}

// isIndexName recognises what people type for an index file: its file
// name, with or without the extensions.
func isIndexName(q string) bool {
	for _, p := range cpan.IndexPaths {
		base := path.Base(p)
		if q == base || q == strings.SplitN(base, ".", 2)[0] {
			return true
		}
	}
	return false
}

// indexFiles lists every logged version of the index files PAUSE
// publishes (02packages, 06perms, 01mailrc), newest first.
func (e *Explorer) indexFiles(w http.ResponseWriter, r *http.Request) {
	var all []index.Record
	for _, p := range cpan.IndexPaths {
		recs, err := e.log.Index().ByPath(p)
		if err != nil {
			e.internal(w, err)
			return
		}
		all = append(all, recs...)
	}
	slices.SortFunc(all, func(a, b index.Record) int { return cmp.Compare(b.Index, a.Index) })
	if len(all) > PageSize {
		all = all[:PageSize]
	}
	e.render(w, http.StatusOK, "list", page{Title: "Index files", Heading: "Index file versions (02packages, 06perms, 01mailrc), newest first", Query: r.URL.Query().Get("q"), Entries: rows(all)})
}

func statusFor(recs []index.Record) int {
	if len(recs) == 0 {
		return http.StatusNotFound
	}
	return http.StatusOK
}

func (e *Explorer) list(w http.ResponseWriter, r *http.Request, heading, feed string, get func(index.Page) ([]index.Record, error)) {
	b, err := before(r)
	if err != nil {
		e.fail(w, http.StatusBadRequest, "Bad page", "?before= must be an entry index")
		return
	}
	recs, err := get(index.Page{Limit: PageSize, Before: b})
	if err != nil {
		e.internal(w, err)
		return
	}
	code := http.StatusOK
	if len(recs) == 0 && b == 0 {
		code = http.StatusNotFound
	}
	e.render(w, code, "list", page{Title: heading, Heading: heading, Feed: feed, Query: r.URL.Query().Get("q"), Entries: rows(recs), Next: next(r.URL, recs)})
}

func (e *Explorer) dist(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !distRE.MatchString(name) || len(name) > MaxQuery {
		e.fail(w, http.StatusBadRequest, "Bad distribution name", "%q is not a distribution name.", name)
		return
	}
	e.list(w, r, "Distribution "+name, "/dist/"+url.PathEscape(name)+"/feed.atom", func(p index.Page) ([]index.Record, error) { return e.log.Index().ByDist(name, p) })
}

func (e *Explorer) author(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !cpan.ValidID(id) {
		e.fail(w, http.StatusBadRequest, "Bad PAUSE id", "%q is not a PAUSE id.", id)
		return
	}
	e.list(w, r, "Author "+id, "/author/"+id+"/feed.atom", func(p index.Page) ([]index.Record, error) { return e.log.Index().ByAuthor(id, p) })
}

func (e *Explorer) entry(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseUint(r.PathValue("index"), 10, 64)
	if err != nil {
		e.fail(w, http.StatusBadRequest, "Bad entry", "%q is not an entry index.", r.PathValue("index"))
		return
	}
	leaf, err := e.log.Index().Leaf(n)
	if err != nil {
		e.fail(w, http.StatusNotFound, "No such entry", "The log has no entry %d (yet).", n)
		return
	}
	en, err := entry.Parse(leaf)
	if err != nil {
		e.fail(w, http.StatusOK, fmt.Sprintf("Entry %d", n), "Entry %d is not a valid v1 entry (%v). Monitors report this.", n, err)
		return
	}
	rw := toRow(index.Record{Index: n, Leaf: leaf, Entry: en})
	var fileURL string
	if en.Kind != entry.Delete {
		mirror := e.Mirror
		if mirror == "" {
			mirror = DefaultMirror
		}
		fileURL = strings.TrimSuffix(mirror, "/") + "/" + en.Path
	}
	e.render(w, http.StatusOK, "entry", page{Title: fmt.Sprintf("Entry %d: %s", n, en.Path), Query: r.URL.Query().Get("q"), Entry: &rw, FileURL: fileURL,
		Keys: e.keys, Server: e.serverSays(r, n)})
}

// serverSays is the server's answer about entry n, for a reader whose
// browser does not verify (JavaScript off): what the server itself holds,
// labelled as such by the page.
func (e *Explorer) serverSays(r *http.Request, n uint64) string {
	cp := e.checkpoint(r)
	if cp == nil {
		return "the log has no checkpoint the server can read yet."
	}
	if n >= cp.Size {
		return fmt.Sprintf("entry %d is not yet in the latest checkpoint (tree of size %d); it will be in the next one.", n, cp.Size)
	}
	s := fmt.Sprintf("this leaf is entry %d of the tree of size %d that %s signed (root %s)", n, cp.Size, e.log.Origin(), cp.Root)
	if len(cp.Cosigners) > 0 {
		names := make([]string, len(cp.Cosigners))
		for i, c := range cp.Cosigners {
			names[i] = c.Name
		}
		s += ", cosigned by " + strings.Join(names, ", ")
	}
	return s + "."
}

func (e *Explorer) static(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	types := map[string]string{"verify.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
	ct, ok := types[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	b, err := assets.ReadFile("assets/" + name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(b)
}

// vendor serves a vendored npm file (assets/vendor): the JavaScript
// modules the page's script imports, and the packages' licences and
// package.json as text. They are not compressed: about 200 kB, fetched
// only by a page whose witness policy has an ML-DSA-44 key, and cached.
func (e *Explorer) vendor(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := fs.ReadFile(assets, path.Join("assets/vendor", name))
	if err != nil || !fs.ValidPath(name) {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	switch path.Ext(name) {
	case ".js":
		h.Set("Content-Type", "text/javascript; charset=utf-8")
	case ".json":
		h.Set("Content-Type", "application/json")
	default:
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	h.Set("Cache-Control", "public, max-age=3600")
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(b)
}

// Atom (RFC 4287).
type atomFeed struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	Title   string      `xml:"title"`
	ID      string      `xml:"id"`
	Updated string      `xml:"updated"`
	Links   []atomLink  `xml:"link"`
	Author  atomAuthor  `xml:"author"`
	Entries []atomEntry `xml:"entry"`
}

type atomLink struct {
	Href string `xml:"href,attr"`
	Rel  string `xml:"rel,attr,omitempty"`
}

type atomAuthor struct {
	Name string `xml:"name"`
}

type atomEntry struct {
	Title   string     `xml:"title"`
	ID      string     `xml:"id"`
	Updated string     `xml:"updated"`
	Link    atomLink   `xml:"link"`
	Author  atomAuthor `xml:"author"`
	Content atomText   `xml:"content"`
}

type atomText struct {
	Type string `xml:"type,attr"`
	Text string `xml:",chardata"`
}

func (e *Explorer) feed(w http.ResponseWriter, r *http.Request) {
	ix := e.log.Index()
	p := index.Page{Limit: PageSize}
	var recs []index.Record
	var err error
	title, self := "cpan-tlog: new entries", "/feed.atom"
	switch {
	case r.PathValue("name") != "":
		name := r.PathValue("name")
		if !distRE.MatchString(name) {
			http.Error(w, "bad distribution name", http.StatusBadRequest)
			return
		}
		title, self = "cpan-tlog: "+name, "/dist/"+url.PathEscape(name)+"/feed.atom"
		recs, err = ix.ByDist(name, p)
	case r.PathValue("id") != "":
		id := r.PathValue("id")
		if !cpan.ValidID(id) {
			http.Error(w, "bad PAUSE id", http.StatusBadRequest)
			return
		}
		title, self = "cpan-tlog: uploads by "+id, "/author/"+id+"/feed.atom"
		recs, err = ix.ByAuthor(id, p)
	default:
		recs, err = ix.Recent(p)
	}
	if err != nil {
		e.log.Logger().Error("explorer: feed", "err", err)
		http.Error(w, "the feed could not be read; the details are in the server's log", http.StatusInternalServerError)
		return
	}
	f := atomFeed{Title: title, ID: "urn:cpan-tlog:" + url.PathEscape(e.log.Origin()) + ":" + self, Updated: time.Unix(0, 0).UTC().Format(time.RFC3339),
		Links: []atomLink{{Href: e.base + self, Rel: "self"}, {Href: e.base + "/"}}, Author: atomAuthor{Name: e.log.Origin()}}
	for _, rec := range recs {
		t := rec.Entry.Time.Format(time.RFC3339)
		if t > f.Updated {
			f.Updated = t
		}
		f.Entries = append(f.Entries, atomEntry{
			Title:   fmt.Sprintf("%s %s", rec.Entry.Kind, path.Base(rec.Entry.Path)),
			ID:      fmt.Sprintf("urn:cpan-tlog:%s:%d", url.PathEscape(e.log.Origin()), rec.Index),
			Updated: t,
			Link:    atomLink{Href: fmt.Sprintf("%s/entry/%d", e.base, rec.Index)},
			Author:  atomAuthor{Name: authorName(rec.Entry)},
			Content: atomText{Type: "text", Text: string(rec.Leaf)},
		})
	}
	w.Header().Set("Content-Type", "application/atom+xml; charset=utf-8")
	w.Write([]byte(xml.Header))
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	enc.Encode(f)
}

func authorName(e *entry.Entry) string {
	if e.Uploader != "" {
		return e.Uploader
	}
	id, _ := cpan.ValidatePath(e.Path)
	return id
}
