//! The slow twin of the forward pass: every weight dequantized to f32 by
//! [`crate::format::quant`], a full-sequence pass with an explicit causal + window mask, no
//! cache, no chunking, naive loops. It shares no compute code with the fast path
//! (quantized kernels, rolling cache, chunked attention) or the GPU shaders, so each of
//! them is tested against it.

use crate::format::family::{Activation, RopeStyle};
use crate::format::hparams::RopeScaling;
use crate::format::gguf::TensorInfo;
use crate::format::hparams::Hparams;
use crate::format::quant::dequantize_vec;
use crate::format::source::{read_part, read_tensor, ByteSource};
use crate::model::spec::{FfnSpec, ModelSpec, Slice};
use crate::model::LoadError;

/// A dense f32 matrix, `rows` outputs of `cols` inputs (GGUF dims [cols, rows]).
pub struct Mat {
    pub w: Vec<f32>,
    pub rows: usize,
    pub cols: usize,
}

impl Mat {
    fn mul(&self, x: &[f32]) -> Vec<f32> {
        (0..self.rows).map(|r| self.w[r * self.cols..][..self.cols].iter().zip(x).map(|(a, b)| (*a as f64) * (*b as f64)).sum::<f64>() as f32).collect()
    }
}

pub struct RefExpert {
    pub gate: Mat,
    pub up: Mat,
    pub down: Mat,
}

pub struct RefLayer {
    pub attn_norm: Vec<f32>,
    pub q: Mat,
    pub k: Mat,
    pub v: Mat,
    /// Q, K, V biases (empty where the model has none).
    pub qkv_bias: [Vec<f32>; 3],
    /// Per-head RMSNorm weights of Q and K (empty where the model has none).
    pub qk_norm: [Vec<f32>; 2],
    pub o: Mat,
    pub ffn_norm: Vec<f32>,
    pub router: Option<Mat>,
    pub experts: Vec<RefExpert>,
    /// Post-attention and post-FFN RMSNorm weights (empty where the model has none).
    pub post_norm: [Vec<f32>; 2],
}

pub struct RefModel {
    pub hp: Hparams,
    pub embd: Mat,
    pub layers: Vec<RefLayer>,
    pub output_norm: Vec<f32>,
    pub output: Mat,
    /// Rope frequency factors (empty: none).
    pub rope_freqs: Vec<f32>,
}

fn load_mat(src: &mut dyn ByteSource, t: &TensorInfo, file: &str) -> Result<Mat, LoadError> {
    let b = read_tensor(src, t, file)?;
    let n = t.n_elements() as usize;
    Ok(Mat { w: dequantize_vec(t.ty, &b, n), cols: t.dims[0] as usize, rows: n / t.dims[0] as usize })
}

/// A bias vector, or none (empty: adding it changes nothing).
fn load_bias(src: &mut dyn ByteSource, t: &Option<TensorInfo>, file: &str) -> Result<Vec<f32>, LoadError> {
    Ok(match t {
        Some(t) => load_mat(src, t, file)?.w,
        None => vec![],
    })
}

/// Rows of a tensor: one expert's matrix of a merged tensor, Q, K or V of a fused
/// `attn_qkv`, gate or up of a fused `ffn_up` (or a whole tensor).
fn load_slice(src: &mut dyn ByteSource, m: Slice, file: &str) -> Result<Mat, LoadError> {
    let b = read_part(src, m.range(), &m.tensor.name, file)?;
    let (rows, cols) = (m.n_out(), m.n_in());
    Ok(Mat { w: dequantize_vec(m.tensor.ty, &b, rows * cols), rows, cols })
}

impl RefModel {
    pub fn load(src: &mut dyn ByteSource, file: &str, spec: &ModelSpec, hp: Hparams) -> Result<Self, LoadError> {
        let mut layers = vec![];
        for ls in &spec.layers {
            let vecf = |m: Mat| m.w;
            let (router, experts) = match &ls.ffn {
                FfnSpec::Dense { gate_up, down } => {
                    let [g, u] = gate_up.slices();
                    (None, vec![RefExpert { gate: load_slice(src, g, file)?, up: load_slice(src, u, file)?, down: load_mat(src, down, file)? }])
                }
                FfnSpec::Moe { router, experts } => {
                    let r = load_mat(src, router, file)?;
                    let ex = (0..hp.n_expert)
                        .map(|e| {
                            let [g, u, d] = experts.expert(e);
                            Ok(RefExpert { gate: load_slice(src, g, file)?, up: load_slice(src, u, file)?, down: load_slice(src, d, file)? })
                        })
                        .collect::<Result<Vec<_>, LoadError>>()?;
                    (Some(r), ex)
                }
            };
            layers.push(RefLayer {
                attn_norm: vecf(load_mat(src, &ls.attn_norm, file)?),
                q: load_slice(src, ls.qkv.slices()[0], file)?,
                k: load_slice(src, ls.qkv.slices()[1], file)?,
                v: load_slice(src, ls.qkv.slices()[2], file)?,
                qkv_bias: [load_bias(src, &ls.qkv_bias[0], file)?, load_bias(src, &ls.qkv_bias[1], file)?, load_bias(src, &ls.qkv_bias[2], file)?],
                qk_norm: [load_bias(src, &ls.qk_norm[0], file)?, load_bias(src, &ls.qk_norm[1], file)?],
                o: load_mat(src, &ls.o, file)?,
                ffn_norm: vecf(load_mat(src, &ls.ffn_norm, file)?),
                router,
                experts,
                post_norm: [load_bias(src, &ls.post_norm[0], file)?, load_bias(src, &ls.post_norm[1], file)?],
            });
        }
        let embd = load_mat(src, &spec.token_embd, file)?;
        let output = match &spec.output {
            Some(t) => load_mat(src, t, file)?,
            None => Mat { w: embd.w.clone(), rows: embd.rows, cols: embd.cols },
        };
        let rope_freqs = load_bias(src, &spec.rope_freqs, file)?;
        if let Some(t) = &spec.rope_freqs {
            crate::model::rope::check_factors(file, &t.name, &rope_freqs)?;
        }
        Ok(RefModel { output_norm: load_mat(src, &spec.output_norm, file)?.w, embd, layers, output, rope_freqs, hp })
    }

