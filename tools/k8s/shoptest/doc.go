// Package shoptest applies the deploy tree to a Kubernetes control plane built from source
// (the k8s binary of tools/k8s) and checks what its controllers make of it: `make test-k8s`.
package shoptest
