package database

import (
	"regexp"
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
	return placeholder.ReplaceAllString(query, "?")
}

var placeholder = regexp.MustCompile(`\$[0-9]+`)
