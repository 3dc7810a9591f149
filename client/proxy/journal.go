package proxy

import (
	"fmt"
	"io"
	"path"
	"sort"
	"sync"
)

// Journal records the proxy's decisions, for a summary at the end of an
// install: clients such as cpanm hide a 403's body, so the reasons are
// shown here instead. Each file has one verdict, the worst it got
// (refused, then could not check, then exempt, then verified); resolver
// answers (cpanmetadb, MetaCPAN's download_url) are counted, not listed
// as files. An exempt file (one of the user's exemption patterns matched
// it) is neither verified nor a failure: it is listed and counted apart.
type Journal struct {
	mu       sync.Mutex
	files    map[string]*verdict
	verified map[[32]byte]bool   // sha256 of every file served or checked as verified
	judged   map[[32]byte]bool   // sha256 of every file checked and refused or not checkable
	exempt   map[[32]byte]string // sha256 of every exempt file the hook sent, and its pattern
	// exemptNames are the last path elements of the exempt subjects whose
	// bytes the hook did not send, and their patterns.
	exemptNames map[string]string
	resolved    int
}

type verdict struct {
	level  int // one of the levels below
	reason string
}

const (
	levelOK = iota
	levelExempt
	levelUnchecked
	levelRefused
)

var levelNames = [...]string{levelOK: "ok", levelExempt: "exempt", levelUnchecked: "UNCHECKED", levelRefused: "REFUSED"}

func (j *Journal) add(decision, url, cpanPath, reason string, sha256 *[32]byte) {
	if j == nil {
		return
	}
	level := levelOK
	switch decision {
	case "verified", "cached":
	case "refused", "not_proxied":
		level = levelRefused
	case "log_unreachable", "error":
		level = levelUnchecked
	case "resolved":
		j.mu.Lock()
		j.resolved++
		j.mu.Unlock()
		return
	default: // not_found, generated, parsed: not a file anyone vouched for
		return
	}
	key := cpanPath
	if key == "" {
		key = url
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if level == levelOK && sha256 != nil {
		if j.verified == nil {
			j.verified = map[[32]byte]bool{}
		}
		j.verified[*sha256] = true
	} else if sha256 != nil {
		if j.judged == nil {
			j.judged = map[[32]byte]bool{}
		}
		j.judged[*sha256] = true
	}
	j.record(key, level, reason)
}

func (j *Journal) record(key string, level int, reason string) {
	if j.files == nil {
		j.files = map[string]*verdict{}
	}
	if v, ok := j.files[key]; !ok || level > v.level {
		j.files[key] = &verdict{level: level, reason: reason}
	}
}

// exempted records subject as exempt by pattern, and the sha256 of its
// bytes when the hook sent them.
func (j *Journal) exempted(subject, pattern string, sha256 *[32]byte) {
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if sha256 != nil {
		if j.exempt == nil {
			j.exempt = map[[32]byte]string{}
		}
		j.exempt[*sha256] = pattern
	} else {
		if j.exemptNames == nil {
			j.exemptNames = map[string]string{}
		}
		j.exemptNames[path.Base(subject)] = pattern
	}
	j.record(subject, levelExempt, fmt.Sprintf("not verified (exempt by %s)", pattern))
}

// Verified reports whether bytes with this sha256 were served, or checked
// for the hook, as verified.
func (j *Journal) Verified(sha256 [32]byte) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.verified[sha256]
}

// Judged reports whether bytes with this sha256 were checked for the hook
// and refused or could not be checked: their verdict is already listed
// under their CPAN path, and the run fails on it.
func (j *Journal) Judged(sha256 [32]byte) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.judged[sha256]
}

// Exempt reports whether bytes with this sha256 were exempted (the hook
// sent them with an exemption that was accepted), and by which pattern.
func (j *Journal) Exempt(sha256 [32]byte) (pattern string, ok bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	pattern, ok = j.exempt[sha256]
	return pattern, ok
}

// ExemptName reports whether a file named name (its last path element)
// is the file of a subject exempted without its bytes (a CPAN path, URL or
// local path ending in that name), and by which pattern: the hook
// exempted that subject whatever its bytes.
func (j *Journal) ExemptName(name string) (pattern string, ok bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	pattern, ok = j.exemptNames[name]
	return pattern, ok
}

// Unverified records a file a client used that the proxy never served as
// verified: it came around the proxy.
func (j *Journal) Unverified(name string) {
	j.Refused(name, "the command used this file, but it did not come through the verifying proxy as verified (a local file, a file:// mirror, or a setting that routed around the proxy)")
}

// Refused records a file a client used that is not verified, with why.
func (j *Journal) Refused(name, reason string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.record(name, levelRefused, reason)
}

// Unchecked records a file a client used that could not be checked (it
// could not be read, say), with why: nothing was proven either way.
func (j *Journal) Unchecked(name, reason string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.record(name, levelUnchecked, reason)
}

// Counts returns how many distinct files verified, were refused (or used
// without verification), and could not be checked (log or upstream
// unreachable).
func (j *Journal) Counts() (verified, refused, unchecked int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, v := range j.files {
		switch v.level {
		case levelOK:
			verified++
		case levelRefused:
			refused++
		case levelUnchecked:
			unchecked++
		}
	}
	return
}

// Exempted returns how many distinct files were exempt (not verified,
// not refused: one of the user's exemption patterns matched them).
func (j *Journal) Exempted() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := 0
	for _, v := range j.files {
		if v.level == levelExempt {
			n++
		}
	}
	return n
}

// Summary writes every file once with its verdict, and the reason of each
// that did not verify.
func (j *Journal) Summary(w io.Writer) {
	j.mu.Lock()
	keys := make([]string, 0, len(j.files))
	for k := range j.files {
		keys = append(keys, k)
	}
	files, resolved := j.files, j.resolved
	j.mu.Unlock()
	verified, refused, unchecked := j.Counts()
	exempt := j.Exempted()
	sort.Slice(keys, func(a, b int) bool {
		if files[keys[a]].level != files[keys[b]].level {
			return files[keys[a]].level < files[keys[b]].level
		}
		return keys[a] < keys[b]
	})
	fmt.Fprintf(w, "cpantlog: %d files verified against the log, %d refused, %d could not be checked", verified, refused, unchecked)
	if exempt > 0 {
		fmt.Fprintf(w, ", %d exempt (not verified)", exempt)
	}
	if resolved > 0 {
		fmt.Fprintf(w, " (and %d resolver answers from the verified 02packages)", resolved)
	}
	fmt.Fprintln(w)
	for _, k := range keys {
		v := files[k]
		fmt.Fprintf(w, "  %-9s %s\n", levelNames[v.level], k)
		if v.level != levelOK {
			fmt.Fprintf(w, "            %s\n", v.reason)
		}
	}
}
