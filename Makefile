# The one test command: `make test`. It installs what the tests need (idempotently), then runs
# formatting, lints and every test of the workspace.

CARGO ?= cargo

.PHONY: test deps lint unit release bench-engine bench-control-plane bench-proxy bench-runtime bench-kafka bench-monitor fuzz

test: deps lint unit

deps:
	@tests/install-deps.sh

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace

# The release binary built with profile-guided optimisation, as the image ships it
# (target/pgo/release/flowmesh; two fat-LTO builds and a training run, about 30 minutes).
release:
	deploy/pgo.sh

# Not part of `make test`: benchmarks are measurements, not pass/fail tests.
bench-engine:
	$(CARGO) run --release -p flowmesh-bench-engine

# Three flowmesh control-plane nodes next to three etcd members (installs etcd-server on first use).
bench-control-plane:
	$(CARGO) build --release --bin flowmesh
	$(CARGO) run --release -p flowmesh-bench-control-plane

# One and two sidecar hops next to nginx as a reverse proxy (installs nginx on first use).
# FLOWMESH_BIN=target/pgo/release/flowmesh measures the build of `make release` instead.
bench-proxy:
	$(if $(FLOWMESH_BIN),,$(CARGO) build --release --bin flowmesh)
	$(CARGO) run --release -p flowmesh-bench-proxy

# One sidecar running three-service-task instances against an app that answers at once.
bench-runtime:
	$(CARGO) build --release --bin flowmesh
	$(CARGO) run --release -p flowmesh-bench-runtime

# The monitor's answers for a 50-element model with 100,000 instances over five sidecars.
bench-monitor:
	$(CARGO) build --release --bin flowmesh
	$(CARGO) run --release -p flowmesh-bench-monitor

# Kafka clients direct to a broker and through a sidecar, same run (librdkafka's mock cluster
# unless BOOTSTRAP=HOST:PORT names a real one).
bench-kafka: deps
	$(CARGO) build --release --bin flowmesh
	python3 bench/kafka/bench.py $(if $(BOOTSTRAP),--bootstrap $(BOOTSTRAP))

# Not part of `make test`: coverage-guided fuzzing of the parser and of FEEL (needs
# `cargo install cargo-fuzz`; runs on stable without sanitizers). FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 60
fuzz:
	cd bpmn && cargo fuzz run -s none parse -- -max_total_time=$(FUZZ_SECONDS) -max_len=65536
	cd bpmn && cargo fuzz run -s none feel -- -max_total_time=$(FUZZ_SECONDS)
