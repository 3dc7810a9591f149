//go:build !unix

package monitor

import (
	"io"
	"os"
)

func allocRefs(n int) ([]pathRef, func()) { return make([]pathRef, 0, n), func() {} }

func allocSlots(n int) slotTable { return slotTable{b: make([]byte, slotBytes(n))} }

// openSlots reads the saved table file at path, of n slots, if its CRC-32C
// is crc (without mmap, a start reads the whole table).
func openSlots(path string, n int, crc uint32) (slotTable, error) {
	f, err := os.Open(path)
	if err != nil {
		return slotTable{}, err
	}
	defer f.Close()
	if err := checkSlotsFile(f, n, crc); err != nil {
		return slotTable{}, err
	}
	return mapSlots(f, n)
}

// mapSlots reads the table file f, of n slots (written back by sync).
func mapSlots(f *os.File, n int) (slotTable, error) {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, int64(slotBytes(n))))
	return slotTable{b: b}, err
}
