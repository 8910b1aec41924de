package migrations

import (
	"github.com/go-gormigrate/gormigrate/v2"

	"github.com/acme/shop/foundation/ratelimit"
)

// createRateLimits creates the table in which foundation/ratelimit counts each user's calls
// that change something, so that the limit holds across replicas (ratelimit.CreateTable
// describes it).
func createRateLimits() *gormigrate.Migration {
	return ratelimit.CreateTable("202612071205_create_rate_limits")
}
