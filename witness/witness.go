// Package witness is a C2SP tlog-witness, as the spec reads today (the
// add-checkpoint call and the monitoring read endpoint; the optional
// sign-subtree call is not served): it cosigns a log's checkpoint only
// after verifying the log's signature and a consistency proof from the
// latest checkpoint it cosigned for that log.
//
// Where the current text differs from v1.0.0, it follows the current
// text: a checkpoint of the cosigned size with another root is answered
// 422 (v1.0.0: 409), and a checkpoint that carries, beside a valid log
// signature, a line under the log's key name and ID that does not verify
// is answered 403 (v1.0.0 feeders never send one). A v1.0.0 feeder reads
// either 422 as "cannot be cosigned", as it read that 409 (its 409 path
// wants a text/x.tlog.size body, which only the stale-old-size 409
// carries), so nothing it can recover from changed. See docs/CONFORMANCE.md.
//
// Its promise: the state it keeps per log never goes back. The check of a
// request against the state, the cosignature and the durable write of the
// new state happen under one lock per log, and the answer is sent only
// after the write reached the disk, so no client ever holds a cosignature
// for a checkpoint the witness could later forget, even across kill -9.
package witness

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	flog "github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/time/rate"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/internal/atomicfile"
)

// Files in a witness's data directory.
const (
	KeyFile  = "witness.key"  // the signing key (Ed25519 or ML-DSA-44), 0600
	VKeyFile = "witness.vkey" // the verifier key: type 0x04 (Ed25519) or 0x06 (ML-DSA-44)
	StateDir = "state"        // the latest cosigned checkpoint per log
	Evidence = "evidence"     // signed but inconsistent checkpoints
)

// Algorithm is a cosignature algorithm of C2SP tlog-cosignature.
type Algorithm string

// The cosignature algorithms a witness can sign with.
const (
	// Ed25519 is cosignature/v1 with an Ed25519 key (vkey type 0x04),
	// which every tlog-witness client knows.
	Ed25519 Algorithm = "ed25519"
	// MLDSA44 is the ML-DSA-44 cosignature (vkey type 0x06, a 1312-byte
	// public key; signatures of 8+2420 bytes over the subtree/v1
	// message), which tlog-cosignature says new deployments SHOULD use.
	MLDSA44 Algorithm = "ml-dsa-44"
)

// Algorithms are the values ParseAlgorithm accepts.
var Algorithms = []Algorithm{Ed25519, MLDSA44}

// ParseAlgorithm reads an --algorithm value.
func ParseAlgorithm(s string) (Algorithm, error) {
	for _, a := range Algorithms {
		if strings.EqualFold(s, string(a)) {
			return a, nil
		}
	}
	return "", fmt.Errorf("unknown algorithm %q (want %s or %s)", s, Ed25519, MLDSA44)
}

// Keygen writes DIR/witness.key and DIR/witness.vkey for an Ed25519
// witness called name; see KeygenWith.
func Keygen(dir, name string) (vkey string, err error) { return KeygenWith(dir, name, Ed25519) }

