// Package database opens the services' gorm database, PostgreSQL in production or an embedded
// SQLite file when no PostgreSQL DSN is configured, and applies gormigrate migrations.
package database

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/XSAM/otelsql"
	"github.com/glebarez/sqlite"
	"github.com/go-gormigrate/gormigrate/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/acme/shop/foundation/batch"
)

// Config says which database to open.
type Config struct {
	// DSN is a PostgreSQL connection string; when empty, SQLitePath is used.
	DSN string
	// Password, when set, is the password of DSN's user, as is (no escaping), in place of one
	// the DSN may hold.
	Password string
	// SQLitePath is the embedded database file, created with its folder if missing.
	SQLitePath string
	// MaxOpenConns bounds the PostgreSQL connection pool.
	MaxOpenConns int
}

// Dialect names the database a *gorm.DB talks to: "postgres" or "sqlite".
func Dialect(db *gorm.DB) string { return db.Name() }

// Option changes how Open opens the database.
type Option func(*options)

type options struct {
	tracer    trace.TracerProvider
	onDiscard func(reason string)
}

// OnDiscard makes Open call f with the reason (Failover) whenever the PostgreSQL pool closes a
// connection because of an error it reported: the services count them in a metric.
func OnDiscard(f func(reason string)) Option {
	return func(o *options) { o.onDiscard = f }
}

// WithTracing makes a span of every statement, with tp (otelsql wraps the driver). Without
// it the driver is used as it is, at no cost.
func WithTracing(tp trace.TracerProvider) Option {
	return func(o *options) { o.tracer = tp }
}

// Open opens and pings the configured database. Driver errors are translated into gorm's
// (gorm.ErrDuplicatedKey, gorm.ErrForeignKeyViolated) so that stores can map them to domain
// errors. SQL is logged without its parameters, and only when slow or failed.
func Open(ctx context.Context, cfg Config, log *slog.Logger, opts ...Option) (*gorm.DB, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	gcfg := &gorm.Config{
		TranslateError: true,
		NowFunc:        func() time.Time { return time.Now().UTC() },
		Logger: sqlLogger{
			Interface: logger.NewSlogLogger(log, logger.Config{
				SlowThreshold:             slowSQL,
				LogLevel:                  logger.Warn,
				IgnoreRecordNotFoundError: true,
				ParameterizedQueries:      true,
			}),
			log:   log,
			slow:  slowSQL,
			level: logger.Warn,
		},
	}
	var (
		db  *gorm.DB
		err error
	)
	if cfg.DSN != "" {
		dsn := cfg.DSN
		if cfg.Password != "" {
			if dsn, err = WithPassword(dsn, cfg.Password); err != nil {
				return nil, fmt.Errorf("open database: %w", err)
			}
		}
		connector, cerr := pgxConnector(dsn, o.onDiscard)
		if cerr != nil {
			return nil, fmt.Errorf("open database: %w", cerr)
		}
		var conn *sql.DB
		if o.tracer != nil {
			conn = otelsql.OpenDB(connector, otelOptions("postgresql", o.tracer)...)
		} else {
			conn = sql.OpenDB(connector)
		}
		db, err = gorm.Open(postgres.New(postgres.Config{Conn: conn}), gcfg)
		if err != nil {
			_ = conn.Close()
		}
	} else {
		db, err = openSQLite(cfg.SQLitePath, gcfg, o.tracer)
	}
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	if cfg.DSN != "" {
		maxOpen := cfg.MaxOpenConns
		if maxOpen <= 0 {
			maxOpen = 10
		}
		sqlDB.SetMaxOpenConns(maxOpen)
		sqlDB.SetMaxIdleConns(maxOpen)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("ping database: %w", err)
	}
	return db, nil
}

// WithPassword returns the postgres:// URL dsn with password as its user's password, escaped
// as a URL needs, so that a password may hold any character (/ @ : ? # % among them) without
// its owner escaping it. A password already in dsn is replaced; hosts and parameters are kept.
func WithPassword(dsn, password string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", errors.New("a password needs a postgres:// URL to go with")
	}
	if u.User == nil || u.User.Username() == "" {
		return "", errors.New("a password needs a user name in the URL (postgres://user@host/db)")
	}
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String(), nil
}

// slowSQL is how long a statement may take before it is logged.
const slowSQL = 200 * time.Millisecond

// sqlLogger hands gorm's slog logger only the statements it logs, the failed and the slow
// ones: for every statement it is given, it renders the SQL and formats the duration before
// it looks at either. A statement cut short because its caller gave up (ctx ended; SQLite
// answers "interrupted") is not logged: nothing failed, and the call's own line says CANCELED
// or DEADLINE_EXCEEDED.
type sqlLogger struct {
	logger.Interface
	log   *slog.Logger
	slow  time.Duration
	level logger.LogLevel
}

