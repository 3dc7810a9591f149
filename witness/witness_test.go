package witness

import (
	"bytes"
	"crypto/ed25519"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	flog "github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"
)

const origin = "localhost/cpan-tlog"

// fakeLog is a log's key and tree, to make signed checkpoints and proofs.
type fakeLog struct {
	signer note.Signer
	vkey   string
	tree   *testonly.Tree
}

func newFakeLog(t testing.TB, size int) *fakeLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(crand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	tr := testonly.New(rfc6962.DefaultHasher)
	for i := range size {
		tr.AppendData([]byte(fmt.Sprintf("leaf %d", i)))
	}
	return &fakeLog{signer: s, vkey: vkey, tree: tr}
}

func (l *fakeLog) checkpoint(t testing.TB, size uint64) []byte {
	return l.checkpointWithRoot(t, size, l.tree.HashAt(size))
}

func (l *fakeLog) checkpointWithRoot(t testing.TB, size uint64, root []byte) []byte {
	t.Helper()
	b, err := note.Sign(&note.Note{Text: string(flog.Checkpoint{Origin: origin, Size: size, Hash: root}.Marshal())}, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (l *fakeLog) request(t testing.TB, old, size uint64) []byte {
	t.Helper()
	r := &Request{OldSize: old, Checkpoint: l.checkpoint(t, size)}
	if old > 0 && old < size {
		p, err := l.tree.ConsistencyProof(old, size)
		if err != nil {
			t.Fatal(err)
		}
		r.Proof = p
	}
	return r.Marshal()
}

func newWitness(t testing.TB, dir string, l *fakeLog, rate float64) *Witness {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, KeyFile)); err != nil {
		if _, err := Keygen(dir, "w1.example"); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := ParseConfig([]byte("# test\nlog " + l.vkey + " http://127.0.0.1:1\n"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := Open(dir, cfg, rate, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// verifyCosignature checks a cosignature line against the checkpoint with
// code written from C2SP tlog-cosignature, independent of any library:
// the key hash is SHA-256(name || 0x0A || 0x04 || pubkey)[:4], the
// signature is timestamp || Ed25519(message), and the message is
// "cosignature/v1\ntime <t>\n" followed by the checkpoint text.
func verifyCosignature(t *testing.T, vkey string, cpText string, line string) uint64 {
	t.Helper()
	parts := strings.SplitN(vkey, "+", 3)
	name, keyBytes := parts[0], mustB64(t, parts[2])
	if keyBytes[0] != 0x04 || len(keyBytes) != 33 {
		t.Fatalf("witness vkey type 0x%02x, want 0x04", keyBytes[0])
	}
	pub := ed25519.PublicKey(keyBytes[1:])
	prefix := "\u2014 " + name + " "
	if !strings.HasPrefix(line, prefix) || !strings.HasSuffix(line, "\n") {
		t.Fatalf("signature line %q", line)
	}
	sig := mustB64(t, strings.TrimSuffix(strings.TrimPrefix(line, prefix), "\n"))
	h := sha256.Sum256(append([]byte(name+"\n\x04"), pub...))
	if !bytes.Equal(sig[:4], h[:4]) || len(sig) != 4+8+64 {
		t.Fatalf("key hash %x, want %x (len %d)", sig[:4], h[:4], len(sig))
	}
	ts := binary.BigEndian.Uint64(sig[4:12])
	msg := fmt.Sprintf("cosignature/v1\ntime %d\n%s", ts, cpText)
	if !ed25519.Verify(pub, []byte(msg), sig[12:]) {
		t.Fatal("cosignature does not verify (independent implementation)")
	}
	return ts
}

func hashes(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		h := sha256.Sum256([]byte{byte(i)})
		out[i] = h[:]
	}
	return out
}

func mustB64(t *testing.T, s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAddCheckpointAnswers(t *testing.T) {
	l := newFakeLog(t, 20)
	dir := t.TempDir()
	w := newWitness(t, dir, l, 1000)
	other := newFakeLog(t, 20) // same origin, another key
	fork := testonly.New(rfc6962.DefaultHasher)
	for i := range 20 {
		fork.AppendData([]byte(fmt.Sprintf("forked %d", i)))
	}
	srv := httptest.NewServer(w.Handler())
	defer srv.Close()
	post := func(body []byte) (int, string, string) {
		resp, err := http.Post(srv.URL+"/add-checkpoint", "text/plain", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	badSig := func() []byte {
		cp := l.checkpoint(t, 5)
		i := len(cp) - 6 // inside the signature, past the key hash
		cp[i] = map[bool]byte{true: 'B', false: 'A'}[cp[i] == 'A']
		return (&Request{OldSize: 0, Checkpoint: cp}).Marshal()
	}()
	unknown := newFakeLog(t, 5)
	unknownOrigin, _ := note.Sign(&note.Note{Text: string(flog.Checkpoint{Origin: "example.com/other", Size: 5, Hash: unknown.tree.HashAt(5)}.Marshal())}, unknown.signer)
	badProof := (&Request{OldSize: 5, Proof: [][]byte{make([]byte, 32), make([]byte, 32)}, Checkpoint: l.checkpoint(t, 10)}).Marshal()

	steps := []struct {
		name        string
		body        []byte
		code        int
		contentType string
		body200     bool
		want        string
	}{
		{"read before any", nil, 0, "", false, ""},
		{"malformed", []byte("hello"), 400, "text/plain; charset=utf-8", false, "malformed"},
		{"old line with leading zero", []byte(strings.Replace(string(l.request(t, 0, 5)), "old 0", "old 00", 1)), 400, "", false, "leading"},
		{"64 proof lines", (&Request{OldSize: 1, Proof: hashes(64), Checkpoint: l.checkpoint(t, 5)}).Marshal(), 400, "", false, "at most 63"},
		{"unknown origin", (&Request{Checkpoint: unknownOrigin}).Marshal(), 404, "", false, "unknown log"},
		{"signed by another key", other.request(t, 0, 5), 403, "", false, "no signature"},
		{"bad signature by the known key", badSig, 403, "", false, "does not verify"},
		{"valid log signature and a failing repeat of it", (&Request{Checkpoint: withFailingRepeat(t, l.checkpoint(t, 5))}).Marshal(), 403, "", false, "does not verify"},
		{"old above size", l.request(t, 6, 5), 400, "", false, "larger"},
		{"old 0 with a proof", (&Request{OldSize: 0, Proof: [][]byte{make([]byte, 32)}, Checkpoint: l.checkpoint(t, 5)}).Marshal(), 422, "", false, "empty"},
		{"first cosignature", l.request(t, 0, 5), 200, "", true, ""},
		{"stale old size", l.request(t, 0, 7), 409, "text/x.tlog.size", false, "5\n"},
		{"old size ahead", l.request(t, 6, 7), 409, "text/x.tlog.size", false, "5\n"},
		// C2SP tlog-witness (current text, "add-checkpoint"): 422, no longer 409.
		{"same size, other root", (&Request{OldSize: 5, Checkpoint: l.checkpointWithRoot(t, 5, fork.HashAt(5))}).Marshal(), 422, "text/plain; charset=utf-8", false, "different root"},
		{"bad consistency proof", badProof, 422, "", false, "does not verify"},
		{"same checkpoint again", l.request(t, 5, 5), 200, "", true, ""},
		{"consistent growth", l.request(t, 5, 10), 200, "", true, ""},
		{"too large", append(l.request(t, 10, 12), bytes.Repeat([]byte("x"), MaxRequestSize)...), 413, "", false, "larger"},
	}
	for _, s := range steps {
		if s.body == nil {
			resp, err := http.Get(srv.URL + "/" + OriginID(origin) + "/checkpoint")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 404 {
				t.Errorf("read endpoint before any cosignature: %d, want 404", resp.StatusCode)
			}
			continue
		}
		code, ct, body := post(s.body)
		if code != s.code || (s.contentType != "" && ct != s.contentType) || !strings.Contains(body, s.want) {
			t.Errorf("%s: %d %q %q, want %d %q containing %q", s.name, code, ct, body, s.code, s.contentType, s.want)
			continue
		}
		if s.code == 409 && s.contentType == "text/x.tlog.size" && body != "5\n" {
			t.Errorf("%s: body %q, want exactly \"5\\n\"", s.name, body)
		}
		if s.body200 {
			req, _ := ParseRequest(s.body)
			text, _, _ := strings.Cut(string(req.Checkpoint), "\n\n")
			if ts := verifyCosignature(t, w.VerifierKey(), text+"\n", body); ts == 0 {
				t.Errorf("%s: zero timestamp", s.name)
			}
			// And with the library verifier.
			v, err := fnote.NewVerifierForCosignatureV1(w.VerifierKey())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := note.Open(append(bytes.Clone(req.Checkpoint), body...), note.VerifierList(v)); err != nil {
				t.Errorf("%s: formats/note rejects the cosignature: %v", s.name, err)
			}
		}
	}
	// The read endpoint serves the whole cosigned checkpoint of size 10.
	resp, err := http.Get(srv.URL + "/" + OriginID(origin) + "/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	lv, _ := note.NewVerifier(l.vkey)
	wv, _ := fnote.NewVerifierForCosignatureV1(w.VerifierKey())
	n, err := note.Open(b, note.VerifierList(lv, wv))
	if err != nil || len(n.Sigs) != 2 || !strings.Contains(n.Text, "\n10\n") {
		t.Errorf("read endpoint: %v %q", err, b)
	}
	// Refused but validly signed requests are kept as evidence.
	ev, _ := filepath.Glob(filepath.Join(dir, Evidence, OriginID(origin), "*"))
	if len(ev) != 2 {
		t.Errorf("%d evidence files, want 2 (fork and bad proof)", len(ev))
	}
	// Metrics count outcomes.
	resp, _ = http.Get(srv.URL + "/metrics")
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), `cpantlog_witness_add_checkpoint_total{outcome="cosigned"} 3`) || !strings.Contains(string(m), `cpantlog_witness_latest_size{origin="localhost/cpan-tlog"} 10`) {
		t.Errorf("metrics:\n%s", m)
	}
}

func TestRateLimit(t *testing.T) {
	l := newFakeLog(t, 5)
	w := newWitness(t, t.TempDir(), l, 1)
	limited := 0
	for range 10 {
		if a := w.AddCheckpoint(l.request(t, 0, 5)); a.Status == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Error("10 requests at once to a witness allowing 1/s: none limited")
	}
}

// TestConcurrentAddsNeverGoBack races many clients, each pushing its own
// target size, while a reader checks the stored size never decreases. The
// final state must be the largest target.
func TestConcurrentAddsNeverGoBack(t *testing.T) {
	const maxSize = 60
	l := newFakeLog(t, maxSize)
	w := newWitness(t, t.TempDir(), l, 1e6)
	latestSize := func() uint64 {
		b, err := w.Latest(origin)
		if err != nil || b == nil {
			return 0
		}
		var c flog.Checkpoint
		text, _, _ := bytes.Cut(b, []byte("\n\n"))
		if _, err := c.Unmarshal(append(text, '\n')); err != nil {
			t.Error(err)
		}
		return c.Size
	}
	stop := make(chan struct{})
	var readerErr error
	var rwg sync.WaitGroup
	rwg.Go(func() {
		var last uint64
		for {
			select {
			case <-stop:
				return
			default:
			}
			if s := latestSize(); s < last {
				readerErr = fmt.Errorf("state went back from %d to %d", last, s)
				return
			} else {
				last = s
			}
		}
	})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 20 {
				target := 1 + r.Uint64N(maxSize)
				for {
					cur := latestSize()
					if cur >= target {
						break
					}
					a := w.AddCheckpoint(l.request(t, cur, target))
					if a.Status == 200 {
						break
					}
					if a.Status != 409 {
						t.Errorf("add %d→%d: %d %s", cur, target, a.Status, a.Body)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	rwg.Wait()
	if readerErr != nil {
		t.Fatal(readerErr)
	}
	// Some client's target was maxSize with overwhelming likelihood; push it.
	if s := latestSize(); s != maxSize {
		if a := w.AddCheckpoint(l.request(t, s, maxSize)); a.Status != 200 {
			t.Fatalf("final add: %d %s", a.Status, a.Body)
		}
	}
	if s := latestSize(); s != maxSize {
		t.Errorf("final state %d, want %d", s, maxSize)
	}
}

func TestParseConfig(t *testing.T) {
	l, l2 := newFakeLog(t, 1), newFakeLog(t, 1)
	c, err := ParseConfig([]byte("log " + l.vkey + "\nlog " + l2.vkey + " https://x # two keys, one origin\n"))
	if err != nil || len(c.Logs[origin]) != 2 {
		t.Fatalf("%v %+v", err, c)
	}
	for name, text := range map[string]string{
		"empty":       "# nothing\n",
		"keyword":     "witness " + l.vkey + "\n",
		"bad key":     "log nope\n",
		"extra field": "log " + l.vkey + " http://x y\n",
		"twice":       "log " + l.vkey + "\nlog " + l.vkey + "\n",
	} {
		if _, err := ParseConfig([]byte(text)); err == nil {
			t.Errorf("%s: accepted %q", name, text)
		}
	}
}

func TestParseRequest(t *testing.T) {
	l := newFakeLog(t, 10)
	good := l.request(t, 3, 10)
	r, err := ParseRequest(good)
	if err != nil || r.OldSize != 3 || len(r.Proof) == 0 {
		t.Fatalf("%v %+v", err, r)
	}
	if !bytes.Equal(r.Marshal(), good) {
		t.Error("request does not round-trip")
	}
	g := string(good)
	for name, body := range map[string]string{
		"empty":                 "",
		"no blank line":         strings.Replace(g, "\n\n", "\n", 1),
		"no old line":           strings.Replace(g, "old 3\n", "", 1),
		"old negative":          strings.Replace(g, "old 3", "old -3", 1),
		"old plus":              strings.Replace(g, "old 3", "old +3", 1),
		"old spaces":            strings.Replace(g, "old 3", "old  3", 1),
		"proof not b64":         strings.Replace(g, "old 3\n", "old 3\n!!!!\n", 1),
		"proof short":           strings.Replace(g, "old 3\n", "old 3\nAAAA\n", 1),
		"no final LF":           strings.TrimSuffix(g, "\n"),
		"oversized":             g + strings.Repeat("x", MaxRequestSize),
		"CRLF old line":         strings.Replace(g, "old 3\n", "old 3\r\n", 1),
		"CR after a proof line": strings.Replace(g, "=\n\n", "=\r\n\n", 1),
	} {
		if _, err := ParseRequest([]byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	l := newFakeLog(f, 10)
	f.Add(l.request(f, 3, 10))
	f.Add(l.request(f, 0, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Marshal(), b) {
			// Base64 with other padding bits could differ; Strict decoding forbids it.
			t.Fatalf("ParseRequest(%q) re-encodes as %q", b, r.Marshal())
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	f.Add("log localhost/cpan-tlog+b0c956fb+AaMIjOtwP+pi21Vzi9kQtvNjOkFFXA6PoSrKWA09aTMk http://x\n")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseConfig([]byte(s))
		if err == nil && len(c.Logs) == 0 {
			t.Fatal("accepted a config with no log")
		}
	})
}

// TestServesOnlyVerifiedLines: add-checkpoint needs no credentials, so
// anyone may append signature lines to a checkpoint the log signed. The
// witness must keep and relay only the log signatures it verified plus its
// own cosignature: a forged line under a known key would make every
// verifier reject the whole note it serves.
func TestServesOnlyVerifiedLines(t *testing.T) {
	l := newFakeLog(t, 8)
	dir := t.TempDir()
	w := newWitness(t, dir, l, 1000)
	srv := httptest.NewServer(w.Handler())
	defer srv.Close()
	wv, _ := fnote.NewVerifierForCosignatureV1(w.VerifierKey())
	lv, _ := note.NewVerifier(l.vkey)
	name, _, _ := strings.Cut(w.VerifierKey(), "+")
	// A line under the witness's own name and key hash with a bad
	// signature, and one under an unknown key.
	forged := make([]byte, 4+8+64)
	h := wv.KeyHash()
	binary.BigEndian.PutUint32(forged, h)
	forgedLine := "\u2014 " + name + " " + base64.StdEncoding.EncodeToString(forged) + "\n"
	unknownLine := "\u2014 someone.example " + base64.StdEncoding.EncodeToString(append([]byte{1, 2, 3, 4}, make([]byte, 64)...)) + "\n"
	poisoned := append(l.checkpoint(t, 5), forgedLine+unknownLine...)
	resp, err := http.Post(srv.URL+"/add-checkpoint", "text/plain", bytes.NewReader((&Request{Checkpoint: poisoned}).Marshal()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("add-checkpoint: %d", resp.StatusCode)
	}
	read := func() []byte {
		resp, err := http.Get(srv.URL + "/" + OriginID(origin) + "/checkpoint")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("read: %d %s", resp.StatusCode, b)
		}
		return b
	}
	check := func(what string, b []byte) {
		t.Helper()
		n, err := note.Open(b, note.VerifierList(lv, wv))
		if err != nil {
			t.Fatalf("%s: the served note does not open: %v\n%s", what, err, b)
		}
		if len(n.Sigs) != 2 || len(n.UnverifiedSigs) != 0 {
			t.Errorf("%s: %d verified and %d unverified lines, want 2 and 0:\n%s", what, len(n.Sigs), len(n.UnverifiedSigs), b)
		}
	}
	check("stored after the fix", read())

	// A state written by an earlier witness that kept lines byte for byte
	// is filtered when served.
	stored, _ := w.Latest(origin)
	if err := os.WriteFile(filepath.Join(dir, StateDir, OriginID(origin)+".checkpoint"), append(stored, forgedLine+unknownLine...), 0o600); err != nil {
		t.Fatal(err)
	}
	check("old state", read())
}

// TestEmptyTreeRoot: a checkpoint of size 0 has one possible root.
func TestEmptyTreeRoot(t *testing.T) {
	l := newFakeLog(t, 1)
	w := newWitness(t, t.TempDir(), l, 1000)
	bad := w.AddCheckpoint((&Request{Checkpoint: l.checkpointWithRoot(t, 0, l.tree.HashAt(1))}).Marshal())
	if bad.Status != http.StatusUnprocessableEntity {
		t.Errorf("size 0 with a non-empty root: %d %s, want 422", bad.Status, bad.Body)
	}
	empty := sha256.Sum256(nil)
	if good := w.AddCheckpoint((&Request{Checkpoint: l.checkpointWithRoot(t, 0, empty[:])}).Marshal()); good.Status != http.StatusOK {
		t.Errorf("size 0 with the empty root: %d %s, want 200", good.Status, good.Body)
	}
}

// TestHealthzWhenStateCannotBeStored: a witness that cannot store its
// state cosigns nothing, and /healthz says why until a store succeeds.
func TestHealthzWhenStateCannotBeStored(t *testing.T) {
	l := newFakeLog(t, 4)
	dir := t.TempDir()
	w := newWitness(t, dir, l, 1000)
	srv := httptest.NewServer(w.Handler())
	defer srv.Close()
	health := func() int {
		resp, err := http.Get(srv.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := health(); code != 200 {
		t.Fatalf("healthz: %d", code)
	}
	state := filepath.Join(dir, StateDir)
	os.RemoveAll(state)
	os.WriteFile(state, []byte("not a directory"), 0o600)
	if a := w.AddCheckpoint(l.request(t, 0, 2)); a.Status != http.StatusInternalServerError {
		t.Fatalf("add-checkpoint with no place for the state: %d", a.Status)
	}
	if code := health(); code != 503 {
		t.Errorf("healthz while the state cannot be stored: %d, want 503", code)
	}
	os.Remove(state)
	os.MkdirAll(state, 0o700)
	if a := w.AddCheckpoint(l.request(t, 0, 2)); a.Status != http.StatusOK {
		t.Fatalf("add-checkpoint once the state can be stored: %d %s", a.Status, a.Body)
	}
	if code := health(); code != 200 {
		t.Errorf("healthz after a good store: %d, want 200", code)
	}
}

// withFailingRepeat appends to a checkpoint signed by one key a second
// line under the same key name and ID whose signature does not verify.
func withFailingRepeat(t testing.TB, cp []byte) []byte {
	t.Helper()
	i := bytes.LastIndex(cp, []byte("\n\n"))
	first, _, _ := bytes.Cut(cp[i+2:], []byte("\n"))
	name, b64, _ := strings.Cut(strings.TrimPrefix(string(first), "\u2014 "), " ")
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	sig[len(sig)-1] ^= 1 // the key ID (first four bytes) is kept
	return append(bytes.Clone(cp), "\u2014 "+name+" "+base64.StdEncoding.EncodeToString(sig)+"\n"...)
}

// TestSignatureLinesUnderTrustedKey: C2SP tlog-witness, add-checkpoint:
// 403 when "a signature line's key name and ID match a trusted key but the
// signature itself fails to verify", whichever line comes first; lines
// under unknown keys, even sharing the log's name or its key ID (but not
// both), are ignored (signed-note, "Signatures"), and so is a valid line
// repeated.
func TestSignatureLinesUnderTrustedKey(t *testing.T) {
	l := newFakeLog(t, 8)
	lv, _ := note.NewVerifier(l.vkey)
	cp := l.checkpoint(t, 5)
	i := bytes.LastIndex(cp, []byte("\n\n"))
	good := string(cp[i+2:])
	bad := string(withFailingRepeat(t, cp)[len(cp):])
	sig := func(name string, id uint32) string {
		b := make([]byte, 4+64)
		binary.BigEndian.PutUint32(b, id)
		return "\u2014 " + name + " " + base64.StdEncoding.EncodeToString(b) + "\n"
	}
	text := string(cp[:i+2])
	for _, c := range []struct {
		name  string
		lines string
		want  int
	}{
		{"failing repeat after the valid line", good + bad, 403},
		{"failing line before the valid one", bad + good, 403},
		{"failing line between unknown ones", sig("other.example", 7) + good + sig("x.example", 9) + bad, 403},
		{"valid line twice", good + good, 200},
		{"the log's name under another key ID", good + sig(origin, lv.KeyHash()+1), 200},
		{"the log's key ID under another name", good + sig("other.example", lv.KeyHash()), 200},
	} {
		w := newWitness(t, t.TempDir(), l, 1000)
		a := w.AddCheckpoint((&Request{Checkpoint: []byte(text + c.lines)}).Marshal())
		if a.Status != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, a.Status, a.Body, c.want)
		}
		if latest, _ := w.Latest(origin); (latest != nil) != (c.want == 200) {
			t.Errorf("%s: state %q after %d", c.name, latest, a.Status)
		}
	}
}

// pqLines is n signature lines under unknown keys, each a 5,000-byte
// signature (C2SP signed-note: "post-quantum signatures can be up to
// nearly 5kB") under a key name of nameLen bytes.
func pqLines(n, nameLen int) string {
	var b strings.Builder
	for i := range n {
		name := fmt.Sprintf("pq%02d.example/", i)
		name += strings.Repeat("n", nameLen-len(name))
		b.WriteString("\u2014 " + name + " " + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{byte(i)}, 4+5000)) + "\n")
	}
	return b.String()
}

// padTo appends signature lines under unknown keys to a note until it is
// exactly n bytes long.
func padTo(t testing.TB, note []byte, n int) []byte {
	t.Helper()
	out := bytes.Clone(note)
	for n-len(out) >= 6700+15 {
		out = append(out, pqLines(1, 16)...)
	}
	r := n - len(out)
	b64 := 4 * ((r - 7) / 4)
	out = append(out, "\u2014 "+strings.Repeat("p", r-6-b64)+" "+strings.Repeat("A", b64)+"\n"...)
	if len(out) != n {
		t.Fatalf("padded to %d, want %d", len(out), n)
	}
	return out
}

// TestRequestSizeBound: C2SP signed-note: verifiers MUST accept at least
// 16 signatures, of up to nearly 5 kB. A checkpoint carrying 16 such lines
// beside the log's is cosigned (and the unknown lines are not kept); a
// request of exactly MaxRequestSize bytes is read; one byte more is 413.
func TestRequestSizeBound(t *testing.T) {
	l := newFakeLog(t, 8)
	w := newWitness(t, t.TempDir(), l, 1000)
	srv := httptest.NewServer(w.Handler())
	defer srv.Close()
	post := func(body []byte) (int, string) {
		resp, err := http.Post(srv.URL+"/add-checkpoint", "text/plain", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	cp := l.checkpoint(t, 5)
	sixteen := (&Request{Checkpoint: append(bytes.Clone(cp), pqLines(16, 256)...)}).Marshal()
	if code, body := post(sixteen); code != 200 {
		t.Fatalf("16 signatures of 5 kB (%d bytes): %d %s", len(sixteen), code, body)
	}
	if latest, _ := w.Latest(origin); bytes.Contains(latest, []byte("pq00.example")) {
		t.Error("the state keeps signature lines the witness did not verify")
	}
	head := len((&Request{OldSize: 5}).Marshal())
	at := (&Request{OldSize: 5, Checkpoint: padTo(t, cp, MaxRequestSize-head)}).Marshal()
	if len(at) != MaxRequestSize {
		t.Fatalf("built %d bytes, want %d", len(at), MaxRequestSize)
	}
	if code, body := post(at); code != 200 {
		t.Errorf("a request of exactly MaxRequestSize (%d) bytes: %d %s", MaxRequestSize, code, body)
	}
	past := (&Request{OldSize: 5, Checkpoint: padTo(t, cp, MaxRequestSize-head+1)}).Marshal()
	if code, body := post(past); code != http.StatusRequestEntityTooLarge {
		t.Errorf("one byte past MaxRequestSize: %d %s, want 413", code, body)
	}
	if _, err := ParseRequest(past); err == nil {
		t.Error("ParseRequest accepted a request one byte past MaxRequestSize")
	}
}

// TestKeygenRefusesBadName: C2SP signed-note key names are non-empty,
// without Unicode spaces or '+'; Keygen refuses others and writes nothing.
func TestKeygenRefusesBadName(t *testing.T) {
	for _, name := range []string{"", "w+1.example", "w 1.example", "w\u2003.example", "w\x01.example"} {
		dir := filepath.Join(t.TempDir(), "data")
		if _, err := Keygen(dir, name); err == nil || !strings.Contains(err.Error(), "signed-note") {
			t.Errorf("Keygen(%q): %v, want a refusal citing signed-note", name, err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("Keygen(%q) wrote %s (%v)", name, dir, err)
		}
	}
}

// TestAddCheckpointIsPost: C2SP tlog-witness, add-checkpoint: "The request
// MUST be an HTTP POST"; another method is not cosigned.
func TestAddCheckpointIsPost(t *testing.T) {
	l := newFakeLog(t, 2)
	w := newWitness(t, t.TempDir(), l, 1000)
	srv := httptest.NewServer(w.Handler())
	defer srv.Close()
	for _, method := range []string{"GET", "PUT"} {
		req, _ := http.NewRequest(method, srv.URL+"/add-checkpoint", bytes.NewReader(l.request(t, 0, 2)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s /add-checkpoint: %d, want 405", method, resp.StatusCode)
		}
	}
	if latest, _ := w.Latest(origin); latest != nil {
		t.Error("a request that is not a POST changed the state")
	}
}
