#!/usr/bin/env bash
# Time to first text and total time per format, natively, for the default model on
# two 14,500-character corpus transcripts summarized one after the other in one
# process: the first reads the whole prompt (cold), the second starts from the
# prompt prefix the first kept (instruction and worked examples). Not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
THREADS=${THREADS:-$(nproc)}
CORPUS=../shared/corpus/transcripts
FORMATS=${FORMATS:-structured notes key-points tldr teaser headline}
[ -f "$CORPUS/dpo.txt" ] || { echo "ttft: needs $CORPUS (skipped)"; exit 0; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$CORPUS/dpo.txt" "$work/1-cold-dpo.txt"
cp "$CORPUS/sql-backend.txt" "$work/2-cached-sql-backend.txt"
echo "time to first text, native CPU, $THREADS threads, $(basename "$MODEL") (first row cold, second from the kept prompt prefix):"
for f in $FORMATS; do
  echo "format $f:"
  ./target/release/precis summarize --model "$MODEL" --format "$f" --threads "$THREADS" --force -o "$work/out-$f" \
    "$work/1-cold-dpo.txt" "$work/2-cached-sql-backend.txt" 2>&1 >/dev/null | grep -E '^(file|\S*[12]-(cold|cached))' || echo "  failed"
done
