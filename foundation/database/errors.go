package database

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// IsUnavailable reports whether err means the database cannot be reached right now (connection
// refused or lost, server shutting down or starting up) rather than that the query is wrong.
// Services answer such errors with UNAVAILABLE (503) instead of INTERNAL (500).
func IsUnavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var (
		netErr  net.Error
		connErr *pgconn.ConnectError
		pgErr   *pgconn.PgError
	)
	switch {
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, net.ErrClosed),
		// The pool's connection was closed under the call (its server went away).
		errors.Is(err, pgconn.ErrConnClosed):
		return true
	case errors.As(err, &connErr), errors.As(err, &netErr):
		return true
	case errors.As(err, &pgErr):
		// Class 08: connection exception; class 57: operator intervention (admin shutdown,
		// crash shutdown, cannot connect now); 25006: a write reached a standby, which is what
		// a connection made to the old primary meets after a switchover.
		return pgErr.Code == readOnlyTransaction || len(pgErr.Code) == 5 && (pgErr.Code[:2] == "08" || pgErr.Code[:2] == "57")
	}
	return false
}

// readOnlyTransaction is SQLSTATE read_only_sql_transaction: a write sent to a standby.
const readOnlyTransaction = "25006"

// Failover names why the pool discarded a connection after a PostgreSQL error, the reason
// label of the discarded-connections metric: the failover (or switchover) signs the pool
// reacts to.
func Failover(pgErr *pgconn.PgError) (reason string, discard bool) {
	switch {
	case pgErr.Code == readOnlyTransaction:
		return "read_only", true
	case pgErr.Code == "57P01":
		return "admin_shutdown", true
	case len(pgErr.Code) == 5 && pgErr.Code[:2] == "08":
		return "connection_exception", true
	case strings.EqualFold(pgErr.Severity, "FATAL"):
		return "fatal", true
	}
	return "", false
}
