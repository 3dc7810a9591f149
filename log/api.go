package log

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"

	"github.com/CPAN-Security/cpan-tlog/log/adderr"
	"github.com/CPAN-Security/cpan-tlog/log/api"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
	"github.com/CPAN-Security/cpan-tlog/log/index"
)

// The log's HTTP API is package api, over the log as its Ops. The errors
// of an add are package adderr's; the names below keep the log's callers
// as they were.

// AddRequest is the JSON body of POST /add (api.AddRequest).
type AddRequest = api.AddRequest

// LookupResponse is the JSON body of GET /lookup (api.LookupResponse).
type LookupResponse = api.LookupResponse

// SHA256Match is one answer of GET /lookup?sha256= (api.SHA256Match).
type SHA256Match = api.SHA256Match

// MaxAddBody bounds a POST /add body (api.MaxAddBody).
const MaxAddBody = api.MaxAddBody

// ConflictError is returned when the path already has a different entry
// that PAUSE's rules do not let this one follow (adderr.ConflictError).
type ConflictError = adderr.ConflictError

// The errors of an add (package adderr says what each means to a client).
var (
	ErrOverloaded        = adderr.ErrOverloaded
	ErrShutdown          = adderr.ErrShutdown
	ErrFutureTime        = adderr.ErrFutureTime
	ErrIndexBytesMissing = adderr.ErrIndexBytesMissing
	ErrPathBusy          = adderr.ErrPathBusy
)

// MaxClockSkew is how far past the log's clock an entry's time may be
// (adderr.MaxClockSkew).
const MaxClockSkew = adderr.MaxClockSkew

// Mount adds routes to the log's HTTP server (the web explorer uses it).
// Call it before Handler or Serve.
func (l *Log) Mount(register func(*http.ServeMux)) { l.mounts = append(l.mounts, register) }

// Handler serves the log's HTTP API (package api).
func (l *Log) Handler() http.Handler {
	return api.New(apiOps{l}, api.Config{
		Metrics:   l.metrics.api,
		TokenFile: TokenFile,
		Mounts:    l.mounts,
		Logger:    l.cfg.Logger,
	})
}

// apiOps is the log as its HTTP API sees it: its api.Writes, its
// api.Reads and its api.Outages, in that order below.
type apiOps struct{ l *Log }

// api.Writes.

func (o apiOps) ReadOnly() error {
	if o.l.appender == nil {
		return o.l.readOnlyErr()
	}
	return nil
}

func (o apiOps) Authorize(authorization string) (string, bool) {
	return o.l.authorize(authorization)
}

func (o apiOps) AnnotateSigstore(e *entry.Entry, bundle []byte) error {
	return o.l.AnnotateSigstore(e, bundle)
}

// Admit takes a token of l.inflight: the proof tree's writer waits while
// any is taken (addsInFlight).
func (o apiOps) Admit() (func(), bool) {
	select {
	case o.l.inflight <- struct{}{}:
		return func() { <-o.l.inflight }, true
	default:
		return nil, false
	}
}

func (o apiOps) Add(ctx context.Context, e *entry.Entry) (api.Added, error) {
	res, err := o.l.Add(ctx, e)
	return api.Added{Index: res.Index, Leaf: res.Leaf, Duplicate: res.Duplicate}, err
}

func (o apiOps) AwaitProof(ctx context.Context, idx uint64, leaf []byte) ([]byte, error) {
	return o.l.awaitProof(ctx, idx, leaf)
}

func (o apiOps) PutIndexFile(ctx context.Context, sha [32]byte, r io.Reader) (bool, error) {
	return o.l.indexFiles.Put(ctx, sha, r)
}

// api.Reads.

func (o apiOps) ReadCheckpoint(ctx context.Context) ([]byte, error) {
	return o.l.reader.ReadCheckpoint(ctx)
}

func (o apiOps) CheckpointSize(cp []byte) (uint64, error) {
	c, err := o.l.parseCheckpoint(cp)
	if err != nil {
		return 0, err
	}
	return c.Size, nil
}

func (o apiOps) ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	return asNotExist(o.l.reader.ReadTile(ctx, level, index, p))
}

func (o apiOps) ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error) {
	return asNotExist(o.l.reader.ReadEntryBundle(ctx, index, p))
}

// asNotExist makes the storage's "no such object" (a bucket's NoSuchKey)
// fs.ErrNotExist, as Ops promises.
func asNotExist(b []byte, err error) ([]byte, error) {
	if notFound(err) && !errors.Is(err, fs.ErrNotExist) {
		err = fmt.Errorf("%w: %v", fs.ErrNotExist, err)
	}
	return b, err
}

func (o apiOps) History(path string) ([]index.Record, error) { return o.l.history(path) }

func (o apiOps) BySHA256(sha [32]byte) ([]index.Record, error) { return o.l.index.BySHA256(sha) }

func (o apiOps) Leaf(idx uint64) ([]byte, error) { return o.l.index.Leaf(idx) }

func (o apiOps) Proof(ctx context.Context, idx uint64, leaf, cp []byte) ([]byte, error) {
	return o.l.Proof(ctx, idx, leaf, cp)
}

func (o apiOps) ReadProof(name string) ([]byte, error) { return o.l.proofs.Read(name) }

func (o apiOps) OpenIndexFile(ctx context.Context, sum string) (io.ReadCloser, error) {
	return o.l.indexFiles.Open(ctx, sum)
}

// Health asks for the degradation only of a healthy log, as /healthz
// always did.
func (o apiOps) Health() (unhealthy, degraded string) {
	if why := o.l.health.Unhealthy(); why != "" {
		return why, ""
	}
	return "", o.l.health.Degraded()
}

// api.Outages.

func (o apiOps) StorageUnavailable(err error) string {
	dep := o.l.storageDependency(err)
	if dep != "" {
		o.l.metrics.storageErrors.WithLabelValues(dep).Inc()
	}
	return dep
}
