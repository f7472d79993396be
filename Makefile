# The two commands of the README: `make run` (the main job) and `make test` (the tests).
# Both install what they need first (deploy/setup.sh is idempotent).

CARGO ?= cargo

.PHONY: setup run test lint bench fmt

setup:
	@bash deploy/setup.sh

# The main job: self-test every accelerator backend, then the accelerator report.
run: setup
	$(CARGO) run --release -q -p cpc-cli -- accel list
	$(CARGO) run --release -q -p cpc-cli -- accel selftest
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
