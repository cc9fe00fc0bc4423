//! The kept prompt prefix as bytes, so that the web app can store it across
//! reloads (issue 21: a returning user's structured summary starts at the
//! transcript instead of reading ~2,000 tokens of instruction and worked examples
//! again, ~15 s on one wasm thread).
//!
//! Only a CPU engine's prefix is written: its KV state is already in host memory,
//! and the CPU is where the prefill is slow. A WebGPU engine reads the same prefix
//! in a fraction of a second, not worth a GPU-to-host copy of its cache.
//!
//! The bytes come back from the browser's storage, which another version, another
//! model or a damaged disk may have written: every field is checked against the
//! engine before anything is allocated, and the total length is computed from the
//! header and must equal the length given, so a crafted file cannot make us
//! allocate more than it holds.
//!
//! Layout, version 1, all integers little-endian:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `PRECISKV` |
//! | 8 | 4 | version = 1 |
//! | 12 | 4 | key length K (≤ [`MAX_KEY`]) |
//! | 16 | K | key, UTF-8: the caller's name for the model and prompt (the web app: the model's sha256) |
//! | 16+K | 4 | tokens N (the prefix length = the cache's position) |
//! | 20+K | 4·N | the prefix's token ids, u32 |
//! | … | 4 | layers L |
//! | … | 4 | kv_dim D (floats per position per layer, K and V each) |
//! | … | 4 | capacity C (slots of a rolling buffer; N for a dense cache) |
//! | … | 1 | rolling: 0 or 1 |
//! | … | 4·R·D·2·L | per layer, its K rows then its V rows as f32, R = min(N, C) |
//!
//! Version 2, for a cache whose layers alternate between the window and the whole
//! context (gemma3), is version 1 with two fields after the rolling flag: the local
//! layers' window W and the period G of the global layers (layer l is global when
//! l % G = G - 1); a local layer holds R = min(N, W) rows. Every other cache is still
//! written as version 1, byte for byte as before.

use super::prefix::{PrefixCache, Snapshot};
use crate::cpu::cache::{KvCache, LayerCache};
use crate::model::cache::{CacheShape, LocalLayers};

