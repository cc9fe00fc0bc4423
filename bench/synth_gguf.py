#!/usr/bin/env python3
"""Random-weight GGUF files in the exact shapes, types and metadata of real models.

What it is for: GPU speed readings on a machine that cannot download the real weights
(the lent GPU machine has no network). Tensor names, shapes (GGUF ne order, innermost
first), ggml block types and llama.* metadata are those of the real model, so the bytes
read per token and the kernels run are the real ones. The weights are random bytes with
sane scales: the text they produce is noise by construction. Never read anything from
these files' output as model quality (perplexity, summaries, agreement with llama.cpp);
only time and memory figures mean anything, and MoE routing is random, not learned.

    python3 bench/synth_gguf.py PRESET OUT.gguf [--vocab tests/fixtures/mistral-vocab.gguf] [--layers N]

PRESET: mistral-7b (Q4_K_M mix, ~4.4 GB), mixtral-8x7b (Q4_K_M mix, merged experts,
~26 GB), smollm2-shape (SmolLM2-135M shapes, Q4_1, tied head). --layers N overrides the
layer count for quick checks. The tokenizer (every `tokenizer.*` key) is copied from a
vocab-only GGUF, and the vocabulary size follows its token list (32000 for Mistral's).

Stdlib + NumPy only (no `gguf` package). Layouts: GGUF v3 (ggml docs/gguf.md), blocks as
ggml-common.h. Memory: one ~16 MiB run of random blocks per (type, row length), written
over and over, so writing is disk-bound and the model is never held in memory.
"""
import argparse
import os
import struct
import sys
import time

import numpy as np

# ggml type ids
F32, Q4_1, Q8_0, Q4_K, Q6_K = 0, 3, 8, 12, 14
TYPE_NAME = {F32: "F32", Q4_1: "Q4_1", Q8_0: "Q8_0", Q4_K: "Q4_K", Q6_K: "Q6_K"}
# type: (elements per block, bytes per block)
BLOCK = {F32: (1, 4), Q4_1: (32, 20), Q8_0: (32, 34), Q4_K: (256, 144), Q6_K: (256, 210)}
ALIGN = 32
CHUNK_BYTES = 16 << 20
# llama_ftype: 3 = MOSTLY_Q4_1, 15 = MOSTLY_Q4_K_M
FILE_TYPE = {"q4_1": 3, "q4_k_m": 15}

PRESETS = {
    # Mistral 7B v0.2/v0.3: no sliding window (so no llama.attention.sliding_window key).
    "mistral-7b": dict(layers=32, embd=4096, ff=14336, heads=32, kv=8, ctx=32768, rope=1e6, eps=1e-5,
                       experts=0, used=0, quant="q4_k_m", tied=False, name="Mistral 7B"),
    "mixtral-8x7b": dict(layers=32, embd=4096, ff=14336, heads=32, kv=8, ctx=32768, rope=1e6, eps=1e-5,
                         experts=8, used=2, quant="q4_k_m", tied=False, name="Mixtral 8x7B"),
    "smollm2-shape": dict(layers=30, embd=576, ff=1536, heads=9, kv=3, ctx=8192, rope=1e5, eps=1e-5,
                          experts=0, used=0, quant="q4_1", tied=True, name="SmolLM2 135M"),
}

# GGUF metadata value types
GT_U8, GT_I8, GT_U16, GT_I16, GT_U32, GT_I32, GT_F32, GT_BOOL, GT_STR, GT_ARR, GT_U64, GT_I64, GT_F64 = range(13)
FIXED = {GT_U8: 1, GT_I8: 1, GT_U16: 2, GT_I16: 2, GT_U32: 4, GT_I32: 4, GT_F32: 4, GT_BOOL: 1,
         GT_U64: 8, GT_I64: 8, GT_F64: 8}


# --- reading the vocab GGUF's metadata ----------------------------------------------

