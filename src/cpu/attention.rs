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

/// `q`: [L, n_head·hd]; `k`, `v`: the chunk's [L, n_kv·hd]; the cache holds positions
/// before `cache.pos`, where the chunk starts. Returns [L, n_head·hd].
pub fn attention(s: &AttnShape, q: &[f32], k: &[f32], v: &[f32], cache: &KvCache, layer: usize) -> Vec<f32> {
    let split = q.len() == s.n_head * s.head_dim && crate::cpu::kernels::pool::global().threads() > 1;
    attention_with(s, q, k, v, cache, layer, split)
}

/// [`attention`], a decode step cut into [`decode_split`]'s phases where `split`.
fn attention_with(s: &AttnShape, q: &[f32], k: &[f32], v: &[f32], cache: &KvCache, layer: usize, split: bool) -> Vec<f32> {
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
    let tile_of = |t: usize| {
        let (tile, g, sub) = (t / per_tile, (t % per_tile) / subs, t % subs);
        Tile { g, h0: g * group + sub * hs, nh: hs.min(group - sub * hs), i0: tile * qt, i1: (tile * qt + qt).min(n_tok) }
    };
    let pool = crate::cpu::kernels::pool::global();
    if split && n_tok == 1 {
        decode_split(&c, per_tile, &tile_of, &o, pool);
        return out;
    }
    pool.run(tiles * per_tile, &|t| {
        // SAFETY: task (tile, g) writes only rows of its tile at the columns of group
        // g's heads; no two tasks share an element.
        unsafe { tile_dispatch(&c, &tile_of(t), Work::Whole, o.ptr()) };
    });
    out
}

/// A decode step on several threads. Its tiles are its KV groups (3 for SmolLM2), and
/// 3 tasks on 2 threads kept one thread idle a third of the time: at 1,600 cached
/// positions attention is most of a step, and two threads decoded only 1.26× faster
/// than one (the threaded wasm build under Node). So each tile is cut in two phases:
/// 1. its scores, in runs of keys, into a buffer shared by the step;
/// 2. its softmax (each task its own copy of the tile's scores) and its output, in
///    runs of dimensions.
/// Every score is the same sum in the same order wherever its run starts (runs are
/// whole [`KB`]-key passes), the softmax reads all of them in key order, and each
/// output dimension sums over all keys in order: the bits are [`Work::Whole`]'s, so
/// decoding still equals prefill and the thread count changes nothing.
fn decode_split(c: &Ctx, n_tiles: usize, tile_of: &(dyn Fn(usize) -> Tile + Sync), out: &crate::cpu::kernels::pool::SharedOut, pool: &crate::cpu::kernels::pool::Pool) {
    let nk_pad = (c.pos + 1 - c.lo(c.pos)).div_ceil(KB) * KB;
    // Runs per tile: about four tasks per thread over all tiles, each run at least
    // 64 keys / 16 dimensions so a task is worth its dispatch.
    let runs = |len: usize, min: usize| (4 * pool.threads()).div_ceil(n_tiles).clamp(1, (len / min).max(1));
    let (kr, dr) = (runs(nk_pad, 64), runs(c.s.head_dim, 16));
    let cut = |len: usize, n: usize, i: usize| (len / KB * i / n * KB)..(len / KB * (i + 1) / n * KB);
    // Kept between steps (30 layers a step); every lane a task reads is written first.
    let mut scores = SPLIT.with_borrow_mut(std::mem::take);
    if scores.len() < n_tiles * nk_pad * LANES {
        scores.resize(n_tiles * nk_pad * LANES, 0.0);
    }
    let sc = crate::cpu::kernels::pool::SharedOut::new(&mut scores);
    pool.run(n_tiles * kr, &|i| {
        let (t, r) = (i / kr, i % kr);
        // SAFETY: task (t, r) writes keys `cut(r)` of tile t's rows of the buffer only.
        unsafe { tile_dispatch(c, &tile_of(t), Work::Scores { keys: cut(nk_pad, kr, r), sc: sc.ptr().add(t * nk_pad * LANES) }, std::ptr::null_mut()) };
    });
    pool.run(n_tiles * dr, &|i| {
        let (t, r) = (i / dr, i % dr);
        // SAFETY: the scores are all written (the run above returned) and only read
        // here; task (t, r) writes dimensions `cut(r)` of tile t's heads only.
        unsafe { tile_dispatch(c, &tile_of(t), Work::Output { dims: cut(c.s.head_dim, dr, r), sc: sc.ptr().add(t * nk_pad * LANES) }, out.ptr()) };
    });
    SPLIT.with_borrow_mut(|b| *b = scores);
}

