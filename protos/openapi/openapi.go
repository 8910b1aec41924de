// Package openapi embeds the OpenAPI 3.1 documents of both services, generated from the protos
// by `make generate` (protoc-gen-openapiv3, merged per service, success codes applied).
package openapi

import _ "embed"

// Customers is the OpenAPI document of the customers service.
//
//go:embed customers.openapi.json
var Customers []byte

// Cart is the OpenAPI document of the cart service.
//
//go:embed cart.openapi.json
var Cart []byte
