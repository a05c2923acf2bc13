# The one test command: `make test`. It installs what the tests need (idempotently), then runs
# formatting, lints and every test of the workspace.

CARGO ?= cargo

.PHONY: test deps lint unit bench-engine

test: deps lint unit

deps:
	@tests/install-deps.sh

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace

# Not part of `make test`: benchmarks are measurements, not pass/fail tests.
bench-engine:
	$(CARGO) run --release -p flowmesh-bench-engine
