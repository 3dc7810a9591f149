package community

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/CPAN-Security/cpan-tlog/monitor"
	bolt "go.etcd.io/bbolt"
)

// Item kinds: what a subscriber is told about.
const (
	ItemUpload          = "upload"           // an upload in scope, no expectation declared for it (alert)
	ItemDelete          = "delete"           // a deletion in scope (alert)
	ItemFinding         = "finding"          // a monitor finding in scope (alert)
	ItemExpected        = "expected"         // an upload with the declared identity (quiet)
	ItemIdentityDiffers = "identity-differs" // its bundle's identity is not the declared one (alert)
	ItemIdentityMissing = "identity-missing" // no bundle followed within ExpectGrace (alert)
)

// Item is one thing routed to one subscriber: what the log recorded (or
// what the monitor found) and why it is in their scope. Everything in it
// but Why, Expected and Fixes came from the log; it is rendered quoted.
type Item struct {
	Kind  string    `json:"kind"`
	Alert bool      `json:"alert"`
	Seen  time.Time `json:"seen"` // when it was routed

	Index     uint64    `json:"index"`
	PrevIndex *uint64   `json:"prev_index,omitempty"`
	Time      time.Time `json:"time,omitzero"`
	Path      string    `json:"path,omitempty"`
	SHA256    string    `json:"sha256,omitempty"`
	Size      uint64    `json:"size,omitempty"`
	Uploader  string    `json:"uploader,omitempty"`
	Author    string    `json:"author,omitempty"`
	Dist      string    `json:"dist,omitempty"`
	Version   string    `json:"version,omitempty"`

	// A finding's kind, ID and message (the monitor's words).
	FindingKind string `json:"finding_kind,omitempty"`
	FindingID   string `json:"finding_id,omitempty"`
	Security    bool   `json:"security,omitempty"`
	Message     string `json:"message,omitempty"`

	// Why names the subscriber's rules that matched ("author ETHER").
	Why []string `json:"why"`
	// Expected is the declaration an upload was judged against;
	// Recorded the identity its bundle carried; Differs names each field
	// that is not as declared.
	Expected *Expectation `json:"expected,omitempty"`
	Recorded *Identity    `json:"recorded,omitempty"`
	Bundle   string       `json:"bundle,omitempty"`
	Differs  []string     `json:"differs,omitempty"`
	// Fixes names the advisories this release fixes ("CPANSA-Foo-2020-01").
	Fixes []string `json:"fixes,omitempty"`
}

// Identity is a Sigstore identity as the log recorded it.
type Identity struct {
	Issuer      string `json:"issuer"`
	SAN         string `json:"san,omitempty"`
	SourceRepo  string `json:"source_repo,omitempty"`
	BuildConfig string `json:"build_config,omitempty"`
	// ArtifactSHA256 is the digest (hex) of the file the bundle signs.
	ArtifactSHA256 string `json:"artifact_sha256,omitempty"`
}

// held is an upload waiting in bExpecting for its bundle.
type held struct {
	Sub      string        `json:"sub"`
	Item     Item          `json:"item"`
	Expect   []Expectation `json:"expect"`
	Deadline time.Time     `json:"deadline"`
}

// subEntry is a routable subscriber in the index.
type subEntry struct {
	s  *Subscriber
	ik []byte
}

type ref struct {
	sub  *subEntry
	rule int
}

// index maps what an event names to the subscribers whose rules name it,
// so routing costs per match, not per subscriber: exact values in maps,
// path globs by their literal author directory where they have one, and
// only namespace prefixes and globs without one in short lists.
type index struct {
	gen    uint64
	subs   int
	author map[string][]ref
	dist   map[string][]ref // dist rules
	nsDist map[string][]ref // namespace rules by the distribution named after the package
	pkg    map[string][]ref // namespace rules by package
	// Namespace Foo::Bar::* rules, by their base: as a package
	// (Foo::Bar) and as a distribution (Foo-Bar). An event's names are
	// looked up at each of their :: or - boundaries, so a prefix costs a
	// map lookup, not a comparison per rule.
	prefixPkg  map[string][]ref
	prefixDist map[string][]ref
	globDir    map[string][]ref // path globs by their literal authors/id/X/XY/XYZ/ directory
	globsAny   []ref
}

