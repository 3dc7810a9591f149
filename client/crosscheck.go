package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	tclient "github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/internal/atomicfile"
)

// CrossCheck compares the log's view with a witness's: now and then (at
// most once per Every per log; the answer is cached in the state
// directory) the verifier fetches one policy witness's latest cosigned
// checkpoint. Signed by the log's key but not consistent with what the log
// shows is a fork; larger, and cosigned more than MaxViewLag ago, means
// the log is showing this client an older tree than it signed for others
// (a frozen or stale view). Both are security errors with evidence.
type CrossCheck struct {
	MaxViewLag time.Duration // default 1h
	Every      time.Duration // default 1h
}

// DefaultMaxViewLag is how long a log may keep a client behind a tree a
// witness cosigned before that is reported.
const DefaultMaxViewLag = time.Hour

// crossCheck applies v.CrossCheck to the log's latest checkpoint cp.
func (v *Verifier) crossCheck(ctx context.Context, cp *Checkpoint) error {
	cc := v.CrossCheck
	if cc == nil {
		return nil
	}
	lag, every := cc.MaxViewLag, cc.Every
	if lag == 0 {
		lag = DefaultMaxViewLag
	}
	if every == 0 {
		every = time.Hour
	}
	raw, w, when, err := v.witnessView(ctx, every)
	if err != nil || raw == nil {
		return err
	}
	wcp, _, _, err := flog.ParseCheckpoint(raw, v.Log.Origin, v.Log.Verifier)
	if err != nil {
		return &CouldNotCheckError{fmt.Sprintf("witness %s's checkpoint of the log does not verify: %v", w.Name, err)}
	}
	offered := &Checkpoint{Checkpoint: *wcp, Raw: raw}
	switch {
	case wcp.Size > cp.Size:
		if when.IsZero() || time.Since(when) <= lag {
			return nil
		}
		return v.State.conflict(offered, cp.Raw, fmt.Sprintf("stale view: witness %s cosigned a checkpoint of size %d at %s, %s ago, but the log still shows this client size %d: it is showing you an older tree than it signed for others",
			w.Name, wcp.Size, when.UTC().Format(time.RFC3339), time.Since(when).Round(time.Second), cp.Size))
	case wcp.Size == cp.Size:
		if !bytes.Equal(wcp.Hash, cp.Hash) {
			return v.State.conflict(offered, cp.Raw, fmt.Sprintf("fork: witness %s cosigned a checkpoint of size %d with another root than the log shows this client", w.Name, cp.Size))
		}
	case wcp.Size > 0:
		pb, err := tclient.NewProofBuilder(ctx, cp.Size, v.Fetcher.ReadTile)
		if err != nil {
			return &UnreachableError{fmt.Errorf("read tiles: %w", err)}
		}
		p, err := pb.ConsistencyProof(ctx, wcp.Size, cp.Size)
		if err != nil {
			return &UnreachableError{fmt.Errorf("consistency proof: %w", err)}
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, wcp.Size, cp.Size, p, wcp.Hash, cp.Hash); err != nil {
			return v.State.conflict(offered, cp.Raw, fmt.Sprintf("fork: witness %s cosigned a checkpoint of size %d that is not consistent with the log's size %d", w.Name, wcp.Size, cp.Size))
		}
	}
	return nil
}

