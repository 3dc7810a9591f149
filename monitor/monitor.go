// Package monitor audits a cpan-tlog log the way a third party must: it
// verifies every checkpoint against a trust policy, proves each one
// consistent with the last it trusted, downloads every entry, rebuilds the
// tree in a compact range (memory stays flat whatever the log's size) until
// the root equals the checkpoint's, checks the served hash tiles against the
// entries, and runs rules over every entry: rewritten paths, uploads into
// another author's directory, watched distributions, authors or paths,
// changed or missing Sigstore identities, and split views seen by peers.
//
// Findings have stable kinds and IDs; each is reported once, through a
// durable outbox, and the monitor resumes exactly where it stopped.
package monitor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"
	tclient "github.com/transparency-dev/tessera/client"
	bolt "go.etcd.io/bbolt"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

// Config says what to monitor and how.
type Config struct {
	// Log is the log's URL or a directory with its tiles; "" means the
	// policy's URL for the log.
	Log      string
	Policy   *client.Policy
	StateDir string
	Watch    []WatchRule
	// Peers are other views of the log's checkpoint: a witness's read
	// endpoint, another monitor's, or a saved checkpoint file. Every
	// witness of the policy with a URL is one too, unless NoWitnessPeers.
	Peers          []string
	NoWitnessPeers bool
	// MaxViewLag is how long the log may show this monitor an older tree
	// than a peer saw it sign before that is reported (default 1h).
	MaxViewLag time.Duration
	// Mirror, when set (a CPAN mirror's URL or local tree), is where each
	// newly logged 02packages and 06perms is fetched (checked against the
	// logged sha256) to diff it with the previous version.
	Mirror string
	// Workers is how many entry bundles are fetched at once (default 4).
	Workers uint
	// BulkAudit: an audit of at least this many new entries, and of more
	// than the paths already on record, checks paths for rewrites at its
	// end, sorting on disk, instead of in a table of every path held in
	// memory (see bulkPaths). 0 means DefaultBulkAudit; negative, never.
	BulkAudit int
	// Router, when set, gets every new finding and every logged upload
	// and deletion, in the transaction that records them (see Router).
	Router Router
	// Progress receives a progress line now and then during long syncs.
	Progress io.Writer
	Logger   *slog.Logger
}

// Monitor audits one log.
type Monitor struct {
	cfg     Config
	log     *client.PolicyLog
	trusted *client.State
	st      *state
	watch   []WatchRule
	metrics *metrics
	http    *http.Client
	// roundMu guards how the last round ended, for /healthz.
	roundMu sync.Mutex
	lastOK  time.Time
	lastErr error
	// healthChecks are the parts' own (AddHealthCheck).
	healthChecks []func() string
	// logBase is the log's URL ("" when the log is read from the
	// directory logDir).
	logBase string
	logDir  string
	// skippedPeers are peers without a read endpoint, logged once.
	skippedPeers map[string]bool
	// lastSize is the size of the checkpoint the last round audited.
	lastSize uint64
	// tracksDists says whether any distribution has a Sigstore identity
	// on record (the dists bucket is not empty), as of the batch's
	// transaction: looking it up for every entry was a noticeable cost.
	tracksDists bool
}

// LastCheckpointSize is the size of the checkpoint the last Sync trusted.
func (m *Monitor) LastCheckpointSize() uint64 { return m.lastSize }

