// Package minicpan builds a small CPAN mirror from a directory of
// distribution files, as PAUSE would publish it: the files under
// authors/id/, each author directory's CHECKSUMS, modules/02packages
// (the index cpanm and CPAN.pm resolve modules with) and
// authors/01mailrc.txt.gz; and logs it in a cpan-tlog log through the
// log's HTTP API, as PAUSE's hook does. It is for trying the toolchain
// against a local log (the README's cpanm walk, the demo), not a
// replacement for PAUSE's indexer: each distribution provides one package,
// named after it.
package minicpan

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

// File is one file of the mirror.
type File struct {
	Path    string // CPAN path
	Content []byte
}

// Tree is a built mirror.
type Tree struct {
	Root    string
	Uploads []File // the distribution files
	Indexes []File // 02packages.details.txt.gz, 01mailrc.txt.gz
}

// Build copies every distribution file under from/authors/id/ into
// to/authors/id/ and writes the CHECKSUMS and index files beside them.
func Build(from, to string) (*Tree, error) {
	t := &Tree{Root: to}
	src := filepath.Join(from, "authors", "id")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "CHECKSUMS" {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		cpanPath := filepath.ToSlash(rel)
		if _, err := cpan.ValidatePath(cpanPath); err != nil || cpan.ParseDistInfo(cpanPath).Dist == "" {
			return nil // not a distribution file
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		t.Uploads = append(t.Uploads, File{Path: cpanPath, Content: b})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(t.Uploads) == 0 {
		return nil, fmt.Errorf("no distribution files under %s", src)
	}
	for _, f := range t.Uploads {
		if err := write(to, f.Path, f.Content); err != nil {
			return nil, err
		}
	}
	byDir := map[string][]File{}
	for _, f := range t.Uploads {
		byDir[path.Dir(f.Path)] = append(byDir[path.Dir(f.Path)], f)
	}
	for dir, files := range byDir {
		if err := write(to, dir+"/CHECKSUMS", checksums(dir, files)); err != nil {
			return nil, err
		}
	}
	t.Indexes = []File{
		{Path: "modules/02packages.details.txt.gz", Content: gz(packages(t.Uploads))},
		{Path: "authors/01mailrc.txt.gz", Content: gz(mailrc(t.Uploads))},
	}
	for _, f := range t.Indexes {
		if err := write(to, f.Path, f.Content); err != nil {
			return nil, err
		}
	}
	// CPAN.pm also reads the module list, which PAUSE no longer maintains:
	// an empty one (not logged; it chooses nothing).
	modlist := "File:        03modlist.data\nDescription: an empty module list\nModcount:    0\nWritten-By:  cpan-tlog minicpan\n" +
		"Date:        Thu, 01 Jan 1970 00:00:00 GMT\n\npackage CPAN::Modulelist;\nsub data { {} }\n1;\n"
	if err := write(to, "modules/03modlist.data.gz", gz([]byte(modlist))); err != nil {
		return nil, err
	}
	return t, nil
}

func write(root, cpanPath string, b []byte) error {
	p := filepath.Join(root, filepath.FromSlash(cpanPath))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

// checksums is an author directory's CHECKSUMS, as CPAN::Checksums writes it.
func checksums(dir string, files []File) []byte {
	var b strings.Builder
	b.WriteString("# CHECKSUMS file written by cpan-tlog's minicpan in the format of CPAN::Checksums (v2.14)\n$cksum = {\n")
	for _, f := range files {
		fmt.Fprintf(&b, "  '%s' => {\n    'cpan_path' => '%s',\n    'md5' => '%x',\n    'sha256' => '%x',\n    'size' => %d\n  },\n",
			path.Base(f.Path), strings.TrimPrefix(dir, cpan.AuthorsPrefix), md5.Sum(f.Content), sha256.Sum256(f.Content), len(f.Content))
	}
	b.WriteString("};\n__END__\n")
	return []byte(b.String())
}

// packages is 02packages.details.txt: one package per distribution, named
// after it, in PAUSE's order.
func packages(uploads []File) []byte {
	type line struct{ name, version, path string }
	var lines []line
	for _, f := range uploads {
		d := cpan.ParseDistInfo(f.Path)
		v := d.Version
		if v == "" {
			v = "undef"
		}
		lines = append(lines, line{strings.ReplaceAll(d.Dist, "-", "::"), v, strings.TrimPrefix(f.Path, cpan.AuthorsPrefix)})
	}
	sort.Slice(lines, func(i, j int) bool {
		a, b := strings.ToLower(lines[i].name), strings.ToLower(lines[j].name)
		return a < b || a == b && lines[i].name < lines[j].name
	})
	var b strings.Builder
	fmt.Fprintf(&b, "File:         02packages.details.txt\nURL:          http://www.perl.com/CPAN/modules/02packages.details.txt\n"+
		"Description:  Package names found in directory $CPAN/authors/id/\nColumns:      package name, version, path\n"+
		"Intended-For: Automated fetch routines, namespace documentation.\nWritten-By:   cpan-tlog minicpan\n"+
		"Line-Count:   %d\nLast-Updated: %s\n\n", len(lines), time.Now().UTC().Format(time.RFC1123))
	for _, l := range lines {
		fmt.Fprintf(&b, "%-30s %-10s %s\n", l.name, l.version, l.path)
	}
	return []byte(b.String())
}

// mailrc is 01mailrc.txt: an alias line per author.
func mailrc(uploads []File) []byte {
	var ids []string
	for _, f := range uploads {
		if id, err := cpan.ValidatePath(f.Path); err == nil && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var b strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&b, "alias %s \"%s <%s@cpan.org>\"\n", id, id, strings.ToLower(id))
	}
	return []byte(b.String())
}

// Log logs every file of the tree in the log at logURL with its ingest
// token, as PAUSE's hook would: each upload, then each index file's bytes
// and version, waiting until a checkpoint covers the last. A file the log
// already has (the same bytes, perhaps logged with another time) is fine.
func Log(ctx context.Context, logURL, token string, t *Tree, when time.Time) error {
	c := &http.Client{Timeout: time.Minute}
	logURL = strings.TrimSuffix(logURL, "/")
	do := func(method, u, ctype string, body []byte) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", ctype)
		resp, err := c.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, b, nil
	}
	ts := when.UTC().Truncate(time.Second).Format(entry.TimeFormat)
	add := func(f File, kind string, wait bool) error {
		req := map[string]any{"path": f.Path, "size": len(f.Content), "sha256": fmt.Sprintf("%x", sha256.Sum256(f.Content)), "time": ts}
		if kind == "index" {
			req["kind"] = "index"
		} else {
			id, _ := cpan.ValidatePath(f.Path)
			req["uploader"] = id
		}
		body, _ := json.Marshal(req)
		u := logURL + "/add"
		if wait {
			u += "?wait=1"
		}
		code, answer, err := do(http.MethodPost, u, "application/json", body)
		switch {
		case err != nil:
			return fmt.Errorf("log %s: %w", f.Path, err)
		case code == http.StatusOK:
			return nil
		case code == http.StatusConflict && sameFile(answer, f):
			return nil // logged before, with another time
		}
		return fmt.Errorf("log %s: %d %s", f.Path, code, bytes.TrimSpace(answer))
	}
	for _, f := range t.Uploads {
		if err := add(f, "upload", false); err != nil {
			return err
		}
	}
	for i, f := range t.Indexes {
		code, answer, err := do(http.MethodPut, fmt.Sprintf("%s/index-files/%x", logURL, sha256.Sum256(f.Content)), "application/octet-stream", f.Content)
		if err != nil {
			return fmt.Errorf("store %s: %w", f.Path, err)
		}
		if code != http.StatusOK && code != http.StatusCreated {
			return fmt.Errorf("store %s: %d %s", f.Path, code, bytes.TrimSpace(answer))
		}
		if err := add(f, "index", i == len(t.Indexes)-1); err != nil {
			return err
		}
	}
	return nil
}

// sameFile reports whether a 409's logged entry is f.
func sameFile(answer []byte, f File) bool {
	var r struct {
		Entry string `json:"entry"`
	}
	if json.Unmarshal(answer, &r) != nil {
		return false
	}
	leaf, err := base64.StdEncoding.DecodeString(r.Entry)
	if err != nil {
		return false
	}
	e, err := entry.Parse(leaf)
	return err == nil && e.Path == f.Path && e.Size == uint64(len(f.Content)) && e.SHA256 == sha256.Sum256(f.Content)
}
