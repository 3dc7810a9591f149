package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	tclient "github.com/transparency-dev/tessera/client"

	"github.com/CPAN-Security/cpan-tlog/client/tlogproof"
	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

// File is what a verifier needs to know of a local file.
type File struct {
	Path   string // its CPAN path, authors/id/...
	Size   uint64
	SHA256 [32]byte
}

// HashFile reads a file and returns its size and SHA-256. cpanPath is the
// CPAN path to check it against; one that is not a CPAN path (CheckPath)
// is refused first, an input error, before the file is read or anything is
// asked of the log.
func HashFile(name, cpanPath string) (File, error) {
	if cpanPath != "" {
		if err := CheckPath(cpanPath); err != nil {
			return File{}, err
		}
	}
	f, err := os.Open(name)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	out, err := HashReader(f, cpanPath)
	if err != nil {
		return File{}, fmt.Errorf("read %s: %w", name, err)
	}
	return out, nil
}

// HashReader reads r to the end and returns its size and SHA-256.
func HashReader(r io.Reader, cpanPath string) (File, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return File{}, err
	}
	out := File{Path: cpanPath, Size: uint64(n)}
	copy(out.SHA256[:], h.Sum(nil))
	return out, nil
}

// CheckPath checks that p is a path the log can hold, as the log itself
// does: a file below an author's directory (cpan.ValidatePath) or one of
// the index files (cpan.IndexPaths). Its error wraps cpan.ErrBadPath and
// says what a CPAN path looks like: it is the caller's input that is
// wrong (exit 2), not the log or the network.
func CheckPath(p string) error {
	if cpan.IsIndexPath(p) {
		return nil
	}
	_, err := cpan.ValidatePath(p)
	if err == nil {
		return nil
	}
	hint := ""
	if _, perr := cpan.ValidatePath(cpan.AuthorsPrefix + p); perr == nil {
		hint = fmt.Sprintf(" (did you mean %s%s?)", cpan.AuthorsPrefix, p)
	}
	return fmt.Errorf("%w%s; a CPAN path is the file's path from the root of a CPAN mirror: authors/id/, the author's directory (the PAUSE id's first letter, its first two letters, the id) and the file, e.g. authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz, or an index file such as modules/02packages.details.txt.gz", err, hint)
}

// GuessPath finds the CPAN path in a local file name that lies in a
// CPAN-shaped tree (…/authors/id/A/AB/ABC/File.tar.gz).
func GuessPath(name string) (string, bool) {
	abs, err := filepath.Abs(name)
	if err != nil {
		return "", false
	}
	abs = filepath.ToSlash(abs)
	i := strings.LastIndex(abs, "/"+cpan.AuthorsPrefix)
	if i < 0 {
		return "", false
	}
	p := abs[i+1:]
	if _, err := cpan.ValidatePath(p); err != nil {
		return "", false
	}
	return p, true
}

// Result says what was verified.
type Result struct {
	Index      uint64
	Leaf       []byte
	Entry      *entry.Entry
	Checkpoint *Checkpoint
	// Deleted is the index of a later delete entry for the path, if any.
	Deleted *uint64
	// Proof is the tlog-proof, for FetchProof.
	Proof []byte
}

// Verifier checks files against one log of a policy.
type Verifier struct {
	Policy  *Policy
	Log     *PolicyLog
	Fetcher *Fetcher // nil for offline use
	State   *State
	// CrossCheck, when set, compares the log's view with a witness's.
	CrossCheck *CrossCheck
}

// NewVerifier prepares online verification against the policy's log at
// location (its URL or a directory with its tiles; "" for the policy's URL).
// With more than one log in the policy, origin picks one.
func NewVerifier(p *Policy, origin, location string, st *State, cacheDir string) (*Verifier, error) {
	l := &p.Logs[0]
	if origin != "" {
		var ok bool
		if l, ok = p.Log(origin); !ok {
			return nil, fmt.Errorf("policy names no log %q", origin)
		}
	} else if len(p.Logs) > 1 {
		return nil, errors.New("policy names several logs: say which with --origin")
	}
	v := &Verifier{Policy: p, Log: l, State: st}
	if location == "" {
		location = l.URL
	}
	if location != "" {
		f, err := NewFetcher(location, cacheDir)
		if err != nil {
			return nil, err
		}
		v.Fetcher = f
	}
	return v, nil
}

