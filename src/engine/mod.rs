//! A loaded model (weights on the CPU or the GPU, tokenizer, chat template), and
//! running it: [`generate`] (the loop), [`load`] (the browser's caller-driven loader),
//! [`stop`] (stop strings).

mod generate;
mod load;
mod prefix;
pub mod prefix_file;
mod stop;

pub use generate::{Event, GenerateOptions, Generation, LogitsProcessor, Stats, StopReason};
pub use prefix::PrefixCache;
pub use load::{read_header, Loader};

use crate::cpu::model::Model;
use crate::format::gguf::Gguf;
use crate::format::hparams::{Hparams, Overrides};
use crate::format::source::ByteSource;
use crate::model::spec::ModelSpec;
use crate::model::LoadError;
use crate::text::chat::{ChatTemplate, Message};
use crate::text::tokenizer::Tokenizer;

pub struct Engine {
    pub file: String,
    pub hp: Hparams,
    /// Where the weights live: host memory or the GPU, never both (a 7B model must
    /// load in a browser whose wasm memory tops out at 4 GiB).
    pub backend: Backend,
    pub tokenizer: Tokenizer,
    pub template: ChatTemplate,
    /// End-of-generation ids: EOS plus the chat end-of-turn tokens the vocabulary has.
    pub eog: Vec<u32>,
    /// The KV state after the last long prompt opening, for the next prompt that
    /// shares it ([`GenerateOptions::keep_prefix`]).
    pub prefixes: PrefixCache,
    /// The file's weight types by bytes, for the model panel and `info`.
    pub quant_mix: crate::format::gguf::QuantMix,
}

pub enum Backend {
    Cpu(Model),
    #[cfg(feature = "gpu")]
    Gpu(crate::gpu::GpuModel),
}


impl Engine {
    /// Parses the header from `src`, resolves and loads every tensor.
    /// Refuses a model that host memory cannot hold, before any tensor is read.
    pub fn load(src: &mut dyn ByteSource, file: &str, ov: &Overrides) -> Result<Self, LoadError> {
        let gguf = read_header(src, file)?;
        let hp = Hparams::from_gguf(&gguf, ov).map_err(|e| LoadError::Hparams { file: file.into(), source: e })?;
        let spec = ModelSpec::resolve(&gguf, &hp, file)?;
        spec.check_fits(file, spec.cpu_extra_bytes(), crate::platform::memory::available_bytes())?;
        Self::from_header(gguf, src, file, ov)
    }

    /// Builds the engine for a parsed header, reading tensors from `src`.
    pub fn from_header(gguf: Gguf, src: &mut dyn ByteSource, file: &str, ov: &Overrides) -> Result<Self, LoadError> {
        let (hp, tokenizer) = Self::header_parts(&gguf, file, ov)?;
        let spec = ModelSpec::resolve(&gguf, &hp, file)?;
        let model = Model::load(src, file, &spec, hp.clone())?;
        Ok(Self::assemble(file, &gguf, hp, Backend::Cpu(model), tokenizer))
    }

    /// Loads for the GPU only: the header and tokenizer into host memory, every tensor
    /// streamed from `src` straight into device buffers (host memory stays bounded by
    /// the upload slice, whatever the model's size).
    #[cfg(feature = "gpu")]
    pub async fn load_gpu(ctx: crate::gpu::GpuContext, src: &mut dyn ByteSource, file: &str, ov: &Overrides) -> Result<Self, LoadError> {
        let gguf = read_header(src, file)?;
        let (hp, tokenizer) = Self::header_parts(&gguf, file, ov)?;
        let spec = ModelSpec::resolve(&gguf, &hp, file)?;
        // A software GPU's memory is the host's natively (lavapipe); a real GPU's free
        // memory is not reported by WebGPU (its per-buffer limits are checked at
        // upload), and in the browser SwiftShader's buffers live outside the wasm heap.
        if ctx.cpu_adapter && cfg!(not(target_arch = "wasm32")) {
            spec.check_fits(file, 0, crate::platform::memory::available_bytes())?;
        }
        let model = crate::gpu::GpuModel::load(ctx, src, file, &spec, hp.clone()).await.map_err(|e| LoadError::Backend { file: file.into(), source: Box::new(e) })?;
        Ok(Self::assemble(file, &gguf, hp, Backend::Gpu(model), tokenizer))
    }

