package monitor

import (
	"context"
	"errors"
)

// AuditMirror compares a CPAN mirror with the log (see mirror_audit.go).
func (m *Monitor) AuditMirror(ctx context.Context, loc string) error {
	return errors.New("audit-mirror is not implemented yet")
}