// LogOfProof is the policy's log that a tlog-proof's checkpoint names (its
// origin line). A proof from a log the policy does not name is refused
// (ErrNotVerified, naming the origin); one that does not parse is an
// input error.
func (p *Policy) LogOfProof(raw []byte) (*PolicyLog, error) {
	tp, err := tlogproof.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w (is this a .tlog-proof file?)", err)
	}
	origin, _, _ := strings.Cut(string(tp.Checkpoint), "\n")
	l, ok := p.Log(origin)
	if !ok {
		return nil, notVerified("the proof is from log %q, which the policy does not name (it names %s)", origin, p.origins())
	}
	return l, nil
}

func (p *Policy) origins() string {
	var o []string
	for _, l := range p.Logs {
		o = append(o, l.Origin)
	}
	return strings.Join(o, ", ")
}

type lookupResponse struct {
	Index   uint64   `json:"index"`
	Entry   []byte   `json:"entry"`
	Deleted *uint64  `json:"deleted"`
	History []uint64 `json:"history"`
}

// VerifyFile proves online that file is logged: it looks the path up,
// checks the entry against the file, verifies the latest checkpoint against
// the policy, proves it consistent with the trusted state and proves the
// entry's inclusion in it.
func (v *Verifier) VerifyFile(ctx context.Context, file File) (*Result, error) {
	lr, err := v.lookup(ctx, file.Path)
	if err != nil {
		return nil, err
	}
	e, err := checkEntry(lr.Entry, file)
	if err != nil {
		return nil, err
	}
	res, err := v.proveIncluded(ctx, file.Path, lr.Index, lr.Entry)
	if err != nil {
		return nil, err
	}
	res.Entry, res.Deleted = e, lr.Deleted
	return res, nil
}

// lookup asks the log for the newest entry at a path.
func (v *Verifier) lookup(ctx context.Context, cpanPath string) (*lookupResponse, error) {
	if v.Fetcher == nil {
		// No log to ask: nothing is proven either way.
		return nil, &UnreachableError{fmt.Errorf("policy gives no URL for log %s: add it to the log line or pass --log", v.Log.Origin)}
	}
	body, err := v.Fetcher.GetAPI(ctx, "lookup?path="+url.QueryEscape(cpanPath))
	if errors.Is(err, ErrNotFound) {
		return nil, notVerified("%s is not in the log %s: do not install it", cpanPath, v.Log.Origin)
	}
	if err != nil {
		return nil, &UnreachableError{fmt.Errorf("look up %s: %w", cpanPath, err)}
	}
	var lr lookupResponse
	if err := json.Unmarshal(body, &lr); err != nil {
		return nil, notVerified("log answered the lookup of %s with malformed JSON: %v", cpanPath, err)
	}
	return &lr, nil
}

// proveIncluded proves that leaf is at index idx of the log's latest
// checkpoint, which it verifies against the policy and the trusted state.
func (v *Verifier) proveIncluded(ctx context.Context, cpanPath string, idx uint64, leaf []byte) (*Result, error) {
	cp, err := v.latestCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	if idx >= cp.Size {
		return nil, notVerified("%s is logged at index %d, but the latest checkpoint (size %d) does not cover it yet: try again in a few seconds", cpanPath, idx, cp.Size)
	}
	pb, err := tclient.NewProofBuilder(ctx, cp.Size, v.Fetcher.ReadTile)
	if err != nil {
		return nil, &UnreachableError{fmt.Errorf("read tiles: %w", err)}
	}
	hashes, err := pb.InclusionProof(ctx, idx)
	if err != nil {
		return nil, &UnreachableError{fmt.Errorf("build inclusion proof from tiles: %w", err)}
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, idx, cp.Size, rfc6962.DefaultHasher.HashLeaf(leaf), hashes, cp.Hash); err != nil {
		return nil, notVerified("the entry the log returned for %s is not at index %d of its tree: %v", cpanPath, idx, err)
	}
	return &Result{Index: idx, Leaf: leaf, Checkpoint: cp}, nil
}

// MaxClockSkew is how far past a verifier's clock a logged time may be
// (the log refuses later ones).
const MaxClockSkew = 5 * time.Minute

// DefaultMaxIndexLag is how much older than the newest logged version an
// index file may be and still be served.
const DefaultMaxIndexLag = 24 * time.Hour

