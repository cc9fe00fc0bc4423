//! CPU matrix products `y = W·x` with W in its GGUF quantized form.
//!
//! Activations are quantized once per row to [`q8::BlockQ8`]; each weight row is then
//! dotted against a tile of up to [`TILE`] activation rows while its blocks sit in
//! registers, so prefill reads the weights once per tile instead of once per token.
//! Work is split over output rows (natively on the spin-then-park pool of
//! [`pool`], sequentially in wasm32). Float
//! weights (F32/F16/BF16) are widened to f32 at load and use a plain f32 dot.
//! On simd128, Q4_0/Q4_1/Q8_0 matrices take their own whole-matmul path
//! ([`wasm128::tiled`]: activations widened once, 16 tokens per weight pass).

pub mod pool;
pub mod q8;
pub mod scalar;
pub mod x8;
#[cfg(target_arch = "x86_64")]
pub mod avx2;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod wasm128;

use crate::format::quant::{dequantize_vec, GgmlType};
use q8::{quantize_row, BlockQ8};

/// Activation rows per pass over a weight row.
pub const TILE: usize = 4;

enum Data {
    Quant(Vec<u8>),
    Float(Vec<f32>),
    /// Re-laid in groups of 8 rows for the AVX-512 VNNI kernels ([`x8`]).
    X8(Vec<u8>),
}

/// Activation rows per pass over a group of the interleaved layout in prefill: 8
/// tokens × 8 rows of accumulators fit the 32 vector registers AVX-512 has.
const X8_TILE: usize = 8;

