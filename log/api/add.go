package api

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/CPAN-Security/cpan-tlog/client/sigstore"
	"github.com/CPAN-Security/cpan-tlog/log/adderr"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
	"github.com/CPAN-Security/cpan-tlog/log/indexfiles"
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

// refusal is how POST /add answers an error of package adderr.
type refusal struct {
	outcome    string // the label of cpantlog_adds_total
	code       int
	retryAfter string // seconds, or "" for none
}

// refusalOf maps the errors of an add (package adderr) to their answer;
// false for any other error, the server's.
func refusalOf(err error) (refusal, bool) {
	var conflict *adderr.ConflictError
	switch {
	case errors.As(err, &conflict):
		return refusal{"conflict", http.StatusConflict, ""}, true
	case errors.Is(err, adderr.ErrIndexBytesMissing):
		return refusal{"invalid", http.StatusUnprocessableEntity, ""}, true
	case errors.Is(err, adderr.ErrFutureTime):
		return refusal{"invalid", http.StatusBadRequest, ""}, true
	case errors.Is(err, adderr.ErrOverloaded), errors.Is(err, adderr.ErrShutdown), errors.Is(err, adderr.ErrPathBusy):
		return refusal{"overloaded", http.StatusServiceUnavailable, "1"}, true
	}
	return refusal{}, false
}

func (s *Server) handleAdd(w http.ResponseWriter, r *http.Request) {
	if err := s.writes.ReadOnly(); err != nil {
		httpError(w, http.StatusMethodNotAllowed, "%v", err)
		return
	}
	start := time.Now()
	token, ok := s.writes.Authorize(r.Header.Get("Authorization"))
	// Every authorized add is one log line naming its token, so that the
	// adds of a leaked token can be found (and its metrics counted).
	var (
		said     string
		path     string
		logIndex = int64(-1)
	)
	outcome := func(o string) { s.cfg.Metrics.adds.WithLabelValues(o, token).Inc(); said = o }
	if ok {
		defer func() {
			// Attrs in an array, not ...any: no value boxed per add.
			attrs := [5]slog.Attr{slog.String("outcome", said), slog.String("token", token), slog.String("remote", r.RemoteAddr)}
			n := 3
			if path != "" {
				attrs[n], n = slog.String("path", path), n+1
			}
			if logIndex >= 0 {
				attrs[n], n = slog.Int64("index", logIndex), n+1
			}
			s.cfg.Logger.LogAttrs(r.Context(), slog.LevelInfo, "add", attrs[:n]...)
		}()
	}
	if !ok {
		outcome("unauthorized")
		s.unauthorized(w)
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
		if err := s.writes.AnnotateSigstore(e, req.Bundle); err != nil {
			// Logged all the same, as a plain upload: the file was published.
			sigstoreNote = "not verified: " + err.Error()
			s.cfg.Metrics.adds.WithLabelValues("sigstore_unverified", token).Inc()
			s.cfg.Logger.Warn("sigstore bundle did not verify; logging it as a plain upload", "path", e.Path, "err", err)
		} else {
			sigstoreNote = "verified: " + e.Sigstore.SAN
		}
	}
	release, ok := s.writes.Admit()
	if !ok {
		outcome("overloaded")
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, "%v", adderr.ErrOverloaded)
		return
	}
	defer release()
	res, err := s.writes.Add(r.Context(), e)
	if err != nil {
		s.addFailed(w, err, outcome)
		return
	}
	logIndex = int64(res.Index)
	if res.Duplicate {
		outcome("duplicate")
	} else {
		outcome("logged")
		s.cfg.Metrics.addSeconds.Observe(time.Since(start).Seconds())
	}
	if r.URL.Query().Get("wait") == "1" {
		ctx, cancel := context.WithTimeout(r.Context(), MaxProofWait)
		defer cancel()
		proof, err := s.writes.AwaitProof(ctx, res.Index, res.Leaf)
		writeProof(w, res.Index, proof, err, "entry logged at index %d, but no checkpoint covers it yet (%v); fetch GET /proof?path=... later")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(addAnswer(res.Duplicate, res.Index, sigstoreNote))
}

// addAnswer is the JSON answer to an add, {"duplicate":…,"index":…} with
// "sigstore" when a bundle was given, as encoding/json writes it: built
// by hand, since it is written for every add.
func addAnswer(duplicate bool, index uint64, sigstoreNote string) []byte {
	b := make([]byte, 0, 64+len(sigstoreNote))
	b = append(b, `{"duplicate":`...)
	b = strconv.AppendBool(b, duplicate)
	b = append(b, `,"index":`...)
	b = strconv.AppendUint(b, index, 10)
	if sigstoreNote != "" {
		note, _ := json.Marshal(sigstoreNote) // a string always encodes
		b = append(append(b, `,"sigstore":`...), note...)
	}
	return append(b, "}\n"...)
}

// addFailed answers an add that Writes.Add did not log, and counts its
// outcome.
func (s *Server) addFailed(w http.ResponseWriter, err error, outcome func(string)) {
	ref, ok := refusalOf(err)
	if !ok {
		// A storage outage is answered 503 and counted.
		dep := s.outages.StorageUnavailable(err)
		if dep != "" {
			outcome("unavailable")
		} else {
			outcome("error")
		}
		s.serverError(w, "logging the entry (a retry of the same entry gets its index if it was logged)", err, dep)
		return
	}
	outcome(ref.outcome)
	if ref.retryAfter != "" {
		w.Header().Set("Retry-After", ref.retryAfter)
	}
	var conflict *adderr.ConflictError
	if errors.As(err, &conflict) {
		body := map[string]any{"error": conflict.Reason}
		if conflict.Existing.Leaf != nil {
			body["index"] = conflict.Existing.Index
			body["entry"] = conflict.Existing.Leaf
		}
		writeJSON(w, ref.code, body)
		return
	}
	httpError(w, ref.code, "%v", err)
}

func (s *Server) unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="cpan-tlog"`)
	httpError(w, http.StatusUnauthorized, "missing or wrong bearer token: send 'Authorization: Bearer <token>' with the token from the server's %s", s.cfg.TokenFile)
}

// handleIndexFilePut stores an index file version: PUT
// /index-files/<sha256> with the bearer token, the body the file as
// published. It is checked against the sha256 in the URL.
func (s *Server) handleIndexFilePut(w http.ResponseWriter, r *http.Request) {
	if err := s.writes.ReadOnly(); err != nil {
		httpError(w, http.StatusMethodNotAllowed, "%v", err)
		return
	}
	if _, ok := s.writes.Authorize(r.Header.Get("Authorization")); !ok {
		s.unauthorized(w)
		return
	}
	sha, ok := indexfiles.ParseName(r.PathValue("sha256"))
	if !ok {
		httpError(w, http.StatusBadRequest, "want PUT /index-files/<sha256 of the file, 64 lower-case hex digits>")
		return
	}
	created, err := s.writes.PutIndexFile(r.Context(), sha, http.MaxBytesReader(w, r.Body, indexfiles.MaxBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		httpError(w, http.StatusRequestEntityTooLarge, "index file larger than %d bytes", indexfiles.MaxBytes)
	case errors.Is(err, indexfiles.ErrMismatch):
		httpError(w, http.StatusBadRequest, "%v", err)
	case err != nil:
		s.internalError(w, "storing the index file", err)
	case created:
		w.WriteHeader(http.StatusCreated)
	default:
		w.WriteHeader(http.StatusOK)
	}
}