    fn norm(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
        let ms = x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len() as f64;
        let s = 1.0 / (ms + eps as f64).sqrt();
        x.iter().zip(w).map(|(v, g)| (*v as f64 * s) as f32 * g).collect()
    }

    /// Rotates `x` at `pos` for layer `layer`: gemma3's local layers (all but every
    /// `global_every`-th) rotate with their own base; factors divide each pair's angle.
    fn rope(&self, x: &mut [f32], pos: usize, layer: usize) {
        let (hd, nr) = (self.hp.head_dim, self.hp.n_rot);
        let local = self.hp.global_every.is_some_and(|n| (layer + 1) % n != 0);
        let base = if local { self.hp.rope_base_local } else { self.hp.rope_base } as f64;
        // The file's rope scaling, written out: gemma3's local layers rotate unscaled
        // (llama.cpp rope_freq_scale_train_swa = 1).
        let scaling = if local { RopeScaling::None } else { self.hp.rope_scaling };
        for head in x.chunks_exact_mut(hd) {
            for i in 0..nr / 2 {
                let factor = self.rope_freqs.get(i).map_or(1.0, |&f| f as f64);
                let mut theta = pos as f64 * base.powf(-2.0 * i as f64 / nr as f64) / factor;
                // Rope scaling on the angle, as ggml's rope_yarn (theta_interp = theta / factor, i.e.
                // positions × 1/factor; YaRN mixes it with theta by its ramp between correction dims).
                match scaling {
                    RopeScaling::None => {}
                    RopeScaling::Linear { factor } | RopeScaling::LongRope { factor } => theta /= factor as f64,
                    RopeScaling::Yarn { factor, beta_fast, beta_slow, .. } => {
                        let orig = self.hp.rope_orig_ctx as f64;
                        let dim = |beta: f32| nr as f64 * (orig / (beta as f64 * 2.0 * std::f64::consts::PI)).ln() / (2.0 * base.ln());
                        let (lo, hi) = (dim(beta_fast).floor().max(0.0), dim(beta_slow).ceil().min(nr as f64 - 1.0));
                        let ramp = 1.0 - ((i as f64 - lo) / (hi - lo).max(0.001)).clamp(0.0, 1.0);
                        theta = theta / factor as f64 * (1.0 - ramp) + theta * ramp;
                    }
                }
                let (s, c) = theta.sin_cos();
                // LongRoPE's attention factor multiplies cos and sin (1 for most models).
                let (s, c) = (s * self.hp.rope_attn_factor as f64, c * self.hp.rope_attn_factor as f64);
                // Written out, not `RopeStyle::pair`, so the twin shares no code with the fast path.
                let (ia, ib) = match self.hp.family.rope {
                    RopeStyle::Normal => (2 * i, 2 * i + 1),
                    RopeStyle::Neox => (i, i + nr / 2),
                };
                let (a, b) = (head[ia] as f64, head[ib] as f64);
                head[ia] = (a * c - b * s) as f32;
                head[ib] = (a * s + b * c) as f32;
            }
        }
    }

