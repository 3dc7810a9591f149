package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/client/tlogproof"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

// TestVerifyCheckpointNeverAccuses: a checkpoint whose bytes were changed
// on the way (a CR or a control byte in its text, a signature line moved
// into the text, a corrupted duplicate of a good line) is refused
// (ErrNotVerified), never a security error: anyone who can flip a byte
// of a proof in transit makes one, so it is no evidence against the log.
// These are the edges where the Go verifier used to raise the alarm while
// the Perl one refused (issue 40).
func TestVerifyCheckpointNeverAccuses(t *testing.T) {
	k := newKeys(t, "localhost/cpan-tlog")
	p := k.policy(t, "both")
	good := string(k.checkpoint(t, 5, 0, 1))
	if _, err := p.VerifyCheckpoint([]byte(good)); err != nil {
		t.Fatalf("the good checkpoint: %v", err)
	}
	text, sigs, _ := strings.Cut(good, "\n\n")
	lines := strings.Split(strings.TrimSuffix(sigs, "\n"), "\n") // log, w1, w2
	text += "\n"
	tl := strings.Split(text, "\n") // origin, size, root
	note := func(text string, sigs ...string) string { return text + "\n" + strings.Join(sigs, "\n") + "\n" }
	flip := func(line string) string {
		b := []byte(line)
		i := len(b) - 5
		b[i] = map[bool]byte{true: 'B', false: 'A'}[b[i] == 'A']
		return string(b)
	}
	for name, cp := range map[string]string{
		"CR at the end of the origin line":    strings.Replace(good, "\n", "\r\n", 1),
		"CR in the root line":                 strings.Replace(good, "=\n\n", "=\r\n\n", 1),
		"CR LF line ends throughout":          strings.ReplaceAll(good, "\n", "\r\n"),
		"NUL in the text":                     strings.Replace(good, "\n5\n", "\n5\x00\n", 1),
		"control byte in the text":            strings.Replace(good, "\n5\n", "\n\x015\n", 1),
		"control byte in a signature line":    strings.Replace(good, "\u2014 w1.example ", "\u2014 w1.example\x1b ", 1),
		"invalid UTF-8 in the text":           strings.Replace(good, "\n5\n", "\n5\xff\n", 1),
		"log line moved into the text":        note(text+lines[0]+"\n", lines[1], lines[2]),
		"cosignature moved into the text":     note(text+lines[1]+"\n", lines[0], lines[2]),
		"log line moved above the text":       note(lines[0]+"\n"+text, lines[1], lines[2]),
		"log line flipped":                    note(text, flip(lines[0]), lines[1], lines[2]),
		"cosignature flipped":                 note(text, lines[0], flip(lines[1]), lines[2]),
		"corrupted duplicate of the log line": note(text, lines[0], lines[1], lines[2], flip(lines[0])),
		"corrupted duplicate of a cosig":      note(text, lines[0], lines[1], lines[2], flip(lines[2])),
		"log line truncated":                  note(text, lines[0][:len(lines[0])-8], lines[1], lines[2]),
		"size changed under the signatures":   strings.Replace(good, "\n5\n", "\n6\n", 1),
		"size and root lines swapped":         note(tl[0]+"\n"+tl[2]+"\n"+tl[1]+"\n", lines...),
		"log line with a CR before its end":   note(text, lines[0]+"\r", lines[1], lines[2]),
		"blank line removed":                  text + sigs,
	} {
		_, err := p.VerifyCheckpoint([]byte(cp))
		if !errors.Is(err, ErrNotVerified) || errors.Is(err, ErrSecurity) {
			t.Errorf("%s: %v, want a refusal (not verified), never a security error", name, err)
		}
		if ExitCode(err) != ExitNotVerified {
			t.Errorf("%s: exit %d, want %d", name, ExitCode(err), ExitNotVerified)
		}
		var bse *BadSignatureError
		if strings.Contains(name, "flipped") && !errors.As(err, &bse) {
			t.Errorf("%s: %v is not a BadSignatureError (the monitor tells them apart)", name, err)
		}
	}
}

