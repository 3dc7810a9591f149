package memory

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// pathFilter answers "may this path have been logged?" from memory, so that
// an add of a path never seen (nearly every add: PAUSE publishes new files)
// does not ask the lookup index, a database round trip on S3 + MySQL. It is
// a Bloom filter: "no" is certain, "maybe" (about 1% of new paths, and
// every path logged before) goes to the index. It only grows, filled from
// the index when the log opens, from every add the log acknowledges, and
// from every entry the index follower indexes.
//
// A Bloom filter has a fixed capacity: when the current one is full, a
// new one twice its size takes the new paths, and a path may be in any of
// them (a scalable Bloom filter).
type pathFilter struct {
	seed1, seed2 maphash.Seed
	mu           sync.RWMutex // guards parts; the bits are atomic
	parts        []*bloom
}

type bloom struct {
	bits     []atomic.Uint64
	capacity int64
	count    atomic.Int64
}

// bloomHashes and bloomBitsPerPath give a false positive rate of about 1%
// when a part is full.
const (
	bloomHashes      = 7
	bloomBitsPerPath = 10
)

func newPathFilter(capacity int) *pathFilter {
	f := &pathFilter{seed1: maphash.MakeSeed(), seed2: maphash.MakeSeed()}
	f.parts = []*bloom{newBloom(max(capacity, 1<<16))}
	return f
}

func newBloom(capacity int) *bloom {
	return &bloom{bits: make([]atomic.Uint64, (capacity*bloomBitsPerPath+63)/64), capacity: int64(capacity)}
}

func (f *pathFilter) hashes(p string) (uint64, uint64) {
	return maphash.String(f.seed1, p), maphash.String(f.seed2, p) | 1
}

// add records p.
func (f *pathFilter) add(p string) {
	h1, h2 := f.hashes(p)
	f.mu.RLock()
	b := f.parts[len(f.parts)-1]
	f.mu.RUnlock()
	if b.count.Add(1) > b.capacity {
		f.mu.Lock()
		if last := f.parts[len(f.parts)-1]; last == b {
			f.parts = append(f.parts, newBloom(int(2*b.capacity)))
		}
		b = f.parts[len(f.parts)-1]
		f.mu.Unlock()
		b.count.Add(1)
	}
	n := uint64(len(b.bits)) * 64
	for i := range uint64(bloomHashes) {
		bit := (h1 + i*h2) % n
		b.bits[bit/64].Or(1 << (bit % 64))
	}
}

// mayContain reports whether p may have been added; false is certain.
func (f *pathFilter) mayContain(p string) bool {
	h1, h2 := f.hashes(p)
	f.mu.RLock()
	parts := f.parts
	f.mu.RUnlock()
	for _, b := range parts {
		n := uint64(len(b.bits)) * 64
		all := true
		for i := range uint64(bloomHashes) {
			bit := (h1 + i*h2) % n
			if b.bits[bit/64].Load()&(1<<(bit%64)) == 0 {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}