// VerifyIndexFile proves online that file, one of the index files PAUSE
// publishes (cpan.IndexPaths), is logged as a version of its path, and that
// the log holds no version of that path newer than it by more than maxLag:
// an old index is how a freeze or downgrade attack looks.
func (v *Verifier) VerifyIndexFile(ctx context.Context, file File, maxLag time.Duration) (*Result, error) {
	if !cpan.IsIndexPath(file.Path) {
		return nil, fmt.Errorf("%s is not an index file (one of %s)", file.Path, strings.Join(cpan.IndexPaths, ", "))
	}
	lr, err := v.lookup(ctx, file.Path)
	if err != nil {
		return nil, err
	}
	newest, err := entry.Parse(lr.Entry)
	if err != nil || newest.Kind != entry.Index || newest.Path != file.Path {
		return nil, notVerified("the log's newest entry for %s is not an index version of it", file.Path)
	}
	if newest.SHA256 == file.SHA256 && newest.Size == file.Size {
		res, err := v.proveIncluded(ctx, file.Path, lr.Index, lr.Entry)
		if err != nil {
			return nil, err
		}
		res.Entry = newest
		return res, nil
	}
	// An older version? Find it by its hash and take its proof by index.
	body, err := v.Fetcher.GetAPI(ctx, "lookup?sha256="+hex.EncodeToString(file.SHA256[:]))
	if errors.Is(err, ErrNotFound) {
		return nil, notVerified("%s is not a version of that path in the log: the log's newest is index %d of %s (%d bytes, sha256 %s); this one has %d bytes, sha256 %s. Do not trust this mirror's index",
			file.Path, lr.Index, newest.Time.Format(entry.TimeFormat), newest.Size, hex.EncodeToString(newest.SHA256[:]), file.Size, hex.EncodeToString(file.SHA256[:]))
	}
	if err != nil {
		return nil, &UnreachableError{fmt.Errorf("look up sha256 of %s: %w", file.Path, err)}
	}
	var matches []struct {
		Index uint64 `json:"index"`
		Path  string `json:"path"`
	}
	if err := json.Unmarshal(body, &matches); err != nil {
		return nil, notVerified("log answered a sha256 lookup with malformed JSON: %v", err)
	}
	for _, m := range matches {
		if m.Path != file.Path || m.Index >= lr.Index {
			continue
		}
		res, err := v.proofByIndex(ctx, m.Index, file)
		if err != nil {
			return nil, err
		}
		if err := v.checkSuperseded(ctx, res, lr, maxLag); err != nil {
			return nil, err
		}
		return res, nil
	}
	return nil, notVerified("%s (sha256 %s) is not a version of that path in the log %s. Do not trust this mirror's index", file.Path, hex.EncodeToString(file.SHA256[:]), v.Log.Origin)
}

// checkSuperseded decides an older index version's freshness by the order
// of entries in the log, not by comparing the times written in them: the
// version res stopped being current when its successor (the next version
// of the path in the log) was logged, and it is stale once that happened
// more than maxLag ago. A successor's time is never taken as later than
// now, so a version logged with a time in the future cannot keep itself,
// or its predecessor, fresh.
func (v *Verifier) checkSuperseded(ctx context.Context, res *Result, lr *lookupResponse, maxLag time.Duration) error {
	next := lr.Index
	for _, h := range lr.History {
		if h > res.Index && h < next {
			next = h
		}
	}
	var succ *entry.Entry
	if next == lr.Index {
		// The newest version: its entry came with the lookup.
		inc, err := v.proveIncluded(ctx, res.Entry.Path, lr.Index, lr.Entry)
		if err != nil {
			return err
		}
		if succ, err = entry.Parse(inc.Leaf); err != nil {
			return notVerified("the log's newest entry for %s is malformed: %v", res.Entry.Path, err)
		}
	} else {
		var err error
		if succ, err = v.entryAt(ctx, next, res.Entry.Path); err != nil {
			return err
		}
	}
	now := time.Now()
	since := succ.Time
	if since.After(now) {
		since = now
	}
	if lag := now.Sub(since); lag > maxLag {
		return notVerified("%s is stale: it is the version logged at index %d, and the log has had a newer version since %s (index %d), %s ago; more than the %s allowed (--max-index-lag). The mirror may be frozen or replaying an old index: use another mirror",
			res.Entry.Path, res.Index, succ.Time.Format(entry.TimeFormat), next, lag.Round(time.Minute), maxLag)
	}
	return nil
}

