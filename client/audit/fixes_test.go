package audit

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
)

func TestFixes(t *testing.T) {
	db, err := ParseDB([]byte(`{"dists":{"Foo":{"advisories":[
		{"id":"LT","affected_versions":"<1.5"},
		{"id":"WINDOW","affected_versions":">=2.04,<2.07"},
		{"id":"FIXED","affected_versions":"<3","fixed_versions":">=1.8"},
		{"id":"ONLYFIXED","fixed_versions":">=4.0"},
		{"id":"MANY","affected_versions":[">=7,<=7.9.4",">=6,<=6.8.6"]},
		{"id":"NORANGE"},
		{"id":"BADRANGE","affected_versions":"<abc"},
		{"id":"BADFIXED","affected_versions":"<1.5","fixed_versions":"=>1.5"},
		{"id":"EQ","affected_versions":"==1.0"},
		{"id":"NE","affected_versions":"!=1.3"},
		{"id":"NOTHINGBELOW","affected_versions":">=9"}
	]}, "Dup":{"advisories":[
		{"id":"D","affected_versions":"<1.2"},
		{"id":"D","affected_versions":"<1.3"},
		{"id":"E","affected_versions":"<1.2"},
		{"id":"E","affected_versions":"<abc"}
	]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		version string
		want    []string
	}{
		{"1.0", nil},
		{"1.4", []string{"EQ"}},
		{"1.4_01", []string{"EQ"}},
		{"1.5", []string{"LT", "EQ"}},
		{"v1.5.0", []string{"EQ"}}, // v1.5.0 is below 1.5 (v1.500): still in <1.5
		{"1.50", []string{"LT", "EQ"}},
		{"1.3", []string{"EQ", "NE"}},           // the one version outside !=1.3
		{"1.8", []string{"LT", "FIXED", "EQ"}},  // FIXED: affected below 1.8 (fixed range), not at 1.8
		{"2.03", []string{"LT", "FIXED", "EQ"}}, // WINDOW: nothing below 2.03 is affected
		{"2.05", []string{"LT", "FIXED", "EQ"}}, // inside WINDOW
		{"2.07", []string{"LT", "WINDOW", "FIXED", "EQ"}},
		{"4.0", []string{"LT", "WINDOW", "FIXED", "ONLYFIXED", "EQ"}},
		{"6.8.6", []string{"LT", "WINDOW", "FIXED", "ONLYFIXED", "EQ"}}, // inside MANY
		{"6.8.7", []string{"LT", "WINDOW", "FIXED", "ONLYFIXED", "MANY", "EQ"}},
		{"7.0", []string{"LT", "WINDOW", "FIXED", "ONLYFIXED", "EQ"}}, // inside MANY again
		{"8", []string{"LT", "WINDOW", "FIXED", "ONLYFIXED", "MANY", "EQ"}},
		{"0", nil},
		{"not-a-version", nil},
		{"", nil},
	} {
		var got []string
		for _, a := range db.Fixes("Foo", tc.version) {
			got = append(got, a.ID)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Fixes(Foo, %q) = %v, want %v", tc.version, got, tc.want)
		}
	}
	// One ID listed twice: fixed only outside both ranges, and returned
	// once; with a range that cannot be evaluated, never.
	for ver, want := range map[string]int{"1.2": 0, "1.3": 1, "9": 1} {
		if got := db.Fixes("Dup", ver); len(got) != want || want == 1 && got[0].ID != "D" {
			t.Errorf("Fixes(Dup, %s) = %+v, want D %d times", ver, got, want)
		}
	}
	if got := db.Fixes("Bar", "1.0"); got != nil {
		t.Errorf("a distribution without advisories: %v", got)
	}
	var nilDB *DB
	if got := nilDB.Fixes("Foo", "2"); got != nil {
		t.Errorf("no database: %v", got)
	}
}

// TestFixesInTheCPANSAData: real advisories from Debian's
// libcpan-audit-perl, each with the release that fixed it and one that
// did not.
func TestFixesInTheCPANSAData(t *testing.T) {
	db, err := LoadInstalledDB(context.Background())
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CPAN::Audit (libcpan-audit-perl) missing in CI: %v", err)
		}
		t.Skipf("CPAN::Audit not installed: %v", err)
	}
	for _, tc := range []struct {
		dist, id, fixedIn string
		notFixedIn        []string
	}{
		// affected_versions "<1.95", fixed_versions ">=1.95"
		{"Apache-ASP", "CPANSA-Apache-ASP-2000-01", "1.95", []string{"1.94", "0.01"}},
		// ">=2.04,<2.07", fixed ">=2.07": 2.03 is not affected, fixes nothing
		{"File-Path", "CPANSA-File-Path-2008-2827", "2.07", []string{"2.06", "2.04", "2.03"}},
		// ">=2.9003,<4.039", fixed_versions "<2.9003,>=4.039" (which never holds)
		{"DBD-mysql", "CPANSA-DBD-mysql-2016-03", "4.039", []string{"4.038", "2.9002"}},
		// a dotted-decimal range: "<1.3.6"
		{"Apache-Session-Browseable", "CPANSA-Apache-Session-Browseable-2020-36659", "1.3.6", []string{"1.3.5"}},
		// listed three times (<1.17.8, <1.17.9, <1.17.10): 1.17.9 fixes two
		// of them, not the advisory
		{"Dpkg", "CPANSA-Dpkg-2014-0471", "1.17.10", []string{"1.17.9", "1.17.8"}},
		// no affected range at all: never a fix
		{"GPIB", "CPANSA-GPIB-2006-1565", "", []string{"99"}},
	} {
		var found bool
		for _, a := range db.Dists[tc.dist].Advisories {
			found = found || a.ID == tc.id
		}
		if !found {
			t.Errorf("%s: %s is not in the CPANSA data (%d advisories)", tc.dist, tc.id, len(db.Dists[tc.dist].Advisories))
			continue
		}
		has := func(version string) bool {
			return slices.ContainsFunc(db.Fixes(tc.dist, version), func(a Advisory) bool { return a.ID == tc.id })
		}
		if tc.fixedIn != "" && !has(tc.fixedIn) {
			t.Errorf("%s %s: does not fix %s", tc.dist, tc.fixedIn, tc.id)
		}
		for _, v := range tc.notFixedIn {
			if has(v) {
				t.Errorf("%s %s: said to fix %s", tc.dist, v, tc.id)
			}
		}
	}
}

// FuzzFixes: any version against any ranges, without a panic; and what
// Fixes returns is certain: the version is not affected.
func FuzzFixes(f *testing.F) {
	f.Add("1.5", "<1.5", "")
	f.Add("2.07", ">=2.04,<2.07", ">=2.07")
	f.Add("v1.2.3_4", "!=1.2", "1.3")
	f.Fuzz(func(t *testing.T, ver, aff, fixed string) {
		a := Advisory{ID: "X", AffectedVersions: Ranges{aff}, FixedVersions: Ranges{fixed}}
		if fixed == "" {
			a.FixedVersions = nil
		}
		db := &DB{Dists: map[string]struct {
			Advisories []Advisory `json:"advisories"`
		}{"D": {Advisories: []Advisory{a}}}}
		if len(db.Fixes("D", ver)) > 0 {
			if in, err := affected(a, ver); err != nil || in {
				t.Errorf("%q fixes %+v but is affected (%v, %v)", ver, a, in, err)
			}
		}
	})
}

// TestFixesNeverAffecting: over the real CPANSA data, at every version an
// advisory's ranges name, an advisory Fixes returns is one Affecting does
// not report for that release, and some version below it Affecting does
// report.
func TestFixesNeverAffecting(t *testing.T) {
	db, err := LoadInstalledDB(context.Background())
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CPAN::Audit (libcpan-audit-perl) missing in CI: %v", err)
		}
		t.Skipf("CPAN::Audit not installed: %v", err)
	}
	reports := func(dist, ver, id string) bool {
		d, v, hits, _ := db.Affecting(cpan.SnapshotDist{Pathname: "A/AU/AUTHOR/" + dist + "-" + ver + ".tar.gz"})
		if d != dist || v != ver {
			return true // not a pathname CPAN::DistnameInfo reads back: cannot compare
		}
		return slices.ContainsFunc(hits, func(a Advisory) bool { return a.ID == id })
	}
	var fixes, checked int
	for dist, d := range db.Dists {
		for _, a := range d.Advisories {
			bounds, err := boundaries(append(slices.Clone(a.AffectedVersions), a.FixedVersions...))
			if err != nil {
				continue
			}
			for _, b := range bounds {
				ver := strings.TrimPrefix(b.String(), "v")
				checked++
				if !slices.ContainsFunc(db.Fixes(dist, ver), func(x Advisory) bool { return x.ID == a.ID }) {
					continue
				}
				fixes++
				if reports(dist, ver, a.ID) {
					t.Errorf("%s %s: Fixes says it fixes %s, Affecting reports it", dist, ver, a.ID)
				}
			}
		}
	}
	if fixes < 100 {
		t.Errorf("%d fixes among %d versions checked", fixes, checked)
	}
	t.Logf("%d fixes among %d versions checked", fixes, checked)
}
