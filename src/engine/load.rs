//! Loading driven by the caller (the browser), and reading a GGUF header from any
//! byte source.

use super::Engine;
use crate::format::gguf::{Gguf, GgufError};
use crate::format::hparams::{Hparams, Overrides};
use crate::format::source::{ByteSource, RangeStore};
use crate::model::spec::ModelSpec;
use crate::model::LoadError;

/// Loading driven by the caller, for byte ranges that arrive asynchronously: offer a
/// prefix until the header parses, fetch the listed ranges in any order, then finish.
pub struct Loader {
    file: String,
    overrides: Overrides,
    gguf: Option<Gguf>,
    spec: Option<ModelSpec>,
    store: RangeStore,
}

impl Loader {
    pub fn new(file: &str, size: u64, overrides: Overrides) -> Self {
        Loader { file: file.into(), overrides, gguf: None, spec: None, store: RangeStore::new(size) }
    }

    /// Offers the file's first bytes. `Ok(None)`: header parsed and checked;
    /// `Ok(Some(n))`: offer at least `n` bytes.
    pub fn header(&mut self, prefix: &[u8]) -> Result<Option<u64>, LoadError> {
        let size = self.store.len();
        let g = match Gguf::parse(prefix, size) {
            Err(GgufError::NeedMore { .. }) => return Ok(Some((prefix.len() as u64 * 4).max(1 << 20).min(size))),
            r => r.map_err(|e| LoadError::Gguf { file: self.file.clone(), source: e })?,
        };
        let hp = Hparams::from_gguf(&g, &self.overrides).map_err(|e| LoadError::Hparams { file: self.file.clone(), source: e })?;
        let spec = ModelSpec::resolve(&g, &hp, &self.file)?;
        // The ranges are fetched into memory next: refuse a model that cannot fit first.
        spec.check_fits(&self.file, spec.cpu_extra_bytes(), crate::platform::memory::available_bytes())?;
        self.spec = Some(spec);
        self.gguf = Some(g);
        Ok(None)
    }

    /// The byte ranges still to fetch, one per tensor, in file order.
    pub fn ranges(&self) -> Vec<std::ops::Range<u64>> {
        self.spec.as_ref().map(|s| s.tensors().iter().map(|t| t.range()).collect()).unwrap_or_default()
    }

    pub fn add(&mut self, offset: u64, bytes: Vec<u8>) {
        self.store.add(offset, bytes);
    }

    pub fn finish(mut self) -> Result<Engine, LoadError> {
        let g = self.gguf.take().ok_or_else(|| LoadError::io(&self.file, std::io::Error::other("finish() before the header was parsed")))?;
        Engine::from_header(g, &mut self.store, &self.file, &self.overrides)
    }
}

/// Parses the header from the start of `src`, reading more of it until the whole
/// header is there (a header may be larger than any fixed prefix).
pub fn read_header(src: &mut dyn ByteSource, file: &str) -> Result<Gguf, LoadError> {
    let size = src.len();
    let mut want = (1u64 << 20).min(size);
    loop {
        let prefix = src.read_range(0..want).map_err(|e| LoadError::io(file, e))?;
        match Gguf::parse(&prefix, size) {
            Err(GgufError::NeedMore { .. }) if want < size => want = (want * 4).min(size),
            r => return r.map_err(|e| LoadError::Gguf { file: file.into(), source: e }),
        }
    }
}
