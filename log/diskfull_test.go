package log

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// TestDiskFull fills a small tmpfs under a running log: adds fail with a
// clear error and nothing acknowledged is lost; once space is back (the
// file system grown in place) the log takes adds again and every
// acknowledged entry is there.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (needs root): %v %s", err, out)
	}
	// Registered first, so it runs after the servers' cleanups.
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	s := startServer(t, dir)
	acked := map[string]uint64{}
	var failBody string
	for i := 0; i < 20000 && failBody == ""; i++ {
		p := fmt.Sprintf("authors/id/F/FU/FULL/Full-%d-%s.tar.gz", i, strings.Repeat("x", 150))
		code, body := s.add(fmt.Sprintf(`{"path":%q,"size":%d,"sha256":"%064x","uploader":"FULL","time":"2024-01-02T03:04:05Z"}`, p, i, i))
		switch code {
		case 200:
			var idx uint64
			fmt.Sscanf(strings.SplitN(string(body), `"index":`, 2)[1], "%d", &idx)
			acked[p] = idx
		default:
			failBody = fmt.Sprintf("%d %s", code, body)
		}
	}
	if failBody == "" {
		t.Fatal("the disk never filled up")
	}
	if !strings.Contains(failBody, "no space left on device") {
		t.Errorf("disk full answer does not say why: %s", failBody)
	}
	t.Logf("%d entries acknowledged before the disk filled up; then: %.200s", len(acked), failBody)
	if out, err := exec.Command("mount", "-o", "remount,size=64m", dir).CombinedOutput(); err != nil {
		t.Fatalf("grow the tmpfs: %v %s", err, out)
	}
	recovered := false
	for i := 0; i < 100 && !recovered; i++ {
		p := fmt.Sprintf("authors/id/F/FU/FULL/After-%d.tar.gz", i)
		code, _ := s.add(fmt.Sprintf(`{"path":%q,"size":1,"sha256":"%064x","uploader":"FULL","time":"2024-01-02T03:04:05Z"}`, p, 1000000+i))
		recovered = code == 200
	}
	if !recovered {
		t.Fatal("the log does not take adds after space came back")
	}
	s.stop()
	s = startServer(t, dir)
	for p, idx := range acked {
		recs, err := s.log.History(p)
		if err != nil || len(recs) != 1 || recs[0].Index != idx {
			t.Fatalf("%s acknowledged at %d: after the disk filled and a restart: %+v %v", p, idx, recs, err)
		}
	}
}
