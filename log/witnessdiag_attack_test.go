package log

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"
)

// Attack: a witness of the policy answers every add-checkpoint 200 with a
// body that is no cosignature of its key (garbage, or another key's
// line). Tessera drops the answer, so no checkpoint reaches the quorum;
// but the diagnosis counted any 200 as "cosigns": /healthz named no
// witness, and POST /add?wait=1 waited its whole minute instead of
// answering at once that the quorum cannot be met.
func TestWitnessFake200Diagnosed(t *testing.T) {
	_, vkey, err := note.GenerateKey(rand.Reader, "w1.example")
	if err != nil {
		t.Fatal(err)
	}
	_, otherVKey, _ := note.GenerateKey(rand.Reader, "w1.example")
	policy := "witness w1 " + vkey + " http://w1.example/\nquorum w1\n"
	w, err := newWitnessWatch([]byte(policy), "log.example", "log.example+00000000+x", false, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	answer := func(body string) {
		req, _ := http.NewRequest("POST", "http://w1.example/add-checkpoint", strings.NewReader("old 0\n\n"))
		resp := &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(body))}
		w.observe(req, resp, nil)
		b, _ := io.ReadAll(resp.Body)
		if string(b) != body {
			t.Fatalf("the body Tessera reads is %q, not the witness's %q", b, body)
		}
	}
	// A line of another key of the same name: its key hash differs.
	other, _ := note.NewVerifier(otherVKey)
	var sig bytes.Buffer
	sig.WriteString("— w1.example ")
	hash := other.KeyHash()
	sig.WriteString(base64.StdEncoding.EncodeToString([]byte{byte(hash >> 24), byte(hash >> 16), byte(hash >> 8), byte(hash), 1, 2, 3}))
	sig.WriteString("\n")
	for _, body := range []string{"garbage\n", "", sig.String()} {
		mark, _ := w.mark()
		answer(body)
		if why := w.blockedAfter(mark); why == "" {
			t.Errorf("a 200 answer %q counts as a cosignature: a wait is not told the quorum cannot be met", body)
		}
		if _, degraded := w.health(); !strings.Contains(degraded, "w1") {
			t.Errorf("a 200 answer %q: /healthz does not name the witness (%q)", body, degraded)
		}
	}
}