// TestVerifyCheckpointNoncharacterName: a signature line of an unknown
// signer whose name holds a Unicode noncharacter (U+FFFE, U+FDD0: valid
// UTF-8, as x/mod's note and C2SP signed-note read it) is ignored like any
// other unknown signer's; a surrogate or an overlong form is not UTF-8
// and makes the note malformed. (The Perl verifier once refused the
// first, reading UTF-8 as Encode's strict 'UTF-8', which refuses
// noncharacters; vector unknown-signer-noncharacter.)
func TestVerifyCheckpointNoncharacterName(t *testing.T) {
	k := newKeys(t, "localhost/cpan-tlog")
	p := k.policy(t, "both")
	good := string(k.checkpoint(t, 5, 0, 1))
	sig := base64.StdEncoding.EncodeToString(append([]byte{1, 2, 3, 4}, bytes.Repeat([]byte{7}, 64)...))
	for _, c := range []struct {
		name string
		want error
	}{
		{"some\uffffone.example", nil},
		{"some\ufffeone.example", nil},
		{"some\ufdd0one.example", nil},
		{"some\U0010ffffone.example", nil},
		{"some\xed\xa0\x80one.example", ErrNotVerified},
		{"some\xc0\x80one.example", ErrNotVerified},
		{"some\xf4\x90\x80\x80one.example", ErrNotVerified},
		{"some\u00a0one.example", ErrNotVerified},
		{"some\u0085one.example", ErrNotVerified},
	} {
		_, err := p.VerifyCheckpoint([]byte(good + "\u2014 " + c.name + " " + sig + "\n"))
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("unknown signer %q: %v, want %v", c.name, err, c.want)
		}
	}
}

// TestVerifyProofForkFirst: a proof whose checkpoint, validly signed,
// forks from the trusted one is a security error whatever else is wrong
// with the proof (a file that does not match, an inclusion proof that
// does not verify): the signed checkpoint is the evidence. Without the
// fork the same proofs are refusals.
func TestVerifyProofForkFirst(t *testing.T) {
	k := newKeys(t, "localhost/cpan-tlog")
	p := k.policy(t, "none")
	content := []byte("the file")
	path := "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz"
	e := &entry.Entry{Kind: entry.Upload, Path: path, Size: uint64(len(content)), SHA256: sha256.Sum256(content), Uploader: "ETHER", Time: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}
	leaf, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	signed := func(root []byte) []byte {
		raw, err := note.Sign(&note.Note{Text: string(flog.Checkpoint{Origin: "localhost/cpan-tlog", Size: 1, Hash: root}.Marshal())}, k.logSigner)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	proofOf := func(extra []byte) []byte {
		b, err := (&tlogproof.Proof{Extra: extra, Index: 0, Checkpoint: signed(rfc6962.DefaultHasher.HashLeaf(leaf))}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	file := File{Path: path, Size: uint64(len(content)), SHA256: sha256.Sum256(content)}
	other := File{Path: path, Size: 3, SHA256: sha256.Sum256([]byte("bad"))}
	otherLeaf := bytes.Replace(leaf, []byte("ETHER\n"), []byte("ETHERX\n"), 1)
	for _, c := range []struct {
		name  string
		proof []byte
		file  File
	}{
		{"the file the proof shows", proofOf(leaf), file},
		{"a file that does not match", proofOf(leaf), other},
		{"an inclusion proof that does not verify", proofOf(otherLeaf), file},
	} {
		for _, forked := range []bool{false, true} {
			st, err := OpenState(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if forked {
				trusted, err := p.VerifyCheckpoint(signed(rfc6962.DefaultHasher.HashLeaf([]byte("another history"))))
				if err != nil {
					t.Fatal(err)
				}
				if err := st.Advance(context.Background(), trusted, nil); err != nil {
					t.Fatal(err)
				}
			}
			v := &Verifier{Policy: p, Log: &p.Logs[0], State: st}
			_, err = v.VerifyProof(c.proof, c.file)
			want := map[bool]int{false: ExitNotVerified, true: ExitSecurity}[forked]
			if c.name == "the file the proof shows" && !forked {
				want = ExitOK
			}
			if got := ExitCode(err); got != want {
				t.Errorf("%s, forked %v: exit %d (%v), want %d", c.name, forked, got, err, want)
			}
			if forked && !strings.Contains(fmt.Sprint(err), "fork") {
				t.Errorf("%s: %v does not say fork", c.name, err)
			}
		}
	}
}
