// Package log is the cpan-tlog log personality on top of Tessera: it checks
// and deduplicates CPAN uploads by path, appends them as v1 entries, keeps
// the lookup index in step with the tree, and serves the read and write API
// of DESIGN.md over HTTP (package api, over the log as its Ops).
//
// Its promises: an add is answered only once Tessera has durably sequenced
// the entry; at most one upload is ever logged for a path PAUSE does not let
// be overwritten, however many requests race, at however many writers (on
// S3 + MySQL they decide in the database: package decide and its two
// implementations, memory and shared); and the lookup index is
// derived from the tree, so after a crash it catches up from the tree and
// never the other way round.
package log

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/transparency-dev/tessera"
	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/client/sigstore"
	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
	"github.com/CPAN-Security/cpan-tlog/log/decide"
	"github.com/CPAN-Security/cpan-tlog/log/decide/memory"
	"github.com/CPAN-Security/cpan-tlog/log/decide/shared"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
	"github.com/CPAN-Security/cpan-tlog/log/health"
	"github.com/CPAN-Security/cpan-tlog/log/index"
	"github.com/CPAN-Security/cpan-tlog/log/prooftree"
)

// Config says where a log lives and how it behaves. The zero value of every
// field but DataDir has a sensible default.
type Config struct {
	// DataDir holds the keys, the token, the tree and the lookup index.
	DataDir string
	// ReadOnly serves the read API from the storage without writing: any
	// number of front ends can run beside the writers. It needs log.vkey in
	// DataDir (copy it from a writer); on POSIX it keeps its own lookup
	// index, derived from the published tree, on S3 it reads the writers'
	// shared one.
	ReadOnly bool
	// Storage is StoragePOSIX (default) or StorageS3, with S3.
	Storage string
	S3      S3Config
	// Origin is the checkpoint origin for a new log; for an existing log it
	// must match the key's name, or be empty.
	Origin string
	// CheckpointInterval is how often Tessera publishes a checkpoint (min 100ms).
	CheckpointInterval time.Duration
	// BatchMaxAge bounds how long an add waits to be sequenced with others.
	BatchMaxAge time.Duration
	// BatchMaxSize bounds how many adds are sequenced together.
	BatchMaxSize uint
	// MaxOutstanding is how many sequenced but not yet integrated entries
	// Tessera tolerates before it pushes back (503).
	MaxOutstanding uint
	// WitnessPolicy, when set, is a policy file (DESIGN.md) whose witness,
	// group and quorum lines Tessera uses to collect cosignatures before it
	// publishes a checkpoint.
	WitnessPolicy []byte
	// WitnessFailOpen publishes checkpoints even when the quorum cannot be
	// met. Off by default: without it, a log whose witnesses are down keeps
	// accepting adds but publishes no new checkpoint until they are back.
	WitnessFailOpen bool
	// WitnessTimeout bounds the wait for cosignatures (default 10s).
	WitnessTimeout time.Duration
	// Sigstore, when set, verifies .sigstore.json bundles as they are
	// logged (see AnnotateSigstore).
	Sigstore *sigstore.Verifier
	// ShutdownTimeout bounds how long shutdown waits for a checkpoint that
	// covers every acknowledged entry (default 60s). The entries are durable
	// either way; they are published on the next start.
	ShutdownTimeout time.Duration
	// MaxPublishLag is how long acknowledged entries may wait for a
	// published checkpoint before /healthz answers 503 (default
	// DefaultMaxPublishLag).
	MaxPublishLag time.Duration
	// Now is the log's clock (default time.Now): an entry's time may not
	// be later than it plus MaxClockSkew.
	Now func() time.Time
	// MaxInflightAdds bounds the adds being processed at once; beyond it
	// POST /add answers 503 with Retry-After at once.
	MaxInflightAdds int
	// MaxConns caps the open HTTP connections; beyond it a new connection
	// gets a 503 and is closed. 0 derives it from the open-file limit
	// (raised to the hard limit), keeping descriptors for the storage.
	MaxConns int
	// Logger receives operational logs; nil means slog.Default().
	Logger *slog.Logger
	// Frozen serves the log read-only for good: the old log of a key
	// rotation (frozen.go). Successor, if set, is the new log's URL, which
	// refused adds are pointed to.
	Frozen    bool
	Successor string
	// AllowMissingIndexFiles serves a log that lacks the bytes of index
	// file versions it logged (lost for good, and announced), with a
	// warning, instead of refusing to start (datacheck.go).
	AllowMissingIndexFiles bool
	// claimLease is how long a path claim lasts unrenewed (shared.Lease
	// by default; tests shorten it).
	claimLease time.Duration
	// sequenceWait, when set, replaces the constant of that name (tests
	// shorten it).
	sequenceWait time.Duration
}

