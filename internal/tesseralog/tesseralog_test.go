package tesseralog

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestTesseraLinesForPeople(t *testing.T) {
	var buf bytes.Buffer
	h := New(slog.NewTextHandler(&buf, nil), time.Minute)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	emit := func(at time.Duration, level slog.Level, msg string) {
		r := slog.NewRecord(t0.Add(at), level, msg, 0)
		if err := h.Handle(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// A witness down: the same failure every second for two minutes.
	for i := range 120 {
		emit(time.Duration(i)*time.Second, slog.LevelWarn, "publishCheckpoint: newCP: witness policy was not satisfied\nfailed to post to witness at \"http://127.0.0.1:43253/add-checkpoint\": connection refused")
	}
	emit(0, slog.LevelInfo, `Witness at "http://127.0.0.1:7380/add-checkpoint" replied with x.tlog.size 0 != our hint 1, retrying`)
	out := buf.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2 (one a minute):\n%s", len(lines), out)
	}
	if strings.Contains(out, `\n`) || !strings.Contains(lines[0], "satisfied; failed to post") {
		t.Errorf("a message is not one line:\n%s", out)
	}
	if !strings.Contains(lines[1], "repeated=59") {
		t.Errorf("the second line does not say how many were left out: %s", lines[1])
	}
	if strings.Contains(out, "x.tlog.size") {
		t.Errorf("the witness handshake is logged at INFO:\n%s", out)
	}
	// At debug level the handshake is there.
	buf.Reset()
	h = New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), time.Minute)
	h.Handle(ctx, slog.NewRecord(t0, slog.LevelInfo, `Witness at "x" replied with x.tlog.size 0 != our hint 1, retrying`, 0))
	if !strings.Contains(buf.String(), "level=DEBUG") {
		t.Errorf("handshake at debug level: %q", buf.String())
	}
}
