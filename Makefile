# Everyday commands. `make help` lists them. Tools are built at pinned versions from
# tools/**/go.mod into bin/ (git-ignored) the first time they are needed.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

MODULES  := protos foundation customers-svc cart-svc tools tools/bench deploy
SERVICES := customers-svc cart-svc
BIN      := $(CURDIR)/bin
GO_TEST_FLAGS ?= -race -count=1

PLUGINS := protoc-gen-go protoc-gen-go-grpc protoc-gen-grpc-gateway protoc-gen-openapiv3 openapiv3-merge mockgen

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

## --- tools ----------------------------------------------------------------------------------

$(BIN)/buf: tools/buf/go.mod tools/buf/go.sum
	cd tools/buf && GOWORK=off GOBIN=$(BIN) go install github.com/bufbuild/buf/cmd/buf

$(BIN)/golangci-lint: tools/lint/go.mod tools/lint/go.sum
	cd tools/lint && GOWORK=off GOBIN=$(BIN) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint

$(BIN)/oasdiff: tools/oasdiff/go.mod tools/oasdiff/go.sum
	cd tools/oasdiff && GOWORK=off GOBIN=$(BIN) go install github.com/oasdiff/oasdiff

# A Kubernetes control plane in one binary (tools/k8s): etcd, kube-apiserver, kubectl,
# kube-controller-manager, kube-scheduler and kwok at the releases tools/k8s/go.mod pins. Its own
# module outside go.work, as buf's: it pulls in all of Kubernetes. Cold: about 22 minutes of CPU
# (so over 11 minutes on 2 idle cores); warm, a relink of about 30 s.
# kubectl reads the server's version from gitVersion.
K8S_VERSION := v1.37.2

$(BIN)/k8s: tools/k8s/go.mod tools/k8s/go.sum tools/k8s/main.go
	cd tools/k8s && GOWORK=off go build -o $(BIN)/k8s \
	  -ldflags '-X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37' .

# Spectral (npm @stoplight/spectral-cli) at the version tools/spectral/package-lock.json pins;
# install scripts are skipped (Spectral needs none: the one there only reports usage).
SPECTRAL := tools/spectral/node_modules/.bin/spectral

$(SPECTRAL): tools/spectral/package.json tools/spectral/package-lock.json
	cd tools/spectral && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

