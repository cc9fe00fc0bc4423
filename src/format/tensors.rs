//! Which tensors a llama-architecture model needs (GGUF names as llama.cpp's
//! `LLM_TENSOR_*`), checked against the metadata before any byte is read, and the
//! byte sources they are read from.

use crate::format::gguf::{Gguf, GgufError, TensorInfo};
use crate::format::hparams::{Hparams, HparamsError};
use crate::text::tokenizer::TokenizerError;
use std::ops::Range;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: {source}")]
    Gguf { file: String, source: GgufError },
    #[error("{file}: {source}")]
    Hparams { file: String, source: HparamsError },
    #[error("{file}: tokenizer: {source}")]
    Tokenizer { file: String, source: TokenizerError },
    #[error("{file}: tensor `{name}` is missing")]
    Missing { file: String, name: String },
    #[error("{file}: tensor `{name}` (info at offset {offset}) has shape {found:?}, but the metadata implies {expected:?}")]
    Shape { file: String, name: String, offset: u64, found: Vec<u64>, expected: Vec<u64> },
    #[error("{file}: tensor `{name}`: read {got} bytes at offset {offset}, expected {want}")]
    ShortRead { file: String, name: String, offset: u64, got: usize, want: usize },
    #[error("{file}: {source}")]
    Io { file: String, source: std::io::Error },
    #[error("{file}: tensor `{name}`: {message}")]
    Tensor { file: String, name: String, message: String },
    #[cfg(feature = "gpu")]
    #[error("{file}: {source}")]
    Gpu { file: String, source: crate::gpu::GpuError },
}

/// Random access to a model file's bytes. Natively a `File`; in the browser the CPU
/// path reads from memory and the GPU path streams `File.slice` ranges itself.
pub trait ByteSource {
    fn len(&self) -> u64;
    fn read_range(&mut self, range: Range<u64>) -> std::io::Result<Vec<u8>>;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ByteSource for &[u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read_range(&mut self, r: Range<u64>) -> std::io::Result<Vec<u8>> {
        self.get(r.start as usize..r.end as usize)
            .map(|s| s.to_vec())
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, format!("range {r:?} past end {}", <[u8]>::len(self))))
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl ByteSource for std::fs::File {
    fn len(&self) -> u64 {
        self.metadata().map(|m| m.len()).unwrap_or(0)
    }
    fn read_range(&mut self, r: Range<u64>) -> std::io::Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        self.seek(SeekFrom::Start(r.start))?;
        let mut buf = vec![0u8; (r.end - r.start) as usize];
        self.read_exact(&mut buf)?;
        Ok(buf)
    }
}

/// Mixtral experts come either as one 3-D tensor per projection (current llama.cpp)
/// or as one 2-D tensor per expert (`blk.N.ffn_gate.E.weight`, older conversions).
#[derive(Debug, Clone)]
pub enum Experts {
    Merged { gate: TensorInfo, up: TensorInfo, down: TensorInfo },
    PerExpert(Vec<[TensorInfo; 3]>),
}

#[derive(Debug, Clone)]
pub enum FfnSpec {
    Dense { gate: TensorInfo, up: TensorInfo, down: TensorInfo },
    Moe { router: TensorInfo, experts: Experts },
}

#[derive(Debug, Clone)]
pub struct LayerSpec {
    pub attn_norm: TensorInfo,
    pub q: TensorInfo,
    pub k: TensorInfo,
    pub v: TensorInfo,
    pub o: TensorInfo,
    pub ffn_norm: TensorInfo,
    pub ffn: FfnSpec,
}

#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub token_embd: TensorInfo,
    pub output_norm: TensorInfo,
    /// `None`: the head is tied to `token_embd`.
    pub output: Option<TensorInfo>,
    pub layers: Vec<LayerSpec>,
}

