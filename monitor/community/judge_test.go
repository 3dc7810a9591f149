package community

import (
	"reflect"
	"testing"
)

func TestDiffers(t *testing.T) {
	e := Expectation{Issuer: ghIssuer, Repository: "alice/Foo", Workflow: ".github/workflows/release.yml"}
	id := func(issuer, repo, bc string) *Identity {
		return &Identity{Issuer: issuer, SourceRepo: repo, BuildConfig: bc, SAN: bc}
	}
	const repo, wf = "https://github.com/alice/Foo", "https://github.com/alice/Foo/.github/workflows/release.yml@refs/tags/v1"
	for name, tc := range map[string]struct {
		e    Expectation
		rec  *Identity
		want []string
	}{
		"same":                 {e, id(ghIssuer, repo, wf), nil},
		"no identity":          {e, nil, []string{"identity (the log recorded no verified Sigstore identity for the bundle)"}},
		"other issuer":         {e, id("https://accounts.google.com", repo, wf), []string{"issuer"}},
		"other repo":           {e, id(ghIssuer, "https://github.com/mallory/Foo", wf), []string{"repository"}},
		"repo prefix only":     {e, id(ghIssuer, "https://github.com/alice/Foo-evil", wf), []string{"repository"}},
		"repo suffix":          {e, id(ghIssuer, "https://github.com/xalice/Foo", wf), []string{"repository"}},
		"no repo recorded":     {e, id(ghIssuer, "", wf), []string{"repository"}},
		"other workflow":       {e, id(ghIssuer, repo, "https://github.com/alice/Foo/.github/workflows/evil.yml@refs/heads/main"), []string{"workflow"}},
		"workflow from SAN":    {e, &Identity{Issuer: ghIssuer, SourceRepo: repo, SAN: wf}, nil},
		"everything differs":   {e, id("https://x.example", "https://github.com/m/F", "https://github.com/m/F/w.yml@x"), []string{"issuer", "repository", "workflow"}},
		"repo as URL":          {Expectation{Issuer: ghIssuer, Repository: repo}, id(ghIssuer, repo, wf), nil},
		"repo URL other host":  {Expectation{Issuer: ghIssuer, Repository: repo}, id(ghIssuer, "https://gitlab.com/alice/Foo", wf), []string{"repository"}},
		"workflow as URL":      {Expectation{Issuer: ghIssuer, Workflow: "https://github.com/alice/Foo/.github/workflows/release.yml"}, id(ghIssuer, repo, wf), nil},
		"workflow only":        {Expectation{Issuer: ghIssuer, Workflow: ".github/workflows/release.yml"}, id(ghIssuer, "", wf), []string{"repository"}},
		"workflow leading /":   {Expectation{Issuer: ghIssuer, Repository: "alice/Foo", Workflow: "/.github/workflows/release.yml"}, id(ghIssuer, repo, wf), nil},
		"workflow path prefix": {Expectation{Issuer: ghIssuer, Repository: "alice/Foo", Workflow: ".github/workflows/release"}, id(ghIssuer, repo, wf), []string{"workflow"}},
	} {
		if got := differs(tc.e, tc.rec); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", name, got, tc.want)
		}
	}
}
