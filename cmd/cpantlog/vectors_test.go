package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/witness"
)

var (
	updateVectors      = flag.Bool("update-vectors", false, "regenerate testdata/vectors from a real log with real witnesses")
	updateMLDSAVectors = flag.Bool("update-mldsa-vectors", false, "regenerate only testdata/vectors/mldsa-* (a log with an ML-DSA-44 and an Ed25519 witness)")
)

const vectorsDir = "../../testdata/vectors"

// The shared vectors, testdata/vectors/NAME/, one directory each, played
// by the Go client and proxy (here and in TestDifferential), the Perl
// verifier and hook (client/perl/t/verify.t, and here) and the explorer's
// page:
//
//	policy   the trust policy
//	proof    the tlog-proof (absent: a mirror serving none)
//	path     the CPAN path checked
//	file     the file checked, or source: its path under testdata/
//	mode     absent, or "mirror": the proof is what a mirror serves beside
//	         the file and no log can be asked (verifier: the proxy or hook)
//	want     the exit status: 0 verified, 1 refused, 2 could not check, 3
//	         security error
//	want-without-mldsa
//	         only in mldsa-* vectors whose verdict a verifier that cannot
//	         check ML-DSA-44 signatures must give otherwise (the Perl one:
//	         CryptX has no ML-DSA): its exit status. 2 where the verdict
//	         turns on an ML-DSA-44 cosignature the quorum needs; 0 where
//	         the quorum is met without an ML-DSA-44 cosignature that fails
//	         (a verifier that checks it refuses the note whole). Such a
//	         verifier says it cannot check ML-DSA-44. A verifier that checks
//	         ML-DSA-44 plays want, as every other vector.
//
// Files end with a newline. go test ./cmd/cpantlog -run TestVectors
// -update-vectors rewrites them all from a real log with real witnesses;
// -update-mldsa-vectors only the mldsa-* ones.

// TestVectors: the Go client and the Perl verifier give the same exit
// code, the expected one, on every shared vector; the Perl verifier, which
// cannot check ML-DSA-44, gives want-without-mldsa where a vector has one,
// and says why.
func TestVectors(t *testing.T) {
	if *updateVectors {
		generateVectors(t)
	} else if *updateMLDSAVectors {
		generateMLDSAVectors(t)
	}
	dirs, err := os.ReadDir(vectorsDir)
	if err != nil || len(dirs) < 10 {
		t.Fatalf("vectors: %d %v (go test ./cmd/cpantlog -run TestVectors -update-vectors writes them)", len(dirs), err)
	}
	perl := perlAvailable(t)
	for _, d := range dirs {
		name := d.Name()
		dir := filepath.Join(vectorsDir, name)
		wantB, err := os.ReadFile(filepath.Join(dir, "want"))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := strconv.Atoi(strings.TrimSpace(string(wantB)))
		perlWant := want
		if b, err := os.ReadFile(filepath.Join(dir, "want-without-mldsa")); err == nil {
			// The Perl verifier cannot check ML-DSA-44 (CryptX has none).
			perlWant, err = strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil || perlWant == want {
				t.Fatalf("%s: want-without-mldsa %q: a number other than want, or no such file", name, b)
			}
		}
		cpanPath, _ := os.ReadFile(filepath.Join(dir, "path"))
		file := filepath.Join(dir, "file")
		if _, err := os.Stat(file); err != nil {
			src, _ := os.ReadFile(filepath.Join(dir, "source"))
			file = filepath.Join("../../testdata", strings.TrimSpace(string(src)))
		}
		if mode, _ := os.ReadFile(filepath.Join(dir, "mode")); strings.TrimSpace(string(mode)) == "mirror" {
			testMirrorVector(t, name, dir, strings.TrimSpace(string(cpanPath)), file, want, perlWant, perl)
			continue
		}
		args := []string{"--policy", filepath.Join(dir, "policy"), "--proof", filepath.Join(dir, "proof"), "--path", strings.TrimSpace(string(cpanPath)), file}
		code, out := cli(t, append([]string{"verify", "--state", t.TempDir()}, args...)...)
		if code != want {
			t.Errorf("%s: Go exit %d, want %d\n%s", name, code, want, out)
		}
		if !perl {
			continue
		}
		cmd := exec.Command("perl", append([]string{"../../client/perl/bin/cpantlog-verify-pl"}, args...)...)
		cmd.Env = append(os.Environ(), "CPANTLOG_STATE="+t.TempDir()) // a fresh trusted state, as Go's
		pcode, pout := runExit(t, cmd)
		if pcode != perlWant {
			t.Errorf("%s: Perl exit %d, want %d\n%s", name, pcode, perlWant, pout)
		}
		if perlWant != want && !strings.Contains(pout, perlCannotCheckMLDSA) {
			t.Errorf("%s: Perl exit %d does not say it cannot check ML-DSA-44 (%q)\n%s", name, pcode, perlCannotCheckMLDSA, pout)
		}
	}
}

