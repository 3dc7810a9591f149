package web

import (
	"encoding/json"
	"io/fs"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"
)

// TestVendoredFilesAreThePublishedOnes: every file under assets/vendor is
// byte-identical to the same file of the npm package that 'npm ci' in
// e2e/ installs (package-lock.json pins each version and its integrity),
// at the version e2e/package.json pins; and every module a vendored
// module imports is vendored too, under the import map's prefixes.
func TestVendoredFilesAreThePublishedOnes(t *testing.T) {
	if _, err := os.Stat("e2e/node_modules/@noble/post-quantum"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("e2e/node_modules missing in CI: .ci/run runs npm ci --prefix log/web/e2e")
		}
		t.Skip("needs 'npm ci --prefix log/web/e2e'")
	}
	var pkg struct{ Dependencies map[string]string }
	b, err := os.ReadFile("e2e/package.json")
	if err != nil || json.Unmarshal(b, &pkg) != nil {
		t.Fatalf("e2e/package.json: %v", err)
	}
	var lock struct {
		Packages map[string]struct{ Version, Integrity string }
	}
	b, err = os.ReadFile("e2e/package-lock.json")
	if err != nil || json.Unmarshal(b, &lock) != nil {
		t.Fatalf("e2e/package-lock.json: %v", err)
	}
	vendored := map[string]bool{}
	err = fs.WalkDir(assets, "assets/vendor", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := strings.TrimPrefix(p, "assets/vendor/")
		vendored[name] = true
		got, _ := assets.ReadFile(p)
		want, err := os.ReadFile("e2e/node_modules/" + name)
		if err != nil {
			t.Errorf("%s: not in the npm package: %v", name, err)
		} else if string(got) != string(want) {
			t.Errorf("%s differs from the npm package's", name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"@noble/post-quantum", "@noble/hashes", "@noble/curves"} {
		for _, f := range []string{"LICENSE", "package.json"} {
			if !vendored[p+"/"+f] {
				t.Errorf("%s/%s is not vendored", p, f)
			}
		}
		var meta struct{ Version string }
		b, _ := assets.ReadFile("assets/vendor/" + p + "/package.json")
		json.Unmarshal(b, &meta)
		if l := lock.Packages["node_modules/"+p]; meta.Version == "" || l.Version != meta.Version || l.Integrity == "" {
			t.Errorf("%s: vendored version %q, package-lock.json has %q (integrity %q)", p, meta.Version, l.Version, l.Integrity)
		}
	}
	if v := pkg.Dependencies["@noble/post-quantum"]; v != lock.Packages["node_modules/@noble/post-quantum"].Version {
		t.Errorf("e2e/package.json pins @noble/post-quantum %q, not exactly the vendored version", v)
	}
	if !vendored["@noble/post-quantum/ml-dsa.js"] {
		t.Fatal("ml-dsa.js is not vendored")
	}
	// The import closure of ml-dsa.js is vendored.
	imports := regexp.MustCompile(`(?m)^\s*(?:import|export)\s[^;]*?\sfrom\s+['"]([^'"]+)['"]`)
	for name := range vendored {
		if path.Ext(name) != ".js" {
			continue
		}
		src, _ := assets.ReadFile("assets/vendor/" + name)
		for _, m := range imports.FindAllSubmatch(src, -1) {
			spec := string(m[1])
			var target string
			switch {
			case strings.HasPrefix(spec, "./") || strings.HasPrefix(spec, "../"):
				target = path.Join(path.Dir(name), spec)
			case strings.HasPrefix(spec, "@noble/hashes/") || strings.HasPrefix(spec, "@noble/curves/"):
				target = spec // layout.html's import map
			default:
				t.Errorf("%s imports %q, which the import map does not resolve", name, spec)
				continue
			}
			if !vendored[target] {
				t.Errorf("%s imports %q (%s), which is not vendored", name, spec, target)
			}
		}
	}
}