/// A weight matrix of `n_out` rows by `n_in` columns, ready for [`QMatrix::matmul`].
pub struct QMatrix {
    pub ty: GgmlType,
    pub n_in: usize,
    pub n_out: usize,
    data: Data,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum KernelError {
    #[error("{got} bytes for a {n_out}x{n_in} {ty} matrix (expected {want})")]
    Size { got: usize, want: usize, n_in: usize, n_out: usize, ty: &'static str },
    #[error("input of {len} values is not a whole number of {n_in}-wide rows")]
    Input { len: usize, n_in: usize },
}

impl QMatrix {
    pub fn new(ty: GgmlType, bytes: &[u8], n_in: usize, n_out: usize) -> Result<Self, KernelError> {
        Self::check(ty, bytes, n_in, n_out)?;
        Self::from_vec(ty, bytes.to_vec(), n_in, n_out)
    }

    /// As [`QMatrix::new`], keeping `bytes` itself for quantized types: loading
    /// then never holds a tensor twice (in wasm the heap never shrinks, so a
    /// copy per tensor would show up as a much larger peak).
    pub fn from_vec(ty: GgmlType, bytes: Vec<u8>, n_in: usize, n_out: usize) -> Result<Self, KernelError> {
        Self::check(ty, &bytes, n_in, n_out)?;
        let data = match ty {
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => Data::Float(dequantize_vec(ty, &bytes, n_in * n_out)),
            _ if x8::supported(ty) && n_out % x8::ROWS == 0 && x8::available() => Data::X8(x8::pack(ty, &bytes, n_in, n_out)),
            _ => Data::Quant(bytes),
        };
        Ok(QMatrix { ty, n_in, n_out, data })
    }

    fn check(ty: GgmlType, bytes: &[u8], n_in: usize, n_out: usize) -> Result<(), KernelError> {
        let want = ty.row_bytes(n_in) * n_out;
        if bytes.len() != want || n_in % ty.block_size() != 0 {
            return Err(KernelError::Size { got: bytes.len(), want, n_in, n_out, ty: ty.name() });
        }
        Ok(())
    }

    /// Bytes of weights one matrix-vector product reads.
    pub fn weight_bytes(&self) -> usize {
        match &self.data {
            Data::Quant(b) | Data::X8(b) => b.len(),
            Data::Float(f) => f.len() * 4,
        }
    }

    /// `x`: n rows of `n_in`; returns n rows of `n_out`.
    pub fn matmul(&self, x: &[f32]) -> Result<Vec<f32>, KernelError> {
        if x.len() % self.n_in != 0 {
            return Err(KernelError::Input { len: x.len(), n_in: self.n_in });
        }
        // simd128 (the browser, one thread): its own whole-matmul kernels.
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        if let Data::Quant(w) = &self.data {
            if wasm128::tiled::supported(self.ty) {
                return Ok(wasm128::tiled::matmul(self.ty, w, x, self.n_in, self.n_out));
            }
        }
        let n = x.len() / self.n_in;
        let xq = match &self.data {
            Data::Quant(_) | Data::X8(_) => {
                let nb = self.n_in / 32;
                let mut q = vec![BlockQ8::ZERO; n * nb];
                for (row, out) in x.chunks_exact(self.n_in).zip(q.chunks_exact_mut(nb)) {
                    quantize_row(row, out);
                }
                q
            }
            Data::Float(_) => vec![],
        };
        let mut out = vec![0f32; n * self.n_out];
        if let Data::X8(w) = &self.data {
            self.matmul_x8(w, &xq, n, &mut out);
            return Ok(out);
        }
        // Many tokens (prefill): each task takes a tile of tokens against the whole
        // matrix (it stays in L2) and writes whole output rows. Few tokens (decode):
        // tasks split the output rows and write their slice in place.
        if n >= TILE * threads() {
            pool::for_each_chunk_mut(&mut out, TILE * self.n_out, &|k, o| self.block(&xq, x, k * TILE..(k * TILE + TILE).min(n), 0..self.n_out, o));
        } else {
            // A few pieces per thread so a late-starting worker does not stall the step.
            let chunk = self.n_out.div_ceil(threads() * 4).max(16);
            // [row][token] order; for one token that is already `out`'s layout.
            let mut tmp = if n == 1 { vec![] } else { vec![0f32; n * self.n_out] };
            let target = if n == 1 { &mut out } else { &mut tmp };
            pool::for_each_chunk_mut(target, chunk * n, &|c, o| {
                let rows = c * chunk..((c + 1) * chunk).min(self.n_out);
                self.block_t(&xq, x, n, rows, o)
            });
            for (o, vals) in tmp.chunks_exact(n).enumerate() {
                for (t, v) in vals.iter().enumerate() {
                    out[t * self.n_out + o] = *v;
                }
            }
        }
        Ok(out)
    }

    /// The interleaved layout: prefill gives each task a tile of [`X8_TILE`] tokens
    /// against every group (the matrix stays in L2); decode splits the groups.
    fn matmul_x8(&self, w: &[u8], xq: &[BlockQ8], n: usize, out: &mut [f32]) {
        const R: usize = x8::ROWS;
        let (n_out, nb) = (self.n_out, self.n_in / 32);
        let gbytes = nb * R * self.ty.block_bytes();
        let n_groups = n_out / R;
        let group = |g: usize| &w[g * gbytes..][..gbytes];
        let xrow = |t: usize| &xq[t * nb..(t + 1) * nb];
        // Group g × tokens t0..t0+len into `o`, token k's 8 values at o[k * stride..].
        let tile = |g: usize, t0: usize, len: usize, o: &mut [f32], stride: usize| {
            let mut k = 0;
            while len - k >= X8_TILE {
                let v = x8::dot::<X8_TILE>(self.ty, group(g), nb, std::array::from_fn(|j| xrow(t0 + k + j)));
                for (j, v) in v.iter().enumerate() {
                    o[(k + j) * stride..][..R].copy_from_slice(v);
                }
                k += X8_TILE;
            }
            while len - k >= 4 {
                let v = x8::dot::<4>(self.ty, group(g), nb, std::array::from_fn(|j| xrow(t0 + k + j)));
                for (j, v) in v.iter().enumerate() {
                    o[(k + j) * stride..][..R].copy_from_slice(v);
                }
                k += 4;
            }
            for k in k..len {
                o[k * stride..][..R].copy_from_slice(&x8::dot::<1>(self.ty, group(g), nb, [xrow(t0 + k)])[0]);
            }
        };
        if n >= X8_TILE * threads() {
            pool::for_each_chunk_mut(out, X8_TILE * n_out, &|c, o| {
                let len = o.len() / n_out;
                for g in 0..n_groups {
                    tile(g, c * X8_TILE, len, &mut o[g * R..], n_out);
                }
            });
        } else {
            let per = n_groups.div_ceil(threads() * 4).max(2);
            // [group][token][row] per piece; for one token that is `out`'s layout.
            let mut tmp = if n == 1 { vec![] } else { vec![0f32; n * n_out] };
            let target = if n == 1 { &mut *out } else { &mut tmp };
            pool::for_each_chunk_mut(target, per * R * n, &|c, o| {
                for (gi, og) in o.chunks_exact_mut(R * n).enumerate() {
                    tile(c * per + gi, 0, n, og, R);
                }
            });
            if n > 1 {
                for (g, blk) in tmp.chunks_exact(R * n).enumerate() {
                    for (k, vals) in blk.chunks_exact(R).enumerate() {
                        out[k * n_out + g * R..][..R].copy_from_slice(vals);
                    }
                }
            }
        }
    }

    /// Tokens `toks` × rows `rows` into `out` laid out [token][row of all n_out].
    fn block(&self, xq: &[BlockQ8], x: &[f32], toks: std::ops::Range<usize>, rows: std::ops::Range<usize>, out: &mut [f32]) {
        let n_out = self.n_out;
        match &self.data {
            Data::Quant(w) => {
                let (rb, nb) = (self.ty.row_bytes(self.n_in), self.n_in / 32);
                let xrow = |t: usize| &xq[t * nb..(t + 1) * nb];
                let t0 = toks.start;
                for o in rows {
                    let wr = &w[o * rb..(o + 1) * rb];
                    if toks.len() == TILE {
                        let v = dot_rows::<TILE>(self.ty, wr, std::array::from_fn(|k| xrow(t0 + k)));
                        for k in 0..TILE {
                            out[k * n_out + o] = v[k];
                        }
                    } else {
                        for t in toks.clone() {
                            out[(t - t0) * n_out + o] = dot_rows::<1>(self.ty, wr, [xrow(t)])[0];
                        }
                    }
                }
            }
            Data::X8(_) => unreachable!("the interleaved layout goes through matmul_x8"),
            Data::Float(w) => {
                for o in rows {
                    for t in toks.clone() {
                        out[(t - toks.start) * n_out + o] = crate::cpu::vector::dot(&w[o * self.n_in..][..self.n_in], &x[t * self.n_in..][..self.n_in]);
                    }
                }
            }
        }
    }

    /// All `n` tokens × rows `rows` into `out` laid out [row - rows.start][token].
    fn block_t(&self, xq: &[BlockQ8], x: &[f32], n: usize, rows: std::ops::Range<usize>, out: &mut [f32]) {
        let r0 = rows.start;
        for o in rows {
            for t in 0..n {
                out[(o - r0) * n + t] = match &self.data {
                    Data::Quant(w) => {
                        let (rb, nb) = (self.ty.row_bytes(self.n_in), self.n_in / 32);
                        dot_rows::<1>(self.ty, &w[o * rb..(o + 1) * rb], [&xq[t * nb..(t + 1) * nb]])[0]
                    }
                    Data::Float(w) => crate::cpu::vector::dot(&w[o * self.n_in..][..self.n_in], &x[t * self.n_in..][..self.n_in]),
                    Data::X8(_) => unreachable!("the interleaved layout goes through matmul_x8"),
                };
            }
        }
    }
}

fn threads() -> usize {
    pool::global().threads()
}

/// Returns kernel module `$k`'s product for the twelve quantized types; other types
/// fall through. One list for every SIMD module.
macro_rules! quant_kernels {
    ($k:path, $ty:expr, $w:expr, $x:expr) => {{
        use $k as k;
        match $ty {
            GgmlType::Q4_0 => return k::dot_q4_0::<R>($w, $x),
            GgmlType::Q4_1 => return k::dot_q4_1::<R>($w, $x),
            GgmlType::Q5_0 => return k::dot_q5_0::<R>($w, $x),
            GgmlType::Q5_1 => return k::dot_q5_1::<R>($w, $x),
            GgmlType::Q8_0 => return k::dot_q8_0::<R>($w, $x),
            GgmlType::Q2K => return k::dot_q2k::<R>($w, $x),
            GgmlType::Q3K => return k::dot_q3k::<R>($w, $x),
            GgmlType::Q4K => return k::dot_q4k::<R>($w, $x),
            GgmlType::Q5K => return k::dot_q5k::<R>($w, $x),
            GgmlType::Q6K => return k::dot_q6k::<R>($w, $x),
            GgmlType::IQ4NL => return k::dot_iq4nl::<R>($w, $x),
            GgmlType::IQ4XS => return k::dot_iq4xs::<R>($w, $x),
            _ => {}
        }
    }};
}

/// One weight row against R activation rows, by the fastest path available.
#[inline]
pub fn dot_rows<const R: usize>(ty: GgmlType, w: &[u8], x: [&[BlockQ8]; R]) -> [f32; R] {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU has the module's features (checked by `simd()`); slices are
    // whole blocks.
    unsafe {
        match simd() {
            Simd::Avx512 => quant_kernels!(avx2::vnni512, ty, w, x),
            Simd::Vnni => quant_kernels!(avx2::vnni, ty, w, x),
            Simd::Avx2 => quant_kernels!(avx2::plain, ty, w, x),
            Simd::None => {}
        }
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    quant_kernels!(wasm128, ty, w, x);
    std::array::from_fn(|r| dot_scalar(ty, w, x[r]))
}

pub fn dot_scalar(ty: GgmlType, w: &[u8], x: &[BlockQ8]) -> f32 {
    match ty {
        GgmlType::Q4_0 => scalar::dot_q4_0(w, x),
        GgmlType::Q4_1 => scalar::dot_q4_1(w, x),
        GgmlType::Q5_0 => scalar::dot_q5_0(w, x),
        GgmlType::Q5_1 => scalar::dot_q5_1(w, x),
        GgmlType::Q8_0 => scalar::dot_q8_0(w, x),
        GgmlType::Q2K => scalar::dot_q2k(w, x),
        GgmlType::Q3K => scalar::dot_q3k(w, x),
        GgmlType::Q4K => scalar::dot_q4k(w, x),
        GgmlType::Q5K => scalar::dot_q5k(w, x),
        GgmlType::Q6K => scalar::dot_q6k(w, x),
        GgmlType::IQ4NL => scalar::dot_iq4nl(w, x),
        GgmlType::IQ4XS => scalar::dot_iq4xs(w, x),
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => unreachable!("float weights use the f32 path"),
    }
}

#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Simd {
    None,
    Avx2,
    /// AVX-VNNI (VEX `vpdpbusd`, e.g. Alder Lake).
    Vnni,
    /// AVX-512 VNNI with VL (EVEX `vpdpbusd` on 256-bit registers, e.g. Zen 4, Ice
    /// Lake): the same kernels plus the interleaved layout of [`x8`].
    Avx512,
}

/// Whether the f32 kernels elsewhere (attention, activation quantization) may take
/// their AVX2/FMA copies: the same test and the same `PRECIS_SIMD` override as the
/// quantized kernels, so `PRECIS_SIMD=none` runs every portable twin.
#[cfg(target_arch = "x86_64")]
pub(crate) fn avx2_fma() -> bool {
    simd() != Simd::None
}

/// The best kernel set this CPU runs; `PRECIS_SIMD=vnni|avx2|none` forces a lower one.
#[cfg(target_arch = "x86_64")]
pub(crate) fn simd() -> Simd {
    use std::sync::OnceLock;
    static S: OnceLock<Simd> = OnceLock::new();
    *S.get_or_init(|| {
        let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c");
        let avx512 = is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni");
        let vnni = is_x86_feature_detected!("avxvnni");
        let best = match (avx2, avx512, vnni) {
            (true, true, _) => Simd::Avx512,
            (true, false, true) => Simd::Vnni,
            (true, false, false) => Simd::Avx2,
            _ => Simd::None,
        };
        match std::env::var("PRECIS_SIMD").as_deref() {
            Ok("none") => Simd::None,
            Ok("avx2") if avx2 => Simd::Avx2,
            Ok("vnni") if vnni && avx2 => Simd::Vnni,
            _ => best,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::quant::random_blocks;

    /// Tolerance on |got − want| relative to Σ|w·x| of the row: 8-bit activations
    /// carry ~0.4% relative rounding per element; float weights are exact up to f32.
    fn tol(ty: GgmlType) -> f64 {
        match ty {
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => 1e-5,
            _ => 1e-2,
        }
    }

    /// Every type Precis reads (`quant::SUPPORTED`, not a copy of it).
    const TYPES: [GgmlType; 15] = crate::format::quant::SUPPORTED;

    pub(super) fn random_x(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s % 20_000) as f32 / 10_000.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn matmul_matches_dequantized_reference() {
        for ty in TYPES {
            let n_in = if ty.block_size() == 256 { 512 } else { 96 };
            for (n_out, n_tok) in [(1, 1), (37, 3), (70, 7), (129, 33), (8, 1), (64, 9), (136, 40)] {
                let w = random_blocks(ty, n_in * n_out, 11 + n_out as u64);
                let x = random_x(n_in * n_tok, 5 + n_tok as u64);
                let m = QMatrix::new(ty, &w, n_in, n_out).unwrap();
                let got = m.matmul(&x).unwrap();
                let wf = dequantize_vec(ty, &w, n_in * n_out);
                for t in 0..n_tok {
                    for o in 0..n_out {
                        let (wr, xr) = (&wf[o * n_in..][..n_in], &x[t * n_in..][..n_in]);
                        let want: f64 = wr.iter().zip(xr).map(|(a, b)| *a as f64 * *b as f64).sum();
                        let scale: f64 = wr.iter().zip(xr).map(|(a, b)| (*a as f64 * *b as f64).abs()).sum::<f64>().max(1e-12);
                        let g = got[t * n_out + o] as f64;
                        assert!(
                            (g - want).abs() / scale <= tol(ty),
                            "{}: {n_out}x{n_in}, {n_tok} rows: first bad index (row {t}, col {o}): got {g}, want {want}, rel {:.2e} > {:.0e}",
                            ty.name(),
                            (g - want).abs() / scale,
                            tol(ty)
                        );
                    }
                }
            }
        }
    }

    /// SIMD against portable kernels: the integer sums are exact, only the order of
    /// the float additions differs (relative to the result, at least 1).
    const TOL_SIMD_REORDER: f32 = 1e-4;

    #[test]
    fn simd_equals_scalar() {
        for ty in TYPES.iter().filter(|t| !matches!(t, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16)) {
            let ty = *ty;
            // Odd block counts (the paired-block loops' remainder), 5 rows.
            let n_in = if ty.block_size() == 256 { 256 * 3 } else { 32 * 23 };
            let n_out = 5;
            let w = random_blocks(ty, n_in * n_out, 99);
            let rows: Vec<Vec<BlockQ8>> = (0..TILE)
                .map(|k| {
                    let mut q = vec![BlockQ8::ZERO; n_in / 32];
                    quantize_row(&random_x(n_in, 40 + k as u64), &mut q);
                    q
                })
                .collect();
            let rb = ty.row_bytes(n_in);
            for o in 0..n_out {
                let wr = &w[o * rb..(o + 1) * rb];
                let fast = dot_rows::<TILE>(ty, wr, std::array::from_fn(|k| rows[k].as_slice()));
                for k in 0..TILE {
                    let slow = dot_scalar(ty, wr, &rows[k]);
                    let one = dot_rows::<1>(ty, wr, [rows[k].as_slice()])[0];
                    for (what, f) in [("tile", fast[k]), ("alone", one)] {
                        assert!(
                            (f - slow).abs() <= TOL_SIMD_REORDER * slow.abs().max(1.0),
                            "{}: first bad index row {o}, activation row {k}: simd ({what}) {f}, scalar {slow}",
                            ty.name()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn bad_sizes_are_errors() {
        assert!(matches!(QMatrix::new(GgmlType::Q4_1, &[0; 19], 32, 1), Err(KernelError::Size { .. })));
        let m = QMatrix::new(GgmlType::Q8_0, &[0; 34], 32, 1).unwrap();
        assert_eq!(m.matmul(&[0.0; 33]), Err(KernelError::Input { len: 33, n_in: 32 }));
    }
}