func (c *Community) index(tx *bolt.Tx) (*index, error) {
	gen := generation(tx)
	c.idxMu.Lock()
	defer c.idxMu.Unlock()
	if c.idx != nil && c.idx.gen == gen {
		return c.idx, nil
	}
	idx := &index{gen: gen, author: map[string][]ref{}, dist: map[string][]ref{}, nsDist: map[string][]ref{}, pkg: map[string][]ref{}, globDir: map[string][]ref{},
		prefixPkg: map[string][]ref{}, prefixDist: map[string][]ref{}}
	err := tx.Bucket(bSubscribers).ForEach(func(k, v []byte) error {
		s := new(Subscriber)
		if err := json.Unmarshal(v, s); err != nil {
			return fmt.Errorf("community: subscriber %s: %w", k, err)
		}
		if !s.Confirmed || s.Suspended {
			return nil
		}
		idx.subs++
		e := &subEntry{s: s, ik: idKey(s.ID)}
		for i, r := range s.Rules {
			rf := ref{e, i}
			switch r.Kind {
			case KindAuthor:
				idx.author[r.Value] = append(idx.author[r.Value], rf)
			case KindDist:
				k := strings.ToLower(r.Value)
				idx.dist[k] = append(idx.dist[k], rf)
			case KindNamespace:
				// Keys in lower case: a name that differs only in case
				// must not hide from the rule (see matchDist).
				v := strings.ToLower(r.Value)
				if base, ok := strings.CutSuffix(v, "::*"); ok {
					idx.prefixPkg[base] = append(idx.prefixPkg[base], rf)
					d := packageDist(base)
					idx.prefixDist[d] = append(idx.prefixDist[d], rf)
				} else {
					idx.pkg[v] = append(idx.pkg[v], rf)
					d := packageDist(v)
					idx.nsDist[d] = append(idx.nsDist[d], rf)
				}
			case KindPath:
				if dir := globDir(r.Value); dir != "" {
					idx.globDir[dir] = append(idx.globDir[dir], rf)
				} else {
					idx.globsAny = append(idx.globsAny, rf)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.idx = idx
	return idx, nil
}

// packageDist is the distribution named after a package: Foo::Bar -> Foo-Bar.
func packageDist(pkg string) string { return strings.ReplaceAll(pkg, "::", "-") }

// authorDir is p's authors/id/X/XY/XYZ/ directory, "" when p has none.
func authorDir(p string) string {
	parts := strings.SplitN(p, "/", 6)
	if len(parts) < 6 || parts[0] != "authors" || parts[1] != "id" {
		return ""
	}
	return strings.Join(parts[:5], "/") + "/"
}

// globDir is a glob's author directory when its first five components
// are literal (no *, ?, [ or \), so it can only match paths below it.
func globDir(g string) string {
	d := authorDir(g)
	if d == "" || strings.ContainsAny(d, `*?[\`) {
		return ""
	}
	return d
}

// matcher collects, for one event, each subscriber it touches once, with
// the rules that matched.
type matcher struct {
	order []*subEntry
	why   map[*subEntry][]string
}

func (m *matcher) add(refs []ref) {
	for _, r := range refs {
		m.hit(r)
	}
}

func (m *matcher) hit(r ref) {
	if m.why == nil {
		m.why = map[*subEntry][]string{}
	}
	w, ok := m.why[r.sub]
	if !ok {
		m.order = append(m.order, r.sub)
	}
	rule := r.sub.s.Rules[r.rule]
	s := rule.Kind + " " + rule.Value
	if !slices.Contains(w, s) {
		m.why[r.sub] = append(w, s)
	}
}

func (idx *index) matchPath(m *matcher, p string) {
	if p == "" {
		return
	}
	if d := authorDir(p); d != "" {
		for _, r := range idx.globDir[d] {
			if ok, _ := path.Match(r.sub.s.Rules[r.rule].Value, p); ok {
				m.hit(r)
			}
		}
	}
	for _, r := range idx.globsAny {
		if ok, _ := path.Match(r.sub.s.Rules[r.rule].Value, p); ok {
			m.hit(r)
		}
	}
}

func (idx *index) matchDist(m *matcher, d string) {
	if d == "" {
		return
	}
	// Case-insensitive (the index keys are lower case): a file name is
	// the uploader's choice, and PAUSE's package permissions ignore case,
	// so try-tiny-9.99.tar.gz must reach whoever watches Try-Tiny.
	d = strings.ToLower(d)
	m.add(idx.dist[d])
	m.add(idx.nsDist[d])
	if len(idx.prefixDist) > 0 {
		for i := 0; i <= len(d); i++ {
			if i == len(d) || d[i] == '-' {
				m.add(idx.prefixDist[d[:i]])
			}
		}
	}
}

func (idx *index) matchPackage(m *matcher, p string) {
	p = strings.ToLower(p)
	m.add(idx.pkg[p])
	if len(idx.prefixPkg) > 0 {
		for i := 0; i <= len(p); i++ {
			if i == len(p) || strings.HasPrefix(p[i:], "::") {
				m.add(idx.prefixPkg[p[:i]])
			}
		}
	}
}

func (idx *index) matchUpload(u *monitor.Upload) *matcher {
	m := &matcher{}
	m.add(idx.author[u.Author])
	if u.Uploader != u.Author {
		m.add(idx.author[u.Uploader])
	}
	idx.matchDist(m, u.Dist)
	idx.matchPath(m, u.Path)
	return m
}

func (idx *index) matchFinding(f *monitor.Finding) *matcher {
	m := &matcher{}
	for _, a := range f.Authors {
		m.add(idx.author[a])
	}
	for _, d := range f.Dists {
		idx.matchDist(m, d)
	}
	for _, p := range f.Packages {
		idx.matchPackage(m, p)
	}
	idx.matchPath(m, f.Path)
	return m
}

// Route routes a batch of events to the subscribers they touch. It is
// monitor.Router's method: it runs inside the transaction that records
// the batch's audit, so what it queues commits with the audit position,
// and an error (the batch is audited again) leaves nothing routed.
func (c *Community) Route(tx *bolt.Tx, events []monitor.Event) error {
	if tx.Bucket(bSubscribers) == nil {
		return fmt.Errorf("community: the state has no community buckets (Open was not called on this database)")
	}
	idx, err := c.index(tx)
	if err != nil {
		return err
	}
	now := c.now()
	r := router{c: c, tx: tx, now: now}
	for _, ev := range events {
		switch {
		case ev.Upload != nil:
			err = r.upload(idx, ev.Upload)
		case ev.Finding != nil:
			err = r.finding(idx, ev.Finding)
		}
		if err != nil {
			return err
		}
	}
	if r.queued > 0 {
		tx.OnCommit(func() {
			c.metrics.routed.Add(float64(r.routed))
			c.healthMu.Lock()
			if c.oldestQueue.IsZero() {
				c.oldestQueue = now
			}
			c.healthMu.Unlock()
		})
	}
	return nil
}

type router struct {
	c      *Community
	tx     *bolt.Tx
	now    time.Time
	queued int
	routed int
}

func uploadItem(u *monitor.Upload, kind string, why []string, now time.Time) Item {
	return Item{Kind: kind, Alert: kind != ItemExpected, Seen: now, Index: u.Index, Time: u.Time, Path: u.Path, SHA256: u.SHA256, Size: u.Size,
		Uploader: u.Uploader, Author: u.Author, Dist: u.Dist, Version: u.Version, Why: why}
}

func (r *router) upload(idx *index, u *monitor.Upload) error {
	if u.Signs != "" {
		n, err := r.settle(u)
		if err != nil || n > 0 {
			return err
		}
		return r.keepEarly(idx, u)
	}
	m := idx.matchUpload(u)
	if len(m.order) == 0 {
		return nil
	}
	var early *earlyBundle
	if u.Kind == "add" && u.Dist != "" {
		var err error
		if early, err = r.takeEarly(u.Path); err != nil {
			return err
		}
	}
	var fixes []string
	if u.Kind == "add" && u.Dist != "" && r.c.cfg.Advisories != nil && len(m.order) > 0 {
		var err error
		if fixes, err = r.firstFixes(u.Dist, u.Version); err != nil {
			return err
		}
	}
	for _, e := range m.order {
		why := m.why[e]
		if u.Kind == "delete" {
			if err := r.enqueue(e, uploadItem(u, ItemDelete, why, r.now)); err != nil {
				return err
			}
			continue
		}
		it := uploadItem(u, ItemUpload, why, r.now)
		it.Fixes = fixes
		if exp := covering(e.s.Expect, u.Dist); len(exp) > 0 && u.Dist != "" {
			h := held{Sub: e.s.ID, Item: it, Expect: exp, Deadline: r.now.Add(r.c.cfg.ExpectGrace)}
			if early != nil {
				if err := r.enqueue(e, judge(h, &monitor.Upload{Path: early.Bundle, Identity: early.Identity})); err != nil {
					return err
				}
				continue
			}
			v, err := json.Marshal(h)
			if err != nil {
				return err
			}
			if err := r.tx.Bucket(bExpecting).Put(expectKey(u.Path, e.ik), v); err != nil {
				return err
			}
			continue
		}
		if err := r.enqueue(e, it); err != nil {
			return err
		}
	}
	return nil
}

func advisoryName(id string, cves []string) string {
	if len(cves) > 0 {
		return id + " (" + strings.Join(cves, ", ") + ")"
	}
	return id
}

// covering are the expectations that cover dist.
func covering(exp []Expectation, dist string) []Expectation {
	var out []Expectation
	for _, e := range exp {
		if len(e.Dists) == 0 || slices.Contains(e.Dists, dist) {
			out = append(out, e)
		}
	}
	return out
}

func expectKey(p string, ik []byte) []byte {
	k := make([]byte, 0, len(p)+1+len(ik))
	k = append(k, p...)
	k = append(k, 0)
	return append(k, ik...)
}

// earlyBundle is a bundle logged before the file it signs (a log that
// does not hold such bundles, or entries logged before it did), kept in
// bExpecting under "!" and the signed path for earlyBundleTTL, so that
// file is judged when it is logged: the order of arrival must not make a
// signed release look unsigned.
type earlyBundle struct {
	Bundle   string            `json:"bundle"`
	Identity *monitor.Identity `json:"identity,omitempty"`
	Expires  time.Time         `json:"expires"`
}

const earlyBundleTTL = 24 * time.Hour

// earlyPrefix starts the keys of early bundles; held uploads' keys start
// with a logged path (authors/...).
const earlyPrefix = "!"

func earlyKey(p string) []byte { return append([]byte(earlyPrefix), p...) }

// keepEarly keeps a bundle nothing was held for when a subscriber in
// whose scope it is expects an identity for its distribution.
func (r *router) keepEarly(idx *index, u *monitor.Upload) error {
	if u.Dist == "" || u.Kind != "add" {
		return nil
	}
	for _, e := range idx.matchUpload(u).order {
		if len(covering(e.s.Expect, u.Dist)) > 0 {
			v, err := json.Marshal(earlyBundle{Bundle: u.Path, Identity: u.Identity, Expires: r.now.Add(earlyBundleTTL)})
			if err != nil {
				return err
			}
			return r.tx.Bucket(bExpecting).Put(earlyKey(u.Signs), v)
		}
	}
	return nil
}

// takeEarly returns and forgets the early bundle of p, if one is kept.
func (r *router) takeEarly(p string) (*earlyBundle, error) {
	b := r.tx.Bucket(bExpecting)
	v := b.Get(earlyKey(p))
	if v == nil {
		return nil, nil
	}
	var eb earlyBundle
	if err := json.Unmarshal(v, &eb); err != nil {
		return nil, fmt.Errorf("community: early bundle for %q: %w", p, err)
	}
	if err := b.Delete(earlyKey(p)); err != nil {
		return nil, err
	}
	if !r.now.Before(eb.Expires) {
		return nil, nil
	}
	return &eb, nil
}

// settle judges the uploads held for the file a bundle signs and says
// how many there were.
func (r *router) settle(u *monitor.Upload) (int, error) {
	b := r.tx.Bucket(bExpecting)
	prefix := append([]byte(u.Signs), 0)
	type found struct {
		k []byte
		h held
	}
	var all []found
	cur := b.Cursor()
	for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
		if len(k) != len(prefix)+16 {
			continue // a longer path that shares this prefix cannot: paths hold no NUL
		}
		var h held
		if err := json.Unmarshal(v, &h); err != nil {
			return 0, fmt.Errorf("community: held upload %q: %w", k, err)
		}
		all = append(all, found{bytes.Clone(k), h})
	}
	for _, f := range all {
		if err := b.Delete(f.k); err != nil {
			return 0, err
		}
		s, err := getSubscriber(r.tx, f.h.Sub)
		if err != nil {
			return 0, err
		}
		if s == nil || !s.Confirmed {
			continue
		}
		it := judge(f.h, u)
		if err := r.enqueue(&subEntry{s: s, ik: idKey(s.ID)}, it); err != nil {
			return 0, err
		}
	}
	return len(all), nil
}

// judge compares a bundle's recorded identity with the expectations an
// upload was held for: the first it matches makes the item expected;
// none, an alert naming what differs from the closest.
func judge(h held, bundle *monitor.Upload) Item {
	it := h.Item
	it.Bundle = bundle.Path
	var rec *Identity
	if bundle.Identity != nil {
		rec = &Identity{Issuer: bundle.Identity.Issuer, SAN: bundle.Identity.SAN, SourceRepo: bundle.Identity.SourceRepo, BuildConfig: bundle.Identity.BuildConfig,
			ArtifactSHA256: bundle.Identity.ArtifactSHA256}
	}
	it.Recorded = rec
	// The identity vouches for the bytes the bundle signs: other bytes
	// than the file's (a genuine bundle of another release, recorded
	// for this one) vouch for nothing here.
	if rec != nil && rec.ArtifactSHA256 != "" && it.SHA256 != "" && !strings.EqualFold(rec.ArtifactSHA256, it.SHA256) {
		it.Kind, it.Alert, it.Differs = ItemIdentityDiffers, true, []string{"artifact (the bundle signs other bytes than the file logged)"}
		if len(h.Expect) > 0 {
			it.Expected = &h.Expect[0]
		}
		return it
	}
	var best []string
	var bestExp Expectation
	for i, e := range h.Expect {
		d := differs(e, rec)
		if len(d) == 0 {
			it.Kind, it.Alert, it.Expected = ItemExpected, false, &e
			return it
		}
		if i == 0 || len(d) < len(best) {
			best, bestExp = d, e
		}
	}
	it.Kind, it.Alert, it.Expected, it.Differs = ItemIdentityDiffers, true, &bestExp, best
	return it
}

// differs names each declared field the recorded identity does not have.
func differs(e Expectation, rec *Identity) []string {
	if rec == nil {
		return []string{"identity (the log recorded no verified Sigstore identity for the bundle)"}
	}
	var d []string
	if rec.Issuer != e.Issuer {
		d = append(d, "issuer")
	}
	if e.Repository != "" && !sameRepo(e.Repository, rec.SourceRepo) {
		d = append(d, "repository")
	}
	if e.Workflow != "" && !sameWorkflow(e.Workflow, rec.BuildConfig, rec.SAN) {
		d = append(d, "workflow")
	}
	// A workflow path without a repository (stored before the parser
	// refused it) would match the same path in anyone's repository.
	if e.Repository == "" && e.Workflow != "" && !strings.Contains(e.Workflow, "://") {
		d = append(d, "repository")
	}
	return d
}

// sameRepo: a declared "owner/repo" matches a recorded source repository
// URL whose path is /owner/repo (any host: the issuer already pins the
// forge); a declared URL must be equal.
func sameRepo(declared, recorded string) bool {
	if recorded == "" {
		return false
	}
	if strings.Contains(declared, "://") {
		return strings.TrimSuffix(declared, "/") == strings.TrimSuffix(recorded, "/")
	}
	_, rest, ok := strings.Cut(recorded, "://")
	if !ok {
		return false
	}
	_, p, ok := strings.Cut(rest, "/")
	return ok && strings.TrimSuffix(p, "/") == strings.Trim(declared, "/")
}

// sameWorkflow: a declared ".github/workflows/release.yml" matches a
// recorded build config (or, when none was recorded, a SAN) of the form
// https://host/owner/repo/.github/workflows/release.yml@ref; a declared
// URL must equal it up to the @ref.
func sameWorkflow(declared, buildConfig, san string) bool {
	rec := buildConfig
	if rec == "" {
		rec = san
	}
	if rec == "" {
		return false
	}
	if i := strings.LastIndex(rec, "@"); i >= 0 {
		rec = rec[:i]
	}
	if strings.Contains(declared, "://") {
		return declared == rec
	}
	_, rest, ok := strings.Cut(rec, "://")
	if !ok {
		return false
	}
	parts := strings.SplitN(rest, "/", 4) // host, owner, repo, workflow path
	return len(parts) == 4 && parts[3] == strings.TrimPrefix(declared, "/")
}

func (r *router) finding(idx *index, f *monitor.Finding) error {
	m := idx.matchFinding(f)
	for _, e := range m.order {
		it := Item{Kind: ItemFinding, Alert: true, Seen: r.now, Path: f.Path, FindingKind: f.Kind, FindingID: f.ID, Security: f.Security,
			Message: f.Message, PrevIndex: f.PrevIndex, Why: m.why[e]}
		if f.Index != nil {
			it.Index = *f.Index
		}
		if len(f.Authors) > 0 {
			it.Author = strings.Join(f.Authors, ", ")
		}
		if len(f.Dists) > 0 {
			it.Dist = strings.Join(f.Dists, ", ")
		}
		if err := r.enqueue(e, it); err != nil {
			return err
		}
	}
	return nil
}

// enqueue puts an item in the subscriber's feed and, by its level, in the
// queue of each of its channels (alerts) or its digest (quiet items).
func (r *router) enqueue(e *subEntry, it Item) error {
	v, err := json.Marshal(it)
	if err != nil {
		return err
	}
	r.routed++
	if err := r.c.addFeed(r.tx, e.ik, v); err != nil {
		return err
	}
	if !it.Alert {
		b := r.tx.Bucket(bDigest)
		seq, _ := b.NextSequence()
		return b.Put(seqKey(e.ik, seq), v)
	}
	b := r.tx.Bucket(bQueue)
	for _, ch := range channels(e.s) {
		seq, _ := b.NextSequence()
		if err := b.Put(seqKey(append(slices.Clone(e.ik), ch), seq), v); err != nil {
			return err
		}
		r.queued++
	}
	return nil
}

// Channel bytes in queue keys (ID, channel, seq): each channel has its
// own queue, so a webhook that fails does not make mail repeat.
const (
	chanMail    = 'm'
	chanWebhook = 'w'
)

func channels(s *Subscriber) []byte {
	var ch []byte
	if s.Mail && !s.Suspended {
		ch = append(ch, chanMail)
	}
	if s.Webhook != "" {
		ch = append(ch, chanWebhook)
	}
	return ch
}

// addFeed appends to a subscriber's feed and drops its oldest items past
// FeedItems.
func (c *Community) addFeed(tx *bolt.Tx, ik, v []byte) error {
	b := tx.Bucket(bFeed)
	seq, _ := b.NextSequence()
	if err := b.Put(seqKey(ik, seq), v); err != nil {
		return err
	}
	// Count from the newest backwards; past FeedItems, delete.
	cur := b.Cursor()
	end := seqKey(ik, ^uint64(0))
	k, _ := cur.Seek(end)
	if k == nil {
		k, _ = cur.Last()
	} else if !bytes.Equal(k, end) {
		k, _ = cur.Prev()
	}
	n := 0
	var dead [][]byte
	for ; k != nil && bytes.HasPrefix(k, ik); k, _ = cur.Prev() {
		n++
		if n > c.lim.FeedItems {
			dead = append(dead, bytes.Clone(k))
			if len(dead) > 16 {
				break // at most a few past the bound at a time: each add trims
			}
		}
	}
	for _, k := range dead {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// firstFixes names the advisories a release of dist fixes that no earlier
// logged release was reported fixing: every release above an advisory's
// range is outside it, and only the first is news.
func (r *router) firstFixes(dist, version string) ([]string, error) {
	var out []string
	b := r.tx.Bucket(bFixed)
	for _, a := range r.c.cfg.Advisories.Fixes(dist, version) {
		k := []byte(dist + "\x00" + a.ID)
		if b.Get(k) != nil {
			continue
		}
		if err := b.Put(k, []byte(version)); err != nil {
			return nil, err
		}
		out = append(out, advisoryName(a.ID, a.CVEs))
	}
	return out, nil
}
