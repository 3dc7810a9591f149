package client_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/client/tlogproof"
	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
)

// TestFetchProofForkCheckpointAttack: a hostile log (quorum none: its key
// is all a checkpoint needs) serves GET /proof?path= under a checkpoint of
// a fork that holds a file the honest history never had, and the honest
// tree on GET /checkpoint. FetchProof verified the proof against its own
// checkpoint, then advanced the trusted state to the honest latest one,
// never relating the two: the fork's file verified. The proof's
// checkpoint must be a prefix of the log's latest (from its tiles).
func TestFetchProofForkCheckpointAttack(t *testing.T) {
	dir := t.TempDir()
	l := testlog.Start(t, tlog.Config{DataDir: dir})
	const when = "2024-01-02T03:04:05Z"
	for i := range 3 {
		l.Add(t, fmt.Sprintf("authors/id/E/ET/ETHER/Honest-%d.tar.gz", i), []byte(fmt.Sprintf("honest %d", i)), when, true)
	}
	// The fork: the first entry, then a file only it holds.
	evilPath := "authors/id/E/ET/ETHER/Evil-1.0.tar.gz"
	evil := []byte("evil")
	leaf := []byte(fmt.Sprintf("cpan-tlog/v1 upload\npath %s\nsize %d\nsha256 %x\nuploader ETHER\ntime %s\n", evilPath, len(evil), sha256.Sum256(evil), when))
	first, err := l.Index().Leaf(0)
	if err != nil {
		t.Fatal(err)
	}
	tree := testonly.New(rfc6962.DefaultHasher)
	tree.AppendData(first, leaf)
	skey, _ := os.ReadFile(filepath.Join(dir, tlog.KeyFile))
	signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := note.Sign(&note.Note{Text: string(flog.Checkpoint{Origin: signer.Name(), Size: 2, Hash: tree.Hash()}.Marshal())}, signer)
	if err != nil {
		t.Fatal(err)
	}
	inc, err := tree.InclusionProof(1, 2)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := (&tlogproof.Proof{Extra: leaf, Index: 1, InclusionProof: inc, Checkpoint: cp}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(l.URL)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/proof" && r.URL.Query().Get("path") == evilPath {
			w.Write(forged)
			return
		}
		resp, err := http.Get(target.String() + r.URL.RequestURI())
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	defer front.Close()
	vkey, _ := os.ReadFile(filepath.Join(dir, tlog.VKeyFile))
	p, err := client.ParsePolicy([]byte("log " + strings.TrimSpace(string(vkey)) + " " + front.URL + "\nquorum none\n"))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := client.OpenState(t.TempDir())
	v, err := client.NewVerifier(p, "", "", st, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if raw, err := v.Fetcher.ReadCheckpoint(ctx); err == nil && strings.Contains(string(raw), "\n3\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the log's checkpoint did not reach size 3")
		}
	}
	res, err := v.FetchProof(ctx, evilPath)
	var sec *client.SecurityError
	if err == nil {
		t.Fatalf("a proof under a fork's checkpoint (size 2) with the log's latest at size 3 verified: %+v", res.Entry)
	}
	if !errors.As(err, &sec) {
		t.Errorf("the fork's signed checkpoint: %v, want a security error", err)
	}
}
