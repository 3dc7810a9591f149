package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/client/sigstore"
	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

// Follower polls one CPAN mirror's RECENT files and logs what PAUSE
// published. Its position, the epoch of the last event it handled, is kept
// in the log's index, so after a restart nothing is missed and nothing is
// logged twice.
type Follower struct {
	Log      *tlog.Log
	Mirror   string        // base URL of the CPAN mirror
	Interval time.Duration // between polls (default 1m)
	// MaxFileSize bounds a download not listed in CHECKSUMS (default 1
	// GiB); downloads stream to a temporary file, so memory stays flat.
	MaxFileSize int64
	HTTP        *http.Client
	Logger      *slog.Logger

	fetcher *client.Fetcher
	// heldHook, for tests, sees every held list written.
	heldHook func([]heldBundle)
	// indexSeen is what the mirror said of each index file as last
	// fetched, for conditional requests.
	indexSeen map[string]indexSeen
}

// indexSeen holds an index file's validators as the mirror sent them.
type indexSeen struct{ lastModified, etag string }

// MaxIndexFileSize bounds an index file download (the real uncompressed
// 02packages is about 30 MB).
const MaxIndexFileSize = 256 << 20

func (f *Follower) defaults() {
	f.Mirror = strings.TrimSuffix(f.Mirror, "/")
	if f.Interval == 0 {
		f.Interval = time.Minute
	}
	if f.MaxFileSize == 0 {
		f.MaxFileSize = 1 << 30
	}
	if f.HTTP == nil {
		f.HTTP = client.NewHTTPClient(10 * time.Minute)
	}
	if f.Logger == nil {
		f.Logger = slog.Default()
	}
}