$(BIN)/.plugins: tools/go.mod tools/go.sum $(wildcard tools/openapi-finalize/*.go)
	cd tools && GOWORK=off GOBIN=$(BIN) go install tool ./openapi-finalize
	touch $@

.PHONY: tools
tools: $(BIN)/buf $(BIN)/golangci-lint $(BIN)/oasdiff $(BIN)/.plugins $(SPECTRAL) ## Build the pinned code generators and linters into bin/ (Spectral into tools/spectral, with npm).

## --- generation -----------------------------------------------------------------------------

.PHONY: generate
generate: $(BIN)/buf $(BIN)/.plugins ## Generate Go code and OpenAPI documents from protos/, and the settings tables from their declarations.
	$(BIN)/buf format -w
	PATH=$(BIN):$$PATH $(BIN)/buf generate
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	PATH=$(BIN):$$PATH $(BIN)/buf generate --template buf.gen.openapi.yaml -o "$$tmp"; \
	$(BIN)/buf build -o "$$tmp/image.binpb"; \
	$(BIN)/openapiv3-merge "$$tmp"/customers/v1/user.openapi.json "$$tmp"/customers/v1/auth.openapi.json > "$$tmp/customers.json"; \
	$(BIN)/openapiv3-merge "$$tmp"/cart/v1/product.openapi.json "$$tmp"/cart/v1/cart.openapi.json > "$$tmp/cart.json"; \
	$(BIN)/openapi-finalize "$$tmp/image.binpb" "$$tmp/customers.json" protos/openapi/customers.openapi.json; \
	$(BIN)/openapi-finalize "$$tmp/image.binpb" "$$tmp/cart.json" protos/openapi/cart.openapi.json
	for m in customers-svc cart-svc; do (cd $$m && PATH=$(BIN):$$PATH go generate ./...); done
	# The settings of .env.example and docs/configuration.md, from their declarations.
	for s in customers cart; do \
	  (cd $$s-svc && go test -count=1 -run '^TestSettingsDocumented$$' ./cmd/$$s-svc -update-settings >/dev/null); \
	done

# What `make generate` writes (and formats); nothing else may differ from the commit.
GENERATED := protos cart-svc/internal/auth/authmock .env.example docs/configuration.md

.PHONY: check-generate
check-generate: generate ## Fail if the committed generated files are stale.
	@if [ -n "$$(git status --porcelain -- $(GENERATED))" ]; then \
	  git status --porcelain -- $(GENERATED); \
	  echo "generated files are stale: run 'make generate' and commit the result" >&2; exit 1; \
	fi

# The contract must stay compatible with the release (the newest v* tag HEAD contains, else the
# commit in protos/BASELINE) and with the previous commit on main (where this branch forked from
# main; on main, HEAD's first parent): scripts/check-breaking.sh. Tag a release (git tag v1.1.0)
# when one is made; a deliberate breaking change needs a new API version (cart.v2), not a moved
# baseline. BREAKING_BASE=REF checks against REF alone.
BREAKING_BASE ?=

.PHONY: check-breaking
check-breaking: $(BIN)/buf $(BIN)/oasdiff ## Fail if the protos or the OpenAPI documents break compatibility with the release or main's previous commit.
	BIN=$(BIN) ./scripts/check-breaking.sh $(BREAKING_BASE)

.PHONY: check-openapi
check-openapi: $(SPECTRAL) ## Lint both OpenAPI documents with Spectral's spectral:oas ruleset; a warning fails.
	$(SPECTRAL) lint --fail-severity=warn --ruleset tools/spectral/.spectral.yaml \
	  protos/openapi/customers.openapi.json protos/openapi/cart.openapi.json

.PHONY: check-tidy
check-tidy: ## Fail if a module's go.mod or go.sum is not what `go mod tidy` writes.
	@for m in $(MODULES) tools/buf tools/lint tools/oasdiff tools/k8s; do \
	  (cd $$m && GOWORK=off go mod tidy -diff) || { echo "$$m: run 'go mod tidy' there and commit" >&2; exit 1; }; \
	done

.PHONY: check-tracked
check-tracked: ## Fail if git tracks a binary or a file over 1 MiB.
	./scripts/check-tracked.sh

.PHONY: vendor-protos
vendor-protos: ## Re-vendor the third_party .proto imports at their pinned versions.
	./scripts/vendor-protos.sh

## --- build, lint, test, run -----------------------------------------------------------------

.PHONY: build
build: ## Build both services into bin/.
	./scripts/build.sh $(SERVICES)

.PHONY: images
images: ## Build ghcr.io/acme/shop-{customers,cart}:<git describe> into the local Docker daemon, pulling nothing (IMAGE_REPO, VERSION override).
	./scripts/images.sh

.PHONY: set-version
set-version: ## Pin the release tag VERSION in deploy/base (kustomize images) and docker-compose.production.yaml.
	@test -n "$(VERSION)" || { echo "usage: make set-version VERSION=v1.2.3" >&2; exit 1; }
	sed -i -E 's/^(    newTag: ).*/\1"$(VERSION)"/' deploy/base/kustomization.yaml
	sed -i -E 's/(image: ghcr\.io\/acme\/shop-[a-z]+:\$$\{SHOP_VERSION:-)[^}]*\}/\1$(VERSION)}/' docker-compose.production.yaml

.PHONY: lint
lint: $(BIN)/buf $(BIN)/golangci-lint ## buf lint, buf format check, golangci-lint on every module.
	$(BIN)/buf lint
	$(BIN)/buf format --diff --exit-code
	for m in $(MODULES); do (cd $$m && $(BIN)/golangci-lint run ./...); done
	# tools/k8s: its test only. Linting main.go type-checks all of Kubernetes (about 7 minutes
	# cold) for a file of 100 lines that the build already compiles.
	cd tools/k8s && GOWORK=off $(BIN)/golangci-lint run ./shoptest/

.PHONY: test
test: ## Run every test of every module with the race detector (PostgreSQL tests need TEST_DATABASE_URL or a local server).
	for m in $(MODULES); do (cd $$m && go test $(GO_TEST_FLAGS) ./...); done

# The registration flood of issue 14 without the race detector, whose cost per request would
# make its latency and memory bounds measure the detector (make test skips it).
.PHONY: test-flood
test-flood: ## Flood customers with registrations; logins keep a p99 under 2 s, memory stays under compose's limit.
	cd customers-svc && go test -count=1 -run '^TestRegistrationFloodDoesNotStarveLogins$$' -v ./cmd/customers-svc/

# The deploy tree on a real control plane (tools/k8s/shoptest): dev and production with every
# component, server-side applied into namespaces enforcing Pod Security restricted, pods on kwok
# nodes, an upgrade that migrates first, broken trees refused. kubectl is the one bin/k8s holds.
.PHONY: test-k8s
test-k8s: $(BIN)/k8s ## Apply every overlay to a Kubernetes control plane built from source, upgrade it, and check what its controllers make of it.
	cd tools/k8s && GOWORK=off K8S_BIN=$(BIN)/k8s go test -count=1 -timeout=20m -v ./shoptest/

# The store and end-to-end tests again, through PgBouncer in transaction pooling mode in front of
# the local PostgreSQL (scripts/pgbouncer.sh; apt-get install pgbouncer), as production runs
# behind deploy/components/pgbouncer: nothing may depend on session state.
PGBOUNCER_TEST_URL := postgres://shop:shop@127.0.0.1:6432/postgres?sslmode=disable&default_query_exec_mode=exec

.PHONY: test-pgbouncer
test-pgbouncer: ## Run the store and end-to-end tests through PgBouncer (transaction mode).
	./scripts/pgbouncer.sh start 6432
	trap './scripts/pgbouncer.sh stop 6432' EXIT; \
	(cd foundation && TEST_DATABASE_URL='$(PGBOUNCER_TEST_URL)' go test $(GO_TEST_FLAGS) ./database/...); \
	(cd customers-svc && TEST_DATABASE_URL='$(PGBOUNCER_TEST_URL)' go test $(GO_TEST_FLAGS) ./internal/customerdb/ ./internal/migrations/ ./cmd/...); \
	(cd cart-svc && TEST_DATABASE_URL='$(PGBOUNCER_TEST_URL)' go test $(GO_TEST_FLAGS) ./internal/cartdb/ ./internal/migrations/ ./cmd/...)

# Every fuzz target: package, name, and how many inputs fuzz-smoke tries (its -fuzztime): about
# what 10 s of fuzzing tries on a 2-core machine, the seed corpus included. The committed corpora
# under testdata/fuzz run as ordinary tests in `make test`. A count, not a duration: when a
# -fuzztime duration runs out, Go 1.26's fuzzing coordinator can fail the run with a bare
# "context deadline exceeded" and no failing input (go.dev/issue/75804, fixed in Go 1.27); and on
# a busy machine a duration goes on starting the REST targets' services, not on fuzzing. A busy
# machine takes longer over a count instead. FUZZTIME (any -fuzztime: 100000x, 1m) replaces
# every count.
FUZZ_TARGETS := foundation/pagetoken:FuzzDecode:200000x cart-svc/internal/cart:FuzzParsePrice:200000x \
	customers-svc/cmd/customers-svc:FuzzREST:3000x cart-svc/cmd/cart-svc:FuzzREST:1000x
FUZZTIME ?=

.PHONY: fuzz-smoke
fuzz-smoke: ## Fuzz every target for its count of inputs (about 10 s each), or for FUZZTIME.
	for t in $(FUZZ_TARGETS); do \
	  IFS=: read -r pkg name count <<<"$$t"; mod=$${pkg%%/*}; \
	  (cd $$mod && go test -run '^$$' -fuzz "^$$name$$" -fuzztime $(or $(FUZZTIME),$$count) ./$${pkg#*/}); \
	done

