// Package api is the log's HTTP API (DESIGN.md): a Server that answers
// every request from an Ops, what it needs of a log and nothing more, in the
// shape of golang.org/x/mod/sumdb's Server over its ServerOps. Ops is in
// parts with one job each: the write handlers use its Writes, the read
// handlers its Reads, and both answer a failure through its Outages.
// Package log builds one over its Log ((*log.Log).Handler); the API never
// sees more of the log than Ops.
//
// What it promises, endpoint by endpoint:
//
//   - POST /add (bearer token): the entry is logged, or repeats a logged
//     one (200 {"duplicate","index"}; with ?wait=1 its tlog-proof once a
//     published checkpoint covers it, waiting at most MaxProofWait), or
//     it is refused: 400 a malformed body or an entry time past the
//     clock's skew, 401 no matching token, 405 a log that takes no adds,
//     409 PAUSE's rules (with the entry already logged), 413 a body over
//     MaxAddBody, 422 an index version whose bytes are not stored, 503
//     with Retry-After: 1 overloaded, shutting down or the path busy
//     (package adderr says which error is which).
//   - GET /checkpoint, GET /tile/...: tlog-tiles; a partial tile only
//     exactly as wide as asked, else 404; entry bundles gzip-compressed
//     for a client that accepts it.
//   - GET /lookup?path= or ?sha256=, GET /proof?path= or ?index=: the
//     path's latest upload and history, the logged files of a digest (at
//     most 100), the entry's tlog-proof in the latest checkpoint.
//   - GET /tlog/proofs/...: the proof tree's files, never a listing.
//   - PUT and GET /index-files/<sha256>: index file versions, checked
//     against the digest, at most indexfiles.MaxBytes.
//   - GET /healthz: 200 "ok" (or "degraded: ..."), 503 with what needs the
//     operator. GET /metrics: the log's Prometheus registry.
//
// Every body it reads is bounded. A failure of the server is 500 without
// its details (they go to the operator's log, never a file name to the
// client); an unavailable storage dependency 503 with Retry-After: 5; a
// full disk 507 with Retry-After: 60.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/CPAN-Security/cpan-tlog/internal/httpserver"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
	"github.com/CPAN-Security/cpan-tlog/log/index"
)

// Ops is what the API needs of a log, in three parts with one job each:
// the Reads that GET requests serve, the Writes of POST /add and PUT
// /index-files, and the Outages that tell how a failure of either is
// answered.
type Ops interface {
	Reads
	Writes
	Outages
}

// Reads is what the read API serves (every GET but /metrics): the log's
// checkpoint, tiles and entry bundles, its lookups and proofs, the stored
// index files, and its health. None of it changes the log: a read-only
// front end has all of it. An error a method's doc does not name is the
// server's (Outages).
type Reads interface {
	// ReadCheckpoint is the latest published checkpoint, as published:
	// fs.ErrNotExist when none was published yet.
	ReadCheckpoint(ctx context.Context) ([]byte, error)
	// CheckpointSize verifies cp with the log's key and returns the size
	// of the tree it signs.
	CheckpointSize(cp []byte) (uint64, error)
	// ReadTile and ReadEntryBundle are tlog-tiles' tiles and entry
	// bundles, as stored (p the partial width, 0 for a full one):
	// fs.ErrNotExist when there is none.
	ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error)
	ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error)
	// History is every entry logged at path, oldest first, including
	// entries acknowledged but not yet indexed: adderr.ErrPathBusy while
	// one is being indexed.
	History(path string) ([]index.Record, error)
	// BySHA256 is every logged entry whose file has the digest sha.
	BySHA256(sha [32]byte) ([]index.Record, error)
	// Leaf is the entry at idx, as logged; any error means there is none
	// in the lookup index (404).
	Leaf(idx uint64) ([]byte, error)
	// Proof is the tlog-proof of the entry leaf at idx in the checkpoint
	// cp; its error means cp does not cover it yet (503).
	Proof(ctx context.Context, idx uint64, leaf, cp []byte) ([]byte, error)
	// ReadProof is the proof tree's file name (tlog/proofs/...), whole:
	// fs.ErrNotExist when there is none (yet), prooftree.ErrDamaged when
	// it is being written again.
	ReadProof(name string) ([]byte, error)
	// OpenIndexFile opens the stored version whose sha256 is sum (hex):
	// fs.ErrNotExist when none is.
	OpenIndexFile(ctx context.Context, sum string) (io.ReadCloser, error)
	// Health says what needs the operator (unhealthy: 503) or what is
	// wrong that the log copes with (degraded: still 200); "" when
	// nothing.
	Health() (unhealthy, degraded string)
}

// Writes is what the write API needs (POST /add and PUT /index-files):
// whether the log takes writes and from whom, a slot for an add, the
// writes themselves, and an add's proof for a client that waits for it.
// An error a method's doc does not name is the server's (Outages).
type Writes interface {
	// ReadOnly is nil on a writer, or why this log takes no adds (a
	// read-only front end, a frozen log): POST /add and PUT /index-files
	// answer it 405.
	ReadOnly() error
	// Authorize matches the value of an Authorization header against
	// the ingest tokens: the matching token's name, and whether one
	// matched.
	Authorize(authorization string) (token string, ok bool)
	// AnnotateSigstore verifies bundle, the content of e (an upload of a
	// .sigstore.json file), and records the verified identity in e; its
	// error says why not, and e is logged as a plain upload.
	AnnotateSigstore(e *entry.Entry, bundle []byte) error
	// Admit takes one of the log's slots for an add in flight, to be
	// given back with release; ok is false when none is free (503 at
	// once).
	Admit() (release func(), ok bool)
	// Add logs e, or finds it logged (Added.Duplicate), once durably
	// sequenced; the errors of package adderr say why it did not.
	Add(ctx context.Context, e *entry.Entry) (Added, error)
	// AwaitProof waits until a published checkpoint covers the entry
	// leaf at idx, or ctx ends, and returns the entry's tlog-proof; its
	// error says why none came.
	AwaitProof(ctx context.Context, idx uint64, leaf []byte) ([]byte, error)
	// PutIndexFile stores the index file version r, which must hash to
	// sha (else indexfiles.ErrMismatch); created is false when it was
	// stored already. A read error of r comes back wrapped.
	PutIndexFile(ctx context.Context, sha [32]byte, r io.Reader) (created bool, err error)
}

