// Package deploy holds no code: this module is the kustomize tree that deploys the shop on
// Kubernetes (base, overlays/dev, overlays/production, components/mtls, components/pgbouncer,
// components/observability) and the tests that build every variant of it and check it without
// a cluster.
package deploy