    /// The hyperparameters and the tokenizer, checked against each other: a tokenizer
    /// with fewer tokens than the vocabulary would print ids past it as nothing.
    fn header_parts(gguf: &Gguf, file: &str, ov: &Overrides) -> Result<(Hparams, Tokenizer), LoadError> {
        let hp = Hparams::from_gguf(gguf, ov).map_err(|e| LoadError::Hparams { file: file.into(), source: e })?;
        let tokenizer = Tokenizer::from_gguf(gguf).map_err(|e| LoadError::Tokenizer { file: file.into(), source: e })?;
        if tokenizer.vocab_size() < hp.n_vocab {
            return Err(LoadError::Vocabulary { file: file.into(), tokens: tokenizer.vocab_size(), n_vocab: hp.n_vocab });
        }
        Ok((hp, tokenizer))
    }

    /// The CPU model, when the weights live in host memory.
    pub fn cpu(&self) -> Option<&Model> {
        match &self.backend {
            Backend::Cpu(m) => Some(m),
            #[cfg(feature = "gpu")]
            Backend::Gpu(_) => None,
        }
    }

    /// The GPU model, when the weights live on the device.
    #[cfg(feature = "gpu")]
    pub fn gpu(&self) -> Option<&crate::gpu::GpuModel> {
        match &self.backend {
            Backend::Gpu(m) => Some(m),
            Backend::Cpu(_) => None,
        }
    }

    /// "cpu" or "gpu", for stats and the web app's badge.
    pub fn backend_name(&self) -> &'static str {
        match &self.backend {
            Backend::Cpu(_) => "cpu",
            #[cfg(feature = "gpu")]
            Backend::Gpu(_) => "gpu",
        }
    }

    /// The kept prompt prefix as bytes under `key` ([`prefix_file`]), for storage
    /// across sessions; CPU engines only.
    pub fn save_prefix(&self, key: &str) -> Result<Vec<u8>, prefix_file::PrefixFileError> {
        prefix_file::save(&self.prefixes, key)
    }

    /// Makes a prefix saved by [`Engine::save_prefix`] under `key` the kept one;
    /// its length in tokens. The next generation that opens with its tokens and
    /// asks to keep exactly that many starts from it.
    pub fn load_prefix(&self, bytes: &[u8], key: &str) -> Result<usize, prefix_file::PrefixFileError> {
        if !matches!(self.backend, Backend::Cpu(_)) {
            return Err(prefix_file::PrefixFileError::Gpu);
        }
        prefix_file::load(&self.prefixes, bytes, key, crate::model::cache::CacheShape::for_model(&self.hp, 1), self.hp.n_vocab)
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_file(path: &str, ov: &Overrides) -> Result<Self, LoadError> {
        let mut f = open_model(path)?;
        Self::load(&mut f, path, ov)
    }

    fn assemble(file: &str, gguf: &Gguf, hp: Hparams, backend: Backend, tokenizer: Tokenizer) -> Self {
        let text = |id: Option<u32>| id.and_then(|i| tokenizer.token_text(i)).unwrap_or("").to_string();
        let template = ChatTemplate::new(
            gguf.get("tokenizer.chat_template").and_then(|v| v.as_str()).map(str::to_string),
            &text(tokenizer.bos),
            &text(tokenizer.eos),
        )
        .named(file);
        let mut eog: Vec<u32> = tokenizer.eos.into_iter().collect();
        for t in ["<|im_end|>", "<|eot_id|>", "<|end|>", "<|endoftext|>", "</s>"] {
            if let Some(id) = tokenizer.token_id(t).filter(|&id| tokenizer.is_control(id)) {
                if !eog.contains(&id) {
                    eog.push(id);
                }
            }
        }
        Engine { file: file.into(), hp, backend, tokenizer, template, eog, prefixes: PrefixCache::default(), quant_mix: gguf.quant_mix() }
    }

    /// Renders a chat and tokenizes it (specials parsed; BOS added unless the
    /// template already wrote it).
    pub fn chat_tokens(&self, messages: &[Message]) -> Result<Vec<u32>, crate::text::chat::ChatError> {
        let text = self.template.render(messages, true)?;
        let bos_text = self.tokenizer.bos.and_then(|b| self.tokenizer.token_text(b)).unwrap_or("\u{0}");
        let add_special = !text.starts_with(bos_text);
        Ok(self.tokenizer.encode(&text, add_special, true))
    }

}

/// Opens a model file, naming a folder as such (opening one succeeds on Linux, and
/// the first read then fails with a bare "Is a directory").
#[cfg(not(target_arch = "wasm32"))]
pub fn open_model(path: &str) -> Result<std::fs::File, LoadError> {
    if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(LoadError::io(path, std::io::Error::other("is a folder, not a GGUF model file")));
    }
    std::fs::File::open(path).map_err(|e| LoadError::io(path, e))
}
