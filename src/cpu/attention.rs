//! Causal, optionally sliding-window, grouped-query attention of a chunk of queries
//! over the cached keys plus the chunk's own keys (Mistral's chunked prefill).
//! Query at position P sees key j iff `j <= P` and `P - j < W` — llama.cpp's and
//! Hugging Face's window convention; W slots of the rolling cache hold exactly that.
//!
//! The fast path works on tiles: the query heads that share a KV head, for a few
//! consecutive positions, against panels of [`PANEL`] keys, so every key and value row
//! is loaded once per tile instead of once per query (flash-attention's blocking, on
//! the CPU, with an exact two-pass softmax over the tile's scores). [`attention_naive`]
//! — one query at a time, one key at a time — is its slow twin.

use crate::cpu::cache::KvCache;
use crate::cpu::vector::{axpy, dot, softmax};
use std::cell::RefCell;

pub struct AttnShape {
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    /// The window of this layer (`Hparams::layer_window`).
    pub window: Option<usize>,
    /// Multiplies Q·K (`Hparams::attn_scale`, 1/sqrt(head_dim) but for gemma3 27B).
    pub scale: f32,
}

/// Query rows per tile, one per f32 lane of two AVX registers: the heads sharing a
/// KV head at consecutive positions (rows = positions × heads).
const LANES: usize = 16;
// Keys (scores) or output dims per pass of the inner kernels: four natively, two under
// wasm32, where simd128 has 16 registers and 16 lanes × 4 keys of accumulators (16
// vectors) plus the queries would spill on every multiply-add (AVX2 holds them in 8).
#[cfg(not(target_arch = "wasm32"))]
const KB: usize = 4;
#[cfg(target_arch = "wasm32")]
const KB: usize = 2;

/// Where the keys and values of a chunk of queries live.
struct Ctx<'a> {
    s: &'a AttnShape,
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    ck: &'a [f32],
    cv: &'a [f32],
    pos: usize,
    oldest: usize,
    capacity: usize,
    /// Addresses of key and value rows `first..` of KV head 0 (a head's row is `g·hd`
    /// further): looked up once per call, where each tile would look every row up again
    /// (the rolling cache's `j % capacity` is a division: ~170 M of them in a 3,079-token
    /// prefill of SmolLM2).
    first: usize,
    krows: &'a [usize],
    vrows: &'a [usize],
}

impl Ctx<'_> {
    /// First key the query at absolute position `p` sees.
    fn lo(&self, p: usize) -> usize {
        match self.s.window {
            Some(w) => self.oldest.max((p + 1).saturating_sub(w)),
            None => self.oldest,
        }
    }

    /// Addresses of the key (`v = false`) or value rows `first..pos + n_tok` of KV head
    /// 0: the cache's slots counted on from `first`'s (one division, not one per row),
    /// then the chunk's rows.
    fn rows(&self, first: usize, n_tok: usize, v: bool) -> Vec<usize> {
        let kvd = self.s.n_head_kv * self.s.head_dim;
        let (cache, chunk) = if v { (self.cv, self.v) } else { (self.ck, self.k) };
        let mut out = Vec::with_capacity(self.pos + n_tok - first);
        let mut slot = first % self.capacity.max(1);
        for _ in first..self.pos {
            out.push(cache[slot * kvd..][..kvd].as_ptr() as usize);
            slot += 1;
            if slot == self.capacity {
                slot = 0;
            }
        }
        out.extend((0..n_tok).map(|r| chunk[r * kvd..][..kvd].as_ptr() as usize));
        out
    }
}

/// Keys per block. A query's keys are cut at multiples of `BLOCK` (absolute
/// positions, not offsets into the chunk), each block gets its own softmax partial
/// (max, sum, weighted values) and the partials are merged in block order: the split
/// behind flash-decoding (Dao et al., "Flash-Decoding for long-context inference",
/// 2023; the GPU's split-K kernel does the same). Because the cuts are absolute, a
/// query's blocks and so its bits are the same whatever chunk or tile it is computed
/// in, and a decode step can spread its blocks over the threads: one step has only
/// `n_head_kv` tiles (3 for SmolLM2), which 2 threads split 2 : 1.
const BLOCK: usize = 128;

