package index

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

func leaf(t testing.TB, path, content string) []byte {
	t.Helper()
	e := &entry.Entry{Kind: entry.Upload, Path: path, Size: uint64(len(content)), SHA256: sha256.Sum256([]byte(content)),
		Uploader: "ABC", Time: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAppendAndLookup(t *testing.T) {
	dir := t.TempDir()
	ix, err := Open(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	readme := "authors/id/A/AB/ABC/README"
	leaves := [][]byte{
		leaf(t, "authors/id/A/AB/ABC/Foo-1.tar.gz", "one"),
		leaf(t, readme, "v1"),
		[]byte("not an entry\n"),
		leaf(t, readme, "v2"),
		leaf(t, "authors/id/A/AB/ABC/Bar-1.tar.gz", "one"),
	}
	bad, err := ix.Append(0, leaves[:2])
	if err != nil || bad != 0 {
		t.Fatalf("Append: %d, %v", bad, err)
	}
	if _, err := ix.Append(1, leaves[2:]); err == nil {
		t.Fatal("Append at 1 of a 2-leaf index succeeded")
	}
	bad, err = ix.Append(2, leaves[2:])
	if err != nil || bad != 1 {
		t.Fatalf("Append: %d unparsable, %v; want 1", bad, err)
	}
	if n, _ := ix.Size(); n != 5 {
		t.Errorf("Size = %d, want 5", n)
	}
	recs, err := ix.ByPath(readme)
	if err != nil || len(recs) != 2 || recs[0].Index != 1 || recs[1].Index != 3 || !bytes.Equal(recs[1].Leaf, leaves[3]) {
		t.Errorf("ByPath(README) = %+v, %v", recs, err)
	}
	if recs, _ := ix.ByPath("authors/id/A/AB/ABC/Foo-1.tar"); len(recs) != 0 {
		t.Errorf("ByPath of a prefix matched %d records", len(recs))
	}
	recs, err = ix.BySHA256(sha256.Sum256([]byte("one")))
	if err != nil || len(recs) != 2 || recs[0].Index != 0 || recs[1].Index != 4 {
		t.Errorf("BySHA256(one) = %+v, %v", recs, err)
	}
	if l, err := ix.Leaf(2); err != nil || string(l) != "not an entry\n" {
		t.Errorf("Leaf(2) = %q, %v", l, err)
	}
	if _, err := ix.Leaf(5); err == nil {
		t.Error("Leaf(5) of a 5-leaf index succeeded")
	}
}

func TestDumpIndependentOfBatching(t *testing.T) {
	var leaves [][]byte
	for i := range 600 {
		leaves = append(leaves, leaf(t, fmt.Sprintf("authors/id/A/AB/ABC/F-%d.tar.gz", i%500), fmt.Sprint(i)))
	}
	build := func(batch int) string {
		ix, err := Open(filepath.Join(t.TempDir(), "index.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer ix.Close()
		for i := 0; i < len(leaves); i += batch {
			if _, err := ix.Append(uint64(i), leaves[i:min(i+batch, len(leaves))]); err != nil {
				t.Fatal(err)
			}
		}
		var b bytes.Buffer
		if err := ix.Dump(&b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	a, b := build(1), build(256)
	if a != b {
		t.Error("index dumps differ between batch sizes 1 and 256")
	}
	if !bytes.Contains([]byte(a), []byte("size 600\n")) {
		t.Errorf("dump lacks the size: %.100s", a)
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	p := filepath.Join(t.TempDir(), "index.db")
	ix, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if _, err := Open(p); !errors.Is(err, ErrLocked) {
		t.Errorf("second Open: %v, want ErrLocked", err)
	}
}

func TestPagesByDistAuthorAndRecent(t *testing.T) {
	ix, err := Open(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	var leaves [][]byte
	for i := range 10 {
		leaves = append(leaves, leaf(t, fmt.Sprintf("authors/id/A/AB/ABC/Foo-1.%d.tar.gz", i), fmt.Sprint(i)))
		leaves = append(leaves, leaf(t, fmt.Sprintf("authors/id/A/AB/ABC/Bar-1.%d.tar.gz", i), fmt.Sprint(i)))
	}
	if _, err := ix.Append(0, leaves); err != nil {
		t.Fatal(err)
	}
	foo, err := ix.ByDist("Foo", Page{Limit: 3})
	if err != nil || fmt.Sprint(idx(foo)) != "[18 16 14]" {
		t.Errorf("ByDist(Foo) page 1 = %v, %v", idx(foo), err)
	}
	foo, _ = ix.ByDist("Foo", Page{Limit: 3, Before: 14})
	if fmt.Sprint(idx(foo)) != "[12 10 8]" {
		t.Errorf("ByDist(Foo) page 2 = %v", idx(foo))
	}
	if none, _ := ix.ByDist("Fo", Page{Limit: 3}); len(none) != 0 {
		t.Errorf("ByDist of a prefix: %v", idx(none))
	}
	abc, _ := ix.ByAuthor("ABC", Page{Limit: 100})
	if len(abc) != 20 || abc[0].Index != 19 {
		t.Errorf("ByAuthor(ABC): %v", idx(abc))
	}
	rec, _ := ix.Recent(Page{Limit: 2})
	if fmt.Sprint(idx(rec)) != "[19 18]" {
		t.Errorf("Recent = %v", idx(rec))
	}
	rec, _ = ix.Recent(Page{Limit: 2, Before: 1})
	if fmt.Sprint(idx(rec)) != "[0]" {
		t.Errorf("Recent before 1 = %v", idx(rec))
	}
}

func TestOldSchemaIsRebuilt(t *testing.T) {
	p := filepath.Join(t.TempDir(), "index.db")
	ix, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	ix.Append(0, [][]byte{leaf(t, "authors/id/A/AB/ABC/Foo-1.tar.gz", "x")})
	ix.PutMeta("follow:x", []byte("1700000000.5"))
	ix.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyVersion, u64(1)) })
	ix.Close()
	ix, err = Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if n, _ := ix.Size(); n != 0 {
		t.Errorf("an index of schema 1 kept %d entries; it must be emptied and rebuilt from the tree", n)
	}
	if v, _ := ix.GetMeta("follow:x"); string(v) != "1700000000.5" {
		t.Errorf("ingest position lost across the schema change: %q", v)
	}
}

// TestDistsWithPrefix: the prefix matches without regard to case, in every
// spelling a name has, and the answer is what comparing every name says,
// in every kind of store.
func TestDistsWithPrefix(t *testing.T) {
	for name, ix := range stores(t) {
		t.Run(name, func(t *testing.T) { testDistsWithPrefix(t, ix) })
	}
}

func testDistsWithPrefix(t *testing.T, ix Store) {
	dists := []string{"Try-Tiny", "try-catch", "TRY-X", "TryCatch", "Tree-DAG", "libwww-perl", "LWP-Protocol-https", "Lwp-Mini", "Ünicode-Thing", "ünicode-other", "Z"}
	var leaves [][]byte
	for i, d := range dists {
		p := fmt.Sprintf("authors/id/A/AB/ABC/%s-1.%d.tar.gz", d, i)
		leaves = append(leaves, leaf(t, p, d))
		dists[i] = cpan.ParseDistInfo(p).Dist // what the index keeps
	}
	if _, err := ix.Append(0, leaves); err != nil {
		t.Fatal(err)
	}
	reference := func(prefix string, limit int) []string {
		var out []string
		for _, d := range dists {
			if strings.HasPrefix(strings.ToLower(d), strings.ToLower(prefix)) {
				out = append(out, d)
			}
		}
		slices.SortFunc(out, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
		return out[:min(len(out), limit)]
	}
	for _, c := range []struct {
		prefix string
		limit  int
	}{{"try", 20}, {"TRY-", 20}, {"tRy-t", 20}, {"tr", 20}, {"l", 20}, {"lwp", 20}, {"LWP-P", 20}, {"libwww", 20}, {"ü", 20}, {"Ü", 20}, {"", 20}, {"nothing", 20}, {"try-tiny-", 20}, {"z", 20}, {"try", 2}} {
		got, err := ix.DistsWithPrefix(c.prefix, c.limit)
		want := reference(c.prefix, c.limit)
		if c.limit < len(reference(c.prefix, 100)) {
			// Over the limit: as many, each a match.
			if err != nil || len(got) != c.limit {
				t.Errorf("DistsWithPrefix(%q, %d) = %v, %v; want %d matches", c.prefix, c.limit, got, err, c.limit)
			}
			for _, g := range got {
				if !strings.HasPrefix(strings.ToLower(g), strings.ToLower(c.prefix)) {
					t.Errorf("DistsWithPrefix(%q) gave %q", c.prefix, g)
				}
			}
			continue
		}
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("DistsWithPrefix(%q, %d) = %v, %v; want %v", c.prefix, c.limit, got, err, want)
		}
	}
}
