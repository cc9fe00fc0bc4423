#!/usr/bin/env python3
"""What the summaries are worth (issue 16), per model and corpus transcript. Not a test:
a measurement, for `make bench-quality` (minutes per model and transcript on two cores).

For each model (every GGUF of models/manifest.json found in models/, or --models) and
each corpus transcript, the structured summary (greedy, medium length) and, with
--notes, the notes. Per summary it reports:
  valid     the JSON passes summary.schema.json (with Python `jsonschema` where it is
            installed; else the CLI's own check of every rule, which it ran already)
  bullets   distinct bullets of 20 (normalized: lowercased words)
  titles    distinct section titles of 5 (without "Section N:" and the time range)
  restate   bullets that repeat their section's title
  repeats   texts written more than once in the summary (titles, bullets, section and
            global topics together, normalized), counting each extra copy
  topics    global topics found in the transcript, of 5 (their words in a row)
  leaks     topic names from the worked examples that the transcript does not have
  order     sections closer to their own part of the talk than to any other part, of
            5 (section k is about part k). The parts are the ones the sections were
            written from (`precis parts`); closeness is the cosine of TF-IDF word
            vectors over the five parts (stop words out), so a word every part uses
            weighs nothing and a word one part uses often weighs most. The JSON row
            also has `order_overlap`: distinct shared words, the count earlier
            sessions reported, which the talk's own recurring words ("hashing",
            "servers", "model") sway by a word or two.
  quotes    notes: quotes found verbatim in the transcript, of all quotes
  time, tok/s (decode)
With --shots 0,2 every summary is made with 0 and with 2 worked examples (do they help
this model? issue 21: leave them out where they do not, and save their prefill).
The last line is JSON with every row.

    python3 bench/quality.py [--models a.gguf,b.gguf] [--only dpo,hashing] [--shots 2] [--notes]
    python3 bench/quality.py --models a.gguf --rescore DIR   (the summaries a --save DIR run wrote)
"""
import argparse
import json
import math
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
STOP = set("a an and are as at be but by can do does for from has have how i if in into is it its just let lets like more not now of on or our so that the their them then there these they this to up us was we what when where which while who why will with would you your".split())


def words(s):
    return re.findall(r"[a-z0-9]+", s.lower())


def norm(s):
    return " ".join(words(s))


def title_text(t):
    t = re.sub(r"^Section \d+(: )?", "", t)
    return re.sub(r" \(\d+:\d+(:\d+)? - \d+:\d+(:\d+)?\)$", "", t)


def shot_names():
    names = set()
    for f in sorted((CORPUS / "shots").glob("*.json")):
        j = json.loads(f.read_text())
        names.update(j["topics"])
        for s in j["sections"]:
            names.update(s["topics"])
    return names


def contains_run(haystack, needle):
    """Whether the word list `needle` occurs in a row in `haystack` (a space-joined string)."""
    return bool(needle) and f" {' '.join(needle)} " in haystack


def parts_of(precis, model, path):
    """The five parts of the transcript that the sections are written from."""
    p = subprocess.run([precis, "parts", str(path), "--model", str(model)], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"precis parts {path}: {p.stderr.strip()}")
    return json.loads(p.stdout)


def tfidf(ws, df, n):
    """The TF-IDF vector of the word list `ws` over `n` documents with frequencies `df`."""
    tf = Counter(w for w in ws if w not in STOP and w in df)
    return {w: c * math.log(n / df[w]) for w, c in tf.items()}


def cosine(a, b):
    num = sum(v * b.get(w, 0.0) for w, v in a.items())
    den = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
    return num / den if den else 0.0


def section_order(sections, parts):
    """(order, order_overlap): see the module's `order`."""
    part_words = [[w for w in words(p) if w not in STOP] for p in parts]
    sets = [set(p) for p in part_words]
    df = Counter(w for p in sets for w in p)
    part_vecs = [tfidf(p, df, len(parts)) for p in part_words]
    order = overlap_order = 0
    for k, s in enumerate(sections):
        ws = words(" ".join([title_text(s["title"])] + s["content"] + s["topics"]))
        sv = tfidf(ws, df, len(parts))
        sim = [cosine(sv, p) for p in part_vecs]
        order += max(range(len(sim)), key=sim.__getitem__) == k and sim.count(max(sim)) == 1
        overlap = [len((set(ws) - STOP) & p) for p in sets]
        overlap_order += overlap[k] == max(overlap) and overlap.count(max(overlap)) == 1
    return order, overlap_order