// Run polls until ctx ends.
func (f *Follower) Run(ctx context.Context) {
	f.defaults()
	for {
		err := f.Poll(ctx)
		if ctx.Err() != nil {
			return
		}
		f.Log.NoteFollowPoll(f.Mirror, err)
		if err != nil {
			f.Logger.Error("follow: poll failed; retrying next interval", "mirror", f.Mirror, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(f.Interval):
		}
	}
}

func (f *Follower) positionKey() string { return "follow:" + f.Mirror }

// Position is the epoch of the last event handled, zero before the first.
func (f *Follower) Position() (cpan.Epoch, error) {
	v, err := f.Log.Index().GetMeta(f.positionKey())
	if err != nil || v == nil {
		return cpan.Epoch{}, err
	}
	return cpan.ParseEpoch(string(v))
}

// Poll handles every event newer than the position. A first poll takes
// the last hour; after a gap it reads longer RECENT files until one
// reaches back to the position.
func (f *Follower) Poll(ctx context.Context) error {
	f.defaults()
	pos, err := f.Position()
	if err != nil {
		return err
	}
	events, err := f.events(ctx, pos)
	if err != nil {
		return err
	}
	sums := map[string]map[string]cpan.Checksum{}
	for _, ev := range events {
		err := f.handle(ctx, ev, sums)
		if errors.Is(err, errHeld) {
			err = f.hold(ctx, ev, sums)
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", ev.Type, ev.Path, err)
		}
		if err := f.Log.Index().PutMeta(f.positionKey(), []byte(ev.Epoch.String())); err != nil {
			return err
		}
	}
	if err := f.releaseHeld(ctx, sums); err != nil {
		return err
	}
	// Index files after the uploads they point at.
	for _, p := range cpan.IndexPaths {
		if err := f.pollIndex(ctx, p); err != nil {
			return fmt.Errorf("index %s: %w", p, err)
		}
	}
	return nil
}

// pollIndex logs the mirror's index file at p when it changed: a
// conditional GET (If-Modified-Since), then the log itself answers an
// unchanged content as a duplicate of the newest version, so a restart
// logs nothing twice. The version's time is the mirror's Last-Modified.
func (f *Follower) pollIndex(ctx context.Context, p string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.Mirror+"/"+p, nil)
	if err != nil {
		return err
	}
	// The conditional request repeats only what the mirror said, and only
	// a Last-Modified that is not in the future: "If-Modified-Since: 2099"
	// would make every later poll a 304 and log no new version again.
	if seen := f.indexSeen[p]; seen.etag != "" {
		req.Header.Set("If-None-Match", seen.etag)
	} else if t, err := http.ParseTime(seen.lastModified); err == nil && !t.After(time.Now()) {
		req.Header.Set("If-Modified-Since", seen.lastModified)
	}
	resp, err := f.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified, http.StatusNotFound:
		return nil
	default:
		return fmt.Errorf("mirror answered %s", resp.Status)
	}
	// Kept on disk while it is hashed: the log stores the version's bytes
	// for auditors before it logs the version.
	tmp, err := os.CreateTemp("", "cpantlog-index-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	file, err := client.HashReader(io.TeeReader(io.LimitReader(resp.Body, MaxIndexFileSize+1), tmp), p)
	if err != nil {
		return err
	}
	if file.Size > MaxIndexFileSize {
		f.Logger.Error("follow: index file larger than the bound; not logged", "path", p, "bound", MaxIndexFileSize)
		return nil
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := f.Log.StoreIndexFile(file.SHA256, tmp); err != nil {
		return fmt.Errorf("store the bytes of %s: %w", p, err)
	}
	// The version's time is the mirror's Last-Modified, untrusted: never
	// later than now (the log would refuse it, and a future time would
	// keep the version fresh for ever).
	when := time.Now()
	if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil && t.Before(when) {
		when = t
	}
	e := &entry.Entry{Kind: entry.Index, Path: p, Size: file.Size, SHA256: file.SHA256, Time: when.UTC().Truncate(time.Second)}
	res, err := f.Log.Add(ctx, e)
	if err != nil {
		return err
	}
	if f.indexSeen == nil {
		f.indexSeen = map[string]indexSeen{}
	}
	f.indexSeen[p] = indexSeen{lastModified: resp.Header.Get("Last-Modified"), etag: resp.Header.Get("ETag")}
	if !res.Duplicate {
		f.Logger.Info("follow: logged index version", "path", p, "index", res.Index, "sha256", fmt.Sprintf("%x", file.SHA256))
	}
	return nil
}

// events returns the events after pos, oldest first, without repeats.
func (f *Follower) events(ctx context.Context, pos cpan.Epoch) ([]cpan.RecentEvent, error) {
	var all []cpan.RecentEvent
	for _, iv := range cpan.RecentIntervals {
		r, err := f.recent(ctx, iv)
		if errors.Is(err, client.ErrNotFound) && iv != "1h" {
			break // a mirror without the longer files
		}
		if err != nil {
			return nil, err
		}
		all = append(all, r.Events...)
		if pos.IsZero() || len(r.Events) == 0 || slices.ContainsFunc(r.Events, func(e cpan.RecentEvent) bool { return e.Epoch.Compare(pos) <= 0 }) {
			break
		}
		f.Logger.Info("follow: RECENT-"+iv+" does not reach back to the last position; widening", "position", pos.String())
	}
	all = slices.DeleteFunc(all, func(e cpan.RecentEvent) bool { return !pos.IsZero() && e.Epoch.Compare(pos) <= 0 })
	slices.SortStableFunc(all, func(a, b cpan.RecentEvent) int { return a.Epoch.Compare(b.Epoch) })
	// Longer RECENT files repeat the shorter ones' events.
	seen := map[cpan.RecentEvent]bool{}
	return slices.DeleteFunc(all, func(e cpan.RecentEvent) bool {
		dup := seen[e]
		seen[e] = true
		return dup
	}), nil
}

func (f *Follower) recent(ctx context.Context, interval string) (*cpan.Recent, error) {
	b, err := f.get(ctx, "authors/RECENT-"+interval+".json", cpan.MaxRecentSize)
	if err == nil {
		return cpan.ParseRecent(b, false, "authors")
	}
	if !errors.Is(err, client.ErrNotFound) {
		return nil, err
	}
	b, err = f.get(ctx, "authors/RECENT-"+interval+".yaml", cpan.MaxRecentSize)
	if err != nil {
		return nil, err
	}
	return cpan.ParseRecent(b, true, "authors")
}

// handle logs one event. Events that can never be logged (bad path, a
// file CHECKSUMS disagrees with, a conflict) are reported and passed; an
// error means "try again later" and stops the poll.
func (f *Follower) handle(ctx context.Context, ev cpan.RecentEvent, sums map[string]map[string]cpan.Checksum) error {
	if !strings.HasPrefix(ev.Path, cpan.AuthorsPrefix) || isChecksums(ev.Path) {
		return nil
	}
	if _, err := cpan.ValidatePath(ev.Path); err != nil {
		f.Logger.Warn("follow: not a valid upload path, skipped", "path", ev.Path, "err", err)
		return nil
	}
	var e *entry.Entry
	if ev.Type == "delete" {
		e = &entry.Entry{Kind: entry.Delete, Path: ev.Path, Time: ev.Epoch.Time()}
	} else {
		var err error
		if wait, err := f.mustWait(ev.Path); err != nil || wait {
			return cmp.Or(err, errHeld)
		}
		if e, err = f.uploadEntry(ctx, ev, sums); e == nil || err != nil {
			return err
		}
	}
	return f.add(ctx, e)
}

// add logs e; a conflict is reported and is not an error (PAUSE's rules
// refused it; the follower goes on).
func (f *Follower) add(ctx context.Context, e *entry.Entry) error {
	res, err := f.Log.Add(ctx, e)
	var conflict *tlog.ConflictError
	switch {
	case errors.As(err, &conflict):
		if e.Kind == entry.Upload {
			f.Logger.Error("follow: conflicts with the log; not logged", "path", e.Path, "err", err)
		}
		return nil
	case err != nil:
		return err
	}
	f.Logger.Info("follow: logged", "kind", e.Kind, "path", e.Path, "index", res.Index, "duplicate", res.Duplicate)
	return nil
}

// uploadEntry downloads a new upload to a temporary file while hashing
// it, bounded by its size in CHECKSUMS when listed there (else by
// MaxFileSize), checks it against CHECKSUMS and returns its entry. A file
// that can never be logged gives a nil entry and no error.
func (f *Follower) uploadEntry(ctx context.Context, ev cpan.RecentEvent, sums map[string]map[string]cpan.Checksum) (*entry.Entry, error) {
	dir := path.Dir(ev.Path)
	if _, ok := sums[dir]; !ok {
		sums[dir] = f.checksums(ctx, dir)
	}
	tmp, file, err := f.download(ctx, ev.Path, sums[dir])
	if err == nil {
		defer removeTemp(tmp)
		err = checkAgainst(sums[dir], ev.Path, file.Size, file.SHA256)
	}
	if errors.Is(err, client.ErrTooLarge) || errors.Is(err, ErrChecksums) {
		// CHECKSUMS may be older than the file: read it once more.
		sums[dir] = f.checksums(ctx, dir)
		if tmp, file, err = f.download(ctx, ev.Path, sums[dir]); err == nil {
			defer removeTemp(tmp)
			err = checkAgainst(sums[dir], ev.Path, file.Size, file.SHA256)
		}
		if errors.Is(err, client.ErrTooLarge) || errors.Is(err, ErrChecksums) {
			f.Logger.Error("follow: REFUSED, the mirror serves a file its CHECKSUMS disagrees with (or one too large); not logged", "path", ev.Path, "err", err)
			return nil, nil
		}
	}
	if errors.Is(err, client.ErrNotFound) {
		f.Logger.Warn("follow: listed in RECENT but gone from the mirror; not logged", "path", ev.Path)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	e, err := uploadEntry(ev.Path, file.Size, file.SHA256, ev.Epoch.Time())
	if err != nil {
		return nil, nil
	}
	if strings.HasSuffix(ev.Path, sigstore.BundleSuffix) && f.Log.VerifiesSigstore() {
		// Bundles are small; one larger than an add body is not one.
		b, err := io.ReadAll(io.LimitReader(tmp, tlog.MaxAddBody))
		if err != nil {
			return nil, err
		}
		annotate(f.Log, e, b, f.Logger)
	}
	return e, nil
}

func removeTemp(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}

// download fetches p to a temporary file, at most as many bytes as
// CHECKSUMS says it has when it says.
func (f *Follower) download(ctx context.Context, p string, sums map[string]cpan.Checksum) (*os.File, client.File, error) {
	limit := f.MaxFileSize
	if c, ok := sums[path.Base(p)]; ok && c.Size != nil && int64(*c.Size) < limit {
		limit = int64(*c.Size)
	}
	if err := f.initFetcher(); err != nil {
		return nil, client.File{}, err
	}
	return f.fetcher.Download(ctx, p, limit, "")
}

func (f *Follower) checksums(ctx context.Context, dir string) map[string]cpan.Checksum {
	b, err := f.get(ctx, dir+"/CHECKSUMS", cpan.MaxChecksumsSize)
	if err != nil {
		return nil
	}
	files, _, err := cpan.ParseChecksums(b)
	if err != nil {
		f.Logger.Warn("follow: unreadable CHECKSUMS; files in it are logged unchecked", "dir", dir, "err", err)
	}
	return files
}

// get downloads a mirror path, bounded, retrying with backoff (the
// client's Fetcher, which the verifier uses for logs too).
func (f *Follower) get(ctx context.Context, p string, limit int64) ([]byte, error) {
	if err := f.initFetcher(); err != nil {
		return nil, err
	}
	return f.fetcher.Get(ctx, p, limit)
}

func (f *Follower) initFetcher() error {
	if f.fetcher == nil {
		fe, err := client.NewFetcher(f.Mirror, "")
		if err != nil {
			return err
		}
		fe.SetHTTPClient(f.HTTP)
		f.fetcher = fe
	}
	return nil
}