// entryAt fetches and proves the entry at idx, which must be a version of
// the index file at cpanPath.
func (v *Verifier) entryAt(ctx context.Context, idx uint64, cpanPath string) (*entry.Entry, error) {
	raw, err := v.Fetcher.GetAPI(ctx, "proof?index="+strconv.FormatUint(idx, 10))
	if err != nil {
		return nil, &UnreachableError{fmt.Errorf("fetch proof of entry %d: %w", idx, err)}
	}
	p, err := tlogproof.Parse(raw)
	if err != nil {
		return nil, notVerified("log served a malformed proof of entry %d: %v", idx, err)
	}
	e, err := entry.Parse(p.Extra)
	if err != nil || e.Kind != entry.Index || e.Path != cpanPath {
		return nil, notVerified("entry %d, which the log lists as a version of %s, is not one", idx, cpanPath)
	}
	res, err := v.VerifyProof(raw, File{Path: e.Path, Size: e.Size, SHA256: e.SHA256})
	if err != nil {
		return nil, err
	}
	if res.Index != idx {
		return nil, notVerified("log served the proof of entry %d for entry %d", res.Index, idx)
	}
	if err := v.holdToLatest(ctx, res.Checkpoint); err != nil {
		return nil, err
	}
	return res.Entry, nil
}

// proofByIndex fetches the log's tlog-proof for the entry at idx and checks
// that it proves file.
func (v *Verifier) proofByIndex(ctx context.Context, idx uint64, file File) (*Result, error) {
	raw, err := v.Fetcher.GetAPI(ctx, "proof?index="+strconv.FormatUint(idx, 10))
	if err != nil {
		return nil, &UnreachableError{fmt.Errorf("fetch proof of entry %d: %w", idx, err)}
	}
	res, err := v.VerifyProof(raw, file)
	if err != nil {
		return nil, err
	}
	// The proof's checkpoint must be consistent with what we trust.
	if err := v.holdToLatest(ctx, res.Checkpoint); err != nil {
		return nil, err
	}
	return res, nil
}

// holdToLatest advances the trusted state to the log's latest checkpoint
// and proves cp, the checkpoint of a proof the log served before it, a
// prefix of it (from the log's tiles). Without this, a log could serve a
// proof under a fork's checkpoint and its honest tree on /checkpoint, and
// only a fork at the trusted size would be seen.
func (v *Verifier) holdToLatest(ctx context.Context, cp *Checkpoint) error {
	latest, err := v.latestCheckpoint(ctx)
	if err != nil {
		return err
	}
	switch {
	case cp.Size > latest.Size:
		return &CouldNotCheckError{fmt.Sprintf("the log served a proof under a checkpoint of size %d, larger than its latest (%d)", cp.Size, latest.Size)}
	case cp.Size == latest.Size:
		if !bytes.Equal(cp.Hash, latest.Hash) {
			return v.State.conflict(cp, latest.Raw, fmt.Sprintf("fork: the log served a proof under a checkpoint of size %d with another root than its latest", cp.Size))
		}
		return nil
	}
	pb, err := tclient.NewProofBuilder(ctx, latest.Size, v.Fetcher.ReadTile)
	if err != nil {
		return &UnreachableError{fmt.Errorf("read tiles: %w", err)}
	}
	p, err := pb.ConsistencyProof(ctx, cp.Size, latest.Size)
	if err != nil {
		return &UnreachableError{fmt.Errorf("consistency proof %d → %d: %w", cp.Size, latest.Size, err)}
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, cp.Size, latest.Size, p, cp.Hash, latest.Hash); err != nil {
		return v.State.conflict(cp, latest.Raw, fmt.Sprintf("fork: the log served a proof under a checkpoint of size %d that is not consistent with its latest of size %d (%v)", cp.Size, latest.Size, err))
	}
	return nil
}