# More flags for tools/bench (`go run ./tools/bench -h`), e.g. BENCH_FLAGS=-tracing to trace
# every request and export the spans to a collector stub in the benchmark's process.
BENCH_FLAGS ?=

.PHONY: bench
bench: ## Load-test both services on PostgreSQL against same-run baselines, then the replica set, then 1,000 deletions under cart load on SQLite and PostgreSQL (about 9 minutes; BENCH_FLAGS=-tracing).
	go run ./tools/bench -root . -duration 10s -users 1000 -scale-users 100000 -replicas -erase-users 1000 $(BENCH_FLAGS)

.PHONY: bench-smoke
bench-smoke: ## A few seconds per scenario on small data, and 50 deletions; fails on any request error or an incomplete erasure, not on speed.
	go run ./tools/bench -root . -duration 2s -users 200 -scale-users 0 -erase-users 50 -smoke $(BENCH_FLAGS)

.PHONY: run
run: build ## Build and run both services on the embedded SQLite default, with a development NATS server; Ctrl-C stops them.
	go build -o $(BIN)/natsdev ./tools/natsdev
	./scripts/run.sh

# PgBouncer's port for run-replicas: one already listening there is used and left running.
PGBOUNCER_PORT ?= 6432

.PHONY: run-replicas
run-replicas: build ## Run what Kubernetes deploys on loopback: 2 customers + 2 cart replicas, PostgreSQL (make db), DNS.
	go build -o $(BIN)/replicaset ./tools/replicaset/cmd/replicaset
	$(BIN)/replicaset -root . -bin $(BIN) -pgbouncer-port $(PGBOUNCER_PORT)

