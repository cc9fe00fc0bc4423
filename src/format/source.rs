//! Where a model file's bytes come from: a file, memory, or ranges the browser
//! fetched ([`RangeStore`]), and reading one tensor's bytes from them.

use crate::format::gguf::TensorInfo;
use std::ops::Range;

/// A tensor's bytes could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{file}: tensor `{name}`: read {got} bytes at offset {offset}, expected {want}")]
    ShortRead { file: String, name: String, offset: u64, got: usize, want: usize },
    #[error("{file}: {source}")]
    Io { file: String, source: std::io::Error },
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

/// Reads one tensor's bytes, checking the length.
pub fn read_tensor(src: &mut dyn ByteSource, t: &TensorInfo, file: &str) -> Result<Vec<u8>, ReadError> {
    read_part(src, t.range(), &t.name, file)
}

/// Reads `range` of tensor `name` (the whole tensor, or one expert's slice of it),
/// checking the length.
pub fn read_part(src: &mut dyn ByteSource, range: Range<u64>, name: &str, file: &str) -> Result<Vec<u8>, ReadError> {
    let want = (range.end - range.start) as usize;
    let offset = range.start;
    let bytes = src.read_range(range).map_err(|e| ReadError::Io { file: file.into(), source: e })?;
    if bytes.len() != want {
        return Err(ReadError::ShortRead { file: file.into(), name: name.into(), offset, got: bytes.len(), want });
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