// latestCheckpoint fetches the log's checkpoint, verifies it against the
// policy and advances the trusted state to it.
func (v *Verifier) latestCheckpoint(ctx context.Context) (*Checkpoint, error) {
	raw, err := v.Fetcher.ReadCheckpoint(ctx)
	if err != nil {
		return nil, &UnreachableError{fmt.Errorf("fetch checkpoint: %w", err)}
	}
	cp, err := v.Policy.VerifyCheckpoint(raw)
	if err != nil {
		return nil, err
	}
	if cp.Origin != v.Log.Origin {
		return nil, notVerified("log at %s serves checkpoints of %q, not %q", v.Log.URL, cp.Origin, v.Log.Origin)
	}
	err = v.State.Advance(ctx, cp, func(ctx context.Context, old, new uint64) ([][]byte, error) {
		pb, err := tclient.NewProofBuilder(ctx, new, v.Fetcher.ReadTile)
		if err != nil {
			return nil, err
		}
		return pb.ConsistencyProof(ctx, old, new)
	})
	if err != nil {
		return nil, err
	}
	if err := v.crossCheck(ctx, cp); err != nil {
		return nil, err
	}
	return cp, nil
}

// VerifyProof checks offline, with no network at all, that a tlog-proof
// proves file is logged: the checkpoint against the policy and the
// trusted state (a fork is still caught), the inclusion proof, and the
// entry in the proof's extra against the file.
func (v *Verifier) VerifyProof(raw []byte, file File) (*Result, error) {
	p, err := tlogproof.Parse(raw)
	if err != nil {
		// Not a proof at all: the input is wrong (exit 2), which is not
		// evidence about the file either way.
		return nil, fmt.Errorf("%w (is this a .tlog-proof file?)", err)
	}
	cp, err := v.Policy.VerifyCheckpoint(p.Checkpoint)
	if err != nil {
		return nil, err
	}
	// A signed checkpoint that forks from the trusted one is evidence
	// whatever the rest of the proof holds: checked before anything else
	// can refuse the proof (as the Perl verifier does).
	if err := v.State.Check(cp); err != nil {
		return nil, err
	}
	if p.Extra == nil {
		return nil, notVerified("tlog-proof has no extra line; cpan-tlog proofs carry the entry there")
	}
	if p.Index >= cp.Size {
		return nil, notVerified("tlog-proof index %d is outside its checkpoint of size %d", p.Index, cp.Size)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, p.Index, cp.Size, rfc6962.DefaultHasher.HashLeaf(p.Extra), p.InclusionProof, cp.Hash); err != nil {
		return nil, notVerified("tlog-proof's inclusion proof does not verify: %v", err)
	}
	e, err := checkEntry(p.Extra, file)
	if err != nil {
		if contradicts(p.Extra, file) {
			return nil, fmt.Errorf("%w: %w", ErrContradicted, err)
		}
		return nil, err
	}
	return &Result{Index: p.Index, Leaf: p.Extra, Entry: e, Checkpoint: cp}, nil
}

// VerifyMirrorProof checks file against a tlog-proof a mirror published
// (tlog/proofs/...), with no contact with the log: VerifyProof, and for an
// index file also its freshness, since a valid proof of an old index is how
// a freeze attack would look offline: its logged time must be within
// maxIndexLag of now.
func (v *Verifier) VerifyMirrorProof(raw []byte, file File, maxIndexLag time.Duration) (*Result, error) {
	res, err := v.VerifyProof(raw, file)
	if err != nil {
		return nil, err
	}
	if cpan.IsIndexPath(file.Path) {
		if res.Entry.Kind != entry.Index {
			return nil, notVerified("the proof for %s is not of an index version", file.Path)
		}
		if res.Entry.Time.After(time.Now().Add(MaxClockSkew)) {
			return nil, notVerified("%s: the version the mirror serves was logged with a time in the future (%s), which the log must refuse; its freshness cannot be judged offline: ask the log (--proofs off)",
				file.Path, res.Entry.Time.Format(entry.TimeFormat))
		}
		if age := time.Since(res.Entry.Time); age > maxIndexLag {
			return nil, notVerified("%s is stale: the version the mirror serves was logged at %s, %s ago, more than the %s allowed (--max-index-lag); the mirror may be frozen: use another mirror",
				file.Path, res.Entry.Time.Format(entry.TimeFormat), age.Round(time.Minute), maxIndexLag)
		}
	} else if cpan.MayOverwrite(file.Path) {
		// PAUSE lets this file be replaced, so a valid proof of an older
		// version is how a replay looks; offline only a recent one is fresh.
		if age := time.Since(res.Entry.Time); age > maxIndexLag || res.Entry.Time.After(time.Now().Add(MaxClockSkew)) {
			return nil, notVerified("%s may be replaced on CPAN, and the version the mirror's proof shows was logged at %s: only the log can say it is still the newest (within --max-index-lag, %s)",
				file.Path, res.Entry.Time.Format(entry.TimeFormat), maxIndexLag)
		}
	}
	return res, nil
}

