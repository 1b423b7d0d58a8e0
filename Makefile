# Tally: the two commands that matter are `make serve` and `make test`.
SWIFT ?= swift
DATA_DIR ?= ./tally-data
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: bootstrap build test test-cluster serve bench-engine bench-wal bench-tracking bench-http bench-kernels clean

bootstrap:
	@./scripts/bootstrap

build: bootstrap
	$(SWIFT) build

# Every test: a smoke run of the CLI benchmark on small data, the Swift Testing suites (with a throwaway PostgreSQL
# cluster, scripts/pg-test: the tracking tests run on SQLite and on PostgreSQL; and a throwaway SeaweedFS,
# scripts/s3-test: the S3 client and the artifact store on S3), then the interop suite (the real mlflow client
# against tally server) twice, side by side (scripts/interop): on the embedded SQLite store, and with every server
# on PostgreSQL.
# The Python venvs install (scripts/bootstrap python) while Swift builds: on a fresh machine they overlap.
# The suites run from the build above (`swift test --skip-build`: letting `swift test` plan and link again cost 25 s).
test:
	./scripts/bootstrap system
	./scripts/embed-ui --check
	@log=$$(mktemp); ./scripts/bootstrap python > $$log 2>&1 & venv=$$!; \
	$(SWIFT) build --build-tests; built=$$?; \
	wait $$venv; installed=$$?; cat $$log; rm -f $$log; \
	test $$built -eq 0 -a $$installed -eq 0
	./scripts/smoke-bench
	TALLY_REQUIRE_POSTGRES=1 TALLY_REQUIRE_S3=1 ./scripts/pg-test run ./scripts/s3-test run $(SWIFT) test --skip-build
	TALLY_BIN=.build/debug/tally ./scripts/interop

# The deployment teams scale to: object storage (SeaweedFS, scripts/s3-test) under the real mlflow client
# (test_s3.py), then the artifact, model and import modules of the interop suite with every server on PostgreSQL
# and its artifacts in S3, and three servers as one cluster (test_cluster.py: kill -9 of an owner mid-write); then the
# modules that write most through the database with every server behind PgBouncer in transaction mode
# (TALLY_INTEROP_POOLER=1: pool_mode=transaction, two server connections; docs/postgresql.md, "Behind a pooler").
# Run by .ci/run after `make test` (kept out of it for time).
test-cluster: bootstrap
	$(SWIFT) build --build-tests
	TALLY_BIN=.build/debug/tally ./scripts/s3-test run .venv-interop/bin/python -m pytest Tests/Interop/test_s3.py
	TALLY_INTEROP_BACKEND=postgres TALLY_INTEROP_ARTIFACTS=s3 TALLY_INTEROP_CLUSTER=1 TALLY_BIN=.build/debug/tally ./scripts/pg-test run ./scripts/s3-test run \
		.venv-interop/bin/python -m pytest Tests/Interop/test_tracking.py Tests/Interop/test_edges.py Tests/Interop/test_logged_models.py \
		Tests/Interop/test_registry.py Tests/Interop/test_import_postgres.py Tests/Interop/test_cluster.py Tests/Interop/test_gc.py
	TALLY_INTEROP_BACKEND=postgres TALLY_INTEROP_POOLER=1 TALLY_BIN=.build/debug/tally ./scripts/pg-test run .venv-interop/bin/python -m pytest \
		Tests/Interop/test_tracking.py Tests/Interop/test_shared_database.py Tests/Interop/test_edges.py Tests/Interop/test_logged_models.py \
		Tests/Interop/test_registry.py

# Starts the tracking server on the embedded default store (SQLite metadata + TallyStore in $(DATA_DIR)).
serve: bootstrap
	$(SWIFT) build -c release --product tally
	.build/release/tally server --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

# Engine figures for docs/benchmarks.md (release build).
bench-engine: bootstrap
	$(SWIFT) build -c release --product tally
	.build/release/tally bench engine --json

# Durability figures (release build).
bench-wal: bootstrap
	$(SWIFT) build -c release --product tally
	.build/release/tally bench wal --json

# Tracking figures (release build).
bench-tracking: bootstrap
	$(SWIFT) build -c release --product tally
	.build/release/tally bench tracking --json

# Server figures over loopback (release build; starts its own server).
bench-http: bootstrap
	$(SWIFT) build -c release --product tally
	.build/release/tally bench http --json

# ordo-one/benchmark kernels (separate package, never built by `make test`).
bench-kernels: bootstrap
	cd Benchmarks && $(SWIFT) package --allow-writing-to-package-directory benchmark --no-progress

clean:
	rm -rf .build Benchmarks/.build
