package monitor

import "syscall"

// adviseHugePages asks for huge pages for b (MADV_HUGEPAGE; refused and
// harmless where the kernel has none).
func adviseHugePages(b []byte) { syscall.Madvise(b, 14) }

// adviseRandom tells the kernel b's pages are read in no order: no
// readahead.
func adviseRandom(b []byte) { syscall.Madvise(b, syscall.MADV_RANDOM) }