/// `q`: [L, n_head·hd]; `k`, `v`: the chunk's [L, n_kv·hd]; the cache holds positions
/// before `cache.pos`, where the chunk starts. Returns [L, n_head·hd].
pub fn attention(s: &AttnShape, q: &[f32], k: &[f32], v: &[f32], cache: &KvCache, layer: usize) -> Vec<f32> {
    attention_split(s, q, k, v, cache, layer, None)
}

/// [`attention`], with the task layout forced (`Some(true)`: a task per key block
/// wherever the chunk is one tile; `Some(false)`: a task per tile) for the tests that
/// check it changes no bit.
fn attention_split(s: &AttnShape, q: &[f32], k: &[f32], v: &[f32], cache: &KvCache, layer: usize, split: Option<bool>) -> Vec<f32> {
    if s.head_dim > 256 || s.head_dim % KB != 0 {
        return attention_naive(s, q, k, v, cache, layer);
    }
    let lc = &cache.layers[layer];
    let n_tok = q.len() / (s.n_head * s.head_dim);
    let mut c = Ctx { s, q, k, v, ck: &lc.k, cv: &lc.v, pos: cache.pos, oldest: cache.oldest(layer), capacity: lc.capacity, first: 0, krows: &[], vrows: &[] };
    // The chunk's first query sees the oldest key any of them sees.
    let first = c.lo(c.pos);
    let (krows, vrows) = (c.rows(first, n_tok, false), c.rows(first, n_tok, true));
    (c.first, c.krows, c.vrows) = (first, &krows, &vrows);
    let group = s.n_head / s.n_head_kv;
    // Heads of a group per tile (all of them unless the group is wider than LANES),
    // and positions per tile so that heads × positions fill the lanes.
    let hs = group.min(LANES);
    let qt = LANES / hs;
    let subs = group.div_ceil(hs);
    let mut out = vec![0f32; q.len()];
    let o = crate::cpu::kernels::pool::SharedOut::new(&mut out);
    let tiles = n_tok.div_ceil(qt);
    let per_tile = s.n_head_kv * subs;
    let tile_of = |tile: usize, gs: usize| {
        let (g, sub) = (gs / subs, gs % subs);
        Tile { g, h0: g * group + sub * hs, nh: hs.min(group - sub * hs), i0: tile * qt, i1: (tile * qt + qt).min(n_tok) }
    };
    let pool = crate::cpu::kernels::pool::global();
    // One tile of positions (a decode step, a chunk of a few tokens) whose group tiles
    // are fewer than twice the threads: a task per group tile and key block, then the
    // caller's merges. Otherwise a task per tile, which merges its own blocks. The same
    // arithmetic either way, so the choice changes no bit.
    if tiles == 1 && split.unwrap_or(per_tile < 2 * pool.threads()) {
        let (b0, b1) = (c.lo(c.pos) / BLOCK, (c.pos + n_tok - 1) / BLOCK);
        let nb = b1 - b0 + 1;
        // Room for the widest tile's lanes (a group's last tile of heads may be narrower).
        let plen = part_len(s.head_dim, lanes(n_tok * hs));
        let mut parts = vec![0f32; per_tile * nb * plen];
        let p = crate::cpu::kernels::pool::SharedOut::new(&mut parts);
        pool.run(per_tile * nb, &|i| {
            let (gs, b) = (i / nb, i % nb);
            // SAFETY: task (gs, b) writes only its own partial.
            unsafe { tile_dispatch(&c, &tile_of(0, gs), Op::Block(b0 + b, p.piece(i * plen, plen))) };
        });
        drop(p);
        for gs in 0..per_tile {
            // SAFETY: each (gs) writes only the columns of its heads.
            unsafe { tile_dispatch(&c, &tile_of(0, gs), Op::Merge { parts: &parts[gs * nb * plen..][..nb * plen], stride: plen, out: o.ptr() }) };
        }
    } else {
        pool.run(tiles * per_tile, &|t| {
            // SAFETY: task (tile, g, sub) writes only rows of its tile at the columns of
            // its heads; no two tasks share an element.
            unsafe { tile_dispatch(&c, &tile_of(t / per_tile, t % per_tile), Op::Whole(o.ptr())) };
        });
    }
    out
}

