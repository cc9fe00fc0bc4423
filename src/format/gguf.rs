//! GGUF container: header, metadata and tensor infos — never tensor data.
//!
//! Layout per the GGUF spec (ggml `docs/gguf.md`, versions 2 and 3):
//! `magic "GGUF" | version u32 | tensor_count u64 | kv_count u64 | kv* | tensor_info* | pad | data`.
//! All integers are little-endian; strings are `u64 length + UTF-8 bytes`.
//!
//! The parser works on a *prefix* of the file plus the file's total size, so the
//! browser can fetch the first megabyte with `File.slice` / an HTTP range request and
//! ask for more only when [`GgufError::NeedMore`] says so. Tensor bytes are located by
//! [`TensorInfo::range`] and read by whoever owns the byte source.

use crate::format::quant::GgmlType;
use std::collections::BTreeMap;

const MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;
/// Sanity caps: larger values mean a corrupt or hostile file, not a real model
/// (Mixtral 8x7B merged has ~1k tensors and ~40 metadata keys).
const MAX_TENSORS: u64 = 1 << 20;
const MAX_KV: u64 = 1 << 16;
const MAX_DIMS: u32 = 4;
const MAX_NESTING: usize = 4;
/// Longest string / array a real model has (a 256k-token vocabulary, a long chat
/// template). Past the end of the file but under this, the file is truncated; over
/// it, the field itself is corrupt.
const MAX_PLAUSIBLE_LEN: u64 = 1 << 26;
/// Bytes the parsed metadata may take in memory. A 256k-token vocabulary with its
/// scores, types and merges takes ~30 MiB; numeric arrays are kept as their file
/// bytes and strings cost at most ~4× theirs, so a hostile file cannot make a small
/// header into gigabytes (the browser's wasm memory is 4 GiB in all).
const MAX_METADATA_MEMORY: u64 = 512 << 20;

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum GgufError {
    #[error("need more bytes: parsing stopped at offset {at}, have {have} bytes of the file")]
    NeedMore { at: u64, have: u64 },
    #[error("file ends at byte {size} but field `{field}` at offset {offset} needs {need} more bytes (truncated file?)")]
    Truncated { offset: u64, field: String, need: u64, size: u64 },
    #[error("not a GGUF file: magic at offset 0 is {found:02x?}, expected \"GGUF\"")]
    BadMagic { found: [u8; 4] },
    #[error("unsupported GGUF version {version} at offset 4 (supported: 2, 3)")]
    BadVersion { version: u32 },
    #[error("field `{field}` at offset {offset}: value {value} exceeds the limit {limit}")]
    TooLarge { offset: u64, field: String, value: u64, limit: u64 },
    #[error("field `{field}` at offset {offset}: unknown metadata value type {ty}")]
    BadValueType { offset: u64, field: String, ty: u32 },
    #[error("metadata value `{field}` at offset {offset} nests arrays more than {MAX_NESTING} deep")]
    TooDeep { offset: u64, field: String },
    #[error("metadata would take {bytes} bytes of memory when parsed (at `{field}`, offset {offset}), over the cap of {MAX_METADATA_MEMORY}")]
    MetadataTooLarge { offset: u64, field: String, bytes: u64 },
    #[error("field `{field}` at offset {offset}: string is not valid UTF-8")]
    BadUtf8 { offset: u64, field: String },
    #[error("tensor `{tensor}` (info at offset {offset}): {} ggml type {ty}{}; Precis reads {}", if crate::format::quant::ggml_type_name(*ty).is_some() { "unsupported" } else { "unknown" }, crate::format::quant::ggml_type_name(*ty).map_or(String::new(), |n| format!(" ({n})")), crate::format::quant::supported_names())]
    UnknownType { offset: u64, tensor: String, ty: u32 },
    #[error("tensor `{tensor}` (info at offset {offset}): {problem}")]
    BadTensor { offset: u64, tensor: String, problem: String },
    #[error("metadata key `{key}` at offset {offset} appears twice")]
    DuplicateKey { offset: u64, key: String },
}

/// A metadata value, typed as the file stores it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<Value>),
    /// An array of numbers or booleans (GGUF type `elem`), kept as the file's
    /// little-endian bytes: one `Value` per element would cost 32 bytes for each
    /// 1-byte element.
    Numbers { elem: u32, bytes: Vec<u8> },
}

