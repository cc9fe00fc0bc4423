#!/usr/bin/env python3
"""Random-weight GGUF files in the exact shapes, types and metadata of real models.

For speed readings on a machine that cannot download the real weights (the lent GPU
machine has no network): the bytes per token and the kernels run are those of the real
model, the text is noise. Never read these files' output as model quality.

    python3 bench/synth_gguf.py mistral-7b|mixtral-8x7b|smollm2-shape OUT.gguf
        [--vocab tests/fixtures/mistral-vocab.gguf] [--layers N]

Stdlib + numpy only. The tokenizer (Mistral's 32k SentencePiece vocabulary) is copied
from a vocab-only GGUF. Layouts: GGUF v3 (ggml docs/gguf.md); blocks as ggml-common.h.
"""
import argparse, os, struct, sys
import numpy as np

F32, F16, Q4_0, Q4_1, Q8_0, Q4_K, Q6_K = 0, 1, 2, 3, 8, 12, 14
# type: (elements per block, bytes per block, byte offsets of f16 scale fields)
BLOCKS = {F32: (1, 4, ()), Q4_1: (32, 20, (0, 2)), Q4_K: (256, 144, (0, 2)), Q6_K: (256, 210, (208,))}
ALIGN = 32

PRESETS = {
    "mistral-7b": dict(layers=32, embd=4096, ff=14336, heads=32, kv=8, ctx=32768, rope=1e6, experts=0, quant="q4_k_m", tied=False),
    "mixtral-8x7b": dict(layers=32, embd=4096, ff=14336, heads=32, kv=8, ctx=32768, rope=1e6, experts=8, quant="q4_k_m", tied=False),
    "smollm2-shape": dict(layers=30, embd=576, ff=1536, heads=9, kv=3, ctx=8192, rope=1e5, experts=0, quant="q4_1", tied=True),
}


def kv_bytes(key, vtype, payload):
    k = key.encode()
    return struct.pack("<Q", len(k)) + k + struct.pack("<I", vtype) + payload


def s(v):
    b = v.encode()
    return struct.pack("<Q", len(b)) + b


def read_tokenizer_kvs(path):
    """Raw bytes of every `tokenizer.*` key/value of a GGUF (its other keys dropped)."""
    data = open(path, "rb").read()
    assert data[:4] == b"GGUF", f"{path}: not a GGUF file"
    _, n_tensors, n_kv = struct.unpack_from("<IQQ", data, 4)
    pos = 24
    fixed = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def skip(t, p):
        if t in fixed:
            return p + fixed[t]
        if t == 8:
            (n,) = struct.unpack_from("<Q", data, p)
            return p + 8 + n
        if t == 9:
            et, n = struct.unpack_from("<IQ", data, p)
            p += 12
            if et in fixed:
                return p + n * fixed[et]
            for _ in range(n):
                p = skip(et, p)
            return p
        raise ValueError(f"{path}: unknown GGUF value type {t} at offset {p}")

    out = []
    for _ in range(n_kv):
        start = pos
        (kl,) = struct.unpack_from("<Q", data, pos)
        key = data[pos + 8:pos + 8 + kl].decode()
        pos += 8 + kl
        (t,) = struct.unpack_from("<I", data, pos)
        pos = skip(t, pos + 4)
        if key.startswith("tokenizer."):
            out.append(data[start:pos])
    return out