def validator():
    try:
        import jsonschema
    except ImportError:
        return None
    schema = json.loads((CORPUS / "summary.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema)


def measure_structured(text, transcript, shots, schema, parts):
    j = json.loads(text)
    transcript = parsed(transcript)
    talk = f" {' '.join(words(transcript))} "
    valid = not list(schema.iter_errors(j)) if schema else True
    bullets = [b for s in j["sections"] for b in s["content"]]
    titles = [title_text(s["title"]) for s in j["sections"]]
    restate = sum(norm(b) == norm(title_text(s["title"])) for s in j["sections"] for b in s["content"])
    names = list(j["topics"]) + [t for s in j["sections"] for t in s["topics"]]
    fields = [n for n in (norm(x) for x in titles + bullets + names) if n]
    leaks = sorted({n for n in names if n in shots and not contains_run(talk, words(n))})
    order, order_overlap = section_order(j["sections"], parts)
    return {
        "valid": valid,
        "bullets": len({norm(b) for b in bullets}),
        "titles": len({norm(t) for t in titles}),
        "restate": restate,
        "repeats": len(fields) - len(set(fields)),
        "topics": sum(contains_run(talk, words(t)) for t in j["topics"]),
        "leaks": leaks,
        "order": order,
        "order_overlap": order_overlap,
    }


def parsed(transcript):
    """The transcript as the parser reads it: without inline timestamps ("parameters
    are 7:03 dispersed") or the stray caption offsets glued to words in some copies
    ("learn 208696all about it"; src/transcript/stray_offsets.rs)."""
    text = re.sub(r"\b\d{1,2}:\d{2}(:\d{2})?\b", " ", transcript)
    return " ".join(re.sub(r"\b\d{4,}(?=[a-z])", "", text).split())


def measure_notes(text, transcript):
    talk = parsed(transcript)
    quotes = [m.group(1) for m in re.finditer(r'^\d+\. "(.*)"$', text, re.M)]
    return {"quotes": f"{sum(' '.join(q.split()) in talk for q in quotes)}/{len(quotes)}"}


def run(precis, model, path, fmt, shots):
    cmd = [precis, "summarize", str(path), "--model", str(model), "--format", fmt, "--shots", str(shots)]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.time() - t0
    m = re.search(r"(\d+) passes, (\d+) prompt \+ (\d+) generated tokens in ([\d.]+)s \(([\d.]+) tok/s decode\)", p.stderr)
    stats = {"seconds": round(seconds, 1), "passes": int(m.group(1)), "prompt": int(m.group(2)), "generated": int(m.group(3)), "decode_tps": float(m.group(5))} if m else {"seconds": round(seconds, 1)}
    if p.returncode != 0:
        return None, stats, p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"exit {p.returncode}"
    return p.stdout, stats, None


def models_present():
    manifest = json.loads((ROOT / "models/manifest.json").read_text())
    return [ROOT / "models" / m["file"] for m in manifest["models"] if (ROOT / "models" / m["file"]).exists()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="", help="comma-separated GGUF files (default: every catalog model in models/)")
    ap.add_argument("--only", default="", help="comma-separated transcript names without .txt")
    ap.add_argument("--shots", default="2", help="worked examples, e.g. 2 or 0,2")
    ap.add_argument("--notes", action="store_true", help="also the notes, for the quotes column")
    ap.add_argument("--precis", default=str(ROOT / "target/release/precis"))
    ap.add_argument("--save", default="", help="a folder to write every summary into")
    ap.add_argument("--rescore", default="", help="measure the summaries a --save run left in this folder again, generating nothing")
    a = ap.parse_args()
    save = Path(a.save) if a.save else None
    if save:
        save.mkdir(parents=True, exist_ok=True)
    models = [Path(m) for m in a.models.split(",") if m] or models_present()
    only = {o for o in a.only.split(",") if o}
    transcripts = [p for p in sorted((CORPUS / "transcripts").glob("*.txt")) if not only or p.stem in only]
    shots, schema = shot_names(), validator()
    rows = []
    head = f"{'model':<38} {'transcript':<26} {'shots':>5} {'valid':>5} {'bullets':>7} {'titles':>6} {'restate':>7} {'repeats':>7} {'topics':>6} {'leaks':>5} {'order':>5} {'quotes':>7} {'time s':>7} {'tok/s':>6}"
    print(head)
    for model in models:
        for path in transcripts:
            transcript = path.read_text()
            settings = [int(s) for s in a.shots.split(",")]
            # The parts depend on the model's tokenizer and the transcript only.
            parts = parts_of(a.precis, model, path)
            for n in settings:
                row = {"model": model.name, "transcript": path.stem, "shots": n}
                if a.rescore:
                    saved = Path(a.rescore) / f"{model.stem}.{path.stem}.shots{n}.json"
                    text, stats, err = (saved.read_text(), {"seconds": 0}, None) if saved.exists() else (None, {}, f"{saved} not found")
                else:
                    text, stats, err = run(a.precis, model, path, "structured", n)
                row.update(stats)
                if err:
                    row["error"] = err
                else:
                    row.update(measure_structured(text, transcript, shots, schema, parts))
                    if save:
                        (save / f"{model.stem}.{path.stem}.shots{n}.json").write_text(text)
                if a.notes and n == settings[0]:
                    notes, nstats, nerr = run(a.precis, model, path, "notes", 0)
                    row["quotes"] = nerr or measure_notes(notes, transcript)["quotes"]
                    if save and not nerr:
                        (save / f"{model.stem}.{path.stem}.notes.md").write_text(notes)
                rows.append(row)
                if err:
                    print(f"{model.name:<38} {path.stem:<26} {n:>5} error: {err}")
                else:
                    print(f"{model.name:<38} {path.stem:<26} {n:>5} {'yes' if row['valid'] else 'NO':>5} {row['bullets']:>5}/20 {row['titles']:>4}/5 {row['restate']:>7} {row['repeats']:>7} {row['topics']:>4}/5 {len(row['leaks']):>5} {row['order']:>3}/5 {row.get('quotes', '-'):>7} {row['seconds']:>7} {row.get('decode_tps', 0):>6}")
                sys.stdout.flush()
    print(json.dumps({"quality": rows}))


if __name__ == "__main__":
    main()