func (c *Config) defaults() {
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = time.Second
	}
	if c.Storage == StorageS3 && c.CheckpointInterval < time.Second {
		c.CheckpointInterval = time.Second // storage/aws's minimum
	}
	if c.BatchMaxAge == 0 {
		c.BatchMaxAge = 50 * time.Millisecond
	}
	if c.BatchMaxSize == 0 {
		// Tessera's own personalities' size: with many concurrent adds,
		// one batch is sequenced while the next fills (512 measured 0.81x
		// their throughput, 256 0.91x, in scripts/bench-ingest.sh; the
		// back-fill import is the same with either).
		c.BatchMaxSize = 256
	}
	if c.MaxOutstanding == 0 {
		c.MaxOutstanding = tessera.DefaultPushbackMaxOutstanding
		if c.Storage == StorageS3 {
			// What Tessera's own cmd/conformance/aws allows: entries wait
			// for integration durably in the database, and integration
			// into S3 runs in bigger, slower steps than on a file system,
			// so Tessera's default pushed back at loads the driver takes.
			c.MaxOutstanding = 10 * tessera.DefaultPushbackMaxOutstanding
		}
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = tessera.DefaultShutdownTimeout
	}
	if c.MaxInflightAdds == 0 {
		c.MaxInflightAdds = 4096
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.claimLease == 0 {
		c.claimLease = shared.Lease
	}
}

// Log is a running log.
type Log struct {
	cfg      Config
	origin   string
	signer   note.Signer // nil on a read-only front end
	vkey     string
	tokens   *tokenStore // nil on a read-only front end
	appender *tessera.Appender
	shutdown func(context.Context) error
	reader   tessera.LogReader
	awaiter  *tessera.PublicationAwaiter
	index    index.Store
	metrics  *metrics
	// quorum, when the log has a witness policy, decides which published
	// checkpoints the proof tree may use.
	quorum *tessera.WitnessGroup
	// witness diagnoses the policy's witnesses from their answers (nil
	// without a policy).
	witness *witnessWatch
	// draining is closed when shutdown begins: waits for a checkpoint
	// (POST /add?wait=1) answer at once.
	draining     chan struct{}
	drainingOnce sync.Once
	// proofsDone is closed when the proof writer has stopped.
	proofsDone chan struct{}

	inflight chan struct{} // a token per add being processed
	// adding counts AddBatch calls in progress: HTTP adds, and a
	// back-fill's batches, which take no inflight token.
	adding atomic.Int64

	// health is what /healthz reports (package health).
	health *health.Watch
	// proofs is the proof tree (package prooftree).
	proofs *prooftree.Tree
	// indexFiles keeps the bytes of every index file version logged.
	indexFiles indexFiles
	// decider decides what may be logged at a path (nil on a read-only
	// front end): in memory on POSIX, where this is the only writer; in
	// the database on S3 + MySQL, across every writer of the log.
	decider decide.Decider
	// writer names this writer in the shared database ("" on POSIX).
	writer string
	// sequenceWait, with several writers, bounds the wait for Tessera to
	// sequence a claimed leaf (a writer stopped holding Tessera's
	// sequencing lock stalls every writer): the add is answered 503. Its
	// ticket stays held until Tessera answers (late), so that no other
	// writer finishes the add meanwhile. 0: no bound (one writer).
	sequenceWait time.Duration
	late         decide.Group

	mounts       []func(*http.ServeMux)
	follow       *follower
	cancel       context.CancelFunc
	shutdownOnce sync.Once
	shutdownErr  error
}

