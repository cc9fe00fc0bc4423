#!/usr/bin/env bash
# Real-GPU readings for the native wgpu/Vulkan path, run on a lent GPU machine (the
# workplace's `device` tool) that has no network and no Rust toolchain: binaries built
# here travel in .dev/ (see `make device-pack`), the Vulkan loader in .gl/.
# Models: random weights in real shapes (bench/synth_gguf.py), so the speed is that of
# Mistral 7B Q4_K_M / Mixtral 8x7B; their text is noise by construction.
# Usage there: bash bench/device.sh [tests] [smol] [m7] [mixtral]   (default: all)
set -uo pipefail
cd "$(dirname "$0")/.."
WHAT=${*:-tests smol m7 mixtral}
OUT=${OUT:-/tmp/device-out}
mkdir -p "$OUT"
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
# The tests find fixtures through the path they were built in.
[ -d /work/main ] || { mkdir -p /work && ln -s "$PWD" /work/main; }
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.memory --format=csv,noheader
B=.dev
PROMPT=README.md

# Achievable read bandwidth, the denominator of "fraction of the memory-bandwidth
# limit": a large fp32 sum (read-only) through PyTorch, best of 20.
python3 - <<'PY' 2>&1 | tee "$OUT/bandwidth.txt"
import torch, time
x = torch.empty(2**30, dtype=torch.float32, device="cuda").uniform_()
torch.cuda.synchronize()
best = 1e9
for _ in range(20):
    t = time.perf_counter(); x.sum().item(); best = min(best, time.perf_counter() - t)
print(f"read bandwidth (torch sum of 4 GiB, best of 20): {x.numel()*4/best/1e9:.0f} GB/s")
PY

run() { # name, model, extra args
  local name=$1 model=$2; shift 2
  echo "== $name"
  /usr/bin/time -v $B/precis generate --backend gpu --model "$model" --raw --prompt-file $PROMPT \
    --stats-json "$@" 2>"$OUT/$name.err" >/dev/null
  grep -E "^GPU:|^loaded|^prefill|Maximum resident|^\{" "$OUT/$name.err"
  if [ -n "${PROFILE:-}" ]; then # GPU time per kernel over a short run
    PRECIS_GPU_PROFILE=1 $B/precis generate --backend gpu --model "$model" --raw --prompt-file $PROMPT \
      --prompt-tokens 64 --max-tokens 16 --ignore-eos 2>&1 >/dev/null | sed -n '/^host per step/,$p' | head -16
  fi
}

if [[ $WHAT == *tests* ]]; then
  echo "== kernel tests on the real GPU"
  $B/gpu_kernels-* 2>&1 | grep -E "^test |test result" | tee "$OUT/gpu_kernels.txt" | tail -3
  echo "== model tests (fixtures; SmolLM2 itself does not travel)"
  $B/gpu_model-* tiny missing_limit 2>&1 | grep -E "^test |test result|max \|diff" | tee "$OUT/gpu_model.txt" | tail -8
fi
if [[ $WHAT == *smol* ]]; then
  python3 bench/synth_gguf.py smollm2-shape /tmp/smol.gguf >/dev/null
  run smollm2-shape /tmp/smol.gguf --prompt-tokens 512 --max-tokens 256 --ignore-eos
fi
if [[ $WHAT == *m7* ]]; then
  python3 bench/synth_gguf.py mistral-7b /tmp/m7.gguf
  run mistral-7b /tmp/m7.gguf --prompt-tokens 512 --max-tokens 128 --ignore-eos
fi
if [[ $WHAT == *mixtral* ]]; then
  rm -f /tmp/m7.gguf
  python3 bench/synth_gguf.py mixtral-8x7b /tmp/mx.gguf >/dev/null
  run mixtral-8x7b /tmp/mx.gguf --prompt-tokens 256 --max-tokens 64 --ignore-eos
fi