// testMirrorVector plays a "mirror" vector: a mirror serves the file and,
// beside it, the vector's proof (if any), and no log can be asked. The Go
// proxy's answer (200, 403, 503) and the Perl toolchain hook's verdict
// (CPAN::TLog::Cpanm::verify_bytes) must both be the vector's exit code.
func testMirrorVector(t *testing.T, name, dir, cpanPath, file string, want, perlWant int, perl bool) {
	t.Helper()
	root := t.TempDir()
	content, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, filepath.Dir(cpanPath)), 0o755)
	os.WriteFile(filepath.Join(root, cpanPath), content, 0o644)
	if proof, err := os.ReadFile(filepath.Join(dir, "proof")); err == nil {
		// Where the mirror keeps the proof of the file it serves.
		dst := filepath.Join(root, cpan.ProofPath(cpanPath, sha256.Sum256(content)))
		if !cpan.MayOverwrite(cpanPath) && !cpan.IsIndexPath(cpanPath) {
			dst = filepath.Join(root, cpan.ProofPath(cpanPath, [32]byte{}))
		}
		os.MkdirAll(filepath.Dir(dst), 0o755)
		os.WriteFile(dst, proof, 0o644)
	}
	policy := filepath.Join(dir, "policy")
	purl, plogs := startProxy(t, policy, root)
	resp, body := get(t, purl+"/"+cpanPath, nil)
	code := map[int]int{200: 0, 403: 1, 503: 2}[resp.StatusCode]
	if resp.StatusCode == 403 && strings.Contains(string(body), "SECURITY ERROR") {
		code = 3
	}
	if _, ok := map[int]bool{200: true, 403: true, 503: true}[resp.StatusCode]; !ok || code != want {
		t.Errorf("%s: the Go proxy answered %d (%d), want exit %d\n%s\n%s", name, resp.StatusCode, code, want, body, plogs)
	}
	if !perl {
		return
	}
	script := `use CPAN::TLog::Cpanm; open my $f, '<', $ARGV[0] or die; local $/; CPAN::TLog::Cpanm::use_policy(<$f>);
open my $g, '<:raw', $ARGV[3] or die; my $b = <$g>; my ($c, $why) = CPAN::TLog::Cpanm::verify_bytes($ARGV[1], $ARGV[2], $b);
print "$c $why\n"; exit 0;`
	out, err := exec.Command("perl", "-I../../client/perl/lib", "-e", script, policy, "file://"+root, cpanPath, file).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: perl: %v\n%s", name, err, out)
	}
	if pcode, _ := strconv.Atoi(strings.Fields(string(out) + " x")[0]); pcode != perlWant {
		t.Errorf("%s: the Perl hook says %s, want exit %d", name, strings.TrimSpace(string(out)), perlWant)
	}
}

