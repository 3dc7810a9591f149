package prooftree

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/client/tlogproof"
	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

// proofOf is a tlog-proof of an upload of path with content, at idx,
// against a checkpoint signed by a real note key (its hashes are not a
// real tree's: the proof tree tells whole files from damaged ones, and
// leaves verifying to clients). It returns the proof's name in the tree
// and its bytes.
func proofOf(t testing.TB, path string, content []byte, idx uint64) (string, []byte) {
	t.Helper()
	e := &entry.Entry{Kind: entry.Upload, Path: path, Size: uint64(len(content)), SHA256: sha256.Sum256(content),
		Uploader: "ABC", Time: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)}
	leaf, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	skey, _, err := note.GenerateKey(rand.Reader, "example.com/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	root := sha256.Sum256(leaf)
	cp, err := note.Sign(&note.Note{Text: fmt.Sprintf("example.com/log\n%d\n%s\n", idx+1, base64.StdEncoding.EncodeToString(root[:]))}, signer)
	if err != nil {
		t.Fatal(err)
	}
	b, err := (&tlogproof.Proof{Extra: leaf, Index: idx, Checkpoint: cp}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return cpan.ProofPath(path, e.SHA256), b
}

func put(t testing.TB, root, rel string, b []byte) string {
	t.Helper()
	name := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestReadServesOnlyWholeProofs: Read returns a whole proof as it is, a
// name outside the tree or of no proof as not there, and a damaged or
// planted file (cut short, another path's proof, a FIFO, a symlink to
// /dev/zero) as ErrDamaged, at once and bounded, queued to be written
// again.
func TestReadServesOnlyWholeProofs(t *testing.T) {
	dir := t.TempDir()
	tree := New(Config{DataDir: dir})
	root := filepath.Join(dir, Dir)
	good, goodBytes := proofOf(t, "authors/id/A/AB/ABC/Good-1.tar.gz", []byte("good"), 0)
	put(t, root, good, goodBytes)
	cut, cutBytes := proofOf(t, "authors/id/A/AB/ABC/Cut-1.tar.gz", []byte("cut"), 1)
	put(t, root, cut, cutBytes[:len(cutBytes)/2])
	_, otherBytes := proofOf(t, "authors/id/A/AB/ABC/Other-1.tar.gz", []byte("other"), 2)
	swapped := "tlog/proofs/authors/id/A/AB/ABC/Swapped-1.tar.gz.tlog-proof"
	put(t, root, swapped, otherBytes)
	fifo := "tlog/proofs/authors/id/A/AB/ABC/Fifo-1.tar.gz.tlog-proof"
	if err := syscall.Mkfifo(filepath.Join(root, filepath.FromSlash(fifo)), 0o600); err != nil {
		t.Skip("mkfifo:", err)
	}
	zero := "tlog/proofs/authors/id/A/AB/ABC/Zero-1.tar.gz.tlog-proof"
	if err := os.Symlink("/dev/zero", filepath.Join(root, filepath.FromSlash(zero))); err != nil {
		t.Fatal(err)
	}
	put(t, dir, "secret.tlog-proof", goodBytes) // beside the tree, not in it

	if b, err := tree.Read(good); err != nil || !bytes.Equal(b, goodBytes) {
		t.Fatalf("Read of a whole proof: %v, %q", err, b)
	}
	for _, rel := range []string{
		"tlog/proofs/authors/id/A/AB/ABC/Absent-1.tar.gz.tlog-proof",
		"tlog/proofs/../../secret.tlog-proof",
		"tlog/proofs//authors/id/A/AB/ABC/Good-1.tar.gz.tlog-proof",
		"tlog/proofs/authors/id/A/AB/ABC/Good-1.tar.gz",
		"authors/id/A/AB/ABC/Good-1.tar.gz.tlog-proof",
		"",
	} {
		if b, err := tree.Read(rel); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Read(%q) = %q, %v; want fs.ErrNotExist", rel, b, err)
		}
	}
	damaged := []string{cut, swapped, fifo, zero}
	for _, rel := range damaged {
		done := make(chan error, 1)
		go func() { _, err := tree.Read(rel); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, ErrDamaged) {
				t.Errorf("Read(%q): %v, want ErrDamaged", rel, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Read(%q) hangs", rel)
		}
	}
	queued := tree.takeRepairs()
	if len(queued) != len(damaged) {
		t.Errorf("queued for repair: %q, want the %d damaged files", queued, len(damaged))
	}
	if checked, n := tree.Sweep(t.Context()); n != len(damaged) || checked != len(damaged)+1 {
		t.Errorf("Sweep checked %d and found %d damaged, want %d and %d", checked, n, len(damaged)+1, len(damaged))
	}
	if queued := tree.takeRepairs(); len(queued) != len(damaged) {
		t.Errorf("queued for repair by Sweep: %q, want the %d damaged files", queued, len(damaged))
	}
}

// TestFileIntact: what is whole, and the malformed files that are not.
func TestFileIntact(t *testing.T) {
	rel, b := proofOf(t, "authors/id/A/AB/ABC/F-1.tar.gz", []byte("f"), 3)
	idxRel, idxBytes := func() (string, []byte) {
		e := &entry.Entry{Kind: entry.Index, Path: "modules/02packages.details.txt.gz", Size: 1, SHA256: sha256.Sum256([]byte("x")),
			Time: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)}
		leaf, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		p, err := tlogproof.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		p.Extra = leaf
		out, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return cpan.ProofPath(e.Path, e.SHA256), out
	}()
	if !FileIntact(rel, b) || !FileIntact(idxRel, idxBytes) {
		t.Fatal("a whole proof is not intact")
	}
	for name, tc := range map[string]struct {
		rel string
		b   []byte
	}{
		"empty":                {rel, nil},
		"cut short":            {rel, b[:len(b)-10]},
		"one byte changed":     {rel, bytes.Replace(b, []byte("index 3"), []byte("index x"), 1)},
		"another path's proof": {strings.Replace(rel, "F-1", "G-1", 1), b},
		"another version":      {cpan.ProofPath("modules/02packages.details.txt.gz", sha256.Sum256([]byte("y"))), idxBytes},
		"not a proof name":     {"tlog/proofs/authors/id/A/AB/ABC/F-1.tar.gz", b},
		"outside the tree":     {"authors/id/A/AB/ABC/F-1.tar.gz.tlog-proof", b},
		"garbage":              {rel, []byte("c2sp.org/tlog-proof@v1\nextra !!!\n")},
	} {
		if FileIntact(tc.rel, tc.b) {
			t.Errorf("%s: reported intact", name)
		}
	}
}

// TestPublish: a mirror gets every whole proof, once; a copy that differs
// is replaced; a damaged file of the log's tree is not copied, and the
// error names it once the rest is copied. Missing then lists exactly the
// mirror's files without a whole proof.
func TestPublish(t *testing.T) {
	dir, mirror := t.TempDir(), t.TempDir()
	if _, _, err := Publish(dir, mirror); err == nil {
		t.Error("Publish of a data directory without a proof tree succeeded")
	}
	root := filepath.Join(dir, Dir)
	files := map[string][]byte{"authors/id/A/AB/ABC/A-1.tar.gz": []byte("a"), "authors/id/A/AB/ABC/B-1.tar.gz": []byte("b")}
	names := map[string]string{}
	for p, c := range files {
		rel, b := proofOf(t, p, c, 0)
		put(t, root, rel, b)
		names[p] = rel
		put(t, mirror, p, c)
	}
	put(t, mirror, "authors/id/A/AB/ABC/CHECKSUMS", []byte("signed by PAUSE"))
	put(t, mirror, "authors/id/A/AB/ABC/C-1.tar.gz", []byte("c")) // not logged
	copied, kept, err := Publish(dir, mirror)
	if err != nil || copied != 2 || kept != 0 {
		t.Fatalf("first Publish: %d copied, %d kept, %v; want 2, 0", copied, kept, err)
	}
	if copied, kept, err = Publish(dir, mirror); err != nil || copied != 0 || kept != 2 {
		t.Fatalf("second Publish: %d copied, %d kept, %v; want 0, 2", copied, kept, err)
	}
	missing, err := Missing(mirror)
	if err != nil || len(missing) != 1 || missing[0] != "authors/id/A/AB/ABC/C-1.tar.gz" {
		t.Fatalf("Missing = %q, %v; want only the file not logged", missing, err)
	}
	a := names["authors/id/A/AB/ABC/A-1.tar.gz"]
	put(t, mirror, a, []byte("cut"))
	b := names["authors/id/A/AB/ABC/B-1.tar.gz"]
	whole, _ := os.ReadFile(filepath.Join(root, filepath.FromSlash(b)))
	put(t, root, b, whole[:20])
	if missing, _ := Missing(mirror); len(missing) != 2 || missing[0] != "authors/id/A/AB/ABC/A-1.tar.gz" {
		t.Errorf("Missing with a cut proof on the mirror = %q", missing)
	}
	copied, _, err = Publish(dir, mirror)
	if err == nil || !strings.Contains(err.Error(), "damaged") || !strings.Contains(err.Error(), filepath.FromSlash(b)) {
		t.Errorf("Publish of a tree with a damaged file: %v, want an error naming it", err)
	}
	if copied != 1 {
		t.Errorf("Publish copied %d files, want 1 (the mirror's cut copy)", copied)
	}
	if got, _ := os.ReadFile(filepath.Join(mirror, filepath.FromSlash(b))); !bytes.Equal(got, whole) {
		t.Error("the mirror's whole copy was replaced by a damaged one")
	}
}
