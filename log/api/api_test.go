package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/CPAN-Security/cpan-tlog/log/adderr"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
	"github.com/CPAN-Security/cpan-tlog/log/index"
	"github.com/CPAN-Security/cpan-tlog/log/prooftree"
)

// fakeLog is an Ops whose every answer the test sets: the API is tested
// against what its doc promises for each, without a log behind it.
type fakeLog struct {
	readOnly  error
	full      bool // no slot for an add
	addErr    error
	outage    error // StorageUnavailable names "mysql" for it
	history   error
	readCP    error
	readTile  error
	readProof error
	unhealthy string
	degraded  string
	leaf      []byte // Leaf's answer for any index; none when nil
	proof     []byte // what Proof and AwaitProof give; none when nil
}

var errNotHere = errors.New("not in this test")

func (f *fakeLog) ReadOnly() error { return f.readOnly }
func (f *fakeLog) Authorize(a string) (string, bool) {
	return "ci", a == "Bearer secret"
}
func (f *fakeLog) AnnotateSigstore(*entry.Entry, []byte) error { return errNotHere }
func (f *fakeLog) Admit() (func(), bool)                       { return func() {}, !f.full }
func (f *fakeLog) Add(ctx context.Context, e *entry.Entry) (Added, error) {
	if f.addErr != nil {
		return Added{}, f.addErr
	}
	return Added{Index: 41, Leaf: []byte("leaf")}, nil
}
func (f *fakeLog) AwaitProof(context.Context, uint64, []byte) ([]byte, error) { return f.proofOrNot() }
func (f *fakeLog) ReadCheckpoint(context.Context) ([]byte, error)             { return nil, f.readCP }
func (f *fakeLog) CheckpointSize([]byte) (uint64, error)                      { return 0, errNotHere }
func (f *fakeLog) ReadTile(context.Context, uint64, uint64, uint8) ([]byte, error) {
	return nil, f.readTile
}
func (f *fakeLog) ReadEntryBundle(context.Context, uint64, uint8) ([]byte, error) {
	return nil, f.readTile
}
func (f *fakeLog) History(string) ([]index.Record, error)    { return nil, f.history }
func (f *fakeLog) BySHA256([32]byte) ([]index.Record, error) { return nil, errNotHere }
func (f *fakeLog) Leaf(uint64) ([]byte, error) {
	if f.leaf == nil {
		return nil, errNotHere
	}
	return f.leaf, nil
}
func (f *fakeLog) Proof(context.Context, uint64, []byte, []byte) ([]byte, error) {
	return f.proofOrNot()
}
func (f *fakeLog) proofOrNot() ([]byte, error) {
	if f.proof == nil {
		return nil, errNotHere
	}
	return f.proof, nil
}
func (f *fakeLog) ReadProof(string) ([]byte, error) { return nil, f.readProof }
func (f *fakeLog) PutIndexFile(context.Context, [32]byte, io.Reader) (bool, error) {
	return false, errNotHere
}
func (f *fakeLog) OpenIndexFile(context.Context, string) (io.ReadCloser, error) {
	return nil, errNotHere
}
func (f *fakeLog) Health() (string, string) { return f.unhealthy, f.degraded }
func (f *fakeLog) StorageUnavailable(err error) string {
	if f.outage != nil && errors.Is(err, f.outage) {
		return "mysql"
	}
	return ""
}

const addBody = `{"path":"authors/id/A/AB/ABC/Foo-1.0.tar.gz","size":3,"sha256":"` +
	"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" +
	`","uploader":"ABC","time":"2021-01-05T12:00:00Z"}`

// do serves one request of a Server over f, and its /metrics after.
func do(t *testing.T, f *fakeLog, method, target, auth, body string) (*httptest.ResponseRecorder, string) {
	t.Helper()
	s := New(f, Config{Metrics: NewMetrics(prometheus.NewRegistry()), TokenFile: "ingest.token", Logger: nil})
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	m := httptest.NewRecorder()
	s.ServeHTTP(m, httptest.NewRequest("GET", "/metrics", nil))
	return w, m.Body.String()
}

