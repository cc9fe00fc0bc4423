#!/usr/bin/env bash
# `make bench`: Precis vs llama.cpp (node-llama-cpp's prebuilt CPU build) on the
# default model and on Qwen2.5-Coder-1.5B where fetched — the same 512-token prompt,
# 128 generated tokens, same thread count.
# Prints both engines' prefill/decode tokens/s and the ratios. Not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
THREADS=${THREADS:-$(nproc)}
PROMPT=${PROMPT:-../shared/corpus/transcripts/dpo.txt}
[ -f "$PROMPT" ] || PROMPT=README.md
if [ ! -d bench/node_modules/node-llama-cpp ]; then
  (cd bench && npm install --ignore-scripts --no-audit --no-fund >/dev/null)
fi
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; threads=$THREADS" >&2
# One model, both engines: the same prompt, tokens and threads, then the ratios.
compare() {
  local model=$1
  echo "$(basename "$model"):"
  ours=$(./target/release/precis generate --model "$model" --raw --prompt-file "$PROMPT" --prompt-tokens 512 \
    --max-tokens 128 --ignore-eos --threads "$THREADS" --stats-json 2>&1 >/dev/null | tail -1)
  theirs=$(node bench/llamacpp_bench.mjs --model "$model" --prompt-file "$PROMPT" --prompt-tokens 512 \
    --gen-tokens 128 --threads "$THREADS" | tail -1)
  python3 - "$ours" "$theirs" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"{'engine':<12}{'prefill tok/s':>15}{'decode tok/s':>15}")
for r in (a, b):
    print(f"{r['engine']:<12}{r['prefill_tok_s']:>15.1f}{r['decode_tok_s']:>15.1f}")
print(f"{'ratio':<12}{a['prefill_tok_s']/b['prefill_tok_s']:>15.2f}{a['decode_tok_s']/b['decode_tok_s']:>15.2f}")
PY
}
compare "$MODEL"
# The model worth summarizing with (issue 15): Qwen2.5-Coder-1.5B Q4_K_M, where `make
# models` has fetched it.
QWEN=models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
if [ -f "$QWEN" ]; then compare "$QWEN"; else echo "$(basename "$QWEN"): not fetched (make models), skipped"; fi

# Grammar-constrained decoding: what the llguidance token mask costs per step
# next to a decode step (structured JSON, short length, one corpus transcript).
echo >&2
echo "constrained decoding (structured, short, $(basename "$PROMPT")):" >&2
./target/release/precis summarize --model "$MODEL" --format structured --length short --shots 0 \
  --threads "$THREADS" "$PROMPT" 2>&1 >/dev/null | tail -1
# Time to first text per format, cold and with the prompt prefix kept.
echo >&2
THREADS=$THREADS MODEL=$MODEL bash bench/ttft.sh

# GPU rows (WebGPU via wgpu; natively Vulkan). On a machine without a GPU this runs
# on lavapipe, a software rasterizer: those timings say nothing about real GPUs.
# Shorter run by default because lavapipe is slow (GPU_PROMPT_TOKENS, GPU_GEN_TOKENS).
GPU_PROMPT_TOKENS=${GPU_PROMPT_TOKENS:-32}
GPU_GEN_TOKENS=${GPU_GEN_TOKENS:-8}
if gpu=$(./target/release/precis generate --backend gpu --model "$MODEL" --raw --prompt-file "$PROMPT" \
  --prompt-tokens "$GPU_PROMPT_TOKENS" --max-tokens "$GPU_GEN_TOKENS" --ignore-eos --stats-json 2>&1 >/dev/null); then
  dev=$(echo "$gpu" | grep -m1 '^GPU:' || true)
  python3 - "$(echo "$gpu" | tail -1)" "$dev" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print(f"\n{sys.argv[2]}")
print(f"{'gpu':<12}{r['prefill_tok_s']:>15.1f}{r['decode_tok_s']:>15.1f}   "
      f"(prompt {r['prompt_tokens']}, generated {r['generated_tokens']})")
print(f"host memory peak (VmHWM; GPU-only load, on lavapipe it includes the 'device' buffers): {r['host_peak_kib'] / 1024:.0f} MiB")
print(f"weight bytes read per decoded token: {r['gpu_weight_bytes_per_token'] / 2**20:.1f} MiB")
PY
else
  echo "gpu: failed: $(echo "$gpu" | tail -1)"
fi

# Browser rows: headless Chromium (the browser tests' flags), Precis on WebGPU
# (SwiftShader here: a GPU emulated on the CPU, seconds per token, so a short run)
# and on the CPU wasm engine, next to llama.cpp's wasm build (npm @wllama/wllama).
echo >&2
if [ -x "${CHROMIUM:-/usr/bin/chromium}" ] && [ -f www/dist/pkg/precis_bg.wasm ]; then
  [ -d bench/browser/node_modules/@wllama/wllama ] || (cd bench/browser && npm ci --no-audit --no-fund >/dev/null)
  node bench/browser/run.mjs --prompt-file "$PROMPT" || echo "browser: failed"
  echo >&2
  echo "time to first text in the browser (CPU wasm; cold, prefix kept in memory, prefix stored across a reload):" >&2
  node bench/browser/ttft.mjs --formats "${TTFT_FORMATS:-tldr,structured}" || echo "browser ttft: failed"
else
  echo "browser rows skipped: needs ${CHROMIUM:-/usr/bin/chromium} and www/dist (make web)"
fi