// KeygenWith writes DIR/witness.key (0600) and DIR/witness.vkey for a
// witness called name that cosigns with alg, refusing to overwrite a key,
// and refusing a name that is not a valid signed-note key name before it
// writes anything. The vkey is as C2SP tlog-cosignature defines it: type
// 0x04 and the Ed25519 public key, or type 0x06 and the ML-DSA-44 public
// key, with the key ID SHA-256(name || "\n" || type || key)[:4].
func KeygenWith(dir, name string, alg Algorithm) (vkey string, err error) {
	if err := client.CheckKeyName(name); err != nil {
		return "", fmt.Errorf("witness name: %w", err)
	}
	var skey string
	switch alg {
	case Ed25519:
		var edVKey string
		skey, edVKey, err = note.GenerateKey(rand.Reader, name)
		if err == nil {
			vkey, err = fnote.VKeyToCosignatureV1(edVKey)
		}
	case MLDSA44:
		// The private key is the 32-byte seed (FIPS 204), after the 0x06.
		skey, vkey, err = fnote.GenerateMLDSAKey(name)
	default:
		return "", fmt.Errorf("unknown algorithm %q (want %s or %s)", alg, Ed25519, MLDSA44)
	}
	if err != nil {
		return "", fmt.Errorf("generate key for %q: %w", name, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := atomicfile.WriteNew(filepath.Join(dir, KeyFile), []byte(skey+"\n"), 0o600); err != nil {
		return "", err
	}
	if err := atomicfile.WriteNew(filepath.Join(dir, VKeyFile), []byte(vkey+"\n"), 0o644); err != nil {
		return "", err
	}
	return vkey, nil
}

// Witness cosigns checkpoints.
type Witness struct {
	signer  *fnote.Signer
	vkey    string
	config  atomic.Pointer[Config]
	store   *store
	dataDir string
	logger  *slog.Logger
	metrics *metrics
	// ratePerLog bounds add-checkpoint requests per second and log.
	ratePerLog float64
	// stateErr is the last failure to read or store a log's state (nil
	// once a store succeeds again): the witness cosigns nothing meanwhile.
	stateErr atomic.Pointer[error]

	mu     sync.Mutex
	locks  map[string]*sync.Mutex   // one per origin
	limits map[string]*rate.Limiter // one per origin
}

// DefaultRatePerLog is how many add-checkpoint requests per second one log
// may make; a log publishes a checkpoint every second or so.
const DefaultRatePerLog = 20

func (w *Witness) limiter(origin string) *rate.Limiter {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.limits[origin]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(w.ratePerLog), int(2*w.ratePerLog)+1)
		w.limits[origin] = l
	}
	return l
}