// TestAddErrorStatus: each error of an add (package adderr, a storage
// outage, a full disk, any other) gets the status, Retry-After and
// cpantlog_adds_total outcome the package doc promises, and a 500 never
// shows the server's error.
func TestAddErrorStatus(t *testing.T) {
	outage := errors.New("dial tcp 10.0.0.5:3306: connection refused")
	for _, c := range []struct {
		name       string
		f          fakeLog
		auth       string
		code       int
		retryAfter string
		outcome    string
	}{
		{"logged", fakeLog{}, "Bearer secret", 200, "", "logged"},
		{"conflict", fakeLog{addErr: &adderr.ConflictError{Reason: "a different file is logged", Existing: index.Record{Index: 7, Leaf: []byte("old")}}}, "Bearer secret", 409, "", "conflict"},
		{"future time", fakeLog{addErr: fmt.Errorf("%w: later than the clock", adderr.ErrFutureTime)}, "Bearer secret", 400, "", "invalid"},
		{"index bytes missing", fakeLog{addErr: fmt.Errorf("%w: PUT them first", adderr.ErrIndexBytesMissing)}, "Bearer secret", 422, "", "invalid"},
		{"overloaded", fakeLog{addErr: adderr.ErrOverloaded}, "Bearer secret", 503, "1", "overloaded"},
		{"shutting down", fakeLog{addErr: adderr.ErrShutdown}, "Bearer secret", 503, "1", "overloaded"},
		{"path busy", fakeLog{addErr: fmt.Errorf("%w: Tessera did not sequence in time", adderr.ErrPathBusy)}, "Bearer secret", 503, "1", "overloaded"},
		{"no slot", fakeLog{full: true}, "Bearer secret", 503, "1", "overloaded"},
		{"storage outage", fakeLog{addErr: fmt.Errorf("claim: %w", outage), outage: outage}, "Bearer secret", 503, "5", "unavailable"},
		{"disk full", fakeLog{addErr: fmt.Errorf("write /srv/log/tile: %w", syscall.ENOSPC)}, "Bearer secret", 507, "60", "error"},
		{"server error", fakeLog{addErr: errors.New("open /srv/log/secret: permission denied")}, "Bearer secret", 500, "", "error"},
		{"no token", fakeLog{}, "", 401, "", "unauthorized"},
		{"read-only", fakeLog{readOnly: errors.New("this is a read-only front end")}, "Bearer secret", 405, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, metrics := do(t, &c.f, "POST", "/add", c.auth, addBody)
			if w.Code != c.code || w.Header().Get("Retry-After") != c.retryAfter {
				t.Errorf("%d Retry-After %q (%s), want %d Retry-After %q", w.Code, w.Header().Get("Retry-After"), strings.TrimSpace(w.Body.String()), c.code, c.retryAfter)
			}
			if strings.Contains(w.Body.String(), "/srv/log") {
				t.Errorf("the answer shows the server's files: %s", w.Body)
			}
			if c.outcome != "" && !strings.Contains(metrics, `cpantlog_adds_total{outcome="`+c.outcome+`",`) {
				t.Errorf("no add counted as %q in:\n%s", c.outcome, grep(metrics, "cpantlog_adds_total"))
			}
		})
	}
	// A conflict names the entry already logged.
	f := fakeLog{addErr: &adderr.ConflictError{Reason: "a different file is logged", Existing: index.Record{Index: 7, Leaf: []byte("old")}}}
	w, _ := do(t, &f, "POST", "/add", "Bearer secret", addBody)
	var body struct {
		Error string
		Index uint64
		Entry []byte
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Index != 7 || string(body.Entry) != "old" || body.Error == "" {
		t.Errorf("409 body %s (%v), want the reason and the entry at index 7", w.Body, err)
	}
}