thread_local! {
    /// [`decode_split`]'s shared scores, on the thread that calls `attention`.
    static SPLIT: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// What a task does with its tile: all of it, or one of [`decode_split`]'s phases.
#[derive(Clone)]
enum Work {
    Whole,
    /// Scores of keys `keys` (whole KB passes, from the tile's first key) into `sc`,
    /// `nk_pad` rows of the tile's lane count.
    Scores { keys: std::ops::Range<usize>, sc: *mut f32 },
    /// Softmax of all the scores in `sc`, then output dimensions `dims` (whole KB runs).
    Output { dims: std::ops::Range<usize>, sc: *const f32 },
}

/// Picks the widest vector unit: the tile code is plain Rust that LLVM vectorizes,
/// compiled once per target-feature set.
/// Query positions `i0..i1` of the chunk × heads `h0..h0 + nh` of KV group `g`.
struct Tile {
    g: usize,
    h0: usize,
    nh: usize,
    i0: usize,
    i1: usize,
}

unsafe fn tile_dispatch(c: &Ctx, t: &Tile, work: Work, out: *mut f32) {
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::kernels::avx2_fma() {
        return tile_avx2(c, t, work, out);
    }
    tile::<false>(c, t, work, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2(c: &Ctx, t: &Tile, work: Work, out: *mut f32) {
    tile::<true>(c, t, work, out)
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
    /// Per-thread scratch (queries, key panel, scores), reused across calls so the
    /// per-step allocations stay out of page faults.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// One tile, rows in lanes: row r = (position i0 + r / nh, head h0 + r % nh).
#[inline(always)]
unsafe fn tile<const FMA: bool>(c: &Ctx, t: &Tile, work: Work, out: *mut f32) {
    let nr = (t.i1 - t.i0) * t.nh;
    // simd128 has 4 lanes: a decode step's rows (a group's heads at one position,
    // 3 for SmolLM2) fit one vector, where 8 lanes would be two, half idle.
    #[cfg(target_arch = "wasm32")]
    if nr <= 4 {
        return tile_lanes::<FMA, 4>(c, t, work, out);
    }
    if nr <= LANES / 2 {
        return tile_lanes::<FMA, { LANES / 2 }>(c, t, work, out);
    }
    tile_lanes::<FMA, LANES>(c, t, work, out)
}

/// The tile with `W` lanes (8 when a decode step's few rows would leave half of 16
/// idle). Each lane's arithmetic depends only on its own row, and masked keys add
/// exact zeros, so a row's result is the same bit for bit whatever tile it lands in:
/// decoding step by step equals prefill.
///
/// The inner loops index through raw pointers: each key and value row's address comes
/// from the call's tables ([`Ctx::krows`]), and no bounds check sits between the
/// multiply-adds. Under wasm32 the checked loops ran at
/// half this speed (a 3,079-token prefill of SmolLM2: 56 s of attention, stable rustc).
#[inline(always)]
unsafe fn tile_lanes<const FMA: bool, const W: usize>(c: &Ctx, t: &Tile, work: Work, out: *mut f32) {
    let s = c.s;
    let hd = s.head_dim;
    let j0 = c.lo(c.pos + t.i0);
    let nk = c.pos + t.i1 - j0; // keys from the oldest any row sees to the newest
    let nk_pad = nk.div_ceil(KB) * KB;
    // Taken out of the thread-local rather than used inside `with`: a closure would
    // not inherit this function's target features, and the loops would stay SSE2.
    let mut buf = SCRATCH.with_borrow_mut(std::mem::take);
    let need = hd * W + nk_pad * W;
    if buf.len() < need {
        buf.resize(need, 0.0);
    }
    let (qt, sc) = buf.split_at_mut(hd * W);
    let sc = &mut sc[..nk_pad * W];
    // This tile's key and value rows: `nk` addresses from the call's tables.
    let (kp, vp) = (&c.krows[j0 - c.first..][..nk], &c.vrows[j0 - c.first..][..nk]);
    match work {
        Work::Whole => {
            queries::<W>(c, t, qt);
            scores::<FMA, W>(t, qt, kp, 0..nk_pad, sc.as_mut_ptr());
            let sum = softmax_lanes::<W>(c, t, j0, sc);
            output::<FMA, W>(c, t, sc, vp, 0..hd, &sum, out);
        }
        Work::Scores { keys, sc } => {
            queries::<W>(c, t, qt);
            scores::<FMA, W>(t, qt, kp, keys, sc);
        }
        Work::Output { dims, sc: shared } => {
            // SAFETY: the shared buffer holds the tile's nk_pad rows of W lanes.
            sc.copy_from_slice(std::slice::from_raw_parts(shared, nk_pad * W));
            let sum = softmax_lanes::<W>(c, t, j0, sc);
            output::<FMA, W>(c, t, sc, vp, dims, &sum, out);
        }
    }
    SCRATCH.with_borrow_mut(|b| *b = buf);
}

/// The tile's queries transposed into `qt` (lanes = rows) and pre-scaled; unused
/// lanes 0.
#[inline(always)]
unsafe fn queries<const W: usize>(c: &Ctx, t: &Tile, qt: &mut [f32]) {
    let (hd, qd) = (c.s.head_dim, c.s.n_head * c.s.head_dim);
    qt.fill(0.0);
    for r in 0..(t.i1 - t.i0) * t.nh {
        let (i, h) = (t.i0 + r / t.nh, t.h0 + r % t.nh);
        for (d, x) in c.q[i * qd + h * hd..][..hd].iter().enumerate() {
            qt[d * W + r] = x * c.s.scale;
        }
    }
}

/// Scores S[j][r] of keys `keys` (whole KB passes of the tile's keys `kp`) into rows
/// of W lanes at `sp`, KB keys at a time read straight from the cache or the chunk.
#[inline(always)]
unsafe fn scores<const FMA: bool, const W: usize>(t: &Tile, qt: &[f32], kp: &[usize], keys: std::ops::Range<usize>, sp: *mut f32) {
    let hd = qt.len() / W;
    let (nk, gofs, qp) = (kp.len(), t.g * hd, qt.as_ptr());
    for jb in keys.step_by(KB) {
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
        // SAFETY: the caller's buffer holds nk_pad rows of W lanes.
        std::ptr::copy_nonoverlapping(acc.as_ptr() as *const f32, sp.add(jb * W), KB * W);
    }
}

/// Softmax down each lane of `sc` over the keys its position may see (others -> -inf,
/// which `exp` turns into exactly 0), vectorized across rows; returns each lane's sum.
#[inline(always)]
unsafe fn softmax_lanes<const W: usize>(c: &Ctx, t: &Tile, j0: usize, sc: &mut [f32]) -> [f32; W] {
    let nk_pad = sc.len() / W;
    for r in 0..(t.i1 - t.i0) * t.nh {
        let p = c.pos + t.i0 + r / t.nh;
        let (a, b) = (c.lo(p) - j0, p + 1 - j0);
        for j in (0..a).chain(b..nk_pad) {
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
    // Unused lanes saw only zeros; keep their max finite.
    for m in &mut max {
        if *m == f32::NEG_INFINITY {
            *m = 0.0;
        }
    }
    let mut sum = [0f32; W];
    for row in sc.chunks_exact_mut(W) {
        for l in 0..W {
            row[l] = crate::cpu::vector::exp(row[l] - max[l]);
            sum[l] += row[l];
        }
    }
    sum
}

/// Output dimensions `dims` (whole KB runs) of the tile's rows: O[d][r] = Σ_j P[j][r]
/// · V[j][d] over the value rows `vp` in key order, rows in lanes, divided by the
/// row's softmax sum.
#[inline(always)]
unsafe fn output<const FMA: bool, const W: usize>(c: &Ctx, t: &Tile, sc: &[f32], vp: &[usize], dims: std::ops::Range<usize>, sum: &[f32; W], out: *mut f32) {
    let (hd, qd) = (c.s.head_dim, c.s.n_head * c.s.head_dim);
    let gofs = t.g * hd;
    let mut o = [[0f32; W]; 256];
    let sp = sc.as_ptr();
    for db in dims.clone().step_by(KB) {
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
        o[db..db + KB].copy_from_slice(&acc);
    }
    for r in 0..(t.i1 - t.i0) * t.nh {
        let (i, h) = (t.i0 + r / t.nh, t.h0 + r % t.nh);
        let inv = 1.0 / sum[r];
        let dst = out.add(i * qd + h * hd);
        for d in dims.clone() {
            *dst.add(d) = o[d][r] * inv;
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
        for (n_head, n_kv, hd, window, cap) in [(9, 3, 64, None, 64), (8, 2, 128, Some(13), 13), (4, 4, 24, Some(7), 7), (6, 3, 40, None, 64)] {
            let s = AttnShape { n_head, n_head_kv: n_kv, head_dim: hd, window, scale: 1.0 / (hd as f32).sqrt() };
            let kvd = n_kv * hd;
            let mut cache = KvCache::new(crate::model::cache::CacheShape { n_layer: 1, kv_dim: kvd, capacity: cap, rolling: window.is_some(), local: None });
            let mut seed = 1;
            for chunk in [5, 1, 9, 1, 1, 6, 2] {
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

    /// A decode step cut into phases (scores by runs of keys, output by runs of
    /// dimensions) gives the bits of the whole tiles, at every cache position of a
    /// cache that fills, and of a rolling one that wraps; on one thread or several.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn split_decode_equals_whole_tiles() {
        for (n_head, n_kv, hd, window, cap) in [(9, 3, 64, None, 300), (12, 2, 128, Some(70), 70), (4, 4, 24, None, 300), (14, 2, 64, None, 300), (40, 2, 16, None, 300)] {
            let s = AttnShape { n_head, n_head_kv: n_kv, head_dim: hd, window, scale: 1.0 / (hd as f32).sqrt() };
            let kvd = n_kv * hd;
            let mut cache = KvCache::new(crate::model::cache::CacheShape { n_layer: 1, kv_dim: kvd, capacity: cap, rolling: window.is_some(), local: None });
            for step in 0..(if window.is_some() { 2 * cap + 5 } else { cap }) {
                let (q, k, v) = (random(n_head * hd, 3 * step as u64 + 1), random(kvd, 3 * step as u64 + 2), random(kvd, 3 * step as u64 + 3));
                let whole = attention_with(&s, &q, &k, &v, &cache, 0, false);
                let split = attention_with(&s, &q, &k, &v, &cache, 0, true);
                for (i, (a, b)) in split.iter().zip(&whole).enumerate() {
                    assert!(a.to_bits() == b.to_bits(), "heads {n_head}/{n_kv}, hd {hd}, window {window:?}, pos {}: first bad index {i} (head {}, dim {}): split {a}, whole tiles {b}", cache.pos, i / hd, i % hd);
                }
                cache.store(0, &k, &v);
                cache.advance(1);
            }
        }
    }

    /// A position's output does not depend on the chunk it was computed in: the
    /// same tokens as one chunk, as single steps (the narrowest tiles) and in
    /// uneven chunks give the same bits.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn chunking_does_not_change_bits() {
        for (n_head, n_kv, hd, window) in [(9, 3, 64, None), (8, 2, 32, Some(11)), (4, 4, 24, None), (2, 1, 16, None)] {
            let s = AttnShape { n_head, n_head_kv: n_kv, head_dim: hd, window, scale: 1.0 / (hd as f32).sqrt() };
            let (n, qd, kvd) = (23, n_head * hd, n_kv * hd);
            let (q, k, v) = (random(n * qd, 7), random(n * kvd, 8), random(n * kvd, 9));
            let run = |chunks: &[usize]| {
                let mut cache = KvCache::new(crate::model::cache::CacheShape { n_layer: 1, kv_dim: kvd, capacity: n, rolling: false, local: None });
                let mut out = Vec::new();
                for &c in chunks {
                    let (a, b) = (cache.pos, cache.pos + c);
                    out.extend(attention(&s, &q[a * qd..b * qd], &k[a * kvd..b * kvd], &v[a * kvd..b * kvd], &cache, 0));
                    cache.store(0, &k[a * kvd..b * kvd], &v[a * kvd..b * kvd]);
                    cache.advance(c);
                }
                out
            };
            let whole = run(&[n]);
            for chunks in [vec![1; n], vec![5, 1, 2, 9, 1, 5]] {
                let got = run(&chunks);
                for (i, (a, b)) in got.iter().zip(&whole).enumerate() {
                    assert!(a.to_bits() == b.to_bits(), "heads {n_head}/{n_kv}, hd {hd}, window {window:?}, chunks {chunks:?}: first bad index {i} (token {}, dim {}): {a} vs {b} in one chunk", i / qd, i % qd);
                }
            }
        }
    }
}
