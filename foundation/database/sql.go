package database

import (
	"strconv"
	"strings"

	"gorm.io/gorm"
)

// ContainsPattern returns the LIKE pattern (to use with ESCAPE '\') that matches s as a
// literal, lower-cased substring: %, _ and the escape character itself in s match only
// themselves.
func ContainsPattern(s string) string {
	escaped := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.ToLower(s))
	return "%" + escaped + "%"
}

// Rebind returns query, written with PostgreSQL's $1, $2, ... placeholders, in the dialect of
// db: unchanged for PostgreSQL, with ? for SQLite. Call it once, when a store is made, not per
// query.
func Rebind(db *gorm.DB, query string) string {
	if Dialect(db) == "postgres" {
		return query
	}
	// Replace from the highest number down, so that $1 does not eat the start of $10.
	for i := strings.Count(query, "$"); i >= 1; i-- {
		query = strings.ReplaceAll(query, "$"+strconv.Itoa(i), "?")
	}
	return query
}