func perlAvailable(t *testing.T) bool {
	t.Helper()
	if err := exec.Command("perl", "-MCrypt::PK::Ed25519", "-e1").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("perl with CryptX missing in CI: .ci/run installs Debian's libcryptx-perl")
		}
		t.Log("perl with CryptX (Debian libcryptx-perl) not installed: only the Go side is checked")
		return false
	}
	return true
}

// generateVectors runs a real log whose checkpoints two real witnesses
// cosign, logs samples and an index version, and writes valid and broken
// proofs with the exit code every verifier must give.
func generateVectors(t *testing.T) {
	smp := samples(t)
	logDir, logVKey := newLogKey(t)
	w1 := startWitness(t, "w1.example", logVKey)
	w2 := startWitness(t, "w2.example", logVKey)
	policyText := fmt.Sprintf("log %s\nwitness w1 %s %s\nwitness w2 %s %s\ngroup both all w1 w2\nquorum both\n", logVKey, w1.vkey, w1.url, w2.vkey, w2.url)
	lg := startLogWith(t, tlog.Config{DataDir: logDir, WitnessPolicy: []byte(policyText)})
	for _, s := range smp {
		lg.add(t, s.path, s.content, "2024-01-02T03:04:05Z")
	}
	index := packagesIndex(packages)
	lg.add(t, packagesPath, index, "2026-11-25T00:00:00Z")
	otherKey, err := tlog.Keygen(t.TempDir(), tlog.DefaultOrigin)
	if err != nil {
		t.Fatal(err)
	}
	proofOf := func(p string) []byte { return fetch(t, lg.url+"/proof?path="+p) }
	try, sub := smp[0], smp[0]
	for _, s := range smp {
		switch filepath.Base(s.path) {
		case "Try-Tiny-0.31.tar.gz":
			try = s
		case "Sub-Install-0.929.tar.gz":
			sub = s
		}
	}
	good := proofOf(try.path)
	head, cp, _ := bytes.Cut(good, []byte("\n\n"))
	lines := strings.Split(string(head), "\n") // header, extra, index, hashes...
	text, sigs, _ := bytes.Cut(cp, []byte("\n\n"))
	sigLines := strings.Split(strings.TrimSuffix(string(sigs), "\n"), "\n")
	flipB64 := func(s string) string {
		b, _ := base64.StdEncoding.DecodeString(s)
		b[len(b)-1] ^= 1
		return base64.StdEncoding.EncodeToString(b)
	}
	flipSig := func(prefix string) []byte {
		var out []string
		for _, l := range sigLines {
			if strings.HasPrefix(l, "\u2014 "+prefix) {
				f := strings.Fields(l)
				l = f[0] + " " + f[1] + " " + flipB64(f[2])
			}
			out = append(out, l)
		}
		return []byte(string(head) + "\n\n" + string(text) + "\n\n" + strings.Join(out, "\n") + "\n")
	}
	withoutSig := func(prefix string) []byte {
		var out []string
		for _, l := range sigLines {
			if !strings.HasPrefix(l, "\u2014 "+prefix) {
				out = append(out, l)
			}
		}
		return []byte(string(head) + "\n\n" + string(text) + "\n\n" + strings.Join(out, "\n") + "\n")
	}
	textLines := strings.Split(string(text), "\n")
	flippedRoot := strings.Join(append([]string{textLines[0], textLines[1], flipB64(textLines[2])}, textLines[3:]...), "\n")
	extra := strings.TrimPrefix(lines[1], "extra ")
	flippedFile := bytes.Clone(try.content)
	flippedFile[len(flippedFile)/2] ^= 1
	policy := []byte(policyText)
	type vec struct {
		proof, policy, file []byte
		source, path        string
		want                int
		// mode "mirror": the proof is what a mirror serves beside the file
		// (none when proof is nil) and no log can be asked; a verifier
		// answers 2 (could not check) unless the proof verifies (0) or
		// verifies and contradicts the file's bytes (1). A bad signature,
		// even by a trusted key, is a proof that does not verify: bytes
		// anyone can make are no evidence against the log, so never 3.
		mode string
	}
	vectors := map[string]vec{
		"valid-upload":             {good, policy, nil, try.path, try.path, 0, ""},
		"valid-upload-2":           {proofOf(sub.path), policy, nil, sub.path, sub.path, 0, ""},
		"valid-index":              {proofOf(packagesPath), policy, index, "", packagesPath, 0, ""},
		"flipped-file":             {good, policy, flippedFile, "", try.path, 1, ""},
		"flipped-leaf":             {[]byte(strings.Replace(string(good), lines[1], "extra "+flipB64(extra), 1)), policy, nil, try.path, try.path, 1, ""},
		"flipped-proof-hash":       {[]byte(strings.Replace(string(good), lines[3], flipB64(lines[3]), 1)), policy, nil, try.path, try.path, 1, ""},
		"flipped-checkpoint":       {[]byte(string(head) + "\n\n" + flippedRoot + "\n\n" + string(sigs)), policy, nil, try.path, try.path, 1, ""},
		"flipped-signature":        {flipSig(tlog.DefaultOrigin + " "), policy, nil, try.path, try.path, 1, ""},
		"flipped-cosignature":      {flipSig("w1.example "), policy, nil, try.path, try.path, 1, ""},
		"missing-cosignature":      {withoutSig("w2.example "), policy, nil, try.path, try.path, 1, ""},
		"unknown-log-key":          {good, []byte(strings.Replace(policyText, logVKey, otherKey, 1)), nil, try.path, try.path, 1, ""},
		"proof-for-another-path":   {proofOf(sub.path), policy, nil, try.path, try.path, 1, ""},
		"truncated":                {good[:len(good)/2], policy, nil, try.path, try.path, 2, ""},
		"reordered":                {[]byte(strings.Replace(string(good), lines[1]+"\n"+lines[2], lines[2]+"\n"+lines[1], 1)), policy, nil, try.path, try.path, 2, ""},
		"missing-cosignature-any1": {withoutSig("w2.example "), []byte(strings.Replace(policyText, "group both all w1 w2", "group both any w1 w2", 1)), nil, try.path, try.path, 0, ""},
	}
	// Cases the verifiers once disagreed on (issues 23, 40), decided from
	// the specs: a corrupted duplicate of a valid line under a known key
	// rejects the whole note (C2SP signed-note: such a line MUST be
	// verified), as a refusal, not a security error; a noncharacter is
	// valid UTF-8 in a key name (an unknown signer's line is ignored);
	// malformed key names, more than 100 signature lines and non-canonical
	// base64 make the note malformed; a checkpoint's size and root must be
	// canonical (tlog-checkpoint); an entry is only what the encoder writes.
	skey, err := os.ReadFile(filepath.Join(logDir, "log.key"))
	if err != nil {
		t.Fatal(err)
	}
	logSigner, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		t.Fatal(err)
	}
	logOnly := []byte("log " + logVKey + "\nquorum none\n")
	// signed is a proof whose checkpoint text is cpText, signed by the log
	// alone; head is the proof's first lines.
	signed := func(head, cpText string) []byte {
		n, err := note.Sign(&note.Note{Text: cpText}, logSigner)
		if err != nil {
			t.Fatal(err)
		}
		return []byte(head + "\n\n" + string(n))
	}
	withSigLines := func(extraLines ...string) []byte {
		return []byte(string(head) + "\n\n" + string(text) + "\n\n" + strings.Join(append(slices.Clone(sigLines), extraLines...), "\n") + "\n")
	}
	flipLine := func(prefix string) string {
		for _, l := range sigLines {
			if strings.HasPrefix(l, "\u2014 "+prefix) {
				f := strings.Fields(l)
				return f[0] + " " + f[1] + " " + flipB64(f[2])
			}
		}
		t.Fatalf("no signature line %q", prefix)
		return ""
	}
	unknownLine := func(name string, i int) string {
		return "\u2014 " + name + " " + base64.StdEncoding.EncodeToString(append([]byte{byte(i >> 8), byte(i), 0xee, 0xee}, bytes.Repeat([]byte{byte(i)}, 64)...))
	}
	var many []string
	for i := range 99 {
		many = append(many, unknownLine(fmt.Sprintf("other%d.example", i), i))
	}
	// setUnusedBit sets the lowest bit of the last base64 digit before the
	// padding: the same bytes to a lax decoder, but not canonical.
	setUnusedBit := func(s string) string {
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
		b := []byte(s)
		i := bytes.IndexByte(b, '=') - 1
		b[i] = alphabet[strings.IndexByte(alphabet, b[i])|1]
		return string(b)
	}
	// The log's own line with its signature's unused trailing base64 bits
	// set.
	nonCanonicalSig := func() []byte {
		var out []string
		for _, l := range sigLines {
			if strings.HasPrefix(l, "\u2014 "+tlog.DefaultOrigin+" ") {
				f := strings.Fields(l)
				b64 := setUnusedBit(f[2])
				l = f[0] + " " + f[1] + " " + string(b64)
			}
			out = append(out, l)
		}
		return []byte(string(head) + "\n\n" + string(text) + "\n\n" + strings.Join(out, "\n") + "\n")
	}
	// A one-entry tree around any leaf, signed by the log: the entry is
	// then the only thing that can be wrong.
	tryLeaf := func(mutate func(string) string) []byte {
		leaf := mutate(fmt.Sprintf("cpan-tlog/v1 upload\npath %s\nsize %d\nsha256 %x\nuploader ETHER\ntime 2021-01-05T12:00:00Z\n", try.path, len(try.content), sha256.Sum256(try.content)))
		root := rfc6962.DefaultHasher.HashLeaf([]byte(leaf))
		return signed("c2sp.org/tlog-proof@v1\nextra "+base64.StdEncoding.EncodeToString([]byte(leaf))+"\nindex 0",
			fmt.Sprintf("%s\n1\n%s\n", tlog.DefaultOrigin, base64.StdEncoding.EncodeToString(root)))
	}
	same := func(s string) string { return s }
	resignedText := string(text) + "\n"
	cpLines := strings.SplitN(resignedText, "\n", 4)
	for name, v := range map[string]vec{
		"dup-log-signature-corrupted":   {withSigLines(flipLine(tlog.DefaultOrigin + " ")), policy, nil, try.path, try.path, 1, ""},
		"dup-cosignature-corrupted":     {withSigLines(flipLine("w1.example ")), policy, nil, try.path, try.path, 1, ""},
		"unknown-signer-nbsp":           {withSigLines(unknownLine("some\u00a0one.example", 1)), policy, nil, try.path, try.path, 1, ""},
		"unknown-signer-invalid-utf8":   {withSigLines(unknownLine("some\xffone.example", 1)), policy, nil, try.path, try.path, 1, ""},
		"unknown-signer-noncharacter":   {withSigLines(unknownLine("some\uffffone.example", 1)), policy, nil, try.path, try.path, 0, ""},
		"signature-lines-100":           {withSigLines(many[:100-len(sigLines)]...), policy, nil, try.path, try.path, 0, ""},
		"signature-lines-101":           {withSigLines(many[:101-len(sigLines)]...), policy, nil, try.path, try.path, 1, ""},
		"signature-noncanonical-base64": {nonCanonicalSig(), policy, nil, try.path, try.path, 1, ""},
		"index-overflow":                {[]byte(strings.Replace(string(good), lines[2], "index 18446744073709551616", 1)), policy, nil, try.path, try.path, 2, ""},
		"resigned-by-log":               {signed(string(head), resignedText), logOnly, nil, try.path, try.path, 0, ""},
		"size-leading-zero":             {signed(string(head), cpLines[0]+"\n0"+cpLines[1]+"\n"+cpLines[2]+"\n"+cpLines[3]), logOnly, nil, try.path, try.path, 1, ""},
		"root-noncanonical-base64":      {signed(string(head), cpLines[0]+"\n"+cpLines[1]+"\n"+setUnusedBit(cpLines[2])+"\n"+cpLines[3]), logOnly, nil, try.path, try.path, 1, ""},
		"entry-valid":                   {tryLeaf(same), logOnly, nil, try.path, try.path, 0, ""},
		"entry-unknown-extra-line":      {tryLeaf(func(s string) string { return s + "colour red\n" }), logOnly, nil, try.path, try.path, 1, ""},
		"entry-impossible-date":         {tryLeaf(func(s string) string { return strings.Replace(s, "2021-01-05", "2021-02-30", 1) }), logOnly, nil, try.path, try.path, 1, ""},
		"entry-lowercase-uploader":      {tryLeaf(func(s string) string { return strings.Replace(s, "uploader ETHER", "uploader ether", 1) }), logOnly, nil, try.path, try.path, 1, ""},
		"entry-size-leading-zero":       {tryLeaf(func(s string) string { return strings.Replace(s, "size ", "size 0", 1) }), logOnly, nil, try.path, try.path, 1, ""},
		"policy-witness-without-url":    {good, []byte(strings.NewReplacer(" "+w1.url, "", " "+w2.url, "").Replace(policyText)), nil, try.path, try.path, 0, ""},
		"policy-group-member-twice":     {withoutSig("w2.example "), []byte(strings.Replace(policyText, "group both all w1 w2", "group both 2 w1 w1 w2", 1)), nil, try.path, try.path, 2, ""},
		"policy-group-threshold-zero":   {withoutSig("w2.example "), []byte(strings.Replace(policyText, "group both all w1 w2", "group both 0 w1 w2", 1)), nil, try.path, try.path, 2, ""},
		"mirror-valid":                  {good, policy, nil, try.path, try.path, 0, "mirror"},
		"mirror-tampered-file":          {good, policy, flippedFile, "", try.path, 1, "mirror"},
		"mirror-bad-proof-log-down":     {[]byte(strings.Replace(string(good), lines[3], flipB64(lines[3]), 1)), policy, nil, try.path, try.path, 2, "mirror"},
		"mirror-unknown-key-log-down":   {good, []byte(strings.Replace(policyText, logVKey, otherKey, 1)), nil, try.path, try.path, 2, "mirror"},
		"mirror-bad-signature":          {flipSig(tlog.DefaultOrigin + " "), policy, nil, try.path, try.path, 2, "mirror"},
		"mirror-no-proof-log-down":      {nil, policy, nil, try.path, try.path, 2, "mirror"},
	} {
		vectors[name] = v
	}

	os.RemoveAll(vectorsDir)
	for name, v := range vectors {
		writeVector(t, name, v.proof, v.policy, v.file, v.source, v.path, v.mode, v.want, -1)
	}
	generateMLDSAVectors(t)
}