// Open loads the witness key from dataDir and serves the logs in cfg,
// allowing each log ratePerLog requests per second (0: DefaultRatePerLog).
func Open(dataDir string, cfg *Config, ratePerLog float64, logger *slog.Logger) (*Witness, error) {
	if ratePerLog <= 0 {
		ratePerLog = DefaultRatePerLog
	}
	if logger == nil {
		logger = slog.Default()
	}
	skey, err := os.ReadFile(filepath.Join(dataDir, KeyFile))
	if err != nil {
		return nil, fmt.Errorf("%w (create it with 'cpantlog-witness keygen --data %s --name NAME')", err, dataDir)
	}
	signer, err := fnote.NewSignerForCosignatureV1(strings.TrimSpace(string(skey)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", KeyFile, err)
	}
	vkey, err := os.ReadFile(filepath.Join(dataDir, VKeyFile))
	if err != nil {
		return nil, err
	}
	st, err := newStore(filepath.Join(dataDir, StateDir))
	if err != nil {
		return nil, err
	}
	w := &Witness{signer: signer, vkey: strings.TrimSpace(string(vkey)), store: st, dataDir: dataDir,
		logger: logger, metrics: newMetrics(), limits: map[string]*rate.Limiter{}, locks: map[string]*sync.Mutex{},
		ratePerLog: ratePerLog}
	if v, err := fnote.NewVerifierForCosignatureV1(w.vkey); err != nil || v.KeyHash() != w.signer.KeyHash() {
		return nil, fmt.Errorf("%s does not hold the cosignature/v1 key of %s", VKeyFile, KeyFile)
	}
	w.SetConfig(cfg)
	return w, nil
}

// VerifierKey is the witness's verifier key (type 0x04 or 0x06).
func (w *Witness) VerifierKey() string { return w.vkey }

// SetConfig replaces the set of logs; the state of every log is kept.
func (w *Witness) SetConfig(cfg *Config) { w.config.Store(cfg) }

func (w *Witness) lock(origin string) func() {
	w.mu.Lock()
	l := w.locks[origin]
	if l == nil {
		l = &sync.Mutex{}
		w.locks[origin] = l
	}
	w.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// Answer is the HTTP answer to an add-checkpoint request.
type Answer struct {
	Status      int
	ContentType string
	Body        []byte
	Outcome     string // for metrics and logs
}

func answer(status int, outcome, format string, args ...any) Answer {
	return Answer{Status: status, ContentType: "text/plain; charset=utf-8", Body: []byte(fmt.Sprintf(format+"\n", args...)), Outcome: outcome}
}

// internal logs err, which may name files on the witness's machine, and
// answers 500 without it.
func (w *Witness) internal(what string, err error) Answer {
	w.logger.Error(what+" failed", "err", err)
	return answer(http.StatusInternalServerError, "error", "the witness failed %s; its operators find the details in its log", what)
}

// AddCheckpoint handles one add-checkpoint body as C2SP tlog-witness
// says, returning the cosignature line on success.
func (w *Witness) AddCheckpoint(body []byte) Answer {
	req, err := ParseRequest(body)
	if err != nil {
		return answer(http.StatusBadRequest, "malformed", "%v", err)
	}
	origin, _, _ := strings.Cut(string(req.Checkpoint), "\n")
	keys, ok := w.config.Load().Logs[origin]
	if !ok {
		return answer(http.StatusNotFound, "unknown_log", "unknown log origin %q", origin)
	}
	n, err := note.Open(req.Checkpoint, note.VerifierList(keys...))
	if err != nil {
		var invalid *note.InvalidSignatureError
		if errors.As(err, &invalid) {
			return answer(http.StatusForbidden, "bad_signature", "a signature by a known key of %s does not verify", origin)
		}
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			return answer(http.StatusForbidden, "no_signature", "no signature by a trusted key of %s", origin)
		}
		return answer(http.StatusBadRequest, "malformed", "checkpoint is not a signed note: %v", err)
	}
	// C2SP tlog-witness and signed-note: a line under a trusted key's name
	// and ID that fails to verify makes the note malformed, even when
	// another line under that key verifies (note.Open skips the repeat).
	for _, k := range keys {
		if _, bad := client.FailingSignatureLine(req.Checkpoint, k); bad {
			return answer(http.StatusForbidden, "bad_signature", "a signature line under a trusted key of %s (%s+%08x) does not verify, so the note is malformed", origin, k.Name(), k.KeyHash())
		}
	}
	var cp flog.Checkpoint
	// Extension lines after the root are allowed by tlog-checkpoint and
	// covered by the signature; Unmarshal returns them and we ignore them.
	if _, err := cp.Unmarshal([]byte(n.Text)); err != nil || cp.Origin != origin {
		return answer(http.StatusBadRequest, "malformed", "not a checkpoint: %v", err)
	}
	if req.OldSize > cp.Size {
		return answer(http.StatusBadRequest, "old_too_large", "old size %d is larger than the checkpoint size %d", req.OldSize, cp.Size)
	}
	if cp.Size == 0 && !bytes.Equal(cp.Hash, emptyRoot[:]) {
		// The current tlog-witness draft: the empty tree has one root.
		return answer(http.StatusUnprocessableEntity, "bad_empty_root", "a checkpoint of size 0 must carry the empty tree's root (sha256 of nothing)")
	}
	if !w.limiter(origin).Allow() {
		return Answer{Status: http.StatusTooManyRequests, ContentType: "text/plain; charset=utf-8", Body: []byte("too many requests for this log; retry in a second\n"), Outcome: "rate_limited"}
	}

	unlock := w.lock(origin)
	defer unlock()
	latestRaw, err := w.store.get(origin)
	if err != nil {
		w.stateErr.Store(&err)
		return w.internal("reading its state", err)
	}
	var latest flog.Checkpoint
	if latestRaw != nil {
		text, _, _ := bytes.Cut(latestRaw, []byte("\n\n"))
		if _, err := latest.Unmarshal(append(text, '\n')); err != nil {
			return w.internal("reading its state", fmt.Errorf("stored state of %s is damaged: %w", origin, err))
		}
	}
	if req.OldSize != latest.Size {
		return Answer{Status: http.StatusConflict, ContentType: "text/x.tlog.size", Body: []byte(fmt.Sprintf("%d\n", latest.Size)), Outcome: "stale_old_size"}
	}
	if req.OldSize == 0 && len(req.Proof) > 0 {
		return answer(http.StatusUnprocessableEntity, "bad_proof", "a consistency proof from size 0 must be empty")
	}
	switch {
	case cp.Size == latest.Size && latestRaw != nil:
		if !bytes.Equal(cp.Hash, latest.Hash) {
			// C2SP tlog-witness: 422 (v1.0.0 said 409, which a client now
			// reads as "resend from the size in the body").
			w.keepEvidence(origin, body, "same size, different root")
			return answer(http.StatusUnprocessableEntity, "fork", "checkpoint of size %d has a different root than the one cosigned before", cp.Size)
		}
	case req.OldSize > 0:
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, req.OldSize, cp.Size, req.Proof, latest.Hash, cp.Hash); err != nil {
			w.keepEvidence(origin, body, "consistency proof does not verify: "+err.Error())
			return answer(http.StatusUnprocessableEntity, "bad_proof", "consistency proof from %d to %d does not verify", req.OldSize, cp.Size)
		}
	}
	cosigned, err := note.Sign(&note.Note{Text: n.Text}, w.signer)
	if err != nil {
		return w.internal("cosigning", err)
	}
	_, sig, _ := bytes.Cut(cosigned, []byte("\n\n"))
	// Keep the note with the log signatures that verified and ours, as
	// evidence: a line the witness did not verify (an unknown key, or a
	// forged line naming a known one) is never kept or relayed, since one
	// bad line under a known key makes every verifier reject the note.
	whole := append(verifiedNote(n), sig...)
	if err := w.store.put(origin, whole); err != nil {
		w.stateErr.Store(&err)
		return w.internal("storing its state", err)
	}
	w.stateErr.Store(nil)
	w.metrics.size.WithLabelValues(origin).Set(float64(cp.Size))
	return Answer{Status: http.StatusOK, ContentType: "text/plain; charset=utf-8", Body: sig, Outcome: "cosigned"}
}

