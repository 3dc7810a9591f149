package api

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"strings"

	tapi "github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"

	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
	"github.com/CPAN-Security/cpan-tlog/log/adderr"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
	"github.com/CPAN-Security/cpan-tlog/log/index"
	"github.com/CPAN-Security/cpan-tlog/log/indexfiles"
	"github.com/CPAN-Security/cpan-tlog/log/prooftree"
)

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

// SHA256Match is one answer of GET /lookup?sha256=.
type SHA256Match struct {
	Index uint64 `json:"index"`
	Path  string `json:"path"`
}

// maxSHA256Matches bounds a by-digest lookup; the same file uploaded more
// than this often is not a real CPAN case.
const maxSHA256Matches = 100

func (s *Server) handleCheckpoint(w http.ResponseWriter, r *http.Request) {
	cp, err := s.reads.ReadCheckpoint(r.Context())
	if errors.Is(err, fs.ErrNotExist) {
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, "no checkpoint published yet")
		return
	}
	if err != nil {
		s.internalError(w, "reading the checkpoint", err)
		return
	}
	if size, err := s.reads.CheckpointSize(cp); err == nil {
		s.cfg.Metrics.cpSize.Set(float64(size))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(cp)
}

// handleTile serves tlog-tiles hash tiles and entry bundles. It answers a
// partial tile only with exactly that partial tile, so clients that ask for
// a width get that width or a 404 and fall back to the full tile.
func (s *Server) handleTile(w http.ResponseWriter, r *http.Request) {
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
		data, err = s.reads.ReadEntryBundle(r.Context(), n, partial)
		if err == nil && partial > 0 {
			var b tapi.EntryBundle
			if b.UnmarshalText(data) != nil {
				err = fs.ErrNotExist
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
		data, err = s.reads.ReadTile(r.Context(), lv, n, partial)
		width = len(data) / sha256.Size
	}
	if err == nil && partial > 0 && width != int(partial) {
		err = fs.ErrNotExist
	}
	if errors.Is(err, fs.ErrNotExist) {
		httpError(w, http.StatusNotFound, "no such tile")
		return
	}
	if err != nil {
		s.internalError(w, "reading the tile", err)
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
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) (*LookupResponse, bool) {
	p := r.URL.Query().Get("path")
	if _, err := cpan.ValidatePath(p); err != nil && !cpan.IsIndexPath(p) {
		httpError(w, http.StatusBadRequest, "%v", err)
		return nil, false
	}
	recs, err := s.reads.History(p)
	if errors.Is(err, adderr.ErrPathBusy) {
		// An entry at the path is being indexed: the answer would miss
		// it. The client's retry gets it.
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, "the path's latest entries are being indexed; retry: %v", err)
		return nil, false
	}
	if err != nil {
		s.internalError(w, "the lookup", err)
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

func (s *Server) handleLookup(w http.ResponseWriter, r *http.Request) {
	if h := r.URL.Query().Get("sha256"); h != "" {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != 32 {
			httpError(w, http.StatusBadRequest, "sha256 %q is not 64 hex digits", h)
			return
		}
		recs, err := s.reads.BySHA256([32]byte(b))
		if err != nil {
			s.internalError(w, "the lookup", err)
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
	if res, ok := s.lookup(w, r); ok {
		writeJSON(w, http.StatusOK, res)
	}
}

func (s *Server) handleProof(w http.ResponseWriter, r *http.Request) {
	var res *LookupResponse
	if q := r.URL.Query().Get("index"); q != "" {
		// A proof for one entry by index: any kind, any version of a path.
		n, err := strconv.ParseUint(q, 10, 64)
		if err != nil {
			httpError(w, http.StatusBadRequest, "index %q is not a number", q)
			return
		}
		leaf, err := s.reads.Leaf(n)
		if err != nil {
			httpError(w, http.StatusNotFound, "no entry %d in the lookup index", n)
			return
		}
		res = &LookupResponse{Index: n, Entry: leaf}
	} else {
		var ok bool
		if res, ok = s.lookup(w, r); !ok {
			return
		}
	}
	cp, err := s.reads.ReadCheckpoint(r.Context())
	if err != nil {
		s.internalError(w, "reading the checkpoint", err)
		return
	}
	proof, err := s.reads.Proof(r.Context(), res.Index, res.Entry, cp)
	writeProof(w, res.Index, proof, err, "entry %d: %v; retry shortly")
}

// handleProofTree serves the proof tree: files only, never a listing.
func (s *Server) handleProofTree(w http.ResponseWriter, r *http.Request) {
	b, err := s.reads.ReadProof(strings.TrimPrefix(r.URL.Path, "/"))
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
		s.internalError(w, "reading the proof", err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Write(b)
}

// handleIndexFileGet serves a stored index file version, as logged.
func (s *Server) handleIndexFileGet(w http.ResponseWriter, r *http.Request) {
	sha, ok := indexfiles.ParseName(r.PathValue("sha256"))
	if !ok {
		httpError(w, http.StatusNotFound, "want /index-files/<sha256>")
		return
	}
	sum := hex.EncodeToString(sha[:])
	f, err := s.reads.OpenIndexFile(r.Context(), sum)
	if errors.Is(err, fs.ErrNotExist) {
		httpError(w, http.StatusNotFound, "no index file version with sha256 %s is stored here", sum)
		return
	}
	if err != nil {
		s.internalError(w, "reading the index file", err)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Header().Set("ETag", `"`+sum+`"`)
	io.Copy(w, f)
}

// handleHealthz answers 200 "ok", or 503 with what needs the operator.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	unhealthy, degraded := s.reads.Health()
	if unhealthy != "" {
		httpError(w, http.StatusServiceUnavailable, "%s", unhealthy)
		return
	}
	if degraded != "" {
		// Still 200: the log publishes, or may once a witness is back
		// (the publish lag decides when that is too long).
		fmt.Fprintf(w, "degraded: %s\n", degraded)
		return
	}
	io.WriteString(w, "ok\n")
}