// Outages tells a storage outage from a failure of the server, for reads
// and writes alike: an error that Reads or Writes does not name is
// answered 503 with Retry-After: 5 when StorageUnavailable names its
// dependency, 507 with Retry-After: 60 when the error says the disk is
// full, and else 500, without its text. Both sides answer their
// failures through it, so it belongs to neither.
type Outages interface {
	// StorageUnavailable names the storage dependency ("mysql", "s3")
	// whose unavailability err comes from, and counts it in the log's
	// metrics; "" when err is not an outage. It is called once for each
	// failed request.
	StorageUnavailable(err error) string
}

// Added is what Writes.Add acknowledges.
type Added struct {
	Index     uint64
	Leaf      []byte
	Duplicate bool // an identical entry was already logged at Index
}

// Config is how a Server answers, besides its Ops.
type Config struct {
	// Metrics counts requests and adds and serves GET /metrics
	// (required: NewMetrics, once per registry).
	Metrics *Metrics
	// TokenFile is the name of the server's ingest token file, which a
	// 401 points to.
	TokenFile string
	// Mounts add routes of their own (the web explorer).
	Mounts []func(*http.ServeMux)
	// Logger receives a line per authorized add and the details of
	// failures; nil means slog.Default().
	Logger *slog.Logger
}

// MaxProofWait bounds how long POST /add?wait=1 waits for a checkpoint.
const MaxProofWait = time.Minute

// WriteTimeout is the longest response the API makes (the waits of POST
// /add?wait=1, and time to write the answer): an http.Server's
// WriteTimeout for it.
const WriteTimeout = MaxProofWait + 30*time.Second

// Server serves the log's HTTP API from an Ops.
type Server struct {
	// Each handler uses one part of the Ops it was given: a write
	// handler (add.go) only writes, a read handler (read.go) only
	// reads, and both answer a failure through outages (serverError).
	writes  Writes
	reads   Reads
	outages Outages
	cfg     Config
	h       http.Handler
}

// New returns the API of ops: POST /add and PUT /index-files answered
// from its Writes, every GET but /metrics from its Reads.
func New(ops Ops, cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{writes: ops, reads: ops, outages: ops, cfg: cfg}
	mux := http.NewServeMux()
	for _, m := range cfg.Mounts {
		m(mux)
	}
	route := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, s.instrument(pattern, h))
	}
	// Writes (add.go).
	route("POST /add", s.handleAdd)
	route("PUT /index-files/{sha256}", s.handleIndexFilePut)
	// Reads (read.go).
	route("GET /checkpoint", s.handleCheckpoint)
	route("GET /tile/", s.handleTile)
	route("GET /lookup", s.handleLookup)
	route("GET /proof", s.handleProof)
	route("GET /tlog/proofs/", s.handleProofTree)
	route("GET /index-files/{sha256}", s.handleIndexFileGet)
	route("GET /healthz", s.handleHealthz)
	mux.Handle("GET /metrics", cfg.Metrics.handler())
	// nosniff and a CSP on every response, the read API's included.
	s.h = httpserver.SecureHeaders(mux)
	return s
}

// ServeHTTP answers one request of the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.h.ServeHTTP(w, r) }

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *Server) instrument(route string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		h(rec, r)
		s.cfg.Metrics.requests.WithLabelValues(route, strconv.Itoa(rec.code)).Inc()
	})
}

func httpError(w http.ResponseWriter, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintf(w, format+"\n", args...)
}

// internalError answers a failure of the server (what failed).
func (s *Server) internalError(w http.ResponseWriter, what string, err error) {
	s.serverError(w, what, err, s.outages.StorageUnavailable(err))
}

// serverError logs err, which may name files on the server, and answers
// 500 without it: error bodies never show the server's filesystem. dep
// is the unavailable storage dependency err comes from, if any.
func (s *Server) serverError(w http.ResponseWriter, what string, err error, dep string) {
	if dep != "" {
		// Nothing is wrong with the request: the storage is away.
		s.cfg.Logger.Warn(what+" failed: storage unavailable", "dependency", dep, "err", err)
		w.Header().Set("Retry-After", "5")
		httpError(w, http.StatusServiceUnavailable, "%s failed: storage: %s unavailable; retry later", what, dep)
		return
	}
	s.cfg.Logger.Error(what+" failed", "err", err)
	if errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), "no space left on device") {
		w.Header().Set("Retry-After", "60")
		httpError(w, http.StatusInsufficientStorage, "%s failed: no space left on device on the server; retry once its operators made room", what)
		return
	}
	httpError(w, http.StatusInternalServerError, "%s failed on the server; its operators find the details in its log", what)
}

// writeProof answers proof, the tlog-proof of the entry at idx; or, when
// err says none came, 503 with Retry-After: 1, since a checkpoint covers
// the entry soon. notYet is that answer's message, a format of idx and
// err: formatted only then, so that a proof costs no allocation for it.
func writeProof(w http.ResponseWriter, idx uint64, proof []byte, err error, notYet string) {
	if err != nil {
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, notYet, idx, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(proof)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