    fn gated(&self, e: &RefExpert, h: &[f32]) -> Vec<f32> {
        let g = e.gate.mul(h);
        let u = e.up.mul(h);
        let act = |g: f32| -> f32 {
            let g = g as f64;
            (match self.hp.family.act {
                Activation::Silu => g / (1.0 + (-g).exp()),
                Activation::GeluTanh => 0.5 * g * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (g + 0.044715 * g * g * g)).tanh()),
            }) as f32
        };
        let a: Vec<f32> = g.iter().zip(&u).map(|(g, u)| act(*g) * u).collect();
        e.down.mul(&a)
    }

    /// `x` RMS-normalized by `w`, or `x` itself where `w` is empty (no such norm).
    fn maybe_norm(x: Vec<f32>, w: &[f32], eps: f32) -> Vec<f32> {
        if w.is_empty() { x } else { Self::norm(&x, w, eps) }
    }

    /// Logits for every position of `tokens`, row-major `[n, vocab]`.
    pub fn forward_all(&self, tokens: &[u32]) -> Vec<f32> {
        let hp = &self.hp;
        let (d, hd, n) = (hp.n_embd, hp.head_dim, tokens.len());
        let emb_scale = if hp.family.embd_scale { (d as f64).sqrt() } else { 1.0 };
        let mut xs: Vec<Vec<f32>> = tokens.iter().map(|&t| self.embd.w[t as usize * d..][..d].iter().map(|&v| (v as f64 * emb_scale) as f32).collect()).collect();
        for (li, layer) in self.layers.iter().enumerate() {
            // Written out, not `Hparams::layer_window`: a gemma3 layer is global when
            // (l + 1) is a multiple of the period.
            let window = match hp.global_every {
                Some(n) if (li + 1) % n == 0 => None,
                _ => hp.sliding_window,
            };
            let mut qs = vec![];
            let mut ks = vec![];
            let mut vs = vec![];
            for (p, x) in xs.iter().enumerate() {
                let h = Self::norm(x, &layer.attn_norm, hp.rms_eps);
                let add = |mut y: Vec<f32>, b: &[f32]| {
                    y.iter_mut().zip(b).for_each(|(y, b)| *y += b);
                    y
                };
                let (mut q, mut k) = (add(layer.q.mul(&h), &layer.qkv_bias[0]), add(layer.k.mul(&h), &layer.qkv_bias[1]));
                for (y, g) in [&mut q, &mut k].into_iter().zip(&layer.qk_norm) {
                    if !g.is_empty() {
                        *y = y.chunks_exact(hd).flat_map(|head| Self::norm(head, g, hp.rms_eps)).collect();
                    }
                }
                // smollm3: no rotation on layers 3, 7, 11, ... (written out, not `layer_rotates`).
                if hp.family.no_rope_every.is_none_or(|n| (li + 1) % n != 0) {
                    self.rope(&mut q, p, li);
                    self.rope(&mut k, p, li);
                }
                // mistral3's query temperature on the whole rotated query, as llama.cpp's graph
                // multiplies Qcur after the rope.
                if let Some(t) = hp.attn_temp {
                    let s = 1.0 + t.beta as f64 * ((p / t.len) as f64 + 1.0).ln();
                    q.iter_mut().for_each(|v| *v = (*v as f64 * s) as f32);
                }
                qs.push(q);
                ks.push(k);
                vs.push(add(layer.v.mul(&h), &layer.qkv_bias[2]));
            }
            for p in 0..n {
                let mut att = vec![0f32; hp.n_head * hd];
                for h in 0..hp.n_head {
                    let kvh = h / hp.gqa_group();
                    let visible: Vec<usize> = (0..=p).filter(|&j| window.is_none_or(|w| p - j < w)).collect();
                    let scores: Vec<f64> = visible
                        .iter()
                        .map(|&j| (0..hd).map(|i| qs[p][h * hd + i] as f64 * ks[j][kvh * hd + i] as f64).sum::<f64>() * hp.attn_scale as f64)
                        .collect();
                    let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let z: f64 = scores.iter().map(|s| (s - m).exp()).sum();
                    for (&j, s) in visible.iter().zip(&scores) {
                        let w = (s - m).exp() / z;
                        for i in 0..hd {
                            att[h * hd + i] += (w * vs[j][kvh * hd + i] as f64) as f32;
                        }
                    }
                }
                let o = Self::maybe_norm(layer.o.mul(&att), &layer.post_norm[0], hp.rms_eps);
                xs[p].iter_mut().zip(&o).for_each(|(x, o)| *x += o);
                let h = Self::norm(&xs[p], &layer.ffn_norm, hp.rms_eps);
                let f = match &layer.router {
                    None => self.gated(&layer.experts[0], &h),
                    Some(r) => {
                        let logits = r.mul(&h);
                        let mut order: Vec<usize> = (0..logits.len()).collect();
                        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
                        let top = &order[..hp.n_expert_used];
                        let m = logits[top[0]];
                        let z: f32 = top.iter().map(|&e| (logits[e] - m).exp()).sum();
                        let mut acc = vec![0f32; d];
                        for &e in top {
                            let w = (logits[e] - m).exp() / z;
                            for (a, y) in acc.iter_mut().zip(self.gated(&layer.experts[e], &h)) {
                                *a += w * y;
                            }
                        }
                        acc
                    }
                };
                let f = Self::maybe_norm(f, &layer.post_norm[1], hp.rms_eps);
                xs[p].iter_mut().zip(&f).for_each(|(x, f)| *x += f);
            }
        }
        xs.iter().flat_map(|x| self.output.mul(&Self::norm(x, &self.output_norm, hp.rms_eps))).collect()
    }
}
