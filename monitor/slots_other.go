//go:build !unix

package monitor

import (
	"io"
	"os"
)

func allocRefs(n int) ([]pathRef, func()) { return make([]pathRef, 0, n), func() {} }

func allocSlots(n int) slotTable { return slotTable{b: make([]byte, slotBytes(n))} }

// mapSlots reads the table file f, of n slots (without mmap, a start
// reads the whole table; sync writes it back).
func mapSlots(f *os.File, n int) (slotTable, error) {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, int64(slotBytes(n))))
	return slotTable{b: b}, err
}
