package log

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
	tclient "github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/client/sigstore"
	"github.com/CPAN-Security/cpan-tlog/client/tlogproof"
	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
	"github.com/CPAN-Security/cpan-tlog/internal/httpserver"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
	"github.com/CPAN-Security/cpan-tlog/log/index"
	"github.com/CPAN-Security/cpan-tlog/log/indexfiles"
	"github.com/CPAN-Security/cpan-tlog/log/prooftree"
)

// MaxAddBody bounds a POST /add body. An entry's fields are a few hundred
// bytes; a Sigstore bundle, base64-encoded, a few tens of KiB.
const MaxAddBody = 1 << 20

// AddRequest is the JSON body of POST /add.
type AddRequest struct {
	// Kind is "upload" (the default), "delete" or "index".
	Kind     string  `json:"kind,omitempty"`
	Path     string  `json:"path"`
	Size     *uint64 `json:"size,omitempty"`
	SHA256   string  `json:"sha256,omitempty"`
	Uploader string  `json:"uploader,omitempty"`
	Time     string  `json:"time"`
	// Bundle is a .sigstore.json bundle, for an upload of one.
	Bundle []byte `json:"bundle,omitempty"`
}

// Entry turns the request into an entry, or says what is wrong with it.
func (r *AddRequest) Entry() (*entry.Entry, error) {
	e := &entry.Entry{Kind: entry.Kind(r.Kind), Path: r.Path, Uploader: r.Uploader}
	if r.Kind == "" {
		e.Kind = entry.Upload
	}
	t, err := time.Parse(entry.TimeFormat, r.Time)
	if err != nil {
		return nil, fmt.Errorf("time %q is not RFC 3339 UTC with seconds, like 2021-01-05T12:00:00Z", r.Time)
	}
	e.Time = t
	switch e.Kind {
	case entry.Upload, entry.Index:
		if r.Size == nil {
			return nil, errors.New("size is missing")
		}
		e.Size = *r.Size
		b, err := hex.DecodeString(r.SHA256)
		if err != nil || len(b) != 32 || strings.ToLower(r.SHA256) != r.SHA256 {
			return nil, fmt.Errorf("sha256 %q is not 64 lower-case hex digits", r.SHA256)
		}
		copy(e.SHA256[:], b)
		if r.Bundle != nil && (e.Kind != entry.Upload || !strings.HasSuffix(r.Path, sigstore.BundleSuffix)) {
			return nil, fmt.Errorf("bundle is only for uploads of *%s files", sigstore.BundleSuffix)
		}
		if e.Kind == entry.Index && r.Uploader != "" {
			return nil, errors.New("an index entry takes kind, path, size, sha256 and time (no uploader)")
		}
	case entry.Delete:
		if r.Size != nil || r.SHA256 != "" || r.Uploader != "" || r.Bundle != nil {
			return nil, errors.New("a delete takes only kind, path and time")
		}
	default:
		return nil, fmt.Errorf("kind %q is not upload, delete or index", r.Kind)
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return e, nil
}

// LookupResponse is the JSON body of GET /lookup.
type LookupResponse struct {
	// Index and Entry are the latest upload logged at the path, or for an
	// index file (cpan.IndexPaths) its latest version.
	Index uint64 `json:"index"`
	Entry []byte `json:"entry"`
	// Deleted is the index of a delete entry logged after that upload.
	Deleted *uint64 `json:"deleted,omitempty"`
	// History lists every entry index for the path, oldest first.
	History []uint64 `json:"history"`
}

// Mount adds routes to the log's HTTP server (the web explorer uses it).
// Call it before Handler or Serve.
func (l *Log) Mount(register func(*http.ServeMux)) { l.mounts = append(l.mounts, register) }

// Handler serves the log's HTTP API.
func (l *Log) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, m := range l.mounts {
		m(mux)
	}
	route := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, l.instrument(pattern, h))
	}
	route("POST /add", l.handleAdd)
	route("GET /checkpoint", l.handleCheckpoint)
	route("GET /tile/", l.handleTile)
	route("GET /lookup", l.handleLookup)
	route("GET /proof", l.handleProof)
	route("GET /tlog/proofs/", l.handleProofTree)
	route("PUT /index-files/{sha256}", l.handleIndexFilePut)
	route("GET /index-files/{sha256}", l.handleIndexFileGet)
	route("GET /healthz", l.handleHealthz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(l.metrics.registry, promhttp.HandlerOpts{}))
	// nosniff and a CSP on every response, the read API's included.
	return httpserver.SecureHeaders(mux)
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (l *Log) instrument(route string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		h(rec, r)
		l.metrics.requests.WithLabelValues(route, strconv.Itoa(rec.code)).Inc()
	})
}

