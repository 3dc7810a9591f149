package audit

import (
	"testing"

	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
)

// TestAffectingAdvisoryWithoutRange: CPANSA holds advisories that name no
// affected versions (CPANSA-XML-Twig-2016-9180, critical, never fixed:
// every version). CPAN::Audit's range check answers undef for them and
// drops them; so did Affecting, and cpantlog audit said nothing of
// XML-Twig. Such an advisory cannot be ruled out: it is reported, unsure.
// One whose fixed range holds for the version is not.
func TestAffectingAdvisoryWithoutRange(t *testing.T) {
	db, err := ParseDB([]byte(`{"dists":{"XML-Twig":{"advisories":[{"id":"N-1"},{"id":"N-2","affected_versions":null},{"id":"N-3","affected_versions":[]},{"id":"N-4","fixed_versions":">=3.0"}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	_, _, hits, unsure := db.Affecting(cpan.SnapshotDist{Pathname: "M/MI/MIROD/XML-Twig-3.52.tar.gz"})
	var ids []string
	for _, h := range hits {
		ids = append(ids, h.ID)
	}
	if len(ids) != 3 || ids[0] != "N-1" || ids[1] != "N-2" || ids[2] != "N-3" || len(unsure) != 3 {
		t.Errorf("advisories without an affected range: hits %v, unsure %v; want N-1, N-2, N-3, each unsure", ids, unsure)
	}
}