pub const MAGIC: &[u8; 8] = b"PRECISKV";
pub const VERSION: u32 = 1;
/// The version with local layers (see the layout above).
pub const VERSION_LOCAL: u32 = 2;
/// A key is a name (a sha256 and a few words), not data.
pub const MAX_KEY: usize = 1024;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PrefixFileError {
    #[error("no prompt prefix is kept on the CPU to save")]
    Nothing,
    #[error("a prompt prefix is only loaded into a CPU engine; this one runs on the GPU")]
    Gpu,
    #[error("not a Precis prompt-prefix file (magic {0:?})")]
    Magic(Vec<u8>),
    #[error("prompt-prefix file version {0}; this build reads versions {VERSION} and {VERSION_LOCAL}")]
    Version(u32),
    #[error("prompt-prefix file ends at byte {len}, inside its {field} (needs {need} bytes)")]
    Truncated { field: &'static str, len: usize, need: u64 },
    #[error("prompt-prefix file has {extra} bytes after its last layer")]
    Trailing { extra: usize },
    #[error("prompt-prefix file key is {0} bytes (at most {MAX_KEY})")]
    KeyTooLong(usize),
    #[error("prompt-prefix file was saved for {saved:?}, not {wanted:?}")]
    Key { saved: String, wanted: String },
    #[error("prompt-prefix file holds {field} = {saved}; this model has {model}")]
    Shape { field: &'static str, saved: u64, model: u64 },
    #[error("prompt-prefix file holds token id {id} at position {at}; the vocabulary has {n_vocab}")]
    Token { id: u32, at: usize, n_vocab: usize },
}

/// Rows a cache of `capacity` slots holds after `n_tokens` positions.
fn rows(n_tokens: usize, capacity: usize) -> usize {
    n_tokens.min(capacity)
}

/// The kept prefix in the layout above, under `key`; `Nothing` when none is kept
/// or it is a GPU engine's.
pub fn save(prefixes: &PrefixCache, key: &str) -> Result<Vec<u8>, PrefixFileError> {
    if key.len() > MAX_KEY {
        return Err(PrefixFileError::KeyTooLong(key.len()));
    }
    prefixes
        .with_kept(|tokens, state| {
            let Snapshot::Cpu(c) = state else { return None };
            // A dense cache is saved as exactly full: its capacity is the next run's to choose.
            let capacity = if c.rolling { c.capacity } else { tokens.len() };
            let shape = CacheShape { capacity, ..c.shape() };
            // A cache filled as `KvCache::store` fills it holds exactly R rows per layer.
            let r = |l: usize| rows(tokens.len(), shape.layer_capacity(l)) * c.kv_dim;
            if c.pos != tokens.len() || c.layers.iter().enumerate().any(|(i, l)| l.k.len() != r(i) || l.v.len() != r(i)) {
                return None;
            }
            let floats: usize = (0..c.layers.len()).map(r).sum();
            let mut out = Vec::with_capacity(72 + key.len() + 4 * tokens.len() + floats * 8);
            out.extend_from_slice(MAGIC);
            out.extend_from_slice(&if c.local.is_some() { VERSION_LOCAL } else { VERSION }.to_le_bytes());
            out.extend_from_slice(&(key.len() as u32).to_le_bytes());
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(&(tokens.len() as u32).to_le_bytes());
            tokens.iter().for_each(|t| out.extend_from_slice(&t.to_le_bytes()));
            for v in [c.layers.len(), c.kv_dim, capacity] {
                out.extend_from_slice(&(v as u32).to_le_bytes());
            }
            out.push(c.rolling as u8);
            if let Some(LocalLayers { window, global_every }) = c.local {
                out.extend_from_slice(&(window as u32).to_le_bytes());
                out.extend_from_slice(&(global_every as u32).to_le_bytes());
            }
            for l in &c.layers {
                for x in l.k.iter().chain(&l.v) {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
            Some(out)
        })
        .flatten()
        .ok_or(PrefixFileError::Nothing)
}

/// Reads little-endian fields, naming the one that runs past the end.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64, field: &'static str) -> Result<&'a [u8], PrefixFileError> {
        let end = (self.at as u64).checked_add(n).filter(|&e| e <= self.b.len() as u64);
        let Some(end) = end else { return Err(PrefixFileError::Truncated { field, len: self.b.len(), need: self.at as u64 + n }) };
        let s = &self.b[self.at..end as usize];
        self.at = end as usize;
        Ok(s)
    }
    fn u32(&mut self, field: &'static str) -> Result<u32, PrefixFileError> {
        Ok(u32::from_le_bytes(self.take(4, field)?.try_into().expect("4 bytes")))
    }
}

/// Makes the prefix in `bytes` the kept one, if it was saved under `key` for a
/// model of `shape` (`capacity`: the model's window if it has one) and a
/// vocabulary of `n_vocab`. Returns its length in tokens.
pub fn load(prefixes: &PrefixCache, bytes: &[u8], key: &str, shape: CacheShape, n_vocab: usize) -> Result<usize, PrefixFileError> {
    let mut r = Reader { b: bytes, at: 0 };
    let magic = r.take(8, "magic")?;
    if magic != MAGIC {
        return Err(PrefixFileError::Magic(magic.to_vec()));
    }
    let version = r.u32("version")?;
    if version != VERSION && version != VERSION_LOCAL {
        return Err(PrefixFileError::Version(version));
    }
    let key_len = r.u32("key length")? as usize;
    if key_len > MAX_KEY {
        return Err(PrefixFileError::KeyTooLong(key_len));
    }
    let saved = String::from_utf8_lossy(r.take(key_len as u64, "key")?).into_owned();
    if saved != key {
        return Err(PrefixFileError::Key { saved, wanted: key.to_string() });
    }
    let n = r.u32("token count")? as usize;
    let ids = r.take(4 * n as u64, "token ids")?;
    let tokens: Vec<u32> = ids.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
    if let Some((at, &id)) = tokens.iter().enumerate().find(|(_, &t)| t as usize >= n_vocab) {
        return Err(PrefixFileError::Token { id, at, n_vocab });
    }
    let (n_layer, kv_dim, capacity) = (r.u32("layer count")? as usize, r.u32("kv_dim")? as usize, r.u32("capacity")? as usize);
    let rolling = r.take(1, "rolling flag")?[0];
    let local = if version == VERSION_LOCAL {
        let (window, global_every) = (r.u32("local window")? as usize, r.u32("global layer period")? as usize);
        // Zeros would name no layer local (and a period of 0 none at all): read as none,
        // which the engine's shape then has to agree with.
        Some(LocalLayers { window, global_every }).filter(|l| l.window > 0 && l.global_every > 0)
    } else {
        None
    };
    let check = |field, saved: u64, model: u64| if saved == model { Ok(()) } else { Err(PrefixFileError::Shape { field, saved, model }) };
    check("layers", n_layer as u64, shape.n_layer as u64)?;
    check("kv_dim", kv_dim as u64, shape.kv_dim as u64)?;
    check("rolling", rolling as u64, shape.rolling as u64)?;
    let wg = |l: Option<LocalLayers>| l.map_or((0, 0), |l| (l.window as u64, l.global_every as u64));
    check("local window", wg(local).0, wg(shape.local).0)?;
    check("global layer period", wg(local).1, wg(shape.local).1)?;
    // A rolling buffer's slots depend on its size; a dense cache is saved as full.
    if shape.rolling {
        check("capacity", capacity as u64, shape.capacity as u64)?;
    } else {
        check("capacity", capacity as u64, n as u64)?;
    }
    let saved = CacheShape { n_layer, kv_dim, capacity, rolling: shape.rolling, local };
    let mut layers = Vec::with_capacity(n_layer);
    for l in 0..n_layer {
        let floats = rows(n, saved.layer_capacity(l)) as u64 * kv_dim as u64;
        // Each take is checked against the bytes given before anything is allocated.
        let k = r.take(floats * 4, "K rows")?;
        let v = r.take(floats * 4, "V rows")?;
        let f = |b: &[u8]| b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect::<Vec<f32>>();
        layers.push(LayerCache { k: f(k), v: f(v), capacity: saved.layer_capacity(l) });
    }
    if r.at != bytes.len() {
        return Err(PrefixFileError::Trailing { extra: bytes.len() - r.at });
    }
    let cache = KvCache { layers, pos: n, capacity, kv_dim, rolling: shape.rolling, local };
    prefixes.put(&tokens, Snapshot::Cpu(cache));
    Ok(n)
}
