package log

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/CPAN-Security/cpan-tlog/log/decide"
	"github.com/CPAN-Security/cpan-tlog/log/index"
)

// busyHistory is a Decider whose History says the path's latest entries
// are being indexed, as the shared decider does while its row's entry
// before the last is not indexed yet (log/decide/shared).
type busyHistory struct{ decide.Decider }

func (busyHistory) History(context.Context, string) ([]index.Record, error) {
	return nil, fmt.Errorf("%w: the entry before the last is not indexed yet", decide.ErrPathBusy)
}

// TestLookupWhileIndexingIs503: a lookup that cannot see every entry of
// the path yet is a 503 to retry, never an answer missing an entry (a 404
// for an acknowledged upload) nor a 500.
func TestLookupWhileIndexingIs503(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.log.decider = busyHistory{s.log.decider}
	code, body, h := s.do("GET", "/lookup?path=authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", "", "")
	if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || !strings.Contains(string(body), "retry") {
		t.Errorf("lookup while indexing: %d %q (Retry-After %q)", code, body, h.Get("Retry-After"))
	}
}