# The first of the ports run-ha's cluster listens on, on 127.0.0.1 (etcd, then PostgreSQL and
# Patroni's REST API per node): 25400 to 25407.
HA_PORT ?= 25400

.PHONY: run-ha
run-ha: build ## Run 2 customers + 2 cart replicas on a Patroni cluster of 3 PostgreSQL nodes (etcd, synchronous mode) on loopback.
	go build -o $(BIN)/ha ./tools/ha/cmd/ha
	$(BIN)/ha -bin $(BIN) -base-port $(HA_PORT)

.PHONY: failover
failover: ## Switch run-ha's primary over to its synchronous standby (a planned switchover); the services follow.
	go run ./tools/ha/cmd/ha -switchover -base-port $(HA_PORT)

.PHONY: test-failover
test-failover: ## Switchover, primary kill and rejoin under load through both services, on Patroni (make test runs it too).
	cd tools && go test $(GO_TEST_FLAGS) -v -run '^TestFailover' ./ha/

.PHONY: clean
clean: ## Remove bin/ (built tools and services).
	rm -rf $(BIN)

.PHONY: certs
certs: ## Create a development CA and TLS certificates for customers and cart in certs/.
	cd foundation && go run ./cmd/devcerts -out ../certs

.PHONY: compose-check
compose-check: ## Validate docker-compose.yaml, with and without the profile observability, and with docker-compose.production.yaml (needs docker-compose or the compose plugin).
	if docker compose version >/dev/null 2>&1; then compose="docker compose"; else compose=docker-compose; fi; \
	$$compose config -q && $$compose --profile observability config -q && \
	CUSTOMERS_DB_PASSWORD=x CART_DB_PASSWORD=x GRAFANA_ADMIN_PASSWORD=x CUSTOMERS_JWT_SECRET=x CART_PAGE_TOKEN_SECRET=x CUSTOMERS_TRUSTED_PROXIES= \
	  $$compose -f docker-compose.yaml -f docker-compose.production.yaml config -q

# The alert rules of deploy/components/observability as kustomize builds them, checked and
# unit-tested by promtool (alerts_test.yaml), the Grafana dashboard's queries and compose's
# prometheus.yml. `make test` runs the same tests, skipping them without promtool unless CI is set.
.PHONY: check-rules
check-rules: ## Check the alert rules, their unit tests and the dashboard's queries with promtool (apt-get install prometheus).
	@command -v promtool >/dev/null || { echo "promtool is missing: apt-get install prometheus" >&2; exit 1; }
	cd deploy && go test -count=1 -run 'TestAlertRules|TestPromtoolRejectsBrokenRules|TestDashboard|TestPrometheusConfig' -v ./...

.PHONY: db
db: ## Start the local PostgreSQL and create the test role (shop/shop, CREATEDB).
	./scripts/ensure-postgres.sh