class KvReader:
    """Minimal GGUF (v2/v3) metadata reader: every value type, nested arrays included.
    Keeps each entry's raw bytes so they can be copied verbatim."""

    def __init__(self, path):
        with open(path, "rb") as f:
            head = f.read(24)
            if len(head) < 24 or head[:4] != b"GGUF":
                sys.exit(f"{path}: not a GGUF file")
            self.version, self.n_tensors, self.n_kv = struct.unpack_from("<IQQ", head, 4)
            if self.version not in (2, 3):
                sys.exit(f"{path}: GGUF version {self.version} (need 2 or 3)")
            f.seek(0)
            self.data = f.read()  # vocab-only files are small (<1 MB for 32k tokens)
        self.path = path

    def _u32(self, p):
        return struct.unpack_from("<I", self.data, p)[0]

    def _u64(self, p):
        return struct.unpack_from("<Q", self.data, p)[0]

    def _value(self, t, p):
        """Returns (python value, end offset)."""
        d = self.data
        if t in FIXED:
            fmt = {GT_U8: "<B", GT_I8: "<b", GT_U16: "<H", GT_I16: "<h", GT_U32: "<I", GT_I32: "<i",
                   GT_F32: "<f", GT_BOOL: "<?", GT_U64: "<Q", GT_I64: "<q", GT_F64: "<d"}[t]
            return struct.unpack_from(fmt, d, p)[0], p + FIXED[t]
        if t == GT_STR:
            n = self._u64(p)
            return d[p + 8:p + 8 + n].decode("utf-8"), p + 8 + n
        if t == GT_ARR:
            et, n = self._u32(p), self._u64(p + 4)
            p += 12
            if et in FIXED:  # skip without building n Python objects
                return ArrayInfo(et, n), p + n * FIXED[et]
            for _ in range(n):
                _, p = self._value(et, p)
            return ArrayInfo(et, n), p
        sys.exit(f"{self.path}: unknown GGUF value type {t} at offset {p - 4}")

    def entries(self):
        """Yields (key, type, value, raw bytes of the whole entry)."""
        p = 24
        for _ in range(self.n_kv):
            start = p
            kl = self._u64(p)
            key = self.data[p + 8:p + 8 + kl].decode("utf-8")
            p += 8 + kl
            t = self._u32(p)
            value, p = self._value(t, p + 4)
            if p > len(self.data):
                sys.exit(f"{self.path}: metadata entry `{key}` runs past the end of the file")
            yield key, t, value, self.data[start:p]


class ArrayInfo:
    def __init__(self, elem_type, n):
        self.elem_type, self.n = elem_type, n


# --- writing ------------------------------------------------------------------------

def gstr(v):
    b = v.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, value):
    fmt = {GT_U32: "<I", GT_F32: "<f", GT_U64: "<Q", GT_BOOL: "<?"}
    payload = gstr(value) if vtype == GT_STR else struct.pack(fmt[vtype], value)
    return gstr(key) + struct.pack("<I", vtype) + payload


def f16_bytes(x):
    v = np.float16(x)
    assert np.isfinite(v) and abs(float(v)) >= 6.2e-5, f"scale {x} is not a normal f16"  # no subnormals
    return np.frombuffer(v.tobytes(), np.uint8)


