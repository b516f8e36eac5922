# The two commands of the README. `make test` is what CI runs (through .ci/run).
.PHONY: test test-native test-wasm

test: test-native test-wasm

test-native:
	cargo test --workspace

# ruac-core must keep building for the browser.
test-wasm:
	cargo build -p ruac-core --target wasm32-unknown-unknown