func httpError(w http.ResponseWriter, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintf(w, format+"\n", args...)
}

// internalError logs err, which may name files on the server, and answers
// 500 without it: error bodies never show the server's filesystem.
func (l *Log) internalError(w http.ResponseWriter, what string, err error) {
	if dep := l.storageDependency(err); dep != "" {
		// Nothing is wrong with the request: the storage is away.
		l.metrics.storageErrors.WithLabelValues(dep).Inc()
		l.cfg.Logger.Warn(what+" failed: storage unavailable", "dependency", dep, "err", err)
		w.Header().Set("Retry-After", "5")
		httpError(w, http.StatusServiceUnavailable, "%s failed: storage: %s unavailable; retry later", what, dep)
		return
	}
	l.cfg.Logger.Error(what+" failed", "err", err)
	if errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), "no space left on device") {
		w.Header().Set("Retry-After", "60")
		httpError(w, http.StatusInsufficientStorage, "%s failed: no space left on device on the server; retry once its operators made room", what)
		return
	}
	httpError(w, http.StatusInternalServerError, "%s failed on the server; its operators find the details in its log", what)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func (l *Log) handleAdd(w http.ResponseWriter, r *http.Request) {
	if l.appender == nil {
		httpError(w, http.StatusMethodNotAllowed, "%v", l.readOnlyErr())
		return
	}
	start := time.Now()
	token, ok := l.authorize(r)
	// Every authorized add is one log line naming its token, so that the
	// adds of a leaked token can be found (and its metrics counted).
	var (
		said     string
		path     string
		logIndex = int64(-1)
	)
	outcome := func(o string) { l.metrics.adds.WithLabelValues(o, token).Inc(); said = o }
	if ok {
		defer func() {
			attrs := []any{"outcome", said, "token", token, "remote", r.RemoteAddr}
			if path != "" {
				attrs = append(attrs, "path", path)
			}
			if logIndex >= 0 {
				attrs = append(attrs, "index", logIndex)
			}
			l.cfg.Logger.Info("add", attrs...)
		}()
	}
	if !ok {
		outcome("unauthorized")
		w.Header().Set("WWW-Authenticate", `Bearer realm="cpan-tlog"`)
		httpError(w, http.StatusUnauthorized, "missing or wrong bearer token: send 'Authorization: Bearer <token>' with the token from the server's %s", TokenFile)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxAddBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		outcome("too_large")
		httpError(w, http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", MaxAddBody)
		return
	}
	if err != nil {
		outcome("invalid")
		httpError(w, http.StatusBadRequest, "reading body: %v", err)
		return
	}
	// encoding/json would turn invalid UTF-8 into U+FFFD: two different
	// submitted paths could then log as one path nobody sent.
	if !utf8.Valid(body) {
		outcome("invalid")
		httpError(w, http.StatusBadRequest, "body is not valid UTF-8")
		return
	}
	var req AddRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		outcome("invalid")
		httpError(w, http.StatusBadRequest, "body is not the JSON object {path,size,sha256,uploader,time}: %v", err)
		return
	}
	if dec.More() {
		outcome("invalid")
		httpError(w, http.StatusBadRequest, "body holds more than one JSON value")
		return
	}
	e, err := req.Entry()
	if err != nil {
		outcome("invalid")
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	path = e.Path
	sigstoreNote := ""
	if req.Bundle != nil {
		if err := l.AnnotateSigstore(e, req.Bundle); err != nil {
			// Logged all the same, as a plain upload: the file was published.
			sigstoreNote = "not verified: " + err.Error()
			l.metrics.adds.WithLabelValues("sigstore_unverified", token).Inc()
			l.cfg.Logger.Warn("sigstore bundle did not verify; logging it as a plain upload", "path", e.Path, "err", err)
		} else {
			sigstoreNote = "verified: " + e.Sigstore.SAN
		}
	}
	select {
	case l.inflight <- struct{}{}:
		defer func() { <-l.inflight }()
	default:
		outcome("overloaded")
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, "%v", ErrOverloaded)
		return
	}
	res, err := l.Add(r.Context(), e)
	var conflict *ConflictError
	switch {
	case errors.As(err, &conflict):
		outcome("conflict")
		body := map[string]any{"error": conflict.Reason}
		if conflict.Existing.Leaf != nil {
			body["index"] = conflict.Existing.Index
			body["entry"] = conflict.Existing.Leaf
		}
		writeJSON(w, http.StatusConflict, body)
		return
	case errors.Is(err, ErrIndexBytesMissing):
		outcome("invalid")
		httpError(w, http.StatusUnprocessableEntity, "%v", err)
		return
	case errors.Is(err, ErrFutureTime):
		outcome("invalid")
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	case errors.Is(err, ErrOverloaded), errors.Is(err, ErrShutdown), errors.Is(err, ErrPathBusy):
		outcome("overloaded")
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, "%v", err)
		return
	case err != nil:
		// internalError answers a storage outage 503 and counts it.
		if l.storageDependency(err) != "" {
			outcome("unavailable")
		} else {
			outcome("error")
		}
		l.internalError(w, "logging the entry (a retry of the same entry gets its index if it was logged)", err)
		return
	}
	logIndex = int64(res.Index)
	if res.Duplicate {
		outcome("duplicate")
	} else {
		outcome("logged")
		l.metrics.addSeconds.Observe(time.Since(start).Seconds())
	}
	if r.URL.Query().Get("wait") == "1" {
		proof, err := l.awaitProof(r.Context(), res.Index, res.Leaf)
		if err != nil {
			w.Header().Set("Retry-After", "1")
			httpError(w, http.StatusServiceUnavailable, "entry logged at index %d, but no checkpoint covers it yet (%v); fetch GET /proof?path=... later", res.Index, err)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(proof)
		return
	}
	// A struct, not a map: encoded for every add, without sorting keys.
	writeJSON(w, http.StatusOK, struct {
		Duplicate bool   `json:"duplicate"`
		Index     uint64 `json:"index"`
		Sigstore  string `json:"sigstore,omitempty"`
	}{res.Duplicate, res.Index, sigstoreNote})
}

