package monitor

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	tlog "github.com/CPAN-Security/cpan-tlog/log"
)

// TestUploadAfterDelete: a path PAUSE never lets change, logged again
// after its delete, is reported, checked as entries come and deferred to
// the end of a bulk audit alike: with its content, as upload-after-delete
// naming the upload, the delete and the repeat (what a writer frozen past
// its lease can log, log/late_attack_test.go); with other content, as the
// rewrite it already was, once, naming the delete. A documentation file
// PAUSE lets be uploaded again, and a delete with nothing after it, are
// no finding.
func TestUploadAfterDelete(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	const tarball = "authors/id/A/AB/ABC/Foo-1.0.tar.gz"
	const readme = "authors/id/A/AB/ABC/Foo-1.0.readme"
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
	cases := []struct {
		name   string
		leaves func(t *testing.T) [][]byte
		kind   string   // the one finding, "" for none
		words  []string // what its message says
	}{
		{"same content after delete", func(t *testing.T) [][]byte {
			return [][]byte{mkUpload(t, tarball, "ABC", "foo", at(0), nil), mkDeletion(t, tarball, at(1)), mkUpload(t, tarball, "ABC", "foo", at(2), nil)}
		}, KindUploadAfterDelete, []string{tarball, "at index 2", "upload at 0", "deleted at 1"}},
		{"other content after delete", func(t *testing.T) [][]byte {
			return [][]byte{mkUpload(t, tarball, "ABC", "foo", at(0), nil), mkDeletion(t, tarball, at(1)), mkUpload(t, tarball, "ABC", "evil", at(2), nil)}
		}, KindPathRewritten, []string{tarball, "at index 2", "first at 0, deleted at 1"}},
		{"overwritable, same content after delete", func(t *testing.T) [][]byte {
			return [][]byte{mkUpload(t, readme, "ABC", "r", at(0), nil), mkDeletion(t, readme, at(1)), mkUpload(t, readme, "ABC", "r", at(2), nil)}
		}, "", nil},
		{"overwritable, other content after delete", func(t *testing.T) [][]byte {
			return [][]byte{mkUpload(t, readme, "ABC", "r", at(0), nil), mkDeletion(t, readme, at(1)), mkUpload(t, readme, "ABC", "r2", at(2), nil)}
		}, "", nil},
		{"upload then delete", func(t *testing.T) [][]byte {
			return [][]byte{mkUpload(t, tarball, "ABC", "foo", at(0), nil), mkDeletion(t, tarball, at(1))}
		}, "", nil},
		{"same content again, no delete", func(t *testing.T) [][]byte {
			return [][]byte{mkUpload(t, tarball, "ABC", "foo", at(0), nil), mkUpload(t, tarball, "ABC", "foo", at(1), nil)}
		}, "", nil},
	}
	for _, c := range cases {
		for _, bulk := range []int{-1, 1} {
			t.Run(fmt.Sprintf("%s/bulk=%d", c.name, bulk), func(t *testing.T) {
				skey, vkey, _ := note.GenerateKey(rand.Reader, tlog.DefaultOrigin)
				signer, _ := note.NewSigner(skey)
				logURL, _, _, _ := craftedLog(t, c.leaves(t), signer, t.TempDir())
				state := t.TempDir()
				fs, err := syncWith(t, logURL, vkey, state, bulk, nil)
				if err != nil {
					t.Fatal(err)
				}
				if c.kind == "" {
					if len(fs) != 0 {
						t.Fatalf("findings %+v, want none", fs)
					}
					return
				}
				if len(fs) != 1 || fs[0].Kind != c.kind || !fs[0].Security || fs[0].Path != tarball || *fs[0].Index != 2 {
					t.Fatalf("findings %+v, want one security %s of %s at index 2", fs, c.kind, tarball)
				}
				for _, w := range c.words {
					if !strings.Contains(fs[0].Message, w) {
						t.Errorf("message %q does not say %q", fs[0].Message, w)
					}
				}
				// The repeat is the path's latest upload now (what the log
				// says), reported once.
				if rec := latestUploads(t, state)[tarball]; rec.Deleted || rec.Index != 2 {
					t.Errorf("latest record %+v, want the upload at 2, not deleted", rec)
				}
				if fs, err := syncWith(t, logURL, vkey, state, bulk, nil); err != nil || len(fs) != 0 {
					t.Errorf("second round: %v %+v", err, fs)
				}
			})
		}
	}
}

// TestUploadAfterDeleteOldRecord: a deleted upload on record from before
// records kept the delete's index still makes a repeat a finding, which
// says it cannot name the delete.
func TestUploadAfterDeleteOldRecord(t *testing.T) {
	p := "authors/id/A/AB/ABC/Foo-1.0.tar.gz"
	prev := testUpload(3)
	prev.Deleted = true // DeletedAt unknown
	f, ok := uploadFinding(9, p, true, prev, testUpload(3))
	if !ok || f.Kind != KindUploadAfterDelete || !strings.Contains(f.Message, "upload at 3, deleted later") {
		t.Fatalf("finding %v %+v, want %s saying the upload at 3 was deleted later", ok, f, KindUploadAfterDelete)
	}
}

// TestDeletedAtRecord: a deleted upload's record keeps its delete's index,
// and a record that says the index follows without saying "deleted" (which
// no writer makes) is damage.
func TestDeletedAtRecord(t *testing.T) {
	rec := testUpload(4)
	rec.Deleted, rec.DeletedAt = true, 7
	if p, got, _, err := decodeRecord(appendRecord(nil, testPath(4), rec)); err != nil || p != testPath(4) || got != rec {
		t.Fatalf("decoded %q %+v, %v; want %q %+v", p, got, err, testPath(4), rec)
	}
	// Unchecksummed (an old file's format), so that only the flags can
	// refuse it.
	b := appendRecord(nil, testPath(4), upload{Index: 4, Deleted: true, DeletedAt: 7})
	b = b[:len(b)-4]
	b[0] &^= flagDeleted | flagChecksum
	if _, _, _, err := decodeRecord(b); err == nil {
		t.Error("a record with the delete's index but not deleted decodes")
	}
}