// witnessView returns a policy witness's latest cosigned checkpoint of the
// log and the time of the witness's cosignature on it, from the cache
// when it is younger than every. A witness without the read endpoint (404)
// or out of reach is passed over, and none answering is no error (the
// cross-check is a second line of defence). But a view that does not
// verify, under the log's key and with the witness's own cosignature, is
// never passed over in silence: when no witness offered one that does,
// that is "could not check".
func (v *Verifier) witnessView(ctx context.Context, every time.Duration) ([]byte, *PolicyWitness, time.Time, error) {
	cache := filepath.Join(v.State.logDir(v.Log.Origin), "witness-view")
	if b, err := os.ReadFile(cache); err == nil {
		head, raw, _ := bytes.Cut(b, []byte("\n"))
		fields := strings.Fields(string(head))
		if len(fields) == 2 {
			at, _ := strconv.ParseInt(fields[0], 10, 64)
			if time.Since(time.Unix(at, 0)) < every {
				for i := range v.Policy.Witnesses {
					w := &v.Policy.Witnesses[i]
					if w.Name != fields[1] {
						continue
					}
					if when, err := v.openWitnessView(raw, w); err == nil {
						return raw, w, when, nil
					}
				}
			}
		}
	}
	var bad []string
	for i := range v.Policy.Witnesses {
		w := &v.Policy.Witnesses[i]
		if w.URL == "" {
			continue
		}
		u, _ := strings.CutSuffix(WitnessCheckpointURL(w.URL, v.Log.Origin), "checkpoint")
		f, err := NewFetcher(u, "")
		if err != nil {
			continue
		}
		f.retries = 0
		raw, err := f.Get(ctx, "checkpoint", MaxCheckpointSize)
		if err != nil {
			continue
		}
		when, err := v.openWitnessView(raw, w)
		if err != nil {
			bad = append(bad, fmt.Sprintf("witness %s: %v", w.Name, err))
			continue
		}
		if err := os.MkdirAll(filepath.Dir(cache), 0o700); err == nil {
			atomicfile.Write(cache, append([]byte(fmt.Sprintf("%d %s\n", time.Now().Unix(), w.Name)), raw...), 0o600)
		}
		return raw, w, when, nil
	}
	if len(bad) > 0 {
		return nil, nil, time.Time{}, &CouldNotCheckError{"no witness served a view of the log that verifies, so the log's view could not be cross-checked (" + strings.Join(bad, "; ") + ")"}
	}
	return nil, nil, time.Time{}, nil
}

// openWitnessView checks a witness's checkpoint note: the log's signature
// and the witness's own cosignature must verify, and no line under either
// key may fail to (C2SP signed-note: reject the whole note). It returns
// the cosignature's time.
func (v *Verifier) openWitnessView(raw []byte, w *PolicyWitness) (time.Time, error) {
	if _, _, _, err := flog.ParseCheckpoint(raw, v.Log.Origin, v.Log.Verifier); err != nil {
		return time.Time{}, fmt.Errorf("its checkpoint does not verify under the log's key: %v", err)
	}
	when, ok := cosignedAt(raw, w)
	if !ok {
		return time.Time{}, errors.New("its checkpoint does not carry its own valid cosignature")
	}
	// note.Open checks one line per key; a second line under the log's or
	// the witness's key that fails rejects the note all the same.
	for _, k := range []note.Verifier{v.Log.Verifier, w.Verifier} {
		if l, bad := FailingSignatureLine(raw, k); bad {
			return time.Time{}, fmt.Errorf("its checkpoint carries a signature line under %s's key that does not verify (%q), so the note is rejected whole", k.Name(), strings.TrimSpace(l))
		}
	}
	return when, nil
}

// WitnessCheckpointURL is where a witness serves the latest checkpoint of
// a log it cosigned: GET <url>/<hex sha256(origin)>/checkpoint.
func WitnessCheckpointURL(witnessURL, origin string) string {
	h := sha256.Sum256([]byte(origin))
	return strings.TrimSuffix(witnessURL, "/") + "/" + hex.EncodeToString(h[:]) + "/checkpoint"
}

// cosignedAt is the time in w's cosignature on a checkpoint note: the
// signature is the key hash (4 bytes), the timestamp (8, big-endian
// seconds) and the Ed25519 (64) or ML-DSA-44 (2420) signature. An
// ML-DSA-44 cosignature may carry timestamp 0 (C2SP tlog-cosignature: no
// statement that the tree is the largest the witness saw): the zero
// time, which the stale-view check passes over.
func cosignedAt(raw []byte, w *PolicyWitness) (time.Time, bool) {
	n, err := note.Open(raw, note.VerifierList(w.Verifier))
	if err != nil || len(n.Sigs) != 1 {
		return time.Time{}, false
	}
	sig, err := base64.StdEncoding.DecodeString(n.Sigs[0].Base64)
	if err != nil || (len(sig) != 4+8+64 && len(sig) != 4+8+2420) {
		return time.Time{}, false
	}
	ts := binary.BigEndian.Uint64(sig[4:12])
	if ts == 0 {
		return time.Time{}, true
	}
	return time.Unix(int64(ts), 0), true
}