// awaitProof waits until a checkpoint covers idx and returns the tlog-proof.
func (l *Log) awaitProof(ctx context.Context, idx uint64, leaf []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	// Early, with the reason, when the checkpoint cannot come (drain.go).
	ctx, stop := l.stopWaiting(ctx, true)
	defer stop()
	// Tessera's awaiter sees ctx end only when its poller next reads a
	// checkpoint, which never happens while none was ever published (a new
	// log whose witnesses do not cosign): wait for ctx here too. The
	// awaiting goroutine ends with that first checkpoint, or at shutdown.
	type awaited struct {
		cp  []byte
		err error
	}
	done := make(chan awaited, 1)
	go func() {
		_, cp, err := l.awaiter.Await(ctx, func() (tessera.Index, error) { return tessera.Index{Index: idx}, nil })
		done <- awaited{cp, err}
	}()
	var cp []byte
	select {
	case a := <-done:
		if a.err != nil {
			return nil, whyStopped(ctx, a.err)
		}
		cp = a.cp
	case <-ctx.Done():
		return nil, whyStopped(ctx, ctx.Err())
	}
	return l.Proof(ctx, idx, leaf, cp)
}

// Proof returns the tlog-proof of the entry leaf at idx in checkpoint cp.
func (l *Log) Proof(ctx context.Context, idx uint64, leaf, cp []byte) ([]byte, error) {
	c, err := l.parseCheckpoint(cp)
	if err != nil {
		return nil, err
	}
	if idx >= c.Size {
		return nil, fmt.Errorf("checkpoint of size %d does not cover index %d yet", c.Size, idx)
	}
	pb, err := tclient.NewProofBuilder(ctx, c.Size, l.reader.ReadTile)
	if err != nil {
		return nil, err
	}
	hashes, err := pb.InclusionProof(ctx, idx)
	if err != nil {
		return nil, err
	}
	p := &tlogproof.Proof{Extra: leaf, Index: idx, InclusionProof: hashes, Checkpoint: cp}
	return p.Marshal()
}

func (l *Log) parseCheckpoint(cp []byte) (*flog.Checkpoint, error) {
	v, err := note.NewVerifier(l.vkey)
	if err != nil {
		return nil, err
	}
	c, _, _, err := flog.ParseCheckpoint(cp, l.Origin(), v)
	if err != nil {
		return nil, fmt.Errorf("own checkpoint does not verify: %w", err)
	}
	return c, nil
}

func (l *Log) handleCheckpoint(w http.ResponseWriter, r *http.Request) {
	cp, err := l.reader.ReadCheckpoint(r.Context())
	if errors.Is(err, os.ErrNotExist) {
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, "no checkpoint published yet")
		return
	}
	if err != nil {
		l.internalError(w, "reading the checkpoint", err)
		return
	}
	if c, err := l.parseCheckpoint(cp); err == nil {
		l.metrics.cpSize.Set(float64(c.Size))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(cp)
}

