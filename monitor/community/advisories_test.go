package community

import "github.com/CPAN-Security/cpan-tlog/client/audit"

type fakeAdvisories struct{}

func (fakeAdvisories) Fixes(dist, version string) []audit.Advisory {
	if dist == "Foo" && (version == "1.5" || version == "1.6") { // as DB.Fixes: every release above the range
		return []audit.Advisory{{ID: "CPANSA-Foo-2020-01", Distribution: "Foo", CVEs: []string{"CVE-2020-1"}}}
	}
	return nil
}
