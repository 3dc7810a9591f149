package memory

import (
	"fmt"
	"sync"
	"testing"
)

// TestPathFilter: every path added is reported, across several growths of
// the filter and from concurrent adders; paths never added are rarely
// reported (the index is asked for them, nothing else).
func TestPathFilter(t *testing.T) {
	f := newPathFilter(0) // the minimum capacity, 65,536: grows twice below
	const n = 300_000
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				f.add(fmt.Sprintf("authors/id/A/AB/ABC/Foo-%d.tar.gz", i))
			}
		})
	}
	wg.Wait()
	if len(f.parts) < 3 {
		t.Errorf("%d parts after %d adds to a filter of 65,536: it did not grow", len(f.parts), n)
	}
	for i := range n {
		if p := fmt.Sprintf("authors/id/A/AB/ABC/Foo-%d.tar.gz", i); !f.mayContain(p) {
			t.Fatalf("%s was added but is reported absent", p)
		}
	}
	hits := 0
	const probes = 100_000
	for i := range probes {
		if f.mayContain(fmt.Sprintf("authors/id/N/NE/NEW/Bar-%d.tar.gz", i)) {
			hits++
		}
	}
	// About 1% per full part; the parts are full to different degrees.
	if rate := float64(hits) / probes; rate > 0.03 {
		t.Errorf("false positive rate %.2f%%, want under 3%%", 100*rate)
	}
	t.Logf("false positive rate %.2f%% over %d parts", 100*float64(hits)/probes, len(f.parts))
}

// TestIndexing: the follower's hook puts the path of every leaf it is
// about to index into the filter, from the leaf's path line alone.
func TestIndexing(t *testing.T) {
	l := &Decider{known: newPathFilter(0)}
	var leaves [][]byte
	var paths []string
	for i := range 20 {
		p := fmt.Sprintf("authors/id/A/AB/ABC/Foo-%d.tar.gz", i)
		paths = append(paths, p)
		leaves = append(leaves, []byte(fmt.Sprintf("cpan-tlog/v1 upload\npath %s\nsize %d\nsha256 %064x\nuploader X\ntime 2024-01-02T03:04:05Z\n", p, i+1, i)))
	}
	leaves = append(leaves, []byte("cpan-tlog/v1 delete\npath authors/id/D/DE/DEL/gone.tar.gz\ntime 2024-01-02T03:04:05Z\n"), []byte("not an entry"))
	l.Indexing(leaves)
	for _, p := range paths {
		if !l.known.mayContain(p) {
			t.Errorf("%s not in the filter after Indexing", p)
		}
	}
	if !l.known.mayContain("authors/id/D/DE/DEL/gone.tar.gz") {
		t.Error("the deleted path is not in the filter")
	}
}
