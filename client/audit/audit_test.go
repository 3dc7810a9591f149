package audit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
)

// localTree writes install records as cpanm leaves them.
func localTree(t *testing.T, records map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, rec := range records {
		d := filepath.Join(dir, "lib", "perl5", "x86_64-linux-gnu-thread-multi", ".meta", name)
		os.MkdirAll(d, 0o755)
		if err := os.WriteFile(filepath.Join(d, "install.json"), []byte(rec), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestParseLocal(t *testing.T) {
	dir := localTree(t, map[string]string{
		"Try-Tiny-0.31":    `{"name":"Try::Tiny","pathname":"E/ET/ETHER/Try-Tiny-0.31.tar.gz","dist":"Try-Tiny-0.31","version":0.31}`,
		"Archive-Tar-1.36": `{"pathname":"B/BI/BINGOS/Archive-Tar-1.36.tar.gz"}`,
	})
	pins, err := ParseLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []cpan.SnapshotDist{
		{Name: "Archive-Tar-1.36", Pathname: "B/BI/BINGOS/Archive-Tar-1.36.tar.gz"},
		{Name: "Try-Tiny-0.31", Pathname: "E/ET/ETHER/Try-Tiny-0.31.tar.gz"},
	}
	if d := cmp.Diff(want, pins); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestParseLocalRejects(t *testing.T) {
	for name, rec := range map[string]string{
		"not JSON":            `pathname: E/ET/ETHER/Try-Tiny-0.31.tar.gz`,
		"no pathname":         `{"name":"Try::Tiny"}`,
		"pathname with ..":    `{"pathname":"E/ET/ETHER/../Try-Tiny-0.31.tar.gz"}`,
		"pathname of a URL":   `{"pathname":"https://example.org/Try-Tiny-0.31.tar.gz"}`,
		"pathname not a path": `{"pathname":["E/ET/ETHER/Try-Tiny-0.31.tar.gz"]}`,
		"larger than 1 MiB":   `{"pathname":"E/ET/ETHER/Try-Tiny-0.31.tar.gz","x":"` + strings.Repeat("a", 1<<20) + `"}`,
	} {
		if pins, err := ParseLocal(localTree(t, map[string]string{"X-1": rec})); err == nil {
			t.Errorf("%s: accepted as %+v", name, pins)
		}
	}
	if _, err := ParseLocal(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no install records") {
		t.Errorf("an empty directory: %v", err)
	}
}

func TestAffecting(t *testing.T) {
	for name, s := range map[string]string{
		"empty":          "",
		"not JSON":       "$VAR1 = {};",
		"no dists":       `{"dists":{}}`,
		"wrong type":     `{"dists":{"X":{"advisories":"none"}}}`,
		"range a number": `{"dists":{"X":{"advisories":[{"id":"A","affected_versions":1.0}]}}}`,
	} {
		if _, err := ParseDB([]byte(s)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	db, err := ParseDB([]byte(`{"dists":{"Archive-Tar":{"advisories":[{"id":"A-1","affected_versions":"<=1.36"},{"id":"A-2","affected_versions":"<2.28"},{"id":"A-3","affected_versions":"<0.5"},{"id":"A-4","affected_versions":"<=x"},{"id":"A-5","affected_versions":[">=2,<3","<=1.36"]},{"id":"A-6","affected_versions":"<2","fixed_versions":">=1.36"}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	dist, version, hits, unsure := db.Affecting(cpan.SnapshotDist{Name: "Archive-Tar-1.36", Pathname: "B/BI/BINGOS/Archive-Tar-1.36.tar.gz"})
	var ids []string
	for _, h := range hits {
		ids = append(ids, h.ID)
	}
	if d := cmp.Diff([]string{"A-1", "A-2", "A-4", "A-5"}, ids); d != "" || len(unsure) != 1 || dist != "Archive-Tar" || version != "1.36" {
		t.Errorf("%s %s advisories (-want +got):\n%s; unsure %v (A-4's range does not parse: it cannot be ruled out)", dist, version, d, unsure)
	}
}

func FuzzParseDB(f *testing.F) {
	f.Add([]byte(`{"dists":{"Archive-Tar":{"advisories":[{"id":"A-1","affected_versions":"<=1.36"}]}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		db, err := ParseDB(b)
		if err != nil {
			return
		}
		db.Affecting(cpan.SnapshotDist{Name: "Archive-Tar-1.36", Pathname: "B/BI/BINGOS/Archive-Tar-1.36.tar.gz"})
	})
}