// Info, Warn and Error implement logger.Interface. gorm's messages are printf formats; its slog
// logger logs the format as the message and the arguments as a "data" attribute, which a JSON
// handler cannot encode when an argument holds functions (pgx's connection errors hold their
// config): the line read `"data":"!ERROR:json: unsupported type"` instead of the error. These
// log the formatted message.
func (l sqlLogger) Info(ctx context.Context, msg string, data ...any) {
	l.print(ctx, logger.Info, slog.LevelInfo, msg, data)
}

// Warn implements logger.Interface, as Info.
func (l sqlLogger) Warn(ctx context.Context, msg string, data ...any) {
	l.print(ctx, logger.Warn, slog.LevelWarn, msg, data)
}

// Error implements logger.Interface, as Info.
func (l sqlLogger) Error(ctx context.Context, msg string, data ...any) {
	l.print(ctx, logger.Error, slog.LevelError, msg, data)
}

func (l sqlLogger) print(ctx context.Context, at logger.LogLevel, level slog.Level, msg string, data []any) {
	if l.level < at {
		return
	}
	l.log.Log(ctx, level, fmt.Sprintf(msg, data...))
}

// Trace implements logger.Interface.
func (l sqlLogger) Trace(ctx context.Context, begin time.Time, fc func() (sql string, rowsAffected int64), err error) {
	if (err == nil || errors.Is(err, gorm.ErrRecordNotFound)) && time.Since(begin) <= l.slow {
		return
	}
	if err != nil && ctx.Err() != nil {
		return
	}
	l.Interface.Trace(ctx, begin, fc, err)
}

// LogMode implements logger.Interface. At Info and above every statement is logged, so gorm's
// logger gets them all.
func (l sqlLogger) LogMode(level logger.LogLevel) logger.Interface {
	if level >= logger.Info {
		return l.Interface.LogMode(level)
	}
	return sqlLogger{Interface: l.Interface.LogMode(level), log: l.log, slow: l.slow, level: level}
}

// ParamsFilter implements gorm.ParamsFilter, which keeps parameters out of the logs.
func (l sqlLogger) ParamsFilter(ctx context.Context, sql string, params ...any) (string, []any) {
	if f, ok := l.Interface.(gorm.ParamsFilter); ok {
		return f.ParamsFilter(ctx, sql, params...)
	}
	return sql, params
}

// openSQLite opens the embedded database. One connection serialises every statement: SQLite
// allows one writer at a time, and a single connection turns what would be SQLITE_BUSY errors
// under concurrent writes into orderly waiting. It is the development default, not a
// production database.
func openSQLite(path string, gcfg *gorm.Config, tracer trace.TracerProvider) (*gorm.DB, error) {
	if path == "" {
		return nil, errors.New("neither a PostgreSQL DSN nor an SQLite path is configured")
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, err
		}
	}
	dsn := "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_txlock=immediate"
	dialector := sqlite.Open(dsn)
	if tracer != nil {
		conn, err := traced(sqlite.DriverName, dsn, "sqlite", tracer)
		if err != nil {
			return nil, err
		}
		dialector = &sqlite.Dialector{Conn: conn}
	}
	db, err := gorm.Open(dialector, gcfg)
	if err != nil {
		return nil, err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	sqlDB.SetMaxOpenConns(1)
	return db, nil
}

// traced opens driver's database at dsn through otelsql: one span per statement, named by its
// operation, with the statement (parameters left out) as db.statement. Row iteration, session
// resets and connection set-up are left out: they are noise next to the statements.
func traced(driver, dsn, system string, tp trace.TracerProvider) (*sql.DB, error) {
	return otelsql.Open(driver, dsn, otelOptions(system, tp)...)
}

func otelOptions(system string, tp trace.TracerProvider) []otelsql.Option {
	return []otelsql.Option{
		otelsql.WithTracerProvider(tp),
		otelsql.WithAttributes(attribute.String("db.system", system)),
		otelsql.WithSpanOptions(otelsql.SpanOptions{OmitConnResetSession: true, OmitRows: true, OmitConnectorConnect: true, DisableErrSkip: true}),
	}
}

// pgxConnector connects to the PostgreSQL of dsn, which may name several hosts
// (postgres://u:p@db1:5432,db2:5432/shop?target_session_attrs=read-write: pgx tries them in
// turn and keeps the first that takes writes). A connection that reports an error saying that
// it is no use any more (Failover: it now talks to a standby, or its server is going away) is
// closed on the spot, so the pool never hands it out again: after a switchover the old
// primary's connections answer 25006 to every write while a "SELECT 1" still passes on them,
// and only closing them sends the next request to a new connection, made to the new primary.
func pgxConnector(dsn string, onDiscard func(reason string)) (driver.Connector, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.OnPgError = func(_ *pgconn.PgConn, pgErr *pgconn.PgError) bool {
		reason, discard := Failover(pgErr)
		if discard && onDiscard != nil {
			onDiscard(reason)
		}
		return !discard
	}
	return stdlib.GetConnector(*cfg), nil
}