// writeVector writes one shared vector (its format: above TestVectors).
// wantWithoutMLDSA is the exit status a verifier that cannot
// check ML-DSA-44 must give, when it differs from want (else -1).
func writeVector(t *testing.T, name string, proof, policy, file []byte, source, path, mode string, want, wantWithoutMLDSA int) {
	t.Helper()
	dir := filepath.Join(vectorsDir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(f string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if proof != nil {
		write("proof", proof)
	}
	if mode != "" {
		write("mode", []byte(mode+"\n"))
	}
	write("policy", policy)
	write("path", []byte(path+"\n"))
	write("want", []byte(strconv.Itoa(want)+"\n"))
	if wantWithoutMLDSA >= 0 && wantWithoutMLDSA != want {
		write("want-without-mldsa", []byte(strconv.Itoa(wantWithoutMLDSA)+"\n"))
	}
	if file != nil {
		write("file", file)
	} else {
		write("source", []byte(source+"\n"))
	}
}

// perlCannotCheckMLDSA is what the Perl verifier says when a quorum needs
// an ML-DSA-44 cosignature it cannot check.
const perlCannotCheckMLDSA = "cannot check (CryptX has no ML-DSA)"

// generateMLDSAVectors runs a real log whose checkpoints a real witness
// keyed ML-DSA-44 (pq) and one keyed Ed25519 (w1) cosign, under "group
// both 2 w1 pq", and writes testdata/vectors/mldsa-*: where a verifier
// that cannot check ML-DSA-44 (the Perl one) must answer otherwise than
// one that can, the vector says so in want-without-mldsa: 2 (could not
// check) when the verdict turns on the ML-DSA-44 cosignature's validity,
// 0 when the quorum is met without a cosignature that fails.
func generateMLDSAVectors(t *testing.T) {
	smp := samples(t)
	logDir, logVKey := newLogKey(t)
	w1 := startWitness(t, "w1.example", logVKey)
	pq := testlog.StartWitnessWith(t, "pq.example", logVKey, witness.MLDSA44)
	policyText := fmt.Sprintf("log %s\nwitness w1 %s %s\nwitness pq %s %s\ngroup both 2 w1 pq\nquorum both\n", logVKey, w1.vkey, w1.url, pq.VKey, pq.URL)
	lg := startLogWith(t, tlog.Config{DataDir: logDir, WitnessPolicy: []byte(policyText)})
	var try sampleFile
	for _, s := range smp {
		if filepath.Base(s.path) == "Try-Tiny-0.31.tar.gz" {
			try = s
		}
	}
	lg.add(t, try.path, try.content, "2024-01-02T03:04:05Z")
	good := fetch(t, lg.url+"/proof?path="+try.path)
	head, cp, _ := bytes.Cut(good, []byte("\n\n"))
	text, sigs, _ := bytes.Cut(cp, []byte("\n\n"))
	sigLines := strings.Split(strings.TrimSuffix(string(sigs), "\n"), "\n")
	// withSig rewrites the signature lines of prefix's key (nil drops it).
	withSig := func(prefix string, f func(sig []byte) []byte) []byte {
		var out []string
		found := false
		for _, l := range sigLines {
			if strings.HasPrefix(l, "\u2014 "+prefix+" ") {
				found = true
				fs := strings.Fields(l)
				b, err := base64.StdEncoding.DecodeString(fs[2])
				if err != nil {
					t.Fatal(err)
				}
				if b = f(b); b == nil {
					continue
				}
				l = fs[0] + " " + fs[1] + " " + base64.StdEncoding.EncodeToString(b)
			}
			out = append(out, l)
		}
		if !found {
			t.Fatalf("the published proof has no line of %s:\n%s", prefix, good)
		}
		return []byte(string(head) + "\n\n" + string(text) + "\n\n" + strings.Join(out, "\n") + "\n")
	}
	// flip changes a byte of the ML-DSA-44 signature's z (or Ed25519's s).
	flip := func(b []byte) []byte { b = bytes.Clone(b); b[len(b)/2] ^= 1; return b }
	drop := func([]byte) []byte { return nil }
	short := func(b []byte) []byte { return b[:len(b)-1] }
	policy := []byte(policyText)
	anyPolicy := []byte(strings.Replace(policyText, "group both 2 w1 pq", "group both any w1 pq", 1))
	pqOnly := []byte(fmt.Sprintf("log %s\nwitness pq %s %s\nquorum pq\n", logVKey, pq.VKey, pq.URL))
	flippedFile := bytes.Clone(try.content)
	flippedFile[len(flippedFile)/2] ^= 1
	old, _ := filepath.Glob(filepath.Join(vectorsDir, "mldsa-*"))
	for _, d := range old {
		os.RemoveAll(d)
	}
	for name, v := range map[string]struct {
		proof, policy, file []byte
		mode                string
		want, withoutMLDSA  int
	}{
		// The quorum needs pq: the verdict turns on its cosignature.
		"mldsa-valid":               {good, policy, nil, "", 0, 2},
		"mldsa-flipped-cosignature": {withSig("pq.example", flip), policy, nil, "", 1, 2},
		"mldsa-only-witness":        {good, pqOnly, nil, "", 0, 2},
		"mldsa-mirror-valid":        {good, policy, nil, "mirror", 0, 2},
		// Refused whatever pq's cosignature is.
		"mldsa-missing-cosignature":    {withSig("pq.example", drop), policy, nil, "", 1, 1},
		"mldsa-cosignature-wrong-size": {withSig("pq.example", short), policy, nil, "", 1, 1},
		"mldsa-flipped-ed25519":        {withSig("w1.example", flip), policy, nil, "", 1, 1},
		"mldsa-flipped-file":           {good, policy, flippedFile, "", 1, 1},
		// The quorum is met by w1 alone.
		"mldsa-any-ed25519-meets":   {good, anyPolicy, nil, "", 0, 0},
		"mldsa-any-flipped-mldsa":   {withSig("pq.example", flip), anyPolicy, nil, "", 1, 0},
		"mldsa-any-missing-ed25519": {withSig("w1.example", drop), anyPolicy, nil, "", 0, 2},
	} {
		source := try.path
		if v.file != nil {
			source = ""
		}
		writeVector(t, name, v.proof, v.policy, v.file, source, try.path, v.mode, v.want, v.withoutMLDSA)
	}
}

// TestPerlDistInstalls: 'perl Makefile.PL && make dist' in client/perl
// gives a tarball that cpanm installs (offline: CryptX is the only
// dependency outside core, from Debian), and its verifier runs.
// installPerlDist builds client/perl's distribution with 'perl
// Makefile.PL && make dist' and installs the tarball with cpanm into a
// local lib, whose directory it returns (scripts in bin/, modules in
// lib/perl5/): what a Perl user gets.
func installPerlDist(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	needCpanm(t)
	tarball, _ := buildPerlDist(t)
	// The tests travel with it: the shared vectors are in the tarball.
	if out, err := exec.Command("tar", "tzf", tarball).Output(); err != nil ||
		!strings.Contains(string(out), "t/vectors/valid-upload/proof") || !strings.Contains(string(out), "t/vectors/valid-upload/source") || !strings.Contains(string(out), "bin/cpanm-tlog") {
		t.Errorf("the distribution lacks the shared vectors or cpanm-tlog: %v\n%s", err, out)
	}
	lib := t.TempDir()
	cmd := exec.Command("cpanm", "-L", lib, tarball)
	cmd.Env = append(os.Environ(), "PERL_CPANM_HOME="+t.TempDir(), "HOME="+t.TempDir())
	cmd.Args = append(cmd.Args[:1], append([]string{"-v"}, cmd.Args[1:]...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpanm the dist: %v\n%s", err, out)
	}
	if m := regexp.MustCompile(`Files=\d+, Tests=(\d+)`).FindStringSubmatch(string(out)); m == nil || atoi(m[1]) < 40 {
		t.Errorf("the installed distribution's tests did not run the shared vectors:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(lib, "bin", "cpanm-tlog")); err != nil {
		t.Errorf("cpanm-tlog is not installed: %v", err)
	}
	return lib
}

func TestPerlDistInstalls(t *testing.T) {
	if !perlAvailable(t) {
		t.Skip("perl with CryptX not installed")
	}
	lib := installPerlDist(t)
	d := filepath.Join(vectorsDir, "valid-upload")
	run := exec.Command(filepath.Join(lib, "bin", "cpantlog-verify-pl"), "--policy", filepath.Join(d, "policy"), "--proof", filepath.Join(d, "proof"),
		"--path", "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", "../../testdata/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz")
	run.Env = append(os.Environ(), "PERL5LIB="+filepath.Join(lib, "lib", "perl5"))
	if out, err := run.CombinedOutput(); err != nil || !strings.Contains(string(out), "verified authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz") {
		t.Errorf("installed cpantlog-verify-pl: %v\n%s", err, out)
	}
}

// atoi is strconv.Atoi for figures a regexp matched as digits.
func atoi(s string) int { n, _ := strconv.Atoi(s); return n }
