package monitor

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestCheckpointSizeIsThisLogsKey: the size a monitor reports on start is
// of the checkpoint trusted for its log's key; a state left by another log
// with the same origin (another key) is not this log's size.
func TestCheckpointSizeIsThisLogsKey(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var leaves [][]byte
	for i := range 30 {
		leaves = append(leaves, mkUpload(t, fmt.Sprintf("authors/id/S/SY/SYNTH/D-%d.tar.gz", i), "SYNTH", fmt.Sprint(i), t0, nil))
	}
	state := t.TempDir()
	logA, _, vkeyA, _ := craftedLog(t, leaves, nil, "")
	if r := monitorOnce(t, logA, vkeyA, state, nil); r.err != nil {
		t.Fatal(r.err)
	}
	logB, _, vkeyB, _ := craftedLog(t, leaves[:3], nil, "") // same origin, its own key
	for _, tc := range []struct {
		vkey, url string
		want      string
	}{
		{vkeyA, logA, "cpantlog_monitor_checkpoint_size 30\n"},
		{vkeyB, logB, "cpantlog_monitor_checkpoint_size 0\n"},
	} {
		m, err := New(Config{Policy: mustPolicy(t, tc.vkey, tc.url), StateDir: state, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		m.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		m.Close()
		if !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("want %q in the metrics of a monitor of %s", tc.want, tc.vkey)
		}
	}
}

// TestLogSizeSeenBeforeVerified: cpantlog_monitor_log_size is the size of
// the checkpoint the log served, read before it is verified; the trusted
// size moves only when it verifies.
func TestLogSizeSeenBeforeVerified(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var leaves [][]byte
	for i := range 30 {
		leaves = append(leaves, mkUpload(t, fmt.Sprintf("authors/id/S/SY/SYNTH/D-%d.tar.gz", i), "SYNTH", fmt.Sprint(i), t0, nil))
	}
	logA, _, vkeyA, _ := craftedLog(t, leaves, nil, "")
	_, _, vkeyB, _ := craftedLog(t, leaves[:3], nil, "") // another key
	for _, tc := range []struct {
		vkey string
		want []string
	}{
		{vkeyB, []string{"cpantlog_monitor_log_size 30\n", "cpantlog_monitor_checkpoint_size 0\n"}},
		{vkeyA, []string{"cpantlog_monitor_log_size 30\n", "cpantlog_monitor_checkpoint_size 30\n"}},
	} {
		m, err := New(Config{Policy: mustPolicy(t, tc.vkey, logA), StateDir: t.TempDir(), Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		m.Sync(t.Context())
		rec := httptest.NewRecorder()
		m.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		m.Close()
		for _, w := range tc.want {
			if !strings.Contains(rec.Body.String(), w) {
				t.Errorf("policy key %s: want %q in the metrics", tc.vkey, w)
			}
		}
	}
}