// New opens the monitor's state under cfg.StateDir.
func New(cfg Config) (*Monitor, error) {
	if cfg.Policy == nil || len(cfg.Policy.Logs) == 0 {
		return nil, errors.New("no policy")
	}
	if len(cfg.Policy.Logs) > 1 {
		return nil, errors.New("the policy names several logs; a monitor audits one: give it a policy with one log line")
	}
	if cfg.Workers == 0 {
		cfg.Workers = 4
	}
	if cfg.BulkAudit == 0 {
		cfg.BulkAudit = DefaultBulkAudit
	}
	if cfg.MaxViewLag == 0 {
		cfg.MaxViewLag = time.Hour
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	l := &cfg.Policy.Logs[0]
	loc := cfg.Log
	if loc == "" {
		loc = l.URL
	}
	if loc == "" {
		return nil, errors.New("no log URL: pass --log or put the URL on the policy's log line")
	}
	var logBase, logDir string
	if strings.HasPrefix(loc, "http://") || strings.HasPrefix(loc, "https://") {
		logBase = strings.TrimSuffix(loc, "/")
	} else {
		st, err := os.Stat(loc)
		if err != nil {
			return nil, fmt.Errorf("log location %q is neither an http(s) URL nor a directory: %w", loc, err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("log location %q is not a directory", loc)
		}
		logDir = loc
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, err
	}
	trusted, err := client.OpenState(filepath.Join(cfg.StateDir, "trusted"))
	if err != nil {
		return nil, err
	}
	st, err := openState(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	st.router = cfg.Router
	m := &Monitor{cfg: cfg, log: l, trusted: trusted, st: st, watch: cfg.Watch, logBase: logBase, logDir: logDir,
		metrics: newMetrics(), http: client.NewHTTPClient(30 * time.Second), skippedPeers: map[string]bool{}}
	// The gauges say what the state holds from the start, not 0 until
	// something new arrives (an alert on them would fire after a restart).
	if n, _, err := st.position(); err == nil {
		m.metrics.audited.Set(float64(n))
	}
	m.metrics.checkpointSize.Set(float64(m.trustedSize()))
	return m, nil
}

// trustedSize is the size of the checkpoint trusted last for this log's
// key (0 if none): a state another key of the same origin left is not this
// log's.
func (m *Monitor) trustedSize() uint64 {
	if raw, err := m.trusted.TrustedFor(m.log.Origin, m.log.VKey); err == nil && raw != nil {
		if lines := strings.SplitN(string(raw), "\n", 3); len(lines) > 1 {
			if size, err := strconv.ParseUint(lines[1], 10, 64); err == nil {
				return size
			}
		}
	}
	return 0
}

// noteSize is the tree size a checkpoint note states (its second line),
// whether or not it verifies.
func noteSize(raw []byte) (uint64, bool) {
	if lines := strings.SplitN(string(raw), "\n", 3); len(lines) > 1 {
		if size, err := strconv.ParseUint(lines[1], 10, 64); err == nil {
			return size, true
		}
	}
	return 0, false
}

// Close closes the state.
func (m *Monitor) Close() error { return m.st.close() }

// Audited returns how many entries have been audited.
func (m *Monitor) Audited() (uint64, error) {
	n, _, err := m.st.position()
	return n, err
}

func checkpointFinding(kind string, security bool, raw []byte, evidence, format string, args ...any) Finding {
	h := sha256.Sum256(raw)
	return Finding{ID: kind + ":" + hex.EncodeToString(h[:8]), Kind: kind, Security: security, Message: fmt.Sprintf(format, args...), Evidence: evidence}
}

// saveEvidence writes files into a new evidence directory.
func (m *Monitor) saveEvidence(kind string, files map[string][]byte) string {
	dir := filepath.Join(m.cfg.StateDir, "evidence", time.Now().UTC().Format("20060102T150405.000000000Z")+"-"+kind)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return ""
	}
	for name, b := range files {
		os.WriteFile(filepath.Join(dir, name), b, 0o600)
	}
	return dir
}

// Sync runs one round: checkpoint, consistency, every new entry, rules and
// peers. Findings go to the outbox (see Deliver). An error means the round
// could not finish (network, disk); findings are not errors.
func (m *Monitor) Sync(ctx context.Context) error {
	raw, err := m.readLog(ctx, layout.CheckpointPath, client.MaxCheckpointSize)
	if why, ok := isUnauditable(err); ok {
		// Reported once for each tree size trusted before it.
		f := Finding{ID: fmt.Sprintf("%s:checkpoint:after:%d", KindLogUnauditable, m.trustedSize()), Kind: KindLogUnauditable, Security: true,
			Message: fmt.Sprintf("the log's checkpoint cannot be read (%s): nothing the log added since the last checkpoint this monitor trusted can be audited, and clients may be shown another", why)}
		return errors.Join(fmt.Errorf("fetch checkpoint: %w", err), m.st.recordNow(f))
	}
	if err != nil {
		return fmt.Errorf("fetch checkpoint: %w", err)
	}
	if size, ok := noteSize(raw); ok {
		m.metrics.logSize.Set(float64(size))
	}
	cp, err := m.cfg.Policy.VerifyCheckpoint(raw)
	var se *client.SecurityError
	switch {
	case errors.As(err, &se):
		ev := m.saveEvidence(KindCheckpointBadSignature, map[string][]byte{"checkpoint": raw})
		return m.st.recordNow(checkpointFinding(KindCheckpointBadSignature, true, raw, ev, "%s", se.Reason))
	case errors.Is(err, client.ErrNotVerified):
		return m.st.recordNow(checkpointFinding(KindCheckpointUntrusted, false, raw, "", "checkpoint not trusted: %v", err))
	case err != nil:
		return err
	}
	var badTile error
	err = m.trusted.Advance(ctx, cp, func(ctx context.Context, old, new uint64) ([][]byte, error) {
		pb, err := tclient.NewProofBuilder(ctx, new, m.tileReader(&badTile))
		if err != nil {
			return nil, err
		}
		return pb.ConsistencyProof(ctx, old, new)
	})
	if errors.As(err, &se) {
		kind := KindFork
		if strings.HasPrefix(se.Reason, "rollback") {
			kind = KindRollback
		}
		return m.st.recordNow(checkpointFinding(kind, true, raw, se.EvidenceDir, "%s", se.Reason))
	}
	if err != nil && badTile != nil {
		// The new checkpoint is not trusted: a fork could hide here.
		why, _ := isUnauditable(badTile)
		ev := m.saveEvidence(KindLogUnauditable, map[string][]byte{"checkpoint": raw})
		f := checkpointFinding(KindLogUnauditable, true, raw, ev, "the log's hash tiles cannot prove its checkpoint of size %d consistent with the one this monitor trusted (%s): nothing from there on can be audited", cp.Size, why)
		return errors.Join(err, m.st.recordNow(f))
	}
	if err != nil {
		return err
	}
	m.metrics.checkpointSize.Set(float64(cp.Size))
	m.lastSize = cp.Size
	// An audit stopped by something the log served that cannot be
	// audited is a finding already; what was audited before it still has
	// its index versions diffed and the peers compared.
	err = m.syncEntries(ctx, cp)
	var stopped *auditStopped
	if err != nil && !errors.As(err, &stopped) {
		return err
	}
	if derr := m.diffIndexes(ctx); derr != nil {
		return errors.Join(err, derr)
	}
	return errors.Join(err, m.checkPeers(ctx, cp))
}

// auditStopped is the error of a round whose audit stopped at something
// the log served that cannot be audited (reported as a finding).
type auditStopped struct {
	at  uint64 // entries audited
	why string
}

func (e *auditStopped) Error() string {
	return fmt.Sprintf("the audit stopped after %d entries: %s", e.at, e.why)
}

// batchBundles is how many entry bundles one state transaction covers.
const batchBundles = 64

// maxMalformed is how many malformed entries a round reports one by one.
const maxMalformed = 1000

func (m *Monitor) syncEntries(ctx context.Context, cp *client.Checkpoint) error {
	audited, hashes, err := m.st.position()
	if err != nil {
		return err
	}
	if audited > cp.Size {
		return fmt.Errorf("monitor state has audited %d entries, more than the trusted checkpoint's %d: this state belongs to another log", audited, cp.Size)
	}
	rf := compact.RangeFactory{Hash: hashChildren}
	rng, err := rf.NewRange(0, audited, hashes)
	if err != nil {
		return fmt.Errorf("monitor state: %w", err)
	}
	var stopped *auditStopped
	if audited < cp.Size {
		if err := m.streamEntries(ctx, cp, audited, rng); err != nil && !errors.As(err, &stopped) {
			return err
		}
	}
	// The deferred checks of the entries audited run also when the audit
	// stopped short of the checkpoint: what was audited is checked.
	if m.st.uploads.bulk != nil {
		if err := m.st.finishBulk(m.cfg.Progress); err != nil {
			return fmt.Errorf("checking the audited paths: %w", err)
		}
	}
	if stopped != nil {
		return stopped
	}
	if rng.End() != cp.Size {
		return fmt.Errorf("the audit stopped at %d of %d entries", rng.End(), cp.Size)
	}
	root, err := rng.GetRootHash(nil)
	if err != nil {
		return err
	}
	if !bytes.Equal(root, cp.Hash) {
		ev := m.saveEvidence(KindRootMismatch, map[string][]byte{"checkpoint": cp.Raw, "computed-root": []byte(hex.EncodeToString(root) + "\n")})
		return m.st.recordNow(Finding{ID: fmt.Sprintf("%s:%d:%x", KindRootMismatch, cp.Size, cp.Hash[:8]), Kind: KindRootMismatch, Security: true, Evidence: ev,
			Message: fmt.Sprintf("the log's %d entries hash to %x, but its checkpoint says %x: the log serves entries it did not commit to", cp.Size, root, cp.Hash)})
	}
	return nil
}

// hashChildren is rfc6962.DefaultHasher.HashChildren without a hasher
// allocated for every node of the tree.
func hashChildren(l, r []byte) []byte {
	var b [1 + 2*sha256.Size]byte
	b[0] = rfc6962.RFC6962NodeHashPrefix
	copy(b[1:], l)
	copy(b[1+sha256.Size:], r)
	h := sha256.Sum256(b[:])
	return h[:]
}

// streamEntries audits entries [from, cp.Size), appending to rng. Fetching,
// hashing, strict parsing and the tile check need no state and run on
// Workers goroutines (checkBundles); this goroutine only extends the
// compact range and runs the rules, in log order.
func (m *Monitor) streamEntries(ctx context.Context, cp *client.Checkpoint, from uint64, rng *compact.Range) error {
	start, last := time.Now(), time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Every new entry may be a new path: make room once, not on the way
	// (and before the workers hash paths under the table's seed), or check
	// paths in bulk at the end.
	uploads, n := m.st.uploads, int(cp.Size-from)
	switch {
	case uploads.bulk != nil:
	case m.cfg.BulkAudit > 0 && n >= m.cfg.BulkAudit && n > uploads.used:
		if err := uploads.beginBulk(); err != nil {
			return err
		}
	default:
		if err := uploads.reserve(n); err != nil {
			return err
		}
	}
	bundles := m.checkBundles(ctx, cp, from, m.st.uploads.seed)
	var stopped *auditStopped
	malformed := 0 // entry-malformed findings this round
	for done := false; !done; {
		err := m.st.commitBatch(func(tx *bolt.Tx) error {
			m.tracksDists = !bucketEmpty(tx, bDists)
			var findings []Finding
			var latest time.Time
			// Past maxMalformed in a round, the batch's malformed entries
			// are reported together: a log of junk would otherwise flood.
			var flood struct{ n, first, last uint64 }
			for range batchBundles {
				future, ok := <-bundles
				if !ok {
					if err := ctx.Err(); err != nil {
						return err // stopped early: not the end of the log
					}
					done = true
					break
				}
				b := <-future
				if b.err != nil {
					why, ok := isUnauditable(b.err)
					if !ok && errors.Is(b.err, errNotFound) {
						why, ok = b.err.Error(), true
					}
					if !ok {
						return b.err
					}
					// The entries audited so far are committed with the
					// finding; none after the bundle can be.
					ri := b.ri
					findings = append(findings, Finding{ID: fmt.Sprintf("%s:entries/%d", KindLogUnauditable, ri.Index), Kind: KindLogUnauditable, Security: true,
						Message: clip(fmt.Sprintf("entry bundle %d cannot be audited (%s): the audit stops before it, so nothing the log holds from entry %d on (of the %d its checkpoint commits to) is checked until the log serves it whole", ri.Index, why, rng.End(), cp.Size), maxMessage)})
					stopped = &auditStopped{at: rng.End(), why: why}
					done = true
					break
				}
				if b.tileErr != "" {
					ri := b.ri
					findings = append(findings, Finding{ID: fmt.Sprintf("%s:tile/0/%d:%d", KindLogUnauditable, ri.Index, b.width), Kind: KindLogUnauditable, Security: true,
						Message: clip(fmt.Sprintf("hash tile 0/%d cannot be audited (%s): clients proving inclusion of entries of bundle %d cannot be checked against it", ri.Index, b.tileErr, ri.Index), maxMessage)})
				}
				fs, t, err := m.auditBundle(tx, b, rng)
				if err != nil {
					return err
				}
				for _, f := range fs {
					if f.Kind == KindEntryMalformed {
						if malformed++; malformed > maxMalformed {
							if flood.n == 0 {
								flood.first = *f.Index
							}
							flood.n, flood.last = flood.n+1, *f.Index
							continue
						}
					}
					findings = append(findings, f)
				}
				if t.After(latest) {
					latest = t
				}
			}
			if flood.n > 0 {
				findings = append(findings, Finding{ID: fmt.Sprintf("%s:%d-%d", KindEntryMalformed, flood.first, flood.last), Kind: KindEntryMalformed,
					Message: fmt.Sprintf("%d more entries between %d and %d are not valid v1 entries (not listed one by one: more than %d in this round); the log serves junk, look at it as a whole", flood.n, flood.first, flood.last, maxMalformed)})
			}
			if !latest.IsZero() {
				fs, err := expirePending(tx, latest)
				if err != nil {
					return err
				}
				findings = append(findings, fs...)
			}
			if err := m.st.record(tx, findings, m.st.batchUploads...); err != nil {
				return err
			}
			var buf bytes.Buffer
			for _, h := range rng.Hashes() {
				buf.Write(h)
			}
			m := tx.Bucket(bMeta)
			if err := m.Put(kAudited, binary.BigEndian.AppendUint64(nil, rng.End())); err != nil {
				return err
			}
			return m.Put(kRange, buf.Bytes())
		})
		if err != nil {
			return err
		}
		m.metrics.audited.Set(float64(rng.End()))
		if stopped != nil {
			return stopped
		}
		if time.Since(last) > time.Second || (done && cp.Size-from > 10000) {
			last = time.Now()
			n := rng.End() - from
			rate := float64(n) / time.Since(start).Seconds()
			eta := time.Duration(float64(cp.Size-rng.End())/max(rate, 1)) * time.Second
			fmt.Fprintf(m.cfg.Progress, "audited %d/%d entries (%.0f entries/s, ETA %s)\n", rng.End(), cp.Size, rate, eta.Round(time.Second))
		}
	}
	return nil
}

// checkedBundle is an entry bundle with the checks that need no state done.
type checkedBundle struct {
	ri         layout.RangeInfo
	leafHashes []byte // 32 bytes per entry of the bundle
	entries    []*entry.Entry
	// pathHashes are the entries' paths hashed under seed, the uploads
	// table's when the bundle was checked.
	pathHashes []uint64
	seed       uint64
	parseErrs  []error
	tileOK     bool
	// tileErr says why the bundle's hash tile cannot be audited (the log
	// does not serve it, or not as a tile); tileOK is false then.
	tileErr string
	width   int
	err     error // the bundle or its tile could not be fetched or read
}

// checkBundles fetches and checks the bundles of [from, cp.Size) on
// Workers goroutines and sends one future per bundle, in log order; the
// channel is closed after the last one, or early when ctx is done. Paths
// are hashed under seed.
func (m *Monitor) checkBundles(ctx context.Context, cp *client.Checkpoint, from, seed uint64) <-chan chan checkedBundle {
	type job struct {
		ri  layout.RangeInfo
		out chan checkedBundle
	}
	jobs := make(chan job)
	// The workers may run this many bundles ahead of the rules: enough to
	// keep them busy while the rules' goroutine commits a batch (at 10M
	// entries, twice the workers left them idle for 1.5–2.9 s of a 14 s
	// audit, four times for 0.4 s), few enough to keep the monitor's memory
	// small (each bundle waiting is about 100 KB).
	order := make(chan chan checkedBundle, 4*m.cfg.Workers)
	go func() {
		defer close(order)
		defer close(jobs)
		for ri := range layout.Range(from, cp.Size-from, cp.Size) {
			j := job{ri: ri, out: make(chan checkedBundle, 1)}
			select {
			case jobs <- j:
			case <-ctx.Done():
				return
			}
			select {
			case order <- j.out:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range m.cfg.Workers {
		go func() {
			r := newBundleReader()
			for j := range jobs {
				j.out <- m.checkBundle(ctx, r, cp.Size, j.ri, seed)
			}
		}()
	}
	return order
}

// checkBundle fetches one entry bundle and its level-0 hash tile, hashes
// and strictly parses the entries in the range, and compares the tile with
// the leaf hashes, and hashes the entries' paths under seed.
func (m *Monitor) checkBundle(ctx context.Context, r *bundleReader, size uint64, ri layout.RangeInfo, seed uint64) checkedBundle {
	b := checkedBundle{ri: ri, seed: seed}
	if err := m.readBundle(ctx, r, ri, &b); err != nil {
		b.err = fmt.Errorf("entry bundle %d: %w", ri.Index, err)
		return b
	}
	tile, err := m.readTile(ctx, 0, ri.Index, layout.PartialTileSize(0, ri.Index, size))
	if why, ok := isUnauditable(err); ok {
		b.tileErr = why
		return b
	}
	if errors.Is(err, errNotFound) {
		b.tileErr = err.Error()
		return b
	}
	if err != nil {
		b.err = fmt.Errorf("fetch hash tile 0/%d: %w", ri.Index, err)
		return b
	}
	b.tileOK = bytes.Equal(tile, b.leafHashes)
	return b
}

// auditBundle extends the compact range with a checked bundle's leaves and
// runs the rules over its entries. It returns the latest entry time seen.
func (m *Monitor) auditBundle(tx *bolt.Tx, b checkedBundle, rng *compact.Range) ([]Finding, time.Time, error) {
	var findings []Finding
	var latest time.Time
	ri := b.ri
	if !b.tileOK && b.tileErr == "" {
		findings = append(findings, Finding{ID: fmt.Sprintf("%s:0/%d:%d", KindTileMismatch, ri.Index, b.width), Kind: KindTileMismatch, Security: true,
			Message: fmt.Sprintf("hash tile 0/%d does not hold the leaf hashes of entry bundle %d: clients proving inclusion from it are misled", ri.Index, ri.Index)})
	}
	uploads := m.st.uploads
	if b.seed != uploads.seed {
		// The table was rebuilt (and reseeded) since the bundle was checked.
		for i, e := range b.entries {
			if e != nil {
				b.pathHashes[i] = hashPath(uploads.seed, e.Path)
			}
		}
	}
	if uploads.bulk == nil {
		uploads.prefetch(b.pathHashes[ri.First : ri.First+ri.N])
	}
	for i := ri.First; i < ri.First+ri.N; i++ {
		idx := ri.Index*layout.EntryBundleWidth + uint64(i)
		if err := rng.Append(b.leafHashes[32*i:32*i+32:32*i+32], nil); err != nil {
			return nil, time.Time{}, err
		}
		fs, err := m.checkEntry(tx, idx, b.entries[i], b.parseErrs[i], b.pathHashes[i])
		if err != nil {
			return nil, time.Time{}, err
		}
		findings = append(findings, fs...)
		if b.entries[i] != nil && b.entries[i].Time.After(latest) {
			latest = b.entries[i].Time
		}
	}
	m.metrics.entries.Add(float64(ri.N))
	return findings, latest, nil
}

// checkPeers compares the checkpoints other parties saw with ours: the
// policy's witnesses (their read endpoint) unless NoWitnessPeers, and the
// configured peers. A peer's view of our size or smaller must be
// consistent with ours (else split-view); a view ahead of ours is kept in
// the state and checked every round: once ours reaches its size,
// consistency decides, and if ours stays behind it for more than
// MaxViewLag the log is showing this monitor a stale view.
func (m *Monitor) checkPeers(ctx context.Context, cp *client.Checkpoint) error {
	for _, peer := range m.peers() {
		raw, err := m.readPeer(ctx, peer)
		if errors.Is(err, errNotFound) {
			if !m.skippedPeers[peer] {
				m.cfg.Logger.Info("peer does not serve the latest-checkpoint endpoint (404); skipped", "peer", peer)
				m.skippedPeers[peer] = true
			}
			continue
		}
		if err != nil {
			m.cfg.Logger.Warn("peer checkpoint unavailable", "peer", peer, "err", err)
			continue
		}
		pcp, _, _, err := flog.ParseCheckpoint(raw, m.log.Origin, m.log.Verifier)
		if err != nil {
			m.cfg.Logger.Warn("peer checkpoint does not carry the log's signature; ignored", "peer", peer, "err", err)
			continue
		}
		if pcp.Size > cp.Size {
			if err := m.st.keepView(peer, pcp, raw, time.Now()); err != nil {
				return err
			}
			continue
		}
		if err := m.compareView(ctx, cp, peer, pcp, raw); err != nil {
			return err
		}
	}
	return m.checkKeptViews(ctx, cp)
}

// compareView checks a peer's view of a size up to ours.
func (m *Monitor) compareView(ctx context.Context, cp *client.Checkpoint, peer string, pcp *flog.Checkpoint, raw []byte) error {
	var why string
	switch {
	case pcp.Size == cp.Size && !bytes.Equal(pcp.Hash, cp.Hash):
		why = fmt.Sprintf("%s saw a checkpoint of size %d with root %x, this monitor saw %x", peer, pcp.Size, pcp.Hash, cp.Hash)
	case pcp.Size < cp.Size && pcp.Size > 0:
		var badTile error
		pb, err := tclient.NewProofBuilder(ctx, cp.Size, m.tileReader(&badTile))
		var p [][]byte
		if err == nil {
			p, err = pb.ConsistencyProof(ctx, pcp.Size, cp.Size)
		}
		if err != nil && badTile != nil {
			why, _ := isUnauditable(badTile)
			return m.st.recordNow(checkpointFinding(KindLogUnauditable, true, raw, "", "the log's hash tiles cannot prove the checkpoint of size %d that %s saw consistent with this monitor's of size %d (%s): a split view cannot be ruled out", pcp.Size, peer, cp.Size, why))
		}
		if err != nil {
			return fmt.Errorf("consistency proof for peer %s: %w", peer, err)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, pcp.Size, cp.Size, p, pcp.Hash, cp.Hash); err != nil {
			why = fmt.Sprintf("%s saw a checkpoint of size %d that is not consistent with this monitor's of size %d", peer, pcp.Size, cp.Size)
		}
	}
	if why == "" {
		return nil
	}
	ev := m.saveEvidence(KindSplitView, map[string][]byte{"peer.checkpoint": raw, "ours.checkpoint": cp.Raw, "peer.txt": []byte(peer + "\n")})
	return m.st.recordNow(checkpointFinding(KindSplitView, true, raw, ev, "split view: %s", why))
}

// checkKeptViews decides the peer views that were ahead of ours.
func (m *Monitor) checkKeptViews(ctx context.Context, cp *client.Checkpoint) error {
	views, err := m.st.keptViews()
	if err != nil {
		return err
	}
	for _, v := range views {
		pcp, _, _, err := flog.ParseCheckpoint(v.Raw, m.log.Origin, m.log.Verifier)
		if err != nil {
			m.st.dropView(v.key)
			continue
		}
		if pcp.Size <= cp.Size {
			// Ours caught up: consistency decides.
			if err := m.compareView(ctx, cp, v.Peer, pcp, v.Raw); err != nil {
				return err
			}
			if err := m.st.dropView(v.key); err != nil {
				return err
			}
			continue
		}
		behind := time.Since(v.FirstSeen)
		if behind <= m.cfg.MaxViewLag {
			continue
		}
		ev := m.saveEvidence(KindStaleView, map[string][]byte{"peer.checkpoint": v.Raw, "ours.checkpoint": cp.Raw, "peer.txt": []byte(v.Peer + "\n")})
		// One finding per size the peer saw: reported again only if a peer
		// sees a larger tree that this monitor is not shown either.
		f := Finding{ID: fmt.Sprintf("%s:%d", KindStaleView, pcp.Size), Kind: KindStaleView, Security: true, Evidence: ev,
			Message: fmt.Sprintf("stale view: %s saw the log sign a checkpoint of size %d %s ago, but the log still shows this monitor size %d: it is showing this monitor an older tree than it signed for someone else",
				v.Peer, pcp.Size, behind.Round(time.Second), cp.Size)}
		if err := m.st.recordNow(f); err != nil {
			return err
		}
	}
	return nil
}

// peers are the views to compare: the policy's witnesses' read endpoints
// and the configured peers.
func (m *Monitor) peers() []string {
	var out []string
	if !m.cfg.NoWitnessPeers {
		for _, w := range m.cfg.Policy.Witnesses {
			if w.URL != "" {
				out = append(out, client.WitnessCheckpointURL(w.URL, m.log.Origin))
			}
		}
	}
	return append(out, m.cfg.Peers...)
}

func (m *Monitor) readPeer(ctx context.Context, peer string) ([]byte, error) {
	if !strings.HasPrefix(peer, "http://") && !strings.HasPrefix(peer, "https://") {
		return os.ReadFile(peer)
	}
	return m.get(ctx, peer, client.MaxCheckpointSize)
}
