package main

import (
	"testing"

	"github.com/acme/shop/foundation/service/servicetest"
)

// TestSettingsDocumented: .env.example and docs/configuration.md list customers's settings as
// their declarations say (make generate writes them).
func TestSettingsDocumented(t *testing.T) {
	servicetest.CheckSettingsDocumented(t, spec, "../../..")
}
