package audit

import "testing"

// TestInRangeDottedUnderscoreAttack: a dotted-decimal development version
// such as 1.2.3_4 is v1.2.34 to version.pm (and CPAN::Audit), which
// ignores the underscore; read as four parts (1.2.3.4) it compared below
// 1.2.10, so an advisory affecting ">=1.2.10" was reported as not
// affecting a dist at 1.2.3_4 that it does affect.
func TestInRangeDottedUnderscoreAttack(t *testing.T) {
	for _, tc := range []struct {
		v, r string
		want bool
	}{
		{"1.2.3_4", ">=1.2.10", true}, // v1.2.34
		{"v1.2.3_4", "<1.2.5", false}, // v1.2.34
		{"v1.2_3", ">=1.20", false},   // v1.23 < v1.200
	} {
		if got, err := InRange(tc.v, tc.r); err != nil || got != tc.want {
			t.Errorf("InRange(%q, %q) = %v, %v; want %v (version.pm)", tc.v, tc.r, got, err, tc.want)
		}
	}
	// version.pm dies on these: never "not affected".
	for _, v := range []string{"v1_2", "1.2.3_4_5", "v1.2.3_4.5", "1_2.3.4"} {
		if got, err := InRange(v, "<1"); err == nil && !got {
			t.Errorf("InRange(%q, \"<1\") = false, nil; version.pm cannot parse it", v)
		}
	}
}