// handleTile serves tlog-tiles hash tiles and entry bundles. It answers a
// partial tile only with exactly that partial tile, so clients that ask for
// a width get that width or a 404 and fall back to the full tile.
func (l *Log) handleTile(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/tile/")
	var (
		data    []byte
		err     error
		partial uint8
		width   int
	)
	if idx, ok := strings.CutPrefix(rest, "entries/"); ok {
		var n uint64
		n, partial, err = layout.ParseTileIndexPartial(idx)
		if err != nil {
			httpError(w, http.StatusBadRequest, "bad entry bundle path: %v", err)
			return
		}
		data, err = l.reader.ReadEntryBundle(r.Context(), n, partial)
		if err == nil && partial > 0 {
			var b api.EntryBundle
			if b.UnmarshalText(data) != nil {
				err = os.ErrNotExist
			}
			width = len(b.Entries)
		}
	} else {
		level, idx, ok := strings.Cut(rest, "/")
		if !ok {
			httpError(w, http.StatusNotFound, "no such tile")
			return
		}
		var lv, n uint64
		lv, n, partial, err = layout.ParseTileLevelIndexPartial(level, idx)
		if err != nil {
			httpError(w, http.StatusBadRequest, "bad tile path: %v", err)
			return
		}
		data, err = l.reader.ReadTile(r.Context(), lv, n, partial)
		width = len(data) / sha256.Size
	}
	if err == nil && partial > 0 && width != int(partial) {
		err = os.ErrNotExist
	}
	if notFound(err) {
		httpError(w, http.StatusNotFound, "no such tile")
		return
	}
	if err != nil {
		l.internalError(w, "reading the tile", err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if partial == 0 {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "public, max-age=60")
	}
	if strings.HasPrefix(rest, "entries/") {
		writeCompressible(w, r, data) // compress.go
		return
	}
	w.Write(data)
}

// lookup finds the latest upload at the path in the query, answering the
// error itself when there is none.
func (l *Log) lookup(w http.ResponseWriter, r *http.Request) (*LookupResponse, bool) {
	p := r.URL.Query().Get("path")
	if _, err := cpan.ValidatePath(p); err != nil && !cpan.IsIndexPath(p) {
		httpError(w, http.StatusBadRequest, "%v", err)
		return nil, false
	}
	recs, err := l.history(p)
	if errors.Is(err, ErrPathBusy) {
		// An entry at the path is being indexed: the answer would miss
		// it. The client's retry gets it.
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, "the path's latest entries are being indexed; retry: %v", err)
		return nil, false
	}
	if err != nil {
		l.internalError(w, "the lookup", err)
		return nil, false
	}
	var res *LookupResponse
	for _, rec := range recs {
		switch rec.Entry.Kind {
		case entry.Upload, entry.Index:
			res = &LookupResponse{Index: rec.Index, Entry: rec.Leaf}
		case entry.Delete:
			if res != nil {
				d := rec.Index
				res.Deleted = &d
			}
		}
	}
	if res == nil {
		httpError(w, http.StatusNotFound, "%s is not in the log", p)
		return nil, false
	}
	res.History = historyIndexes(recs)
	return res, true
}

func historyIndexes(recs []index.Record) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.Index
	}
	return out
}

// SHA256Match is one answer of GET /lookup?sha256=.
type SHA256Match struct {
	Index uint64 `json:"index"`
	Path  string `json:"path"`
}

// maxSHA256Matches bounds a by-digest lookup; the same file uploaded more
// than this often is not a real CPAN case.
const maxSHA256Matches = 100

