#!/usr/bin/env python3
"""Do the worked examples help a model? (issue 21: leave them out where they do not,
and save their prefill.) Not a test: a measurement, for `make bench`.

For every corpus transcript, the structured summary with 0 and with 2 worked
examples (greedy, medium length), on one model. Per setting it reports:
  - leaked: topics and section-topic names taken from the worked examples that the
    transcript itself does not mention (a word-level check: every word of the
    name, lowercased, absent from the transcript) — content the examples put there;
  - repeated: bullets, titles and topics written twice in one summary (normalized);
  - on-topic topics: topics whose words all occur in the transcript;
  - prompt tokens and seconds (the examples' prefill).

    python3 bench/shots.py [--model FILE] [--shots 0,2] [--only dpo,hashing]
"""
import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"


def words(s):
    return re.findall(r"[a-z0-9]+", s.lower())


def shot_names():
    names = set()
    for f in sorted((CORPUS / "shots").glob("*.json")):
        j = json.loads(f.read_text())
        names.update(j["topics"])
        for s in j["sections"]:
            names.update(s["topics"])
    return names


def measure(summary, transcript_words, shots):
    j = json.loads(summary)
    names = list(j["topics"]) + [t for s in j["sections"] for t in s["topics"]]
    leaked = sorted({n for n in names if n in shots and not all(w in transcript_words for w in words(n))})
    fields = [s["title"].split(":", 1)[-1] for s in j["sections"]] + [b for s in j["sections"] for b in s["content"]] + names
    norm = [" ".join(words(f)) for f in fields if words(f)]
    repeated = len(norm) - len(set(norm))
    on_topic = sum(all(w in transcript_words for w in words(n)) for n in j["topics"])
    return {"leaked": leaked, "repeated": repeated, "on_topic": on_topic, "topics": len(j["topics"])}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(ROOT / "models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--shots", default="0,2")
    ap.add_argument("--only", default="")
    ap.add_argument("--precis", default=str(ROOT / "target/release/precis"))
    a = ap.parse_args()
    if not (CORPUS / "transcripts").is_dir():
        print(f"shots: needs {CORPUS} (skipped)")
        return
    shots = shot_names()
    files = sorted((CORPUS / "transcripts").glob("*.txt"))
    if a.only:
        files = [f for f in files if f.stem in a.only.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(x) for x in a.shots.split(",")]:
            for f in files:
                out = Path(tmp) / f"{f.stem}-{n}.json"
                t0 = time.time()
                p = subprocess.run([a.precis, "summarize", "--model", a.model, "--format", "structured", "--length", "medium", "--shots", str(n), str(f)], capture_output=True, text=True)
                secs = time.time() - t0
                if p.returncode != 0:
                    rows.append({"shots": n, "file": f.stem, "error": p.stderr.strip().splitlines()[-1:]})
                    continue
                # "<file>: N passes, P prompt + G generated tokens in …" (the CLI's closing line).
                m = re.search(r"(\d+) prompt \+ (\d+) generated tokens", p.stderr)
                stats = {"prompt_tokens": int(m.group(1)) if m else None}
                out.write_text(p.stdout)
                m = measure(p.stdout, set(words(f.read_text())), shots)
                rows.append({"shots": n, "file": f.stem, "seconds": round(secs, 1), "prompt_tokens": stats.get("prompt_tokens"), **m})
                r = rows[-1]
                print(f"shots {n}  {f.stem:<26} leaked {len(r['leaked'])} {r['leaked'][:4]}  repeated {r['repeated']:>2}  on-topic topics {r['on_topic']}/{r['topics']}  prompt {r['prompt_tokens']}  {secs:.0f} s", flush=True)
    for n in sorted({r["shots"] for r in rows}):
        rs = [r for r in rows if r["shots"] == n and "error" not in r]
        if rs:
            print(f"shots {n}: {sum(len(r['leaked']) > 0 for r in rs)}/{len(rs)} summaries with leaked example topics ({sum(len(r['leaked']) for r in rs)} names), "
                  f"{sum(r['repeated'] for r in rs)} repeated fields, {sum(r['on_topic'] for r in rs)}/{sum(r['topics'] for r in rs)} on-topic topics, "
                  f"{sum(r['seconds'] for r in rs) / len(rs):.0f} s per summary")
    print(json.dumps({"bench": "shots", "model": Path(a.model).name, "rows": rows}))


if __name__ == "__main__":
    sys.exit(main())
