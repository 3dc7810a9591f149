package log

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Attack: a hostile (or broken) witness of the policy answers the log's
// add-checkpoint with 200 and an endless body. Tessera reads a witness's
// answer with io.ReadAll, unbounded, for the whole witness timeout, and
// then puts the body, quoted, into the error it logs: the log's memory
// and its log lines were the witness's to fill. The log's transport now
// ends a witness's answer with an error past MaxWitnessAnswer bytes.
func TestHostileWitnessEndlessBody(t *testing.T) {
	chunk := strings.Repeat("x", 1<<16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		for i := 0; i < 1<<12; i++ { // 256 MiB
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	tr := &countingTransport{next: http.DefaultTransport, counts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x"}, []string{"host", "outcome"})}
	req, _ := http.NewRequest("POST", srv.URL+"/add-checkpoint", strings.NewReader("old 0\n\n"))
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<20))
	if err == nil {
		t.Fatalf("read %d bytes of a witness's answer without an error", n)
	}
	if n > MaxWitnessAnswer {
		t.Fatalf("read %d bytes of a witness's answer, more than %d", n, MaxWitnessAnswer)
	}
}