// LookupTimeout bounds one batched lookup (package batch) of the stores' hot paths: primary-key
// reads that take microseconds, so one that takes seconds is stuck (a half-open connection,
// say), and every lookup queued behind it would wait with it. cart gives customers 2 s per
// token check by default; a stuck session lookup fails them for at most this long.
const LookupTimeout = 3 * time.Second

// Lookups batches one of a store's hot lookups (package batch), up to maxBatch keys a query,
// each query as Many reads them.
func Lookups[K comparable, V any](db *gorm.DB, one func(ctx context.Context, key K) (V, bool, error), atOnce batch.Fetch[K, V], maxBatch int) *batch.Loader[K, V] {
	return batch.New(Many(db, one, atOnce), maxBatch, LookupTimeout)
}

// Many reads many keys of a lookup: on PostgreSQL atOnce reads them all with one query; on
// SQLite, whose single connection runs one query at a time anyway, one reads the keys in turn.
func Many[K comparable, V any](db *gorm.DB, one func(ctx context.Context, key K) (V, bool, error), atOnce batch.Fetch[K, V]) batch.Fetch[K, V] {
	if Dialect(db) == "postgres" {
		return atOnce
	}
	return batch.Each(one)
}

// Changed returns the error of res, a write, or notFound when it changed no row: the one way a
// store says that the row an update or delete named does not exist.
func Changed(res *gorm.DB, notFound error) error {
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return notFound
	}
	return nil
}

// Take reads the one row q selects and returns it converted by to, or notFound when there is
// none: the one way a store says that the row a read named does not exist.
func Take[Row, T any](q *gorm.DB, notFound error, to func(Row) T) (T, error) {
	var row Row
	if err := q.Take(&row).Error; err != nil {
		var zero T
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return zero, notFound
		}
		return zero, err
	}
	return to(row), nil
}

// Close closes the database's connection pool.
func Close(db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Ping checks that the database answers; it backs the services' /readyz.
func Ping(ctx context.Context, db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

// MigrateOptions are the gormigrate options every service uses: each migration runs in its
// own transaction, and applied IDs are kept in the "migrations" table.
var MigrateOptions = &gormigrate.Options{
	TableName:      "migrations",
	IDColumnName:   "id",
	IDColumnSize:   255,
	UseTransaction: true,
}

// Migrate applies every migration not applied yet. On PostgreSQL it applies them all in one
// transaction that first takes a transaction-level advisory lock named after service, so that
// replicas or Jobs starting at once migrate one after another (the first applies the
// migrations, the others find nothing left to do), and a failed migration leaves the schema as
// it was. The lock lives and dies with the transaction, so Migrate holds no session state and
// is safe behind a transaction pooler such as PgBouncer, where a session-level lock and its
// unlock could land on different server connections.
func Migrate(ctx context.Context, db *gorm.DB, service string, migrations []*gormigrate.Migration) error {
	db = db.WithContext(ctx)
	if Dialect(db) != "postgres" {
		return gormigrate.New(db, MigrateOptions, migrations).Migrate()
	}
	// The outer transaction already makes them atomic.
	opts := *MigrateOptions
	opts.UseTransaction = false
	return db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", lockKey("migrate:"+service)).Error; err != nil {
			return fmt.Errorf("take migration lock: %w", err)
		}
		return gormigrate.New(tx, &opts, migrations).Migrate()
	})
}

// Pending returns the IDs of the migrations not applied yet, in order: a service that does not
// migrate on start (Kubernetes runs `migrate` as a Job) refuses to serve an older schema.
func Pending(ctx context.Context, db *gorm.DB, migrations []*gormigrate.Migration) ([]string, error) {
	var applied []string
	db = db.WithContext(ctx)
	if db.Migrator().HasTable(MigrateOptions.TableName) {
		if err := db.Table(MigrateOptions.TableName).Pluck(MigrateOptions.IDColumnName, &applied).Error; err != nil {
			return nil, fmt.Errorf("read applied migrations: %w", err)
		}
	}
	done := make(map[string]bool, len(applied))
	for _, id := range applied {
		done[id] = true
	}
	var pending []string
	for _, m := range migrations {
		if !done[m.ID] {
			pending = append(pending, m.ID)
		}
	}
	return pending, nil
}

// lockKey is the PostgreSQL advisory lock key named name.
func lockKey(name string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return int64(h.Sum64() >> 1)
}