impl ModelSpec {
    /// Finds every tensor and checks its shape against the hyperparameters.
    pub fn resolve(g: &Gguf, hp: &Hparams, file: &str) -> Result<Self, LoadError> {
        let get = |name: String, expected: &[usize]| -> Result<TensorInfo, LoadError> {
            let t = g.tensor(&name).ok_or_else(|| LoadError::Missing { file: file.into(), name: name.clone() })?;
            let expected: Vec<u64> = expected.iter().map(|&d| d as u64).collect();
            if t.dims != expected {
                return Err(LoadError::Shape { file: file.into(), name, offset: t.info_offset, found: t.dims.clone(), expected });
            }
            Ok(t.clone())
        };
        let (d, ff, nv) = (hp.n_embd, hp.n_ff, hp.n_vocab);
        let mut layers = Vec::with_capacity(hp.n_layer);
        for l in 0..hp.n_layer {
            let n = |s: &str| format!("blk.{l}.{s}.weight");
            let attn_norm = get(n("attn_norm"), &[d])?;
            let q = get(n("attn_q"), &[d, hp.q_dim()])?;
            let k = get(n("attn_k"), &[d, hp.kv_dim()])?;
            let v = get(n("attn_v"), &[d, hp.kv_dim()])?;
            let o = get(n("attn_output"), &[hp.q_dim(), d])?;
            let ffn_norm = get(n("ffn_norm"), &[d])?;
            let ffn = if hp.is_moe() {
                let ne = hp.n_expert;
                let experts = if g.tensor(&n("ffn_gate_exps")).is_some() {
                    Experts::Merged {
                        gate: get(n("ffn_gate_exps"), &[d, ff, ne])?,
                        up: get(n("ffn_up_exps"), &[d, ff, ne])?,
                        down: get(n("ffn_down_exps"), &[ff, d, ne])?,
                    }
                } else {
                    Experts::PerExpert(
                        (0..ne)
                            .map(|e| {
                                Ok([
                                    get(n(&format!("ffn_gate.{e}")), &[d, ff])?,
                                    get(n(&format!("ffn_up.{e}")), &[d, ff])?,
                                    get(n(&format!("ffn_down.{e}")), &[ff, d])?,
                                ])
                            })
                            .collect::<Result<_, LoadError>>()?,
                    )
                };
                FfnSpec::Moe { router: get(n("ffn_gate_inp"), &[d, ne])?, experts }
            } else {
                FfnSpec::Dense { gate: get(n("ffn_gate"), &[d, ff])?, up: get(n("ffn_up"), &[d, ff])?, down: get(n("ffn_down"), &[ff, d])? }
            };
            layers.push(LayerSpec { attn_norm, q, k, v, o, ffn_norm, ffn });
        }
        Ok(ModelSpec {
            token_embd: get("token_embd.weight".into(), &[d, nv])?,
            output_norm: get("output_norm.weight".into(), &[d])?,
            output: match g.tensor("output.weight") {
                Some(_) => Some(get("output.weight".into(), &[d, nv])?),
                None => None,
            },
            layers,
        })
    }

    /// Every tensor in file order, so a streaming reader moves forward only.
    pub fn tensors(&self) -> Vec<&TensorInfo> {
        let mut v = vec![&self.token_embd, &self.output_norm];
        v.extend(self.output.as_ref());
        for l in &self.layers {
            v.extend([&l.attn_norm, &l.q, &l.k, &l.v, &l.o, &l.ffn_norm]);
            match &l.ffn {
                FfnSpec::Dense { gate, up, down } => v.extend([gate, up, down]),
                FfnSpec::Moe { router, experts } => {
                    v.push(router);
                    match experts {
                        Experts::Merged { gate, up, down } => v.extend([gate, up, down]),
                        Experts::PerExpert(es) => v.extend(es.iter().flatten()),
                    }
                }
            }
        }
        v.sort_by_key(|t| t.offset);
        v
    }

    pub fn total_bytes(&self) -> u64 {
        self.tensors().iter().map(|t| t.n_bytes()).sum()
    }
}

/// Reads one tensor's bytes, checking the length.
pub fn read_tensor(src: &mut dyn ByteSource, t: &TensorInfo, file: &str) -> Result<Vec<u8>, LoadError> {
    let want = t.n_bytes() as usize;
    let bytes = src.read_range(t.range()).map_err(|e| LoadError::Io { file: file.into(), source: e })?;
    if bytes.len() != want {
        return Err(LoadError::ShortRead { file: file.into(), name: t.name.clone(), offset: t.offset, got: bytes.len(), want });
    }
    Ok(bytes)
}

/// Tensor bytes delivered piecemeal (the browser fetches each range with `File.slice`
/// or an HTTP range request and hands it over). Serves `read_range` for ranges inside
/// what was added; an exact match is moved out, so each tensor is held once.
#[derive(Default)]
pub struct RangeStore {
    size: u64,
    chunks: std::collections::BTreeMap<u64, Vec<u8>>,
}

impl RangeStore {
    pub fn new(size: u64) -> Self {
        RangeStore { size, chunks: Default::default() }
    }
    pub fn add(&mut self, offset: u64, bytes: Vec<u8>) {
        self.chunks.insert(offset, bytes);
    }
    pub fn held_bytes(&self) -> usize {
        self.chunks.values().map(|c| c.len()).sum()
    }
}

impl ByteSource for RangeStore {
    fn len(&self) -> u64 {
        self.size
    }
    fn read_range(&mut self, r: Range<u64>) -> std::io::Result<Vec<u8>> {
        if self.chunks.get(&r.start).is_some_and(|c| c.len() as u64 == r.end - r.start) {
            return Ok(self.chunks.remove(&r.start).unwrap());
        }
        match self.chunks.range(..=r.start).next_back() {
            Some((&at, c)) if at + c.len() as u64 >= r.end => Ok(c[(r.start - at) as usize..(r.end - at) as usize].to_vec()),
            _ => Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("bytes {}..{} were not supplied", r.start, r.end))),
        }
    }
}