// Open starts a log on cfg's storage (POSIX under cfg.DataDir by default,
// or S3 + MySQL): it creates the
// key and token on first start, opens the lookup index and brings it up to
// date with the tree before returning.
func Open(ctx context.Context, cfg Config) (*Log, error) {
	cfg.defaults()
	if cfg.DataDir == "" {
		return nil, errors.New("no data directory")
	}
	if cfg.Origin != "" {
		// Before anything is written: a first start would make a key
		// under a name no verifier accepts.
		if err := CheckOrigin(cfg.Origin); err != nil {
			return nil, err
		}
	}
	if cfg.WitnessPolicy != nil {
		// Before anything is written. Tessera's parser lets one key stand
		// on two witness lines (one cosignature would then count twice);
		// C2SP tlog-policy does not, nor does any verifier of this log.
		if err := client.CheckDuplicateKeys(cfg.WitnessPolicy); err != nil {
			return nil, fmt.Errorf("witness policy: %w", err)
		}
		if _, err := tessera.NewWitnessGroupFromPolicy(cfg.WitnessPolicy); err != nil {
			return nil, fmt.Errorf("witness policy: %w", err)
		}
	}
	// Messages name the directory whatever the working directory was.
	if abs, err := filepath.Abs(cfg.DataDir); err == nil {
		cfg.DataDir = abs
	}
	// Before anything is written: another tool's state directory, or a
	// directory of other files, is not taken for a new log.
	if err := CheckDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	if cfg.Frozen {
		l, err := openReadOnly(ctx, cfg)
		if err == nil {
			markFrozen(cfg) // once it is known to be a log
		}
		return l, err
	}
	if cfg.ReadOnly {
		return openReadOnly(ctx, cfg)
	}
	if err := checkNotFrozen(cfg.DataDir); err != nil {
		return nil, err
	}
	// The log's identity: the tree already published, if any, must be this
	// key's, or the log would sign another log's tree (and clients would
	// see a new key for an old origin). Checked before a key is made.
	published, where, err := publishedCheckpoint(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if published != nil && !exists(filepath.Join(cfg.DataDir, KeyFile)) {
		return nil, fmt.Errorf("%s holds a published tree (latest checkpoint signed by %s) but %s has no %s: restore that log's %s and %s from a backup, or start a new log in another --data directory%s; nothing was changed",
			where, checkpointSigners(published), cfg.DataDir, KeyFile, KeyFile, VKeyFile, newLogElsewhere(cfg))
	}
	signer, vkey, err := loadOrCreateKey(cfg.DataDir, cfg.Origin)
	if err != nil {
		return nil, err
	}
	if published != nil {
		if err := checkIdentity(published, where, vkey, cfg); err != nil {
			return nil, err
		}
	}
	st, err := checkTreeOnStart(ctx, cfg, published, vkey)
	if err != nil {
		return nil, err
	}
	if published == nil && !st.found {
		abs, _ := filepath.Abs(cfg.DataDir)
		cfg.Logger.Info(fmt.Sprintf("creating a new log %s in %s", signer.Name(), abs), "origin", signer.Name(), "data", abs, "storage", cmp.Or(cfg.Storage, StoragePOSIX))
	}
	tokens, err := openTokens(filepath.Join(cfg.DataDir, TokenFile), cfg.Logger)
	if err != nil {
		return nil, err
	}
	ix, err := openIndex(cfg)
	if err != nil {
		return nil, err
	}
	if ix, err = matchIndex(ctx, cfg, ix, st); err != nil {
		return nil, err
	}
	metrics := newMetrics(ix)
	var witnesses *witnessWatch
	if cfg.WitnessPolicy != nil {
		if witnesses, err = newWitnessWatch(cfg.WitnessPolicy, signer.Name(), vkey, cfg.WitnessFailOpen, cfg.Logger, metrics.registry); err != nil {
			ix.Close()
			return nil, fmt.Errorf("witness policy: %w", err)
		}
	}
	drv, err := driver(ctx, cfg, &countingTransport{next: http.DefaultTransport, counts: metrics.witnessRequests, watch: witnesses})
	if err != nil {
		ix.Close()
		return nil, fmt.Errorf("storage: %w", err)
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	opts := tessera.NewAppendOptions().
		WithCheckpointSigner(signer).
		WithCheckpointInterval(cfg.CheckpointInterval).
		WithBatching(cfg.BatchMaxSize, cfg.BatchMaxAge).
		WithPushback(cfg.MaxOutstanding).
		WithShutdownTimeout(cfg.ShutdownTimeout)
	if cfg.WitnessPolicy != nil {
		wg, err := tessera.NewWitnessGroupFromPolicy(cfg.WitnessPolicy)
		if err != nil {
			cancel()
			ix.Close()
			return nil, fmt.Errorf("witness policy: %w", err)
		}
		opts.WithWitnesses(wg, &tessera.WitnessOptions{FailOpen: cfg.WitnessFailOpen, Timeout: cfg.WitnessTimeout})
		// A published checkpoint that the policy's quorum has not cosigned
		// (a witness was added, or was down when it was published) is
		// republished at once, not after Tessera's default ten minutes of
		// no growth: clients of the new policy would refuse it until then.
		if cp, err := os.ReadFile(filepath.Join(cfg.DataDir, TreeDir, "checkpoint")); err == nil && !wg.Satisfied(cp) {
			cfg.Logger.Info("the published checkpoint lacks the witness policy's quorum; republishing it now and on every checkpoint interval while idle")
			opts.WithCheckpointRepublishInterval(max(cfg.CheckpointInterval, time.Second))
		}
	}
	var quorum *tessera.WitnessGroup
	if cfg.WitnessPolicy != nil {
		wg, _ := tessera.NewWitnessGroupFromPolicy(cfg.WitnessPolicy)
		quorum = &wg
	}
	firstStart := !exists(filepath.Join(cfg.DataDir, TreeDir, ".state", "treeState"))
	appender, shutdown, reader, err := tessera.NewAppender(bg, drv, opts)
	if err != nil && firstStart && cfg.WitnessPolicy != nil {
		// Tessera publishes the empty tree's checkpoint while creating a
		// new log and fails if the witnesses cannot cosign it. The tree is
		// created by then; a second start skips that publication, so the
		// log runs and publishes as soon as the quorum answers.
		cfg.Logger.Warn("could not get the first checkpoint cosigned; starting anyway, checkpoints follow once the witnesses answer", "err", err)
		appender, shutdown, reader, err = tessera.NewAppender(bg, drv, opts)
	}
	if err != nil {
		cancel()
		ix.Close()
		return nil, fmt.Errorf("start Tessera appender: %w", err)
	}
	l := &Log{
		cfg:      cfg,
		origin:   signer.Name(),
		signer:   signer,
		vkey:     vkey,
		tokens:   tokens,
		appender: appender,
		shutdown: shutdown,
		reader:   reader,
		awaiter:  tessera.NewPublicationAwaiter(bg, reader.ReadCheckpoint, 50*time.Millisecond),
		index:    ix,
		metrics:  metrics,
		inflight: make(chan struct{}, cfg.MaxInflightAdds),
		draining: make(chan struct{}),
		cancel:   cancel,
		quorum:   quorum,
		witness:  witnesses,
	}
	if l.indexFiles, err = openIndexFiles(ctx, cfg); err != nil {
		l.abort()
		return nil, err
	}
	size, err := ix.Size()
	if err != nil {
		l.abort()
		return nil, fmt.Errorf("lookup index: %w", err)
	}
	l.follow = newFollower(reader, ix, cfg.Logger, func(uint64) {}, l.metrics)
	if cfg.Storage == StorageS3 {
		l.writer = writerID(cfg.DataDir)
		l.sequenceWait = cmp.Or(cfg.sequenceWait, sequenceWait)
		sd, err := shared.Open(bg, shared.Config{
			DSN:    cfg.S3.DSN,
			Writer: l.writer,
			Lease:  cfg.claimLease,
			Append: func(leaf []byte) <-chan shared.Appended {
				c := make(chan shared.Appended, 1)
				f := l.appender.Add(bg, tessera.NewEntry(leaf))
				go func() { a := resolve(f); c <- shared.Appended{Index: a.idx, Err: a.err} }()
				return c
			},
			CatchUp:       l.follow.catchUp,
			IndexSize:     ix.Size,
			RolledForward: func(o string) { l.metrics.claimsRolledForward.WithLabelValues(o).Inc() },
			Logger:        cfg.Logger,
		})
		if err != nil {
			l.abort()
			return nil, err
		}
		l.decider = sd
	}
	if err := l.follow.catchUp(ctx); err != nil {
		l.abort()
		return nil, fmt.Errorf("bring the lookup index up to date: %w", err)
	}
	if err := l.checkIndexFilesOnStart(ctx); err != nil {
		l.abort()
		return nil, err
	}
	if l.decider == nil {
		// After the catch-up: the filter of logged paths is filled from
		// the index, and kept by the follower from then on.
		start := time.Now()
		md, err := memory.New(ix, 2*int(size))
		if err != nil {
			l.abort()
			return nil, fmt.Errorf("read the logged paths from the lookup index: %w", err)
		}
		cfg.Logger.Info("logged paths loaded", "entries", size, "took", time.Since(start).Round(time.Millisecond))
		l.decider = md
	}
	l.follow.indexing, l.follow.indexed = l.decider.Indexing, l.decider.Indexed
	l.follow.start(bg)
	l.proofsDone = make(chan struct{})
	l.proofs = l.newProofTree()
	go func() { l.proofs.Run(bg); close(l.proofsDone) }()
	l.health = l.newHealth()
	go l.health.Run(bg, max(cfg.CheckpointInterval, time.Second))
	go l.tokens.watch(bg, tokenPollInterval)
	go l.decider.Run(bg)
	return l, nil
}

// openReadOnly starts a front end that serves the read API of a log it
// does not write.
func openReadOnly(ctx context.Context, cfg Config) (*Log, error) {
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, VKeyFile))
	if err != nil {
		return nil, fmt.Errorf("a read-only front end needs the log's %s in %s: %w", VKeyFile, cfg.DataDir, err)
	}
	vkey := strings.TrimSpace(string(b))
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", VKeyFile, err)
	}
	reader, err := newStaticReader(ctx, cfg, v)
	if err != nil {
		return nil, err
	}
	ix, err := openIndex(cfg)
	if err != nil {
		return nil, err
	}
	files, err := openIndexFiles(ctx, cfg)
	if err != nil {
		ix.Close()
		return nil, err
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l := &Log{cfg: cfg, origin: v.Name(), vkey: vkey, reader: reader, index: ix, metrics: newMetrics(ix),
		indexFiles: files, proofs: prooftree.New(prooftree.Config{DataDir: cfg.DataDir}),
		inflight: make(chan struct{}, 1), cancel: cancel,
		shutdown: func(context.Context) error { return nil }}
	l.follow = newFollower(reader, ix, cfg.Logger, func(uint64) {}, l.metrics)
	l.health = l.newHealth()
	go l.health.Run(bg, max(cfg.CheckpointInterval, time.Second))
	if cfg.Storage == StorageS3 {
		// The writer keeps the shared index in the database up to date.
		l.follow.passive = true
		return l, nil
	}
	if err := l.follow.catchUp(ctx); err != nil {
		l.abort()
		return nil, fmt.Errorf("bring the lookup index up to date: %w", err)
	}
	l.follow.start(bg)
	return l, nil
}