// FetchProof fetches the tlog-proof for a path from the log, verifies it
// against the policy and the trusted state, and returns it.
func (v *Verifier) FetchProof(ctx context.Context, cpanPath string) (*Result, error) {
	if _, err := cpan.ValidatePath(cpanPath); err != nil {
		return nil, err
	}
	if v.Fetcher == nil {
		return nil, fmt.Errorf("policy gives no URL for log %s", v.Log.Origin)
	}
	raw, err := v.Fetcher.GetAPI(ctx, "proof?path="+url.QueryEscape(cpanPath))
	if errors.Is(err, ErrNotFound) {
		return nil, notVerified("%s is not in the log %s", cpanPath, v.Log.Origin)
	}
	if err != nil {
		return nil, err
	}
	p, err := tlogproof.Parse(raw)
	if err != nil {
		return nil, notVerified("log served a malformed proof: %v", err)
	}
	e, err := entry.Parse(p.Extra)
	if err != nil || e.Path != cpanPath {
		return nil, notVerified("log served a proof for another entry")
	}
	res, err := v.VerifyProof(raw, File{Path: cpanPath, Size: e.Size, SHA256: e.SHA256})
	if err != nil {
		return nil, err
	}
	// The proof's checkpoint is the log's latest: hold the log to it.
	if err := v.holdToLatest(ctx, res.Checkpoint); err != nil {
		return nil, err
	}
	res.Proof = raw
	return res, nil
}

// ErrContradicted is wrapped by a verdict that the file's own bytes
// decide: a proof that verifies shows another file logged at the file's
// path, which PAUSE never lets be replaced. Unlike any other failure of a
// mirror's proof, it stands without asking the log.
var ErrContradicted = errors.New("contradicted by a verified proof")

// contradicts reports whether a logged leaf (whose inclusion verified)
// is an upload at file's path, a path that can never hold other content,
// with another size or sha256.
func contradicts(leaf []byte, file File) bool {
	e, err := entry.Parse(leaf)
	return err == nil && e.Kind == entry.Upload && e.Path == file.Path && !cpan.MayOverwrite(e.Path) &&
		(e.SHA256 != file.SHA256 || e.Size != file.Size)
}

// checkEntry parses a logged leaf and compares it with the file.
func checkEntry(leaf []byte, file File) (*entry.Entry, error) {
	e, err := entry.Parse(leaf)
	if err != nil {
		return nil, notVerified("logged entry is malformed: %v", err)
	}
	if e.Kind != entry.Upload && e.Kind != entry.Index {
		return nil, notVerified("logged entry %q is a %s, not an upload", e.Path, e.Kind)
	}
	if file.Path != "" && e.Path != file.Path {
		return nil, notVerified("the log's entry is for %s, not %s", e.Path, file.Path)
	}
	if e.SHA256 != file.SHA256 || e.Size != file.Size {
		return nil, notVerified("%s does not match the log: the log recorded %d bytes with sha256 %s, the file has %d bytes with sha256 %s; it is not the file CPAN published, do not install it",
			e.Path, e.Size, hex.EncodeToString(e.SHA256[:]), file.Size, hex.EncodeToString(file.SHA256[:]))
	}
	return e, nil
}

// Summary is a few lines for people saying what was verified.
func (r *Result) Summary() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "verified %s\n", r.Entry.Path)
	fmt.Fprintf(&b, "  sha256 %s, %d bytes, uploaded by %s at %s\n", hex.EncodeToString(r.Entry.SHA256[:]), r.Entry.Size, r.Entry.Uploader, r.Entry.Time.Format(entry.TimeFormat))
	fmt.Fprintf(&b, "  log %s, index %d, checkpoint size %d\n", r.Checkpoint.Origin, r.Index, r.Checkpoint.Size)
	fmt.Fprintf(&b, "  cosigned by: %s\n", listOrNone(r.Checkpoint.CosignedBy))
	if r.Deleted != nil {
		fmt.Fprintf(&b, "  note: deleted from CPAN since (delete entry at index %d)\n", *r.Deleted)
	}
	return b.String()
}