/// Bytes per element of a GGUF scalar type, `None` for strings and arrays.
fn scalar_size(ty: u32) -> Option<usize> {
    match ty {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

impl Value {
    /// Integer view, accepting any integer width (writers disagree on widths).
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v as u64),
            Value::U16(v) => Some(v as u64),
            Value::U32(v) => Some(v as u64),
            Value::U64(v) => Some(v),
            Value::I8(v) if v >= 0 => Some(v as u64),
            Value::I16(v) if v >= 0 => Some(v as u64),
            Value::I32(v) if v >= 0 => Some(v as u64),
            Value::I64(v) if v >= 0 => Some(v as u64),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v as f64),
            Value::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => self.as_u64().map(|v| v != 0),
        }
    }
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
    /// Elements of a numeric array, without converting them.
    pub fn numbers_len(&self) -> Option<usize> {
        let Value::Numbers { elem, bytes } = self else { return None };
        Some(bytes.len() / scalar_size(*elem)?)
    }
    /// A numeric array's elements as f64 (exact for every GGUF integer up to 2^53
    /// and for f32); `None` for anything else.
    pub fn numbers(&self) -> Option<Vec<f64>> {
        let Value::Numbers { elem, bytes } = self else { return None };
        let size = scalar_size(*elem)?;
        Some(
            bytes
                .chunks_exact(size)
                .map(|b| match elem {
                    0 => b[0] as f64,
                    1 => b[0] as i8 as f64,
                    2 => u16::from_le_bytes([b[0], b[1]]) as f64,
                    3 => i16::from_le_bytes([b[0], b[1]]) as f64,
                    4 => u32::from_le_bytes(b.try_into().unwrap()) as f64,
                    5 => i32::from_le_bytes(b.try_into().unwrap()) as f64,
                    6 => f32::from_le_bytes(b.try_into().unwrap()) as f64,
                    7 => (b[0] != 0) as u8 as f64,
                    10 => u64::from_le_bytes(b.try_into().unwrap()) as f64,
                    11 => i64::from_le_bytes(b.try_into().unwrap()) as f64,
                    _ => f64::from_le_bytes(b.try_into().unwrap()),
                })
                .collect(),
        )
    }
    fn type_name(&self) -> &'static str {
        match self {
            Value::U8(_) => "u8",
            Value::I8(_) => "i8",
            Value::U16(_) => "u16",
            Value::I16(_) => "i16",
            Value::U32(_) => "u32",
            Value::I32(_) => "i32",
            Value::U64(_) => "u64",
            Value::I64(_) => "i64",
            Value::F32(_) => "f32",
            Value::F64(_) => "f64",
            Value::Bool(_) => "bool",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Numbers { .. } => "numeric array",
        }
    }
}

/// One metadata entry and where it sits in the file (for error messages).
#[derive(Debug, Clone)]
pub struct Entry {
    pub offset: u64,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `dims[0]` is the contiguous (input) dimension.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Absolute byte offset of the tensor data in the file.
    pub offset: u64,
    /// Offset of this tensor's info record, for error messages.
    pub info_offset: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
    pub fn n_bytes(&self) -> u64 {
        self.n_elements() / self.ty.block_size() as u64 * self.ty.block_bytes() as u64
    }
    /// Byte range of the data in the file.
    pub fn range(&self) -> std::ops::Range<u64> {
        self.offset..self.offset + self.n_bytes()
    }
}

#[derive(Debug, Clone)]
pub struct Gguf {
    pub version: u32,
    pub metadata: BTreeMap<String, Entry>,
    pub tensors: Vec<TensorInfo>,
    pub data_offset: u64,
    pub file_size: u64,
}