// openIndex opens the lookup index: a bbolt file in the data directory, or,
// on S3 + MySQL, tables in the log's database shared by every front end.
func openIndex(cfg Config) (index.Store, error) {
	if cfg.Storage == StorageS3 {
		// Lock waits bounded as the decisions' are: the index's catch-up
		// is waited for when a dead writer's claim is rolled forward.
		dsn, err := shared.BoundedDSN(cfg.S3.DSN)
		if err != nil {
			return nil, err
		}
		return index.OpenMySQL(dsn)
	}
	return index.Open(filepath.Join(cfg.DataDir, IndexFile))
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func (l *Log) abort() {
	l.cancel()
	l.index.Close()
	if l.decider != nil {
		l.decider.Close()
	}
}

// Origin is the log's checkpoint origin.
func (l *Log) Origin() string { return l.origin }

// VerifierKey is the log's note verifier key.
func (l *Log) VerifierKey() string { return l.vkey }

// Token is a bearer token that POST /add accepts: the first of the
// ingest token file ("" on a read-only front end).
func (l *Log) Token() string {
	if l.tokens == nil {
		return ""
	}
	return l.tokens.cur.Load().tokens[0].Value
}

// Logger is where the log writes its operational logs.
func (l *Log) Logger() *slog.Logger { return l.cfg.Logger }

// Reader gives read access to the tree.
func (l *Log) Reader() tessera.LogReader { return l.reader }

// Index is the lookup index.
func (l *Log) Index() index.Store { return l.index }

// Shutdown stops taking adds, waits until every acknowledged entry is
// covered by a published checkpoint and indexed, and closes the log.
func (l *Log) Shutdown(ctx context.Context) error {
	l.shutdownOnce.Do(func() {
		l.beginDrain()
		// Stop waiting, with the reason, once the witnesses leave the
		// quorum out of reach (drain.go).
		wctx, stop := l.stopWaiting(ctx, false)
		err := whyStopped(wctx, l.shutdown(wctx))
		stop()
		if l.decider != nil {
			// Tessera's late answers (its queue flushes until l.cancel;
			// its shutdown does not wait for them), then their records
			// and late roll forwards, before the decider's batching
			// stops. Both bounded by ctx: a claim still held then is no
			// longer renewed, and another writer (or this one, started
			// again) finishes it.
			l.late.Wait(ctx)
			l.decider.Wait(ctx)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("none came in time: are the witnesses up? %w", err)
		}
		if err != nil {
			err = fmt.Errorf("no checkpoint covering every acknowledged entry could be published (%w); the entries are stored and will be published after the next start", err)
		} else {
			err = l.follow.catchUp(ctx)
		}
		l.cancel()
		l.follow.wait()
		if l.proofsDone != nil {
			<-l.proofsDone // the proof writer uses the index and the data directory
		}
		if cerr := l.index.Close(); err == nil {
			err = cerr
		}
		if l.decider != nil {
			l.decider.Close()
		}
		l.shutdownErr = err
	})
	return l.shutdownErr
}

// AddResult is what Add acknowledges.
type AddResult struct {
	Index     uint64
	Leaf      []byte
	Duplicate bool // an identical entry was already logged at Index
}

// The errors of an add (ConflictError, ErrOverloaded, ErrShutdown,
// ErrFutureTime, ErrIndexBytesMissing, ErrPathBusy) are package adderr's,
// named in this package too (api.go).

// checkTime refuses an entry time later than now plus MaxClockSkew.
func checkTime(e *entry.Entry, now time.Time) error {
	if e.Time.After(now.Add(MaxClockSkew)) {
		return fmt.Errorf("%w: %s is later than the log's clock (%s) plus %s; send the time the file was published",
			ErrFutureTime, e.Time.Format(entry.TimeFormat), now.UTC().Format(entry.TimeFormat), MaxClockSkew)
	}
	return nil
}

// Add logs e unless an identical entry is already logged (then it returns
// that one) or PAUSE's rules forbid it (ConflictError). It returns once the
// entry is durably sequenced.
func (l *Log) Add(ctx context.Context, e *entry.Entry) (AddResult, error) {
	res, errs := l.AddBatch(ctx, []*entry.Entry{e})
	return res[0], errs[0]
}

// AddBatch logs entries in the order given, with one Tessera batch for all
// of them, so that a back-fill is both fast and deterministic: the same
// entries always get the same indexes. Each entry gets its result or its
// error, as from Add. Two entries for one path in a batch are refused.
func (l *Log) AddBatch(ctx context.Context, entries []*entry.Entry) ([]AddResult, []error) {
	l.adding.Add(1)
	defer l.adding.Add(-1)
	results := make([]AddResult, len(entries))
	errs := make([]error, len(entries))
	if l.appender == nil {
		for i := range errs {
			errs[i] = l.readOnlyErr()
		}
		return results, errs
	}
	leaves := make([][]byte, len(entries))
	var paths []string
	seen := map[string]bool{}
	now := time.Now()
	if l.cfg.Now != nil {
		now = l.cfg.Now()
	}
	for i, e := range entries {
		if leaves[i], errs[i] = e.Marshal(); errs[i] != nil {
			continue
		}
		if errs[i] = checkTime(e, now); errs[i] != nil {
			continue
		}
		if seen[e.Path] {
			errs[i] = fmt.Errorf("%s appears twice in one batch", e.Path)
			continue
		}
		seen[e.Path] = true
		paths = append(paths, e.Path)
	}
	// The index versions whose bytes are stored, looked up before any
	// lock is taken (in the bucket, with several writers).
	var hasBytes map[[32]byte]bool // nil, read as false, unless the batch holds index versions
	for i, e := range entries {
		if errs[i] == nil && e.Kind == entry.Index {
			if hasBytes == nil {
				hasBytes = map[[32]byte]bool{}
			}
			if hasBytes[e.SHA256], errs[i] = l.indexFiles.has(ctx, e.SHA256); errs[i] != nil {
				errs[i] = fmt.Errorf("look for the index file's bytes: %w", errs[i])
			}
		}
	}
	// The decision: which entries are new, which repeat a logged one,
	// which are refused; the new ones' paths are held until sequenced.
	var reqs []decide.Request
	var which []int
	for i, e := range entries {
		if errs[i] != nil {
			continue
		}
		reqs = append(reqs, decide.Request{Entry: e, Leaf: leaves[i], Rule: func(h []index.Record) (*index.Record, error) {
			return decideRule(e, leaves[i], h, hasBytes)
		}})
		which = append(which, i)
	}
	decisions, err := l.decider.Decide(ctx, reqs)
	if err != nil {
		for _, i := range which {
			errs[i] = err
		}
		return results, errs
	}
	// Sequencing: one Tessera batch for the new entries.
	bg := context.WithoutCancel(ctx)
	var tickets []*decide.Ticket
	var futures []tessera.IndexFuture
	var at []int
	for k, d := range decisions {
		i := which[k]
		switch d.Kind {
		case decide.Refused:
			errs[i] = d.Err
		case decide.Duplicate:
			results[i] = AddResult{Index: d.Existing.Index, Leaf: d.Existing.Leaf, Duplicate: true}
		case decide.New:
			tickets = append(tickets, d.Ticket)
			futures = append(futures, l.appender.Add(bg, tessera.NewEntry(leaves[i])))
			at = append(at, i)
		}
	}
	outs := make([]decide.Outcome, 0, len(tickets))
	for k, f := range futures {
		i := at[k]
		idx, later, err := l.await(f)
		if later != nil {
			// Tessera has the leaf and may still sequence it: until it
			// says, the ticket stays held (its lease renewed), so no
			// other writer takes the add over and logs the leaf again
			// at another index, after whatever came meanwhile.
			errs[i] = err
			t := tickets[k]
			l.late.Go(func() {
				a := <-later
				l.decider.Sequenced(bg, []decide.Outcome{outcome(t, a.idx, a.err)})
			})
			continue
		}
		outs = append(outs, outcome(tickets[k], idx, err))
		if err != nil {
			errs[i] = err
			continue
		}
		results[i] = AddResult{Index: idx, Leaf: leaves[i]}
	}
	l.decider.Sequenced(ctx, outs)
	l.follow.poke()
	return results, errs
}

// sequenceWait bounds, with several writers, the wait for Tessera to
// sequence a claimed leaf: less than a lease, so the claim is still ours.
const sequenceWait = 15 * time.Second

// outcome is what became of ticket t, given Tessera's answer.
func outcome(t *decide.Ticket, idx uint64, err error) decide.Outcome {
	// Refused before it was queued: certainly not sequenced.
	queued := err == nil || !errors.Is(err, ErrOverloaded) && !errors.Is(err, ErrShutdown)
	return decide.Outcome{Ticket: t, Index: idx, Err: err, Queued: queued}
}

// answer is Tessera's answer for one leaf.
type answer struct {
	idx uint64
	err error
}

// await waits for Tessera's answer, up to l.sequenceWait if set. When the
// wait ends first, the error is ErrPathBusy (answered 503) and later
// delivers Tessera's answer when it comes.
func (l *Log) await(f tessera.IndexFuture) (idx uint64, later <-chan answer, err error) {
	if l.sequenceWait == 0 {
		a := resolve(f)
		return a.idx, nil, a.err
	}
	c := make(chan answer, 1)
	go func() { c <- resolve(f) }()
	t := time.NewTimer(l.sequenceWait)
	defer t.Stop()
	select {
	case a := <-c:
		return a.idx, nil, a.err
	case <-t.C:
		return 0, c, fmt.Errorf("%w: Tessera did not sequence the entry in %v", ErrPathBusy, l.sequenceWait)
	}
}

// resolve waits for Tessera's answer to f.
func resolve(f tessera.IndexFuture) answer {
	idx, err := f()
	if err != nil {
		return answer{err: appendError(err)}
	}
	return answer{idx: idx.Index}
}

// addsInFlight reports whether adds are being processed: background work
// that competes with them for the disk (the proof tree) waits.
func (l *Log) addsInFlight() bool { return len(l.inflight) > 0 || l.adding.Load() > 0 }

// VerifiesSigstore reports whether the log has a Sigstore trusted root.
func (l *Log) VerifiesSigstore() bool { return l.cfg.Sigstore != nil }

// AnnotateSigstore verifies bundle, the content of e (an upload of
// X.sigstore.json), as a Sigstore bundle for X as logged, and records the
// verified identity in e. On failure e stays a plain upload and the error
// says why; the caller logs e either way and reports the failure.
func (l *Log) AnnotateSigstore(e *entry.Entry, bundle []byte) error {
	sibling, ok := strings.CutSuffix(e.Path, sigstore.BundleSuffix)
	switch {
	case !ok:
		return fmt.Errorf("%s is not a %s bundle", e.Path, sigstore.BundleSuffix)
	case l.cfg.Sigstore == nil:
		return errors.New("no Sigstore trusted root configured (--sigstore-trusted-root)")
	case uint64(len(bundle)) != e.Size || sha256.Sum256(bundle) != e.SHA256:
		return errors.New("the bundle given is not the file described (size or sha256 differ)")
	}
	recs, err := l.history(sibling)
	if err != nil {
		return err
	}
	var artifact *index.Record
	for i := range recs {
		if recs[i].Entry.Kind == entry.Upload {
			artifact = &recs[i]
		}
	}
	if artifact == nil {
		return fmt.Errorf("%s, the file the bundle signs, is not logged (yet)", sibling)
	}
	s, err := l.cfg.Sigstore.Verify(bundle, artifact.Entry.SHA256, nil)
	if err != nil {
		return err
	}
	e.Sigstore = s
	if err := e.Validate(); err != nil {
		e.Sigstore = nil
		return fmt.Errorf("verified identity cannot be recorded: %w", err)
	}
	return nil
}

// duplicateOf finds what a new entry repeats: an identical leaf anywhere
// in the path's history, or, for an index version, the newest version
// when the content is the same (an index is logged again only when its
// content changes).
func duplicateOf(e *entry.Entry, leaf []byte, history []index.Record) (index.Record, bool) {
	if j := slices.IndexFunc(history, func(r index.Record) bool { return bytes.Equal(r.Leaf, leaf) }); j >= 0 {
		return history[j], true
	}
	if e.Kind == entry.Index && len(history) > 0 {
		if last := history[len(history)-1]; last.Entry.Kind == entry.Index && last.Entry.SHA256 == e.SHA256 && last.Entry.Size == e.Size {
			return last, true
		}
	}
	return index.Record{}, false
}

// decideRule applies PAUSE's rules to e, whose leaf is leaf, given the path's
// history: it returns the record e repeats, or why e may not be logged, or
// neither (log it). hasBytes holds the index file versions whose bytes are
// stored.
func decideRule(e *entry.Entry, leaf []byte, history []index.Record, hasBytes map[[32]byte]bool) (*index.Record, error) {
	if dup, ok := duplicateOf(e, leaf, history); ok {
		return &dup, nil
	}
	if err := admissible(e, history); err != nil {
		return nil, err
	}
	if e.Kind == entry.Index && !hasBytes[e.SHA256] {
		return nil, fmt.Errorf("%w: PUT the file to /index-files/%x first, so that auditors can always diff it", ErrIndexBytesMissing, e.SHA256)
	}
	return nil, nil
}

// appendError is the error of an add whose Tessera future failed.
func appendError(err error) error {
	switch {
	case errors.Is(err, tessera.ErrPushback):
		return ErrOverloaded
	case isShutdown(err):
		return ErrShutdown
	case strings.Contains(err.Error(), "Error 1205"):
		// Tessera's sequencing waited too long for a lock (its driver
		// keeps only the text of the database's error): busy, retry.
		return fmt.Errorf("%w (the database was busy: %v)", ErrPathBusy, err)
	}
	return fmt.Errorf("append: %w", err)
}

// isShutdown recognises the error Tessera's appender returns after its
// shutdown began; Tessera does not export it.
func isShutdown(err error) bool { return err.Error() == "appender has been shut down" }

// admissible applies PAUSE's rules to a new entry for a path with history.
func admissible(e *entry.Entry, history []index.Record) error {
	var lastUpload, last *index.Record
	for i := range history {
		last = &history[i]
		if last.Entry.Kind == entry.Upload {
			lastUpload = last
		}
	}
	switch e.Kind {
	case entry.Upload:
		if lastUpload != nil && !cpan.MayOverwrite(e.Path) {
			return &ConflictError{Reason: "a different file is already logged at this path, and PAUSE never lets a distribution file be replaced", Existing: *lastUpload}
		}
	case entry.Delete:
		if lastUpload == nil {
			return &ConflictError{Reason: "no upload is logged at this path, so there is nothing to delete"}
		}
		if last.Entry.Kind == entry.Delete {
			return &ConflictError{Reason: "this path is already logged as deleted", Existing: *last}
		}
	}
	return nil
}

// NoteFollowPoll counts a poll of a followed mirror in the metrics.
func (l *Log) NoteFollowPoll(mirror string, err error) {
	if err != nil {
		l.metrics.followPolls.WithLabelValues(mirror, "error").Inc()
		return
	}
	l.metrics.followPolls.WithLabelValues(mirror, "ok").Inc()
	l.metrics.followLastOK.WithLabelValues(mirror).SetToCurrentTime()
}

// StoreIndexFile keeps the bytes of an index file version (r must hash
// to sha), so that it can be logged and auditors can read it back.
func (l *Log) StoreIndexFile(sha [32]byte, r io.Reader) error {
	_, err := l.indexFiles.put(context.Background(), sha, r)
	return err
}

// History returns every entry logged for path, oldest first, including
// entries acknowledged but not yet indexed.
func (l *Log) History(path string) ([]index.Record, error) { return l.history(path) }

func (l *Log) history(path string) ([]index.Record, error) {
	if l.decider == nil {
		// A read-only front end: the index is all it knows.
		return l.index.ByPath(path)
	}
	return l.decider.History(context.Background(), path)
}

// writerID names this writer in the claims it holds: the host and data
// directory, for an operator reading the table.
func writerID(dataDir string) string {
	host, _ := os.Hostname()
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs
	}
	id := host + ":" + dataDir
	if len(id) > 255 {
		id = id[len(id)-255:]
	}
	return id
}