/// Query positions `i0..i1` of the chunk × heads `h0..h0 + nh` of KV group `g`.
struct Tile {
    g: usize,
    h0: usize,
    nh: usize,
    i0: usize,
    i1: usize,
}

/// What a call on a tile does.
enum Op<'a> {
    /// Every key block, merged, into the output (`[L, n_head·hd]`).
    Whole(*mut f32),
    /// One key block's partial (absolute block number), laid out as [`part_len`] says.
    Block(usize, &'a mut [f32]),
    /// The tile's blocks' partials, in block order and `stride` floats apart (at least
    /// [`part_len`]), merged into the output.
    Merge { parts: &'a [f32], stride: usize, out: *mut f32 },
}

/// Floats of one block's partial for `w` lanes: the lanes' score maxima, their sums
/// of exponentials, then `hd` rows of weighted value sums.
fn part_len(hd: usize, w: usize) -> usize {
    (2 + hd) * w
}

/// Picks the widest vector unit: the tile code is plain Rust that LLVM vectorizes,
/// compiled once per target-feature set.
unsafe fn tile_dispatch(c: &Ctx, t: &Tile, op: Op) {
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::kernels::avx2_fma() {
        return tile_avx2(c, t, op);
    }
    tile::<false>(c, t, op)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2(c: &Ctx, t: &Tile, op: Op) {
    tile::<true>(c, t, op)
}

/// `a·b + c`, fused where the caller was compiled with FMA (Rust never contracts on
/// its own; without the unit, `mul_add` would be a libm call per element).
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

thread_local! {
    /// Per-thread scratch (queries, key panel, scores, partials), reused across calls
    /// so the per-step allocations stay out of page faults.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// One tile, rows in lanes: row r = (position i0 + r / nh, head h0 + r % nh).
#[inline(always)]
unsafe fn tile<const FMA: bool>(c: &Ctx, t: &Tile, op: Op) {
    match lanes((t.i1 - t.i0) * t.nh) {
        4 => tile_lanes::<FMA, 4>(c, t, op),
        8 => tile_lanes::<FMA, { LANES / 2 }>(c, t, op),
        _ => tile_lanes::<FMA, LANES>(c, t, op),
    }
}

/// The lanes a tile of `nr` rows runs in: 8 when a decode step's few rows would leave
/// half of 16 idle, and under wasm32 4, where simd128 has 4 lanes and a decode step's
/// rows (a group's heads at one position, 3 for SmolLM2) fit one vector.
fn lanes(nr: usize) -> usize {
    if cfg!(target_arch = "wasm32") && nr <= 4 {
        4
    } else if nr <= LANES / 2 {
        LANES / 2
    } else {
        LANES
    }
}

/// The tile with `W` lanes ([`lanes`]). Each lane's arithmetic depends only on its own row, and masked keys add
/// exact zeros, so a row's result is the same bit for bit whatever tile it lands in:
/// decoding step by step equals prefill.
#[inline(always)]
unsafe fn tile_lanes<const FMA: bool, const W: usize>(c: &Ctx, t: &Tile, op: Op) {
    let hd = c.s.head_dim;
    let (b0, b1) = (c.lo(c.pos + t.i0) / BLOCK, (c.pos + t.i1 - 1) / BLOCK);
    let plen = part_len(hd, W);
    // Taken out of the thread-local rather than used inside `with`: a closure would
    // not inherit this function's target features, and the loops would stay SSE2.
    let mut buf = SCRATCH.with_borrow_mut(std::mem::take);
    let nk_max = (c.pos + t.i1 - (b0 * BLOCK).max(c.lo(c.pos + t.i0))).min(BLOCK);
    let need = hd * W + nk_max.div_ceil(KB) * KB * W + (b1 - b0 + 1) * plen;
    if buf.len() < need {
        buf.resize(need, 0.0);
    }
    let (qt, rest) = buf.split_at_mut(hd * W);
    let (sc, parts) = rest.split_at_mut(nk_max.div_ceil(KB) * KB * W);
    match op {
        Op::Whole(out) => {
            queries::<W>(c, t, qt);
            for (b, part) in (b0..=b1).zip(parts.chunks_exact_mut(plen)) {
                block::<FMA, W>(c, t, b, qt, sc, part);
            }
            merge::<FMA, W>(c, t, &parts[..(b1 - b0 + 1) * plen], plen, out);
        }
        Op::Block(b, part) => {
            queries::<W>(c, t, qt);
            block::<FMA, W>(c, t, b, qt, sc, part);
        }
        Op::Merge { parts, stride, out } => merge::<FMA, W>(c, t, &parts[..(b1 - b0 + 1) * stride], stride, out),
    }
    SCRATCH.with_borrow_mut(|b| *b = buf);
}

/// The tile's queries transposed (lanes = rows) and pre-scaled; unused lanes 0.
#[inline(always)]
fn queries<const W: usize>(c: &Ctx, t: &Tile, qt: &mut [f32]) {
    let (hd, qd) = (c.s.head_dim, c.s.n_head * c.s.head_dim);
    qt.fill(0.0);
    for r in 0..(t.i1 - t.i0) * t.nh {
        let (i, h) = (t.i0 + r / t.nh, t.h0 + r % t.nh);
        for (d, x) in c.q[i * qd + h * hd..][..hd].iter().enumerate() {
            qt[d * W + r] = x * c.s.scale;
        }
    }
}

/// Key block `b`'s partial for the tile: per lane, the maximum score `m` over the
/// block's keys the row sees, `Σ e^(s - m)` and `Σ e^(s - m)·V`. A row that sees none
/// of the block's keys gets m = −∞ and zeros, which the merge weighs by e^−∞ = 0.
///
/// The inner loops index through raw pointers: each key and value row's address comes
/// from the call's tables ([`Ctx::krows`]), and no bounds check sits between the
/// multiply-adds. Under wasm32 the checked loops ran at half this speed (a 3,079-token
/// prefill of SmolLM2: 56 s of attention, stable rustc).
#[inline(always)]
unsafe fn block<const FMA: bool, const W: usize>(c: &Ctx, t: &Tile, b: usize, qt: &[f32], sc: &mut [f32], part: &mut [f32]) {
    let hd = c.s.head_dim;
    let nr = (t.i1 - t.i0) * t.nh;
    // The block's keys that some row of the tile sees: from the oldest any row sees
    // (or the block's start) to the newest (or the block's end).
    let j0 = c.lo(c.pos + t.i0).max(b * BLOCK);
    let j1 = (c.pos + t.i1).min(b * BLOCK + BLOCK);
    let nk = j1 - j0;
    let nk_pad = nk.div_ceil(KB) * KB;
    let sc = &mut sc[..nk_pad * W];
    let (kp, vp) = (&c.krows[j0 - c.first..][..nk], &c.vrows[j0 - c.first..][..nk]);
    let gofs = t.g * hd;
    let qp = qt.as_ptr();
    let sp = sc.as_mut_ptr();
    // 1. Scores S[j][r], KB keys at a time read straight from the cache or the chunk.
    for jb in (0..nk_pad).step_by(KB) {
        // Padding keys past the last read the queries (any hd finite values; their
        // scores are masked below).
        let krow: [*const f32; KB] = std::array::from_fn(|k| if jb + k < nk { (*kp.get_unchecked(jb + k) as *const f32).add(gofs) } else { qp });
        let mut acc = [[0f32; W]; KB];
        for d in 0..hd {
            // SAFETY: qt holds hd rows of W lanes; every key row is hd long.
            let qv = &*(qp.add(d * W) as *const [f32; W]);
            for k in 0..KB {
                let kv = *krow[k].add(d);
                for l in 0..W {
                    acc[k][l] = madd::<FMA>(kv, qv[l], acc[k][l]);
                }
            }
        }
        // SAFETY: sc holds nk_pad rows of W lanes.
        std::ptr::copy_nonoverlapping(acc.as_ptr() as *const f32, sp.add(jb * W), KB * W);
    }
    // 2. Softmax down each lane over the keys its position may see (others -> -inf,
    // which `exp` turns into exactly 0), vectorized across rows.
    for r in 0..nr {
        let p = c.pos + t.i0 + r / t.nh;
        // The row sees keys lo(p)..=p; of this block's, a..e (padding keys past j1 never).
        let (a, e) = (c.lo(p).min(j1).saturating_sub(j0), (p + 1).min(j1).saturating_sub(j0));
        for j in (0..a).chain(e..nk_pad) {
            sc[j * W + r] = f32::NEG_INFINITY;
        }
    }
    // A compare, not `f32::max`: the same maximum (scores are never NaN, and ±0
    // subtract alike below), but one vector op where wasm32 makes `max` a libm call
    // per element (its `f32.max` treats NaN otherwise).
    let mut max = [f32::NEG_INFINITY; W];
    for row in sc.chunks_exact(W) {
        for l in 0..W {
            if row[l] > max[l] {
                max[l] = row[l];
            }
        }
    }
    // A lane that sees no key here subtracts 0 (every term is e^−∞ = 0 either way).
    let mut sub = max;
    for m in &mut sub {
        if *m == f32::NEG_INFINITY {
            *m = 0.0;
        }
    }
    let mut sum = [0f32; W];
    for row in sc.chunks_exact_mut(W) {
        for l in 0..W {
            row[l] = crate::cpu::vector::exp(row[l] - sub[l]);
            sum[l] += row[l];
        }
    }
    // 3. Weighted values O[d][r] = Σ_j P[j][r] · V[j][d], KB dims at a time.
    let sp = sc.as_ptr();
    let op = part.as_mut_ptr().add(2 * W);
    for db in (0..hd).step_by(KB) {
        let mut acc = [[0f32; W]; KB];
        for (j, &v) in vp.iter().enumerate() {
            // SAFETY: sc holds nk rows of W lanes; a value row is hd long, db + KB <= hd.
            let pj = &*(sp.add(j * W) as *const [f32; W]);
            let vr = (v as *const f32).add(gofs + db);
            for k in 0..KB {
                let x = *vr.add(k);
                for l in 0..W {
                    acc[k][l] = madd::<FMA>(x, pj[l], acc[k][l]);
                }
            }
        }
        // SAFETY: part holds 2 + hd rows of W lanes.
        std::ptr::copy_nonoverlapping(acc.as_ptr() as *const f32, op.add(db * W), KB * W);
    }
    part[..W].copy_from_slice(&max);
    part[W..2 * W].copy_from_slice(&sum);
}

/// The tile's output from its blocks' partials (in block order): with M the largest
/// block maximum, O = Σ_b e^(m_b − M)·O_b / Σ_b e^(m_b − M)·sum_b. One block gives
/// e^0 = 1 exactly, so a row with at most `BLOCK` keys gets the plain softmax's bits.
#[inline(always)]
unsafe fn merge<const FMA: bool, const W: usize>(c: &Ctx, t: &Tile, parts: &[f32], stride: usize, out: *mut f32) {
    let (hd, qd) = (c.s.head_dim, c.s.n_head * c.s.head_dim);
    let mut top = [f32::NEG_INFINITY; W];
    for part in parts.chunks_exact(stride) {
        for l in 0..W {
            if part[l] > top[l] {
                top[l] = part[l];
            }
        }
    }
    // Unused lanes saw no key at all; keep their maximum finite.
    for m in &mut top {
        if *m == f32::NEG_INFINITY {
            *m = 0.0;
        }
    }
    let mut sum = [0f32; W];
    let mut o = [[0f32; W]; 256];
    for part in parts.chunks_exact(stride) {
        let mut w = [0f32; W];
        for l in 0..W {
            w[l] = crate::cpu::vector::exp(part[l] - top[l]);
            sum[l] = madd::<FMA>(w[l], part[W + l], sum[l]);
        }
        for (d, od) in o.iter_mut().enumerate().take(hd) {
            let pd = &part[(2 + d) * W..][..W];
            for l in 0..W {
                od[l] = madd::<FMA>(w[l], pd[l], od[l]);
            }
        }
    }
    for r in 0..(t.i1 - t.i0) * t.nh {
        let (i, h) = (t.i0 + r / t.nh, t.h0 + r % t.nh);
        let inv = 1.0 / sum[r];
        let dst = out.add(i * qd + h * hd);
        for (d, od) in o.iter().enumerate().take(hd) {
            *dst.add(d) = od[r] * inv;
        }
    }
}

/// The slow twin: one (query, head) at a time, one key at a time.
pub fn attention_naive(s: &AttnShape, q: &[f32], k: &[f32], v: &[f32], cache: &KvCache, layer: usize) -> Vec<f32> {
    let (hd, kvd) = (s.head_dim, s.n_head_kv * s.head_dim);
    let group = s.n_head / s.n_head_kv;
    let pos = cache.pos;
    let oldest = cache.oldest(layer);
    let lc = &cache.layers[layer];
    let scale = s.scale;
    let mut out = vec![0f32; q.len()];

    let one = |idx: usize, o: &mut [f32]| {
        let (i, h) = (idx / s.n_head, idx % s.n_head);
        let p = pos + i;
        let lo = match s.window {
            Some(w) => oldest.max((p + 1).saturating_sub(w)),
            None => oldest,
        };
        let kvh = (h / group) * hd;
        let qh = &q[i * s.n_head * hd + h * hd..][..hd];
        // Where key/value row j lives: the chunk for j >= pos, else its cache slot.
        let row = |j: usize| -> std::ops::Range<usize> {
            if j >= pos {
                (j - pos) * kvd + kvh..(j - pos) * kvd + kvh + hd
            } else {
                let sl = cache.slot(layer, j);
                sl * kvd + kvh..sl * kvd + kvh + hd
            }
        };
        let mut scores: Vec<f32> = (lo..=p)
            .map(|j| {
                let r = row(j);
                dot(qh, if j >= pos { &k[r] } else { &lc.k[r] }) * scale
            })
            .collect();
        softmax(&mut scores);
        for (j, &w) in (lo..=p).zip(&scores) {
            let r = row(j);
            axpy(w, if j >= pos { &v[r] } else { &lc.v[r] }, o);
        }
    };

    crate::cpu::kernels::pool::for_each_chunk_mut(&mut out, hd, &|idx, o| one(idx, o));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Same sums in another order, and a polynomial exp (≤ 2 ulp) in the softmax.
    const TOL_TILED: f32 = 2e-5;

    /// Tiled vs naive over a cache that is empty, partly filled, and wrapped, with and
    /// without a window, GQA groups of 3 and 4, head sizes with and without a tail.
    /// Also under Node in wasm32 (`make test-wasm-kernels`), where decode-sized
    /// tiles take 4 lanes.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn tiled_equals_naive() {
        // The last two pass BLOCK: keys in three blocks, and a window across a block edge.
        let long = [140, 1, 9, 130, 1, 1, 3];
        for (n_head, n_kv, hd, window, cap, chunks) in [
            (9, 3, 64, None, 64, &[5, 1, 9, 1, 1, 6, 2][..]),
            (8, 2, 128, Some(13), 13, &[5, 1, 9, 1, 1, 6, 2]),
            (4, 4, 24, Some(7), 7, &[5, 1, 9, 1, 1, 6, 2]),
            (6, 3, 40, None, 64, &[5, 1, 9, 1, 1, 6, 2]),
            (9, 3, 64, None, 300, &long),
            (8, 2, 32, Some(150), 150, &long),
        ] {
            let s = AttnShape { n_head, n_head_kv: n_kv, head_dim: hd, window, scale: 1.0 / (hd as f32).sqrt() };
            let kvd = n_kv * hd;
            let mut cache = KvCache::new(crate::model::cache::CacheShape { n_layer: 1, kv_dim: kvd, capacity: cap, rolling: window.is_some(), local: None });
            let mut seed = 1;
            for &chunk in chunks {
                if window.is_none() && cache.pos + chunk > cap {
                    break;
                }
                seed += 1;
                let q = random(chunk * n_head * hd, seed);
                let k = random(chunk * kvd, seed + 100);
                let v = random(chunk * kvd, seed + 200);
                let fast = attention(&s, &q, &k, &v, &cache, 0);
                let slow = attention_naive(&s, &q, &k, &v, &cache, 0);
                for (i, (a, b)) in fast.iter().zip(&slow).enumerate() {
                    assert!(
                        (a - b).abs() <= TOL_TILED,
                        "heads {n_head}/{n_kv}, hd {hd}, window {window:?}, pos {}: first bad index {i} (token {}, dim {}): tiled {a}, naive {b}",
                        cache.pos,
                        i / (n_head * hd),
                        i % (n_head * hd)
                    );
                }
                cache.store(0, &k, &v);
                cache.advance(chunk);
            }
        }
    }

    /// A position's output depends neither on the chunk it was computed in nor on the
    /// task layout: the same tokens as one chunk, as single steps (the narrowest tiles,
    /// with a task per tile and with a task per key block) and in uneven chunks give the
    /// same bits — 23 tokens (one key block) and 300 (three; the window crossing their
    /// edges; a group of 20 heads, tiles of 16 and 4).
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn chunking_and_task_layout_do_not_change_bits() {
        for (n_head, n_kv, hd, window, n) in [(9, 3, 64, None, 23), (8, 2, 32, Some(11), 23), (4, 4, 24, None, 23), (2, 1, 16, None, 23), (9, 3, 64, None, 300), (8, 2, 32, Some(150), 300), (20, 1, 16, None, 300)] {
            let s = AttnShape { n_head, n_head_kv: n_kv, head_dim: hd, window, scale: 1.0 / (hd as f32).sqrt() };
            let (qd, kvd) = (n_head * hd, n_kv * hd);
            let (q, k, v) = (random(n * qd, 7), random(n * kvd, 8), random(n * kvd, 9));
            let run = |chunks: &[usize], split: Option<bool>| {
                let mut cache = KvCache::new(crate::model::cache::CacheShape { n_layer: 1, kv_dim: kvd, capacity: n, rolling: false, local: None });
                let mut out = Vec::new();
                for &c in chunks {
                    let (a, b) = (cache.pos, cache.pos + c);
                    out.extend(attention_split(&s, &q[a * qd..b * qd], &k[a * kvd..b * kvd], &v[a * kvd..b * kvd], &cache, 0, split));
                    cache.store(0, &k[a * kvd..b * kvd], &v[a * kvd..b * kvd]);
                    cache.advance(c);
                }
                out
            };
            let whole = run(&[n], None);
            let uneven: Vec<usize> = [5, 1, 2, 9, 1, 5, 130, 1, 140].iter().scan(0, |done, &c| {
                let c = c.min(n - *done);
                *done += c;
                Some(c)
            }).filter(|&c| c > 0).collect();
            for (chunks, split) in [(vec![1; n], Some(false)), (vec![1; n], Some(true)), (uneven, None)] {
                let got = run(&chunks, split);
                for (i, (a, b)) in got.iter().zip(&whole).enumerate() {
                    assert!(a.to_bits() == b.to_bits(), "heads {n_head}/{n_kv}, hd {hd}, window {window:?}, {} chunks, split {split:?}: first bad index {i} (token {}, dim {}): {a} vs {b} in one chunk", chunks.len(), i / qd, i % qd);
                }
            }
        }
    }
}