impl Gguf {
    /// Parses the header from `prefix` (the first bytes of a file of `file_size` bytes).
    /// Returns [`GgufError::NeedMore`] when the prefix is too short but the file is not.
    pub fn parse(prefix: &[u8], file_size: u64) -> Result<Gguf, GgufError> {
        let mut r = Reader { buf: prefix, pos: 0, file_size, memory: 0 };
        let magic: [u8; 4] = r.bytes(4, "magic")?.try_into().unwrap();
        if &magic != MAGIC {
            return Err(GgufError::BadMagic { found: magic });
        }
        let version = r.u32("version")?;
        if !(2..=3).contains(&version) {
            return Err(GgufError::BadVersion { version });
        }
        let n_tensors = r.count("tensor_count", MAX_TENSORS)?;
        let n_kv = r.count("metadata_kv_count", MAX_KV)?;

        let mut metadata = BTreeMap::new();
        for _ in 0..n_kv {
            let offset = r.pos as u64;
            let key = r.string("metadata key")?;
            let ty = r.u32(&key)?;
            let value = r.value(ty, &key, 0)?;
            if metadata.insert(key.clone(), Entry { offset, value }).is_some() {
                return Err(GgufError::DuplicateKey { offset, key });
            }
        }

        let alignment = match metadata.get("general.alignment") {
            Some(e) => match e.value.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() && a <= 1 << 20 => a,
                _ => {
                    return Err(GgufError::BadTensor {
                        offset: e.offset,
                        tensor: "general.alignment".into(),
                        problem: format!("alignment {:?} is not a power of two", e.value),
                    })
                }
            },
            None => DEFAULT_ALIGNMENT,
        };

        let mut infos = Vec::with_capacity(n_tensors.min(4096) as usize);
        for _ in 0..n_tensors {
            let info_offset = r.pos as u64;
            let name = r.string("tensor name")?;
            let n_dims = r.u32(&format!("{name}.n_dims"))?;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(GgufError::BadTensor {
                    offset: info_offset,
                    tensor: name,
                    problem: format!("n_dims {n_dims} is outside 1..={MAX_DIMS}"),
                });
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for d in 0..n_dims {
                dims.push(r.u64(&format!("{name}.dims[{d}]"))?);
            }
            let ty_raw = r.u32(&format!("{name}.type"))?;
            let rel = r.u64(&format!("{name}.offset"))?;
            let ty = GgmlType::from_u32(ty_raw).ok_or_else(|| GgufError::UnknownType {
                offset: info_offset,
                tensor: name.clone(),
                ty: ty_raw,
            })?;
            infos.push((name, dims, ty, rel, info_offset));
        }
        let data_offset = (r.pos as u64).div_ceil(alignment) * alignment;

        let mut tensors = Vec::with_capacity(infos.len());
        for (name, dims, ty, rel, info_offset) in infos {
            let bad = |problem: String| GgufError::BadTensor {
                offset: info_offset,
                tensor: name.clone(),
                problem,
            };
            let n: u64 = dims
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d))
                .filter(|&n| n > 0 && n < 1 << 40)
                .ok_or_else(|| bad(format!("dims {dims:?} give no sane element count")))?;
            if dims[0] % ty.block_size() as u64 != 0 {
                return Err(bad(format!(
                    "row length {} is not a multiple of the {:?} block size {}",
                    dims[0],
                    ty,
                    ty.block_size()
                )));
            }
            if rel % alignment != 0 {
                return Err(bad(format!("data offset {rel} is not aligned to {alignment}")));
            }
            // In u64: on wasm32 a usize could not hold a hostile element count.
            let bytes = n / ty.block_size() as u64 * ty.block_bytes() as u64;
            let start = data_offset.checked_add(rel).ok_or_else(|| bad("offset overflows".into()))?;
            if start.saturating_add(bytes) > file_size {
                return Err(bad(format!(
                    "data [{start}, {}) runs past the end of the file ({file_size} bytes)",
                    start.saturating_add(bytes)
                )));
            }
            tensors.push(TensorInfo { name, dims, ty, offset: start, info_offset });
        }
        // Each tensor owns its bytes: two whose data overlap would read each other's
        // weights (a crafted or damaged file), so refuse them by name.
        let mut by_offset: Vec<&TensorInfo> = tensors.iter().collect();
        by_offset.sort_by_key(|t| t.offset);
        for w in by_offset.windows(2) {
            let end = w[0].offset + w[0].n_bytes();
            if end > w[1].offset {
                return Err(GgufError::BadTensor {
                    offset: w[1].info_offset,
                    tensor: w[1].name.clone(),
                    problem: format!("its data at {} overlaps tensor `{}` (bytes {}..{end})", w[1].offset, w[0].name, w[0].offset),
                });
            }
        }
        Ok(Gguf { version, metadata, tensors, data_offset, file_size })
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key).map(|e| &e.value)
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The file's weight types, by bytes: a "Q4_K_M" file is mostly Q4_K with Q6_K
    /// and other types where its recipe (or a width that is not a multiple of 256)
    /// asks, and what a model costs to run follows that mix, not the name.
    pub fn quant_mix(&self) -> QuantMix {
        let mut mix: Vec<QuantShare> = Vec::new();
        for t in &self.tensors {
            match mix.iter_mut().find(|m| m.ty == t.ty.name()) {
                Some(m) => (m.tensors, m.bytes) = (m.tensors + 1, m.bytes + t.n_bytes()),
                None => mix.push(QuantShare { ty: t.ty.name(), tensors: 1, bytes: t.n_bytes() }),
            }
        }
        // Largest share first; equal shares by name, so the order never depends on
        // the file's tensor order.
        mix.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.ty.cmp(b.ty)));
        QuantMix(mix)
    }

    /// Describes a metadata value's type for error messages.
    pub fn describe(&self, key: &str) -> String {
        match self.metadata.get(key) {
            Some(e) => format!("{} at offset {}", e.value.type_name(), e.offset),
            None => "missing".into(),
        }
    }
}