def chunk_for(ty, n_in, rng):
    """One reusable run of random blocks (about 16 MiB) with finite, small scales."""
    per, size, scales = BLOCKS[ty]
    if ty == F32:
        return (rng.standard_normal(1 << 22).astype(np.float32) * (0.5 / np.sqrt(n_in))).tobytes()
    n = (16 << 20) // size
    b = rng.integers(0, 256, size=(n, size), dtype=np.uint8)
    # d ~ 0.5/sqrt(n_in)/8 keeps products of 4- and 6-bit codes near unit scale.
    d = np.float16(0.5 / np.sqrt(n_in) / 8).view(np.uint16)
    for off in scales:
        b[:, off] = d & 0xFF
        b[:, off + 1] = d >> 8
    if ty == Q4_K:  # 6-bit scale/min codes: keep mins small so rows stay centred.
        b[:, 4:16] &= 0x1F
    return b.tobytes()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("preset", choices=PRESETS)
    ap.add_argument("out")
    ap.add_argument("--vocab", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "mistral-vocab.gguf"))
    ap.add_argument("--layers", type=int)
    a = ap.parse_args()
    c = dict(PRESETS[a.preset])
    if a.layers:
        c["layers"] = a.layers
    E, FF, L, X = c["embd"], c["ff"], c["layers"], c["experts"]
    V = 32000
    hd = E // c["heads"]
    q4 = c["quant"] == "q4_1"
    big, hi = (Q4_1, Q4_1) if q4 else (Q4_K, Q6_K)

    tensors = []  # (name, ne list innermost first, type)
    tensors.append(("token_embd.weight", [E, V], big))
    for i in range(L):
        p = f"blk.{i}."
        # llama.cpp's Q4_K_M gives attn_v and ffn_down 6 bits in about half the layers.
        more = (not q4) and (i < L // 8 or i >= 7 * L // 8 or (i - L // 8) % 3 == 2)
        tensors += [
            (p + "attn_norm.weight", [E], F32),
            (p + "attn_q.weight", [E, E], big),
            (p + "attn_k.weight", [E, hd * c["kv"]], big),
            (p + "attn_v.weight", [E, hd * c["kv"]], hi if more else big),
            (p + "attn_output.weight", [E, E], big),
            (p + "ffn_norm.weight", [E], F32),
        ]
        if X:
            tensors += [
                (p + "ffn_gate_inp.weight", [E, X], F32),
                (p + "ffn_gate_exps.weight", [E, FF, X], big),
                (p + "ffn_up_exps.weight", [E, FF, X], big),
                (p + "ffn_down_exps.weight", [FF, E, X], hi if more else big),
            ]
        else:
            tensors += [
                (p + "ffn_gate.weight", [E, FF], big),
                (p + "ffn_up.weight", [E, FF], big),
                (p + "ffn_down.weight", [FF, E], hi if more else big),
            ]
    tensors.append(("output_norm.weight", [E], F32))
    if not c["tied"]:
        tensors.append(("output.weight", [E, V], hi))

    def nbytes(ne, ty):
        per, size, _ = BLOCKS[ty]
        n = int(np.prod(ne))
        assert n % per == 0 and ne[0] % per == 0, (ne, ty)
        return n // per * size

    kvs = [
        kv_bytes("general.architecture", 8, s("llama")),
        kv_bytes("general.name", 8, s(f"synthetic {a.preset} (random weights)")),
        kv_bytes("general.alignment", 4, struct.pack("<I", ALIGN)),
        kv_bytes("general.file_type", 4, struct.pack("<I", 3 if q4 else 15)),
        kv_bytes("llama.context_length", 4, struct.pack("<I", c["ctx"])),
        kv_bytes("llama.embedding_length", 4, struct.pack("<I", E)),
        kv_bytes("llama.block_count", 4, struct.pack("<I", L)),
        kv_bytes("llama.feed_forward_length", 4, struct.pack("<I", FF)),
        kv_bytes("llama.attention.head_count", 4, struct.pack("<I", c["heads"])),
        kv_bytes("llama.attention.head_count_kv", 4, struct.pack("<I", c["kv"])),
        kv_bytes("llama.rope.freq_base", 6, struct.pack("<f", c["rope"])),
        kv_bytes("llama.rope.dimension_count", 4, struct.pack("<I", hd)),
        kv_bytes("llama.attention.layer_norm_rms_epsilon", 6, struct.pack("<f", 1e-5)),
        kv_bytes("llama.vocab_size", 4, struct.pack("<I", V)),
    ]
    if X:
        kvs += [kv_bytes("llama.expert_count", 4, struct.pack("<I", X)), kv_bytes("llama.expert_used_count", 4, struct.pack("<I", 2))]
    kvs += read_tokenizer_kvs(a.vocab)

    infos, offset = [], 0
    for name, ne, ty in tensors:
        infos.append(s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne) + struct.pack("<IQ", ty, offset))
        offset += nbytes(ne, ty)
        offset = (offset + ALIGN - 1) // ALIGN * ALIGN

    rng = np.random.default_rng(7)
    chunks = {}
    with open(a.out, "wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)))
        for k in kvs:
            f.write(k)
        for i in infos:
            f.write(i)
        f.write(b"\0" * (-f.tell() % ALIGN))
        for name, ne, ty in tensors:
            n = nbytes(ne, ty)
            if name.endswith("norm.weight"):
                f.write(np.ones(ne[0], np.float32).tobytes())
            else:
                key = (ty, ne[0])
                if key not in chunks:
                    chunks[key] = chunk_for(ty, ne[0], rng)
                ch = chunks[key]
                left = n
                while left:
                    m = min(left, len(ch))
                    f.write(ch[:m])
                    left -= m
            f.write(b"\0" * (-f.tell() % ALIGN))
        total = f.tell()
    print(f"{a.out}: {a.preset}, {L} layers, {len(tensors)} tensors, {total / 2**30:.2f} GiB", file=sys.stderr)


if __name__ == "__main__":
    main()
