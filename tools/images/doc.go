// Package images holds the test of the service images that `make images` builds: each runs as
// Kubernetes runs it (read-only root, user 65532, no capabilities) against the local
// PostgreSQL. It has no code of its own.
package images
