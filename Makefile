# The two commands of the README: `make run` (the main job) and `make test` (the tests).
# Both install what they need first (deploy/setup.sh is idempotent).

CARGO ?= cargo

.PHONY: setup run test lint bench fmt accel-report node-bench network-bench side-bench data-bench

setup:
	@bash deploy/setup.sh

# The main job: a local node with the default configuration (see deploy/run.sh).
run:
	@bash deploy/run.sh

# The accelerator report.
accel-report: setup
	$(CARGO) run --release -q -p cpc-cli -- accel list
	$(CARGO) run --release -q -p cpc-cli -- bench --quick

test:
	@bash deploy/test.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# Criterion benches and the comparison against `openssl speed`.
bench: setup
	$(CARGO) bench -p cpc-bench
	bash bench/openssl-compare.sh

# Single-node ingest: tx/s, commit latency and memory under load.
node-bench: setup
	bash bench/node-ingest.sh

network-bench: setup
	bash bench/network-ingest.sh

side-bench: setup
	bash bench/side-ingest.sh

# Data layer: put/get MB/s through encryption, erasure coding and the DHT; grant time.
data-bench: setup
	bash bench/data-ingest.sh
