// Package decidetest holds what the tests of every decide.Decider share:
// entries to decide on and the rules they are decided by.
package decidetest

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/CPAN-Security/cpan-tlog/log/decide"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
	"github.com/CPAN-Security/cpan-tlog/log/index"
)

// Upload is the n-th content of an upload at path (each n a different
// content), and its leaf.
func Upload(path string, n int) (*entry.Entry, []byte) {
	e := &entry.Entry{Kind: entry.Upload, Path: path, Size: uint64(n + 1), Uploader: "TEST", Time: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}
	binary.BigEndian.PutUint64(e.SHA256[24:], uint64(n))
	leaf, err := e.Marshal()
	if err != nil {
		panic(err)
	}
	return e, leaf
}

// AnyContent is the rule of a path that takes anything: a repeat is a
// duplicate, everything else is logged.
func AnyContent(leaf []byte) decide.Rule { return rule(leaf, false, nil) }

// OneContent is the rule of a path that takes one content: a repeat is a
// duplicate, another content refused. seen, when set, gets each history
// decided on.
func OneContent(leaf []byte, seen *[][]index.Record) decide.Rule { return rule(leaf, true, seen) }

// ErrAnotherContent is OneContent's refusal.
var ErrAnotherContent = errors.New("another content is logged")

func rule(leaf []byte, one bool, seen *[][]index.Record) decide.Rule {
	return func(h []index.Record) (*index.Record, error) {
		if seen != nil {
			*seen = append(*seen, h)
		}
		for _, r := range h {
			if string(r.Leaf) == string(leaf) {
				return &r, nil
			}
		}
		if one && len(h) > 0 {
			return nil, ErrAnotherContent
		}
		return nil, nil
	}
}