def chunk_for(ty, n_in, rng):
    """One reusable run of random blocks (~16 MiB) whose dequantized weights have mean ~0
    and standard deviation ~1/sqrt(n_in), so every matmul maps unit-RMS activations to
    unit-RMS outputs and 32 layers of residual sums stay far from f16/f32 limits.
    Scale fields are fixed normal f16 values (never NaN/Inf/subnormal)."""
    per, size = BLOCK[ty]
    target = 1.0 / np.sqrt(n_in)
    if ty == F32:
        return (rng.standard_normal(CHUNK_BYTES // 4) * target).astype(np.float32).tobytes()
    b = rng.integers(0, 256, size=(CHUNK_BYTES // size, size), dtype=np.uint8)
    if ty == Q4_1:
        # x = d*q + m, q uniform 0..15: std 4.61 d; m = -7.5 d centres it.
        d = target / 4.61
        b[:, 0:2] = f16_bytes(d)
        b[:, 2:4] = f16_bytes(-7.5 * d)
    elif ty == Q8_0:
        # x = d*q, q uniform int8: std 73.9 d.
        b[:, 0:2] = f16_bytes(target / 73.9)
    elif ty == Q4_K:
        # x = d*sc*q - dmin*m per 32-element sub-block; 12 scale bytes at 4..15 pack eight
        # 6-bit (sc, m) pairs. Clearing bits 4..7 of the first 8 bytes leaves every sc and
        # m uniform in 0..15 (the last 4 bytes hold the low nibbles of pairs 4..7).
        # Then E[sc*q] = 56.25 = 7.5 E[m] (dmin = 7.5 d centres it) and std = 63.5 d.
        b[:, 4:12] &= 0x0F
        d = target / 63.5
        b[:, 0:2] = f16_bytes(d)
        b[:, 2:4] = f16_bytes(7.5 * d)
    elif ty == Q6_K:
        # x = d*sc*(q-32), q 6-bit from ql (0..127) + qh (128..191), int8 sc at 192..207,
        # f16 d at 208 (last). sc uniform -8..7: std = sqrt(21.5*341.5) d = 85.7 d.
        b[:, 192:208] = rng.integers(-8, 8, size=(len(b), 16), dtype=np.int8).view(np.uint8)
        b[:, 208:210] = f16_bytes(target / 85.7)
    else:
        raise ValueError(ty)
    return b.tobytes()


def build_tensors(c, n_vocab):
    """(name, ne innermost first, type) in llama.cpp's file order."""
    E, FF, L, X = c["embd"], c["ff"], c["layers"], c["experts"]
    hd = E // c["heads"]
    kvd = hd * c["kv"]
    q41 = c["quant"] == "q4_1"
    big = Q4_1 if q41 else Q4_K

    def more_bits(i):  # llama.cpp use_more_bits(): Q4_K_M's Q6_K layers for attn_v / ffn_down
        return i < L // 8 or i >= 7 * L // 8 or (i - L // 8) % 3 == 2

    t = [("token_embd.weight", [E, n_vocab], big)]
    for i in range(L):
        p = f"blk.{i}."
        hi = big if q41 else (Q6_K if more_bits(i) else Q4_K)
        # llama.cpp gives attn_k/attn_v of 8-expert models Q8_0 ("trades just ~128MB").
        k_ty = Q8_0 if X == 8 and not q41 else big
        v_ty = Q8_0 if X == 8 and not q41 else hi
        t += [
            (p + "attn_norm.weight", [E], F32),
            (p + "attn_q.weight", [E, E], big),
            (p + "attn_k.weight", [E, kvd], k_ty),
            (p + "attn_v.weight", [E, kvd], v_ty),
            (p + "attn_output.weight", [E, E], big),
            (p + "ffn_norm.weight", [E], F32),
        ]
        if X:
            t += [
                (p + "ffn_gate_inp.weight", [E, X], F32),
                (p + "ffn_gate_exps.weight", [E, FF, X], big),
                (p + "ffn_up_exps.weight", [E, FF, X], big),
                (p + "ffn_down_exps.weight", [FF, E, X], hi),
            ]
        else:
            t += [
                (p + "ffn_gate.weight", [E, FF], big),
                (p + "ffn_up.weight", [E, FF], big),
                (p + "ffn_down.weight", [FF, E], hi),
            ]
    t.append(("output_norm.weight", [E], F32))
    if not c["tied"]:
        t.append(("output.weight", [E, n_vocab], big if q41 else Q6_K))
    return t


def nbytes(ne, ty):
    per, size = BLOCK[ty]
    assert ne[0] % per == 0, f"row length {ne[0]} is not a multiple of {TYPE_NAME[ty]}'s {per}"
    return int(np.prod(ne, dtype=np.int64)) // per * size


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("preset", choices=PRESETS)
    ap.add_argument("out")
    ap.add_argument("--vocab", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                                    "fixtures", "mistral-vocab.gguf"))
    ap.add_argument("--layers", type=int, help="override the layer count (quick checks)")
    a = ap.parse_args()
    c = dict(PRESETS[a.preset])
    if a.layers is not None:
        if a.layers < 1:
            ap.error("--layers must be >= 1")
        c["layers"] = a.layers
    E, L, X = c["embd"], c["layers"], c["experts"]

    tok_kvs, n_vocab = [], None
    for key, t, value, raw in KvReader(a.vocab).entries():
        if key.startswith("tokenizer."):
            tok_kvs.append(raw)
            if key == "tokenizer.ggml.tokens":
                n_vocab = value.n
    if n_vocab is None:
        sys.exit(f"{a.vocab}: no tokenizer.ggml.tokens array")

    kvs = [
        kv("general.architecture", GT_STR, "llama"),
        kv("general.name", GT_STR, f"{c['name']} shapes, random weights (synth_gguf.py {a.preset}, speed only)"),
        kv("general.alignment", GT_U32, ALIGN),
        kv("general.file_type", GT_U32, FILE_TYPE[c["quant"]]),
        kv("llama.vocab_size", GT_U32, n_vocab),
        kv("llama.context_length", GT_U32, c["ctx"]),
        kv("llama.embedding_length", GT_U32, E),
        kv("llama.block_count", GT_U32, L),
        kv("llama.feed_forward_length", GT_U32, c["ff"]),
        kv("llama.attention.head_count", GT_U32, c["heads"]),
        kv("llama.attention.head_count_kv", GT_U32, c["kv"]),
        kv("llama.rope.freq_base", GT_F32, c["rope"]),
        kv("llama.rope.dimension_count", GT_U32, E // c["heads"]),
        kv("llama.attention.layer_norm_rms_epsilon", GT_F32, c["eps"]),
    ]
    if X:
        kvs += [kv("llama.expert_count", GT_U32, X), kv("llama.expert_used_count", GT_U32, c["used"])]
    kvs += tok_kvs

    tensors = build_tensors(c, n_vocab)
    infos, offset = [], 0
    for name, ne, ty in tensors:
        infos.append(gstr(name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne)
                     + struct.pack("<IQ", ty, offset))
        offset += nbytes(ne, ty)
        offset += -offset % ALIGN

    rng = np.random.default_rng(7)  # fixed seed: the same preset gives the same file
    chunks = {}
    t0 = time.perf_counter()
    with open(a.out, "wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)))
        f.write(b"".join(kvs))
        f.write(b"".join(infos))
        f.write(b"\0" * (-f.tell() % ALIGN))
        data_start = f.tell()
        for (name, ne, ty), info in zip(tensors, infos):
            rel = struct.unpack_from("<Q", info, len(info) - 8)[0]
            assert f.tell() == data_start + rel, (name, f.tell(), data_start + rel)
            n = nbytes(ne, ty)
            if name.endswith("norm.weight"):
                f.write(np.ones(ne[0], np.float32).tobytes())
            else:
                key = (ty, ne[0])
                if key not in chunks:
                    chunks[key] = memoryview(chunk_for(ty, ne[0], rng))
                ch = chunks[key]
                left = n  # tensor and chunk sizes are whole blocks, so every write is too
                while left:
                    m = min(left, len(ch))
                    f.write(ch[:m])
                    left -= m
            f.write(b"\0" * (-f.tell() % ALIGN))
        total = f.tell()
    dt = time.perf_counter() - t0
    mix = {}
    for name, ne, ty in tensors:
        mix[TYPE_NAME[ty]] = mix.get(TYPE_NAME[ty], 0) + nbytes(ne, ty)
    mix_s = ", ".join(f"{k} {v / 1e9:.2f} GB" for k, v in sorted(mix.items(), key=lambda kv_: -kv_[1]))
    print(f"{a.out}: {a.preset}, {L} layers, vocab {n_vocab}, {len(tensors)} tensors, {total / 1e9:.2f} GB "
          f"({total / 2**30:.2f} GiB) [{mix_s}] in {dt:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