// TestReadErrorStatus: the read API's answers to what Ops reports.
func TestReadErrorStatus(t *testing.T) {
	outage := errors.New("operation error S3: GetObject: connection refused")
	for _, c := range []struct {
		name, target string
		f            fakeLog
		code         int
		retryAfter   string
	}{
		{"no checkpoint yet", "/checkpoint", fakeLog{readCP: fs.ErrNotExist}, 503, "1"},
		{"checkpoint storage away", "/checkpoint", fakeLog{readCP: outage, outage: outage}, 503, "5"},
		{"no such tile", "/tile/0/000", fakeLog{readTile: fmt.Errorf("%w: NoSuchKey", fs.ErrNotExist)}, 404, ""},
		{"no such bundle", "/tile/entries/000.p/5", fakeLog{readTile: fs.ErrNotExist}, 404, ""},
		{"tile unreadable", "/tile/0/000", fakeLog{readTile: errors.New("read /srv/log/tile: i/o error")}, 500, ""},
		{"path being indexed", "/lookup?path=authors/id/A/AB/ABC/Foo-1.0.tar.gz", fakeLog{history: fmt.Errorf("%w: claimed", adderr.ErrPathBusy)}, 503, "1"},
		{"path not logged", "/lookup?path=authors/id/A/AB/ABC/Foo-1.0.tar.gz", fakeLog{}, 404, ""},
		{"no proof yet", "/tlog/proofs/x.tlog-proof", fakeLog{readProof: fs.ErrNotExist}, 404, ""},
		{"proof damaged", "/tlog/proofs/x.tlog-proof", fakeLog{readProof: prooftree.ErrDamaged}, 503, "5"},
		{"unhealthy", "/healthz", fakeLog{unhealthy: "storage: mysql unreachable"}, 503, ""},
		{"degraded", "/healthz", fakeLog{degraded: "witness w1 down"}, 200, ""},
		{"healthy", "/healthz", fakeLog{}, 200, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, _ := do(t, &c.f, "GET", c.target, "", "")
			if w.Code != c.code || w.Header().Get("Retry-After") != c.retryAfter {
				t.Errorf("GET %s: %d Retry-After %q (%s), want %d Retry-After %q", c.target, w.Code, w.Header().Get("Retry-After"), strings.TrimSpace(w.Body.String()), c.code, c.retryAfter)
			}
			if strings.Contains(w.Body.String(), "/srv/log") {
				t.Errorf("the answer shows the server's files: %s", w.Body)
			}
		})
	}
}

// TestProofAnswers: POST /add?wait=1 and GET /proof answer a proof as
// text, or, while no checkpoint covers the entry, 503 with Retry-After: 1
// and what to do; byte for byte, since clients retry on them.
func TestProofAnswers(t *testing.T) {
	// A proof that net/http would sniff as HTML: the answer says it is
	// text all the same.
	const text, proof = "text/plain; charset=utf-8", "<html>proof\n"
	for _, c := range []struct {
		name, method, target, body string
		f                          fakeLog
		code                       int
		retryAfter, answer         string
	}{
		{"add, proof", "POST", "/add?wait=1", addBody, fakeLog{proof: []byte(proof)}, 200, "", proof},
		{"add, no proof yet", "POST", "/add?wait=1", addBody, fakeLog{}, 503, "1",
			"entry logged at index 41, but no checkpoint covers it yet (not in this test); fetch GET /proof?path=... later\n"},
		{"proof, proof", "GET", "/proof?index=41", "", fakeLog{leaf: []byte("leaf"), proof: []byte(proof)}, 200, "", proof},
		{"proof, no proof yet", "GET", "/proof?index=41", "", fakeLog{leaf: []byte("leaf")}, 503, "1",
			"entry 41: not in this test; retry shortly\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, _ := do(t, &c.f, c.method, c.target, "Bearer secret", c.body)
			if w.Code != c.code || w.Header().Get("Retry-After") != c.retryAfter || w.Header().Get("Content-Type") != text || w.Body.String() != c.answer {
				t.Errorf("%s %s: %d Retry-After %q Content-Type %q %q, want %d Retry-After %q Content-Type %q %q",
					c.method, c.target, w.Code, w.Header().Get("Retry-After"), w.Header().Get("Content-Type"), w.Body, c.code, c.retryAfter, text, c.answer)
			}
		})
	}
}

func grep(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// The add's answer, built by hand, is what encoding/json wrote for it
// before: clients decode it, and some compare it.
func TestAddAnswerIsJSON(t *testing.T) {
	for _, c := range []struct {
		dup   bool
		index uint64
		note  string
	}{
		{false, 0, ""},
		{true, 18446744073709551615, ""},
		{false, 42, "verified: https://github.com/a/b/.github/workflows/release.yml@refs/tags/v1"},
		{false, 7, "not verified: <script>&\"quoted\"\\ \u2028 \x01 é"},
	} {
		var want strings.Builder
		json.NewEncoder(&want).Encode(struct {
			Duplicate bool   `json:"duplicate"`
			Index     uint64 `json:"index"`
			Sigstore  string `json:"sigstore,omitempty"`
		}{c.dup, c.index, c.note})
		if got := string(addAnswer(c.dup, c.index, c.note)); got != want.String() {
			t.Errorf("addAnswer(%v, %d, %q) = %s, want %s", c.dup, c.index, c.note, got, want.String())
		}
	}
}
