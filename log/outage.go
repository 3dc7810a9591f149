package log

import (
	sqldriver "database/sql/driver"
	"errors"
	"net"
	"net/url"
	"strings"

	"github.com/aws/smithy-go"
	"github.com/go-sql-driver/mysql"
)

// storageDependency names the storage dependency an error came from when
// it is one being unavailable ("mysql", "s3"), or "" for any other error.
// Nothing is wrong with a request that meets a storage outage: it is
// answered 503 with Retry-After, never 500, and counted by dependency.
func (l *Log) storageDependency(err error) string {
	if err == nil || l.cfg.Storage != StorageS3 {
		return ""
	}
	var me *mysql.MySQLError
	var oe *smithy.OperationError
	switch {
	case errors.As(err, &me), errors.Is(err, sqldriver.ErrBadConn), errors.Is(err, mysql.ErrInvalidConn):
		return "mysql"
	case errors.As(err, &oe):
		return "s3"
	}
	// Tessera's driver wraps the database's errors with %v: their text is
	// what is left of them.
	msg := err.Error()
	if strings.Contains(msg, mysql.ErrInvalidConn.Error()) || strings.Contains(msg, sqldriver.ErrBadConn.Error()) {
		return "mysql"
	}
	// A dial or read error names the address it failed on.
	var ne net.Error
	if errors.As(err, &ne) || strings.Contains(msg, "connection refused") || strings.Contains(msg, "i/o timeout") {
		if a := mysqlAddr(l.cfg.S3.DSN); a != "" && strings.Contains(msg, a) {
			return "mysql"
		}
		if u, perr := url.Parse(l.cfg.S3.Endpoint); perr == nil && u.Host != "" && strings.Contains(msg, u.Host) {
			return "s3"
		}
		return "storage"
	}
	return ""
}

// mysqlAddr is the host:port of a go-sql-driver DSN.
func mysqlAddr(dsn string) string {
	c, err := mysql.ParseDSN(dsn)
	if err != nil {
		return ""
	}
	return c.Addr
}
