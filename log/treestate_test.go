package log

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	flog "github.com/transparency-dev/formats/log"
)

var goodRoot = bytes.Repeat([]byte{7}, 32)

func TestParseTreeState(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString(goodRoot)
	for _, c := range []struct {
		name, raw string
		ok        bool
		size      uint64
	}{
		{"as Tessera writes it", `{"size":12,"root":"` + b64 + `"}`, true, 12},
		{"size 0", `{"size":0,"root":"` + b64 + `"}`, true, 0},
		{"empty file", ``, false, 0},
		{"cut short", `{"size":12,"root":"` + b64[:10], false, 0},
		{"no size", `{"root":"` + b64 + `"}`, false, 0},
		{"no root", `{"size":12}`, false, 0},
		{"root not 32 bytes", `{"size":12,"root":"AAAA"}`, false, 0},
		{"root not base64", `{"size":12,"root":"%%%"}`, false, 0},
		{"negative size", `{"size":-1,"root":"` + b64 + `"}`, false, 0},
		{"size too large", `{"size":18446744073709551616,"root":"` + b64 + `"}`, false, 0},
		{"a string size", `{"size":"12","root":"` + b64 + `"}`, false, 0},
		{"not an object", `[12]`, false, 0},
		{"binary", "\x00\xff\x10", false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			size, root, ok := parseTreeState([]byte(c.raw))
			if ok != c.ok || size != c.size || (ok && !bytes.Equal(root, goodRoot)) {
				t.Errorf("parseTreeState(%q) = %d, %x, %v; want %d, %v", c.raw, size, root, ok, c.size, c.ok)
			}
		})
	}
}

// checkTreeState's verdicts on a state against a checkpoint of size 10.
func TestCheckTreeState(t *testing.T) {
	cp := &flog.Checkpoint{Origin: "o", Size: 10, Hash: goodRoot}
	other := bytes.Repeat([]byte{8}, 32)
	for _, c := range []struct {
		name string
		st   treeState
		want string // "" for accepted
	}{
		{"same size and root", treeState{found: true, size: 10, root: goodRoot}, ""},
		{"integrated past the checkpoint", treeState{found: true, size: 12, root: other}, ""},
		{"missing", treeState{}, "would begin the tree again at size 0"},
		{"behind", treeState{found: true, size: 9, root: other}, "is at size 9 but the published checkpoint at 10"},
		{"another root", treeState{found: true, size: 10, root: other}, "another root"},
		{"damaged (parsed as no root)", treeState{found: true}, "is at size 0 but the published checkpoint at 10"},
	} {
		err := checkTreeState(Config{}, cp, c.st)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// FuzzParseTreeState: whatever the file holds, parseTreeState does not
// panic, and what it accepts is a size and a 32-byte root that read back
// the same when written as Tessera writes them.
func FuzzParseTreeState(f *testing.F) {
	f.Add([]byte(`{"size":12,"root":"` + base64.StdEncoding.EncodeToString(goodRoot) + `"}`))
	f.Add([]byte(`{"size":12}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, raw []byte) {
		size, root, ok := parseTreeState(raw)
		if !ok {
			return
		}
		if len(root) != 32 {
			t.Fatalf("accepted a root of %d bytes", len(root))
		}
		again, err := json.Marshal(struct {
			Size uint64 `json:"size"`
			Root []byte `json:"root"`
		}{size, root})
		if err != nil {
			t.Fatal(err)
		}
		if s2, r2, ok2 := parseTreeState(again); !ok2 || s2 != size || !bytes.Equal(r2, root) {
			t.Fatalf("%s read back as %d %x %v", again, s2, r2, ok2)
		}
	})
}
