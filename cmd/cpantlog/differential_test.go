package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/client/proxy"
	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
)

// The differential test's defaults; CPANTLOG_DIFF_SEED and
// CPANTLOG_DIFF_COUNT (mutations per vector) override them for local
// exploration.
const (
	diffSeed      = 40 // issue 40
	diffPerVector = 20
)

// diffCase is one mutated proof, played by both verifiers.
type diffCase struct {
	vector, mutation string
	mirror           bool
	policy, path     string
	file             string // the file checked
	proof            string // the proof's file, or in mirror mode the mirror's root
	raw              []byte // the mutated proof
	goCode, perlCode int
	goMsg, perlMsg   string
	// mldsa names the policy's ML-DSA-44 witnesses, which the Perl
	// verifier cannot check.
	mldsa []string
}

// TestDifferential: for every shared vector, a seeded set of mutations of
// its proof (bytes flipped, CR, control bytes, NUL and invalid UTF-8
// inserted, signature lines moved into the note's text or above the
// proof's blank line, duplicated, lines reordered or deleted, truncations)
// must get the same exit status from the Go verifier (cpantlog verify
// --proof, in process; the proxy for "mirror" vectors) and the Perl one
// (verify_file as cpantlog-verify-pl calls it; CPAN::TLog::Cpanm's
// verify_bytes for "mirror" vectors), every case with a fresh state. And
// none may be 3: a mutated proof is bytes that fail to verify, never a
// signed view inconsistent with another, so it is not evidence against
// the log.
//
// One disagreement is expected, and only under a policy with an ML-DSA-44
// witness, which the Perl verifier cannot check (the mldsa-* vectors'
// want-without-mldsa): see mldsaExplains.
func TestDifferential(t *testing.T) {
	seed, perVector := uint64(diffSeed), diffPerVector
	if s := os.Getenv("CPANTLOG_DIFF_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			t.Fatalf("CPANTLOG_DIFF_SEED=%q: %v", s, err)
		}
		seed = n
	}
	if s := os.Getenv("CPANTLOG_DIFF_COUNT"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("CPANTLOG_DIFF_COUNT=%q: want a positive number", s)
		}
		perVector = n
	}
	start := time.Now()
	dirs, err := os.ReadDir(vectorsDir)
	if err != nil || len(dirs) < 10 {
		t.Fatalf("vectors: %d %v", len(dirs), err)
	}
	work := t.TempDir()
	var cases []*diffCase
	for _, d := range dirs {
		name := d.Name()
		dir := filepath.Join(vectorsDir, name)
		proof, err := os.ReadFile(filepath.Join(dir, "proof"))
		if err != nil {
			continue // a mirror serving no proof: nothing to mutate
		}
		cpanPath := strings.TrimSpace(string(mustRead(t, filepath.Join(dir, "path"))))
		file := filepath.Join(dir, "file")
		if _, err := os.Stat(file); err != nil {
			file = filepath.Join("../../testdata", strings.TrimSpace(string(mustRead(t, filepath.Join(dir, "source")))))
		}
		file, _ = filepath.Abs(file)
		policy, _ := filepath.Abs(filepath.Join(dir, "policy"))
		mode, _ := os.ReadFile(filepath.Join(dir, "mode"))
		mirror := strings.TrimSpace(string(mode)) == "mirror"
		var mldsa []string
		if p, err := client.ParsePolicy(mustRead(t, policy)); err == nil {
			for _, w := range p.Witnesses {
				if client.KeyType(w.VKey) == client.KeyTypeMLDSA44 {
					mldsa = append(mldsa, w.Name)
				}
			}
		}
		h := fnv.New64a()
		h.Write([]byte(name))
		r := rand.New(rand.NewPCG(seed, h.Sum64()))
		for i := range perVector {
			what, raw := mutateProof(r, proof)
			c := &diffCase{vector: name, mutation: fmt.Sprintf("#%d %s", i, what), mirror: mirror, policy: policy, path: cpanPath, file: file, raw: raw, mldsa: mldsa}
			base := filepath.Join(work, fmt.Sprintf("%s-%d", name, i))
			if mirror {
				content := mustRead(t, file)
				layMirror(t, base, cpanPath, content, raw)
				c.proof = base
			} else {
				c.proof = base + ".tlog-proof"
				if err := os.WriteFile(c.proof, raw, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cases = append(cases, c)
		}
	}
	if len(cases) < 500 && os.Getenv("CPANTLOG_DIFF_COUNT") == "" {
		t.Fatalf("only %d mutations: the shared vectors are missing", len(cases))
	}

	// The Go side, in process: the code cpantlog verify --proof and the
	// proxy run.
	for i, c := range cases {
		state := filepath.Join(work, fmt.Sprintf("state-%d", i))
		if c.mirror {
			c.goCode, c.goMsg = proxyVerdict(t, c.policy, state, c.proof, c.path)
		} else {
			c.goCode, c.goMsg = cli(t, "verify", "--policy", c.policy, "--proof", c.proof, "--state", state, "--cache", "", "--path", c.path, c.file)
		}
	}
	goTime := time.Since(start)

	// The Perl side, once for the whole batch.
	perl := perlAvailable(t)
	if perl {
		var list bytes.Buffer
		for _, c := range cases {
			kind := "proof"
			if c.mirror {
				kind = "mirror"
			}
			fmt.Fprintf(&list, "%s\t%s\t%s\t%s\t%s\n", kind, c.policy, c.proof, c.file, c.path)
		}
		listFile := filepath.Join(work, "cases")
		if err := os.WriteFile(listFile, list.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("perl", "-I../../client/perl/lib", "testdata/differential.pl", listFile).Output()
		if err != nil {
			t.Fatalf("perl differential driver: %v\n%s", err, out)
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(nil, 1<<20)
		n := 0
		for ; sc.Scan(); n++ {
			if n >= len(cases) {
				t.Fatalf("the Perl driver answered more than %d cases", len(cases))
			}
			code, msg, _ := strings.Cut(sc.Text(), "\t")
			cases[n].perlCode, err = strconv.Atoi(code)
			if err != nil {
				t.Fatalf("the Perl driver answered %q", sc.Text())
			}
			cases[n].perlMsg = msg
		}
		if n != len(cases) {
			t.Fatalf("the Perl driver answered %d of %d cases", n, len(cases))
		}
	}

	bad, codes, explained := 0, map[[2]int]int{}, 0
	for _, c := range cases {
		codes[[2]int{c.goCode, c.perlCode}]++
		var why []string
		if perl && c.goCode != c.perlCode {
			if mldsaExplains(c) {
				explained++
			} else {
				why = append(why, "Go and Perl disagree")
			}
		}
		if c.goCode == client.ExitSecurity || (perl && c.perlCode == client.ExitSecurity) {
			why = append(why, "a security error (3) from bytes that are no signed evidence")
		}
		if c.goCode < 0 || c.goCode > 3 || c.perlCode < 0 || c.perlCode > 3 {
			why = append(why, "an exit status outside 0-3")
		}
		if why == nil {
			continue
		}
		if bad++; bad <= 25 {
			t.Errorf("vector %s, mutation %s: %s: Go exit %d, Perl exit %d (seed %d)\n  Go:   %s\n  Perl: %s\n  proof: %q",
				c.vector, c.mutation, strings.Join(why, "; "), c.goCode, c.perlCode, seed, firstLine(strings.TrimSpace(c.goMsg)), c.perlMsg, c.raw)
		}
	}
	if bad > 25 {
		t.Errorf("... and %d more (CPANTLOG_DIFF_SEED and CPANTLOG_DIFF_COUNT reproduce a run)", bad-25)
	}
	t.Logf("%d mutations of %d vectors (seed %d): Go %s, total %s; (Go, Perl) exit statuses: %v; %d disagreements explained by ML-DSA-44",
		len(cases), len(dirs), seed, goTime.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), codes, explained)
}

// mldsaExplains says whether Go and Perl disagree on c only because the
// Perl verifier cannot check ML-DSA-44 signatures, as the mldsa-*
// vectors' want-without-mldsa expects: under a policy with an ML-DSA-44
// witness, and Perl says it cannot check ML-DSA-44, and either
//
//   - Perl could not check (2) where Go verified (0), or where Go refused
//     (1) because a cosignature line of an ML-DSA-44 witness does not
//     verify: the verdict turned on that signature; or
//   - Perl verified (0) where Go refused (1) because a cosignature line of
//     an ML-DSA-44 witness does not verify, the quorum being met without
//     it (Perl neither counts nor refuses what it cannot check).
//
// Any other disagreement, under any policy, is a failure.
func mldsaExplains(c *diffCase) bool {
	if len(c.mldsa) == 0 || !strings.Contains(c.perlMsg, perlCannotCheckMLDSA) {
		return false
	}
	mldsaLineFails := false
	for _, w := range c.mldsa {
		if strings.Contains(c.goMsg, "by witness "+w+"'s key that does not verify") {
			mldsaLineFails = true
		}
	}
	switch {
	case c.perlCode == client.ExitUsage: // could not check
		return c.goCode == client.ExitOK || (c.goCode == client.ExitNotVerified && mldsaLineFails)
	case c.perlCode == client.ExitOK:
		return c.goCode == client.ExitNotVerified && mldsaLineFails
	}
	return false
}

// layMirror writes a mirror's tree at root: the file at its CPAN path and,
// unless proof is nil, its proof where the mirror keeps it.
func layMirror(t *testing.T, root, cpanPath string, content, proof []byte) {
	t.Helper()
	dst := filepath.Join(root, cpanPath)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, content, 0o644); err != nil {
		t.Fatal(err)
	}
	if proof == nil {
		return
	}
	pdst := filepath.Join(root, cpan.ProofPath(cpanPath, sha256.Sum256(content)))
	if !cpan.MayOverwrite(cpanPath) && !cpan.IsIndexPath(cpanPath) {
		pdst = filepath.Join(root, cpan.ProofPath(cpanPath, [32]byte{}))
	}
	if err := os.MkdirAll(filepath.Dir(pdst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pdst, proof, 0o644); err != nil {
		t.Fatal(err)
	}
}

// proxyVerdict asks a proxy, in process, with a fresh state and no cache,
// for cpanPath from the mirror at root, and reads its answer as an exit
// status as testMirrorVector does (-1 for an answer that is none of them).
func proxyVerdict(t *testing.T, policyFile, stateDir, root, cpanPath string) (int, string) {
	t.Helper()
	st, err := client.OpenState(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := client.NewVerifier(mustPolicy(t, policyFile), "", "", st, "")
	if err != nil {
		t.Fatal(err)
	}
	p, err := proxy.New(proxy.Config{Upstream: root, Hosts: proxy.DefaultHosts, Verifier: v, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("GET", "/"+cpanPath, nil))
	body := rec.Body.String()
	switch rec.Code {
	case 200:
		return 0, "200"
	case 403:
		if strings.Contains(body, "SECURITY ERROR") {
			return 3, body
		}
		return 1, body
	case 503:
		return 2, body
	}
	return -1, fmt.Sprintf("%d %s", rec.Code, body)
}

// mutateProof returns a description and a mutation of a tlog-proof: most
// of them in the checkpoint, where the signed note's reading is subtle.
func mutateProof(r *rand.Rand, proof []byte) (string, []byte) {
	head, cp, ok := bytes.Cut(proof, []byte("\n\n"))
	j := bytes.LastIndex(cp, []byte("\n\n"))
	if !ok || j < 0 {
		// No structure to aim at: byte mutations anywhere.
		return mutateBytes(r, proof, 0, len(proof))
	}
	text, sigs := cp[:j+1], cp[j+2:] // text with its final newline
	textAt, sigsAt := len(head)+2, len(head)+2+j+2
	sigLines := splitLines(sigs)
	textLines := splitLines(text)
	join := func(h []byte, t, s [][]byte) []byte {
		out := append(bytes.Clone(h), "\n\n"...)
		out = append(out, bytes.Join(t, nil)...)
		out = append(out, '\n')
		return append(out, bytes.Join(s, nil)...)
	}
	switch k := r.IntN(21); {
	case k < 7:
		// Bytes: in the proof's lines, the checkpoint's text or its
		// signature lines.
		switch r.IntN(5) {
		case 0:
			return mutateBytes(r, proof, 0, len(head))
		case 1, 2:
			return mutateBytes(r, proof, textAt, textAt+len(text))
		default:
			return mutateBytes(r, proof, sigsAt, len(proof))
		}
	case (k == 7 || k == 8) && len(sigLines) > 0:
		// A signature line moved into the note's text.
		i, at := r.IntN(len(sigLines)), r.IntN(len(textLines)+1)
		line := sigLines[i]
		rest := deleteAt(sigLines, i)
		return fmt.Sprintf("signature line %d moved to text line %d", i, at), join(head, insertAt(textLines, at, line), rest)
	case k == 9 && len(sigLines) > 0:
		// A signature line moved above the proof's blank line.
		i := r.IntN(len(sigLines))
		hl := splitLines(append(bytes.Clone(head), '\n'))
		at := r.IntN(len(hl) + 1)
		h := bytes.TrimSuffix(bytes.Join(insertAt(hl, at, sigLines[i]), nil), []byte("\n"))
		return fmt.Sprintf("signature line %d moved to proof line %d", i, at), join(h, textLines, deleteAt(sigLines, i))
	case (k == 10 || k == 11) && len(sigLines) > 0:
		i, at := r.IntN(len(sigLines)), r.IntN(len(sigLines)+1)
		return fmt.Sprintf("signature line %d duplicated at %d", i, at), join(head, textLines, insertAt(sigLines, at, sigLines[i]))
	case k == 12 && len(sigLines) > 0:
		// A signature line's em dash, or the space after it, replaced.
		i := r.IntN(len(sigLines))
		s := slicesClone(sigLines)
		rep := []string{"-", "--", "\u2013", "\u2014\u2014", "\u2014\u00a0", "\u2014\t", "\u2014  ", ""}[r.IntN(8)]
		s[i] = append([]byte(rep), bytes.TrimPrefix(s[i], []byte("\u2014 "))...)
		return fmt.Sprintf("signature line %d starts %q", i, rep), join(head, textLines, s)
	case k == 13:
		n := r.IntN(len(proof))
		return fmt.Sprintf("truncated to %d bytes", n), bytes.Clone(proof[:n])
	case k == 14:
		// Two lines of the whole proof swapped.
		lines := splitLines(proof)
		a, b := r.IntN(len(lines)), r.IntN(len(lines))
		lines[a], lines[b] = lines[b], lines[a]
		return fmt.Sprintf("lines %d and %d swapped", a, b), bytes.Join(lines, nil)
	case k == 15:
		lines := splitLines(proof)
		i := r.IntN(len(lines))
		return fmt.Sprintf("line %d deleted", i), bytes.Join(deleteAt(lines, i), nil)
	case k == 16:
		// A line's end as CR LF, or a CR at its end.
		lines := splitLines(proof)
		i := r.IntN(len(lines))
		l := bytes.TrimSuffix(lines[i], []byte("\n"))
		end := []string{"\r\n", "\r", "\r\r\n", " \n", "\t\n"}[r.IntN(5)]
		if !bytes.HasSuffix(lines[i], []byte("\n")) {
			end = strings.TrimSuffix(end, "\n")
		}
		lines[i] = append(bytes.Clone(l), end...)
		return fmt.Sprintf("line %d ends %q", i, end), bytes.Join(lines, nil)
	case k == 17:
		// A text line moved among the signatures, or the text reordered.
		if r.IntN(2) == 0 && len(textLines) > 1 {
			a, b := r.IntN(len(textLines)), r.IntN(len(textLines))
			tl := slicesClone(textLines)
			tl[a], tl[b] = tl[b], tl[a]
			return fmt.Sprintf("text lines %d and %d swapped", a, b), join(head, tl, sigLines)
		}
		i, at := r.IntN(len(textLines)), r.IntN(len(sigLines)+1)
		return fmt.Sprintf("text line %d moved to signature line %d", i, at), join(head, deleteAt(textLines, i), insertAt(sigLines, at, textLines[i]))
	case k == 18:
		// An extra blank line somewhere in the checkpoint, or none.
		if r.IntN(2) == 0 {
			return "the checkpoint's blank line removed", append(bytes.Clone(proof[:sigsAt-1]), proof[sigsAt:]...)
		}
		at := textAt + r.IntN(len(cp))
		for at < len(proof) && proof[at] != '\n' {
			at++
		}
		return fmt.Sprintf("blank line at byte %d", at), insertBytes(proof, at, "\n")
	default:
		// An unknown signer's line in the note, under a name close to a
		// trusted one.
		names := []string{"localhost/cpan-tlog", "w1.example", "w2.example", "localhost/cpan-tlog\u00a0", "w1.example\r", "localhost/cpan-tlog+"}
		name := names[r.IntN(len(names))]
		sig := make([]byte, 4+r.IntN(80))
		for i := range sig {
			sig[i] = byte(r.Uint32())
		}
		line := []byte("\u2014 " + name + " " + base64.StdEncoding.EncodeToString(sig) + "\n")
		at := r.IntN(len(sigLines) + 1)
		return fmt.Sprintf("line %q at signature line %d", line, at), join(head, textLines, insertAt(sigLines, at, line))
	}
}

// insertions are what mutateBytes puts in: line ends, control bytes,
// bytes that are not UTF-8, characters near the ones a note uses.
var insertions = []string{"\r", "\r", "\x00", "\x01", "\x07", "\b", "\t", "\v", "\f", "\x1b", "\x1f", "\x7f",
	"\xff", "\xfe", "\xc3", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x80",
	"\u0085", "\u00a0", "\u2028", "\u200b", "\ufeff", "\ufffd", "\ufffe", "\ufdd0", "\u2014",
	" ", "\n", "\n\n", "+", "=", "A"}

// mutateBytes changes one byte of b[lo:hi], or inserts something there.
func mutateBytes(r *rand.Rand, b []byte, lo, hi int) (string, []byte) {
	if hi <= lo {
		lo, hi = 0, len(b)
	}
	at := lo + r.IntN(hi-lo)
	switch r.IntN(3) {
	case 0:
		out := bytes.Clone(b)
		bit := byte(1) << r.IntN(8)
		out[at] ^= bit
		return fmt.Sprintf("byte %d xor %#02x", at, bit), out
	case 1:
		s := insertions[r.IntN(len(insertions))]
		out := bytes.Clone(b)
		out[at] = s[0]
		out = insertBytes(out, at+1, s[1:])
		return fmt.Sprintf("byte %d replaced by %q", at, s), out
	default:
		s := insertions[r.IntN(len(insertions))]
		return fmt.Sprintf("%q inserted at byte %d", s, at), insertBytes(b, at, s)
	}
}

func insertBytes(b []byte, at int, s string) []byte {
	out := append(bytes.Clone(b[:at]), s...)
	return append(out, b[at:]...)
}

// splitLines splits b after each newline (the last line may lack one).
func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			out = append(out, b)
			break
		}
		out = append(out, b[:i+1])
		b = b[i+1:]
	}
	return out
}

func slicesClone(s [][]byte) [][]byte { return append([][]byte(nil), s...) }

func insertAt(s [][]byte, i int, v []byte) [][]byte {
	out := append(slicesClone(s[:i]), v)
	return append(out, s[i:]...)
}

func deleteAt(s [][]byte, i int) [][]byte {
	return append(slicesClone(s[:i]), s[i+1:]...)
}