/// One weight type's share of a file ([`Gguf::quant_mix`]).
#[derive(Clone, Debug, PartialEq)]
pub struct QuantShare {
    pub ty: &'static str,
    pub tensors: usize,
    pub bytes: u64,
}

/// A file's weight types, largest share first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuantMix(pub Vec<QuantShare>);

impl QuantMix {
    /// "Q4_K 63% · Q6_K 22% · Q5_0 15%": each type's share of the weight bytes, types
    /// under 1% left out (norm vectors in F32 are a fraction of a percent).
    pub fn short(&self) -> String {
        let total: u64 = self.0.iter().map(|m| m.bytes).sum::<u64>().max(1);
        let parts: Vec<String> = self.0.iter().filter(|m| m.bytes * 100 >= total).map(|m| format!("{} {}%", m.ty, (m.bytes * 100 + total / 2) / total)).collect();
        parts.join(" · ")
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    file_size: u64,
    /// Bytes of memory the metadata parsed so far takes (approximately).
    memory: u64,
}

impl Reader<'_> {
    fn bytes(&mut self, n: u64, field: &str) -> Result<&[u8], GgufError> {
        let end = self.pos as u64 + n;
        if end > self.file_size {
            return Err(GgufError::Truncated {
                offset: self.pos as u64,
                field: field.to_string(),
                need: n,
                size: self.file_size,
            });
        }
        if end > self.buf.len() as u64 {
            return Err(GgufError::NeedMore { at: self.pos as u64, have: self.buf.len() as u64 });
        }
        let s = &self.buf[self.pos..end as usize];
        self.pos = end as usize;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self, field: &str) -> Result<[u8; N], GgufError> {
        Ok(self.bytes(N as u64, field)?.try_into().unwrap())
    }
    fn u32(&mut self, field: &str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.arr(field)?))
    }
    fn u64(&mut self, field: &str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.arr(field)?))
    }
    fn count(&mut self, field: &str, limit: u64) -> Result<u64, GgufError> {
        let offset = self.pos as u64;
        let value = self.u64(field)?;
        if value > limit {
            return Err(GgufError::TooLarge { offset, field: field.into(), value, limit });
        }
        Ok(value)
    }
    /// A length must fit in the rest of the file — checked before allocating for it.
    fn check_len(&self, offset: u64, len: u64, field: &str) -> Result<(), GgufError> {
        let left = self.file_size.saturating_sub(self.pos as u64);
        if len > MAX_PLAUSIBLE_LEN {
            return Err(GgufError::TooLarge { offset, field: field.into(), value: len, limit: left.min(MAX_PLAUSIBLE_LEN) });
        }
        if len > left {
            return Err(GgufError::Truncated { offset: self.pos as u64, field: field.into(), need: len, size: self.file_size });
        }
        Ok(())
    }

    /// Counts `bytes` of parsed metadata against [`MAX_METADATA_MEMORY`].
    fn charge(&mut self, offset: u64, field: &str, bytes: u64) -> Result<(), GgufError> {
        self.memory = self.memory.saturating_add(bytes);
        if self.memory > MAX_METADATA_MEMORY {
            return Err(GgufError::MetadataTooLarge { offset, field: field.into(), bytes: self.memory });
        }
        Ok(())
    }

    fn string(&mut self, field: &str) -> Result<String, GgufError> {
        let offset = self.pos as u64;
        let len = self.u64(field)?;
        self.check_len(offset, len, &format!("{field} (string length)"))?;
        self.charge(offset, field, len)?;
        let b = self.bytes(len, field)?;
        String::from_utf8(b.to_vec()).map_err(|_| GgufError::BadUtf8 { offset, field: field.into() })
    }
    fn value(&mut self, ty: u32, key: &str, depth: usize) -> Result<Value, GgufError> {
        Ok(match ty {
            0 => Value::U8(self.arr::<1>(key)?[0]),
            1 => Value::I8(self.arr::<1>(key)?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.arr(key)?)),
            3 => Value::I16(i16::from_le_bytes(self.arr(key)?)),
            4 => Value::U32(self.u32(key)?),
            5 => Value::I32(i32::from_le_bytes(self.arr(key)?)),
            6 => Value::F32(f32::from_le_bytes(self.arr(key)?)),
            7 => Value::Bool(self.arr::<1>(key)?[0] != 0),
            8 => Value::String(self.string(key)?),
            9 if depth >= MAX_NESTING => return Err(GgufError::TooDeep { offset: self.pos as u64, field: key.into() }),
            9 => {
                let elem_ty = self.u32(key)?;
                let offset = self.pos as u64;
                let n = self.u64(key)?;
                if let Some(size) = scalar_size(elem_ty) {
                    let len = n.checked_mul(size as u64).unwrap_or(u64::MAX);
                    self.check_len(offset, len, &format!("{key} (array length)"))?;
                    self.charge(offset, key, len)?;
                    return Ok(Value::Numbers { elem: elem_ty, bytes: self.bytes(len, key)?.to_vec() });
                }
                // Every element takes at least one byte.
                self.check_len(offset, n, &format!("{key} (array length)"))?;
                self.charge(offset, key, n * std::mem::size_of::<Value>() as u64)?;
                let mut items = Vec::with_capacity(n.min(1 << 16) as usize);
                for _ in 0..n {
                    items.push(self.value(elem_ty, key, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64(key)?),
            11 => Value::I64(i64::from_le_bytes(self.arr(key)?)),
            12 => Value::F64(f64::from_le_bytes(self.arr(key)?)),
            _ => return Err(GgufError::BadValueType { offset: self.pos as u64 - 4, field: key.into(), ty }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// tiny-mistral mixes seven weight types (tests/fixtures/README.md): the mix counts
    /// every tensor and byte once, largest share first, and the short form rounds the
    /// shares of the types that reach 1%.
    #[test]
    fn quant_mix_counts_every_tensor_once_largest_first() {
        let b = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny-mistral.gguf")).unwrap();
        let g = Gguf::parse(&b, b.len() as u64).unwrap();
        let mix = g.quant_mix();
        assert_eq!(mix.0.iter().map(|m| m.tensors).sum::<usize>(), g.tensors.len());
        assert_eq!(mix.0.iter().map(|m| m.bytes).sum::<u64>(), g.tensors.iter().map(|t| t.n_bytes()).sum::<u64>());
        assert!(mix.0.windows(2).all(|w| w[0].bytes >= w[1].bytes), "{mix:?}");
        let mut names: Vec<&str> = mix.0.iter().map(|m| m.ty).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), mix.0.len(), "each type once: {mix:?}");
        let short = mix.short();
        let total: u64 = mix.0.iter().map(|m| m.bytes).sum();
        let first = &mix.0[0];
        assert!(short.starts_with(&format!("{} {}%", first.ty, (first.bytes * 100 + total / 2) / total)), "{short}");
        assert_eq!(short.matches('%').count(), mix.0.iter().filter(|m| m.bytes * 100 >= total).count(), "{short}");
        assert_eq!(QuantMix::default().short(), "");
    }
}