func (l *Log) handleLookup(w http.ResponseWriter, r *http.Request) {
	if h := r.URL.Query().Get("sha256"); h != "" {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != 32 {
			httpError(w, http.StatusBadRequest, "sha256 %q is not 64 hex digits", h)
			return
		}
		recs, err := l.index.BySHA256([32]byte(b))
		if err != nil {
			l.internalError(w, "the lookup", err)
			return
		}
		if len(recs) == 0 {
			httpError(w, http.StatusNotFound, "no logged file has sha256 %s", h)
			return
		}
		out := []SHA256Match{}
		for _, rec := range recs[:min(len(recs), maxSHA256Matches)] {
			out = append(out, SHA256Match{Index: rec.Index, Path: rec.Entry.Path})
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	if res, ok := l.lookup(w, r); ok {
		writeJSON(w, http.StatusOK, res)
	}
}

func (l *Log) handleProof(w http.ResponseWriter, r *http.Request) {
	var res *LookupResponse
	if s := r.URL.Query().Get("index"); s != "" {
		// A proof for one entry by index: any kind, any version of a path.
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			httpError(w, http.StatusBadRequest, "index %q is not a number", s)
			return
		}
		leaf, err := l.index.Leaf(n)
		if err != nil {
			httpError(w, http.StatusNotFound, "no entry %d in the lookup index", n)
			return
		}
		res = &LookupResponse{Index: n, Entry: leaf}
	} else {
		var ok bool
		if res, ok = l.lookup(w, r); !ok {
			return
		}
	}
	cp, err := l.reader.ReadCheckpoint(r.Context())
	if err != nil {
		l.internalError(w, "reading the checkpoint", err)
		return
	}
	proof, err := l.Proof(r.Context(), res.Index, res.Entry, cp)
	if err != nil {
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, "entry %d: %v; retry shortly", res.Index, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(proof)
}

// handleProofTree serves the proof tree: files only, never a listing.
func (l *Log) handleProofTree(w http.ResponseWriter, r *http.Request) {
	b, err := l.proofs.Read(strings.TrimPrefix(r.URL.Path, "/"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		httpError(w, http.StatusNotFound, "no proof published for that file (yet): proofs appear once a witnessed checkpoint covers the entry")
		return
	case errors.Is(err, prooftree.ErrDamaged):
		// Cut short or damaged on disk: never served (and never cached
		// as immutable); the proof writer writes it again.
		w.Header().Set("Retry-After", "5")
		httpError(w, http.StatusServiceUnavailable, "this proof file is damaged on disk and is being written again; retry in a few seconds")
		return
	case err != nil:
		l.internalError(w, "reading the proof", err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Write(b)
}

// handleIndexFilePut stores an index file version: PUT
// /index-files/<sha256> with the bearer token, the body the file as
// published. It is checked against the sha256 in the URL.
func (l *Log) handleIndexFilePut(w http.ResponseWriter, r *http.Request) {
	if l.appender == nil {
		httpError(w, http.StatusMethodNotAllowed, "%v", l.readOnlyErr())
		return
	}
	if !l.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cpan-tlog"`)
		httpError(w, http.StatusUnauthorized, "missing or wrong bearer token: send 'Authorization: Bearer <token>' with the token from the server's %s", TokenFile)
		return
	}
	sha, ok := indexfiles.ParseName(r.PathValue("sha256"))
	if !ok {
		httpError(w, http.StatusBadRequest, "want PUT /index-files/<sha256 of the file, 64 lower-case hex digits>")
		return
	}
	created, err := l.indexFiles.Put(r.Context(), sha, http.MaxBytesReader(w, r.Body, indexfiles.MaxBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		httpError(w, http.StatusRequestEntityTooLarge, "index file larger than %d bytes", indexfiles.MaxBytes)
	case errors.Is(err, indexfiles.ErrMismatch):
		httpError(w, http.StatusBadRequest, "%v", err)
	case err != nil:
		l.internalError(w, "storing the index file", err)
	case created:
		w.WriteHeader(http.StatusCreated)
	default:
		w.WriteHeader(http.StatusOK)
	}
}

// handleIndexFileGet serves a stored index file version, as logged.
func (l *Log) handleIndexFileGet(w http.ResponseWriter, r *http.Request) {
	sha, ok := indexfiles.ParseName(r.PathValue("sha256"))
	if !ok {
		httpError(w, http.StatusNotFound, "want /index-files/<sha256>")
		return
	}
	sum := hex.EncodeToString(sha[:])
	f, err := l.indexFiles.Open(r.Context(), sum)
	if errors.Is(err, fs.ErrNotExist) {
		httpError(w, http.StatusNotFound, "no index file version with sha256 %s is stored here", sum)
		return
	}
	if err != nil {
		l.internalError(w, "reading the index file", err)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Header().Set("ETag", `"`+sum+`"`)
	io.Copy(w, f)
}

// handleHealthz answers 200 "ok", or 503 with what needs the operator.
func (l *Log) handleHealthz(w http.ResponseWriter, r *http.Request) {
	if why := l.health.Unhealthy(); why != "" {
		httpError(w, http.StatusServiceUnavailable, "%s", why)
		return
	}
	if degraded := l.health.Degraded(); degraded != "" {
		// Still 200: the log publishes, or may once a witness is back
		// (the publish lag decides when that is too long).
		fmt.Fprintf(w, "degraded: %s\n", degraded)
		return
	}
	io.WriteString(w, "ok\n")
}
