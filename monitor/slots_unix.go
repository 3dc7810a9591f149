//go:build unix

package monitor

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// allocSlots returns n zeroed slots outside the Go heap, and the function
// that gives them back. The table is most of the monitor's live memory and
// holds no pointers: on the heap, the collector would let as much garbage
// again accumulate before collecting (GOGC), and the process would need
// twice the table's size. A table being built is anonymous memory, not its
// file: a first audit fills every page of it, and a file mapping would
// have the kernel write pages back (and fault them again) all along; save
// writes it once.
func allocSlots(n int) slotTable {
	b, err := syscall.Mmap(-1, 0, slotBytes(n), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return slotTable{b: make([]byte, slotBytes(n))}
	}
	// Every lookup lands on a random slot: with 4 KiB pages nearly each one
	// also misses the TLB (20,000 pages at 10M paths). Huge pages, where the
	// system allows them, keep the whole table in a few dozen TLB entries.
	adviseHugePages(b)
	return slotTable{b: b, unmap: func() { syscall.Munmap(b) }}
}

// allocRefs returns an empty slice of capacity n outside the Go heap, and
// the function that gives it back: the buffer of a bulk audit (see
// bulkPaths) is live all along, and on the heap the collector would let as
// much garbage again accumulate before collecting.
func allocRefs(n int) ([]pathRef, func()) {
	size := n * int(unsafe.Sizeof(pathRef{}))
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]pathRef, 0, n), func() {}
	}
	return unsafe.Slice((*pathRef)(unsafe.Pointer(&b[0])), n)[:0], func() { syscall.Munmap(b) }
}

// mapSlots maps the table file f, of n slots, shared: a start pages in
// only the slots its lookups touch.
func mapSlots(f *os.File, n int) (slotTable, error) {
	b, err := syscall.Mmap(int(f.Fd()), 0, slotBytes(n), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return slotTable{}, fmt.Errorf("mapping the uploads table: %w", err)
	}
	// Lookups land anywhere: no readahead when the file is not cached
	// (after a reboot, a round reads the pages it touches, not their
	// neighbours). The kernel still maps cached neighbours (fault-around):
	// a round of a thousand new paths on a 10M table has about 45 MB of
	// the file's cached pages in its resident set, none of them its own.
	adviseRandom(b)
	return slotTable{b: b, mapped: true, unmap: func() { syscall.Munmap(b) }}, nil
}