// emptyRoot is the root of the empty tree, sha256 of nothing (RFC 6962).
var emptyRoot = sha256.Sum256(nil)

// verifiedNote is n's text and the signature lines note.Open verified.
func verifiedNote(n *note.Note) []byte {
	var b bytes.Buffer
	b.WriteString(n.Text)
	b.WriteString("\n")
	for _, s := range n.Sigs {
		fmt.Fprintf(&b, "\u2014 %s %s\n", s.Name, s.Base64)
	}
	return b.Bytes()
}

// onlyVerified returns the stored note raw with only the signature lines
// that verify under the log's keys or the witness's own, or nil when none
// of the witness's own does.
func (w *Witness) onlyVerified(raw []byte, logKeys []note.Verifier) []byte {
	own, err := fnote.NewVerifierForCosignatureV1(w.vkey)
	if err != nil {
		return nil
	}
	verifiers := note.VerifierList(append(slices.Clone(logKeys), own)...)
	i := bytes.LastIndex(raw, []byte("\n\n"))
	if i < 0 {
		return nil
	}
	text, sigs := raw[:i+1], raw[i+2:]
	out := bytes.Clone(text)
	out = append(out, '\n')
	cosigned := false
	for _, line := range bytes.SplitAfter(sigs, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		n, err := note.Open(append(append(bytes.Clone(text), '\n'), line...), verifiers)
		if err != nil || len(n.Sigs) != 1 {
			continue
		}
		cosigned = cosigned || n.Sigs[0].Hash == own.KeyHash()
		out = append(out, line...)
	}
	if !cosigned {
		return nil
	}
	return out
}

// keepEvidence saves a validly signed request the witness refused: a log
// signature on an inconsistent checkpoint proves the log misbehaved.
func (w *Witness) keepEvidence(origin string, body []byte, why string) {
	dir := filepath.Join(w.dataDir, Evidence, OriginID(origin))
	name := filepath.Join(dir, time.Now().UTC().Format("20060102T150405.000000000Z")+".add-checkpoint")
	if err := os.MkdirAll(dir, 0o700); err == nil {
		err = os.WriteFile(name, body, 0o600)
		if err != nil {
			name = "(not saved: " + err.Error() + ")"
		}
	}
	w.logger.Warn("refused a validly signed checkpoint: evidence of log misbehaviour", "origin", origin, "why", why, "evidence", name)
}

// Unhealthy says why the witness needs its operator, or "".
func (w *Witness) Unhealthy() string {
	if err := w.stateErr.Load(); err != nil {
		return "state: reading or storing a log's state failed, so nothing is cosigned: " + (*err).Error()
	}
	return ""
}

// Latest returns the latest cosigned checkpoint of origin, or nil.
func (w *Witness) Latest(origin string) ([]byte, error) { return w.store.get(origin) }
