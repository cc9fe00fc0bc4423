//! A loaded model (weights + tokenizer + chat template) and the generation loop:
//! chunked prefill, then one token at a time until EOS, a stop string or the limit.

use crate::cpu::cache::KvCache;
use crate::text::chat::{ChatTemplate, Message};
use crate::format::gguf::{Gguf, GgufError};
use crate::format::hparams::{Hparams, Overrides};
use crate::cpu::model::{Logits, Model, ModelError};
use crate::model::sampling::{Sampler, SamplerConfig};
use crate::text::tokenizer::{StreamDecoder, Tokenizer};
use crate::format::tensors::{ByteSource, LoadError, ModelSpec};

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
}

pub enum Backend {
    Cpu(Model),
    #[cfg(feature = "gpu")]
    Gpu(crate::gpu::GpuModel),
}

/// What a forward step hands the sampler: logits, or on the GPU's greedy fast path
/// just the chosen id (the logits never leave the device).
enum Next {
    Logits(Vec<f32>),
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    Token(u32),
}

/// The model and its cache for one generation, on the CPU or the GPU.
enum Run<'a> {
    Cpu(&'a Model, KvCache),
    /// `Some`: choose on the GPU and read back only the token id (the sampler's draw
    /// counts the steps); `None`: read back the logits for the CPU sampler.
    #[cfg(feature = "gpu")]
    Gpu(&'a crate::gpu::GpuModel, crate::gpu::GpuKvCache, Option<GpuPick>),
}

/// The GPU's choice of token: argmax, or the seeded sampler with its step counter.
#[cfg(feature = "gpu")]
#[derive(Clone, Copy)]
enum GpuPick {
    Greedy,
    Sample(crate::gpu::sample::SampleParams, u32),
}

#[cfg(feature = "gpu")]
impl GpuPick {
    /// The pick for the next step (the draw advances once per sampled token).
    fn next(&mut self) -> crate::gpu::Pick {
        match self {
            GpuPick::Greedy => crate::gpu::Pick::Greedy,
            GpuPick::Sample(sp, step) => {
                *step += 1;
                crate::gpu::Pick::Sample(*sp, *step - 1)
            }
        }
    }
}

#[cfg(feature = "gpu")]
fn gpu_err(e: crate::gpu::GpuError) -> ModelError {
    ModelError::Compute(e.to_string())
}

impl Run<'_> {
    async fn prefill(&mut self, tokens: &[u32], chunk: usize) -> Result<Next, ModelError> {
        match self {
            Run::Cpu(m, c) => m.prefill(tokens, c, chunk).map(Next::Logits),
            #[cfg(feature = "gpu")]
            Run::Gpu(m, c, Some(pick)) => m.prefill_pick(tokens, c, chunk, pick.next()).await.map(Next::Token).map_err(gpu_err),
            #[cfg(feature = "gpu")]
            Run::Gpu(m, c, None) => m.prefill(tokens, c, chunk).await.map(Next::Logits).map_err(gpu_err),
        }
    }

    async fn forward(&mut self, tokens: &[u32]) -> Result<Next, ModelError> {
        match self {
            Run::Cpu(m, c) => m.forward(tokens, c, Logits::Last).map(Next::Logits),
            #[cfg(feature = "gpu")]
            Run::Gpu(m, c, Some(pick)) => m.forward_pick(tokens, c, pick.next()).await.map(Next::Token).map_err(gpu_err),
            #[cfg(feature = "gpu")]
            Run::Gpu(m, c, None) => m.forward(tokens, c, Logits::Last).await.map(Next::Logits).map_err(gpu_err),
        }
    }

    /// Whether `n` more tokens would overflow a dense model's context.
    fn full(&self, n: usize) -> bool {
        match self {
            Run::Cpu(_, c) => !c.rolling && c.pos + n > c.capacity,
            #[cfg(feature = "gpu")]
            Run::Gpu(_, c, _) => !c.rolling && c.pos + n > c.capacity,
        }
    }
}

#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub max_tokens: usize,
    pub sampler: SamplerConfig,
    pub stop: Vec<String>,
    /// Prefill chunk (capped at the sliding window).
    pub chunk: usize,
    /// Context for dense-attention models (sliding-window models use W slots).
    pub n_ctx: usize,
    /// Keep going past end-of-generation tokens (benchmarks).
    pub ignore_eos: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions { max_tokens: 256, sampler: SamplerConfig::default(), stop: vec![], chunk: 512, n_ctx: 8192, ignore_eos: false }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Eos,
    StopString,
    MaxTokens,
    ContextFull,
    Aborted,
    /// The [`LogitsProcessor`] declared the output complete (e.g. a grammar's end).
    Complete,
}

/// A per-step hook between the model and the sampler, for grammar-constrained
/// decoding. Errors are the processor's own business: it ends generation by
/// returning false from `process` and reports why through its own API.
pub trait LogitsProcessor {
    /// Restricts the next token in place (a forbidden token's logit becomes
    /// -inf). Returning false ends generation: nothing more may follow.
    fn process(&mut self, logits: &mut [f32]) -> bool;
    /// Records the sampled token; returns the tokens that must follow it, which
    /// are emitted and run through the model together in one batch.
    fn accept(&mut self, token: u32) -> Vec<u32>;
}

#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    pub prefill_s: f64,
    pub decode_s: f64,
}

impl Stats {
    pub fn prefill_tps(&self) -> f64 {
        self.prompt_tokens as f64 / self.prefill_s.max(1e-9)
    }
    /// Decode rate over the tokens produced after the first (which prefill yields).
    pub fn decode_tps(&self) -> f64 {
        self.generated_tokens.saturating_sub(1) as f64 / self.decode_s.max(1e-9)
    }
}

#[derive(Debug, Clone)]
pub struct Generation {
    pub text: String,
    pub tokens: Vec<u32>,
    pub stop: StopReason,
    pub stats: Stats,
}

impl Engine {
    /// Parses the header from `src`, resolves and loads every tensor.
    pub fn load(src: &mut dyn ByteSource, file: &str, ov: &Overrides) -> Result<Self, LoadError> {
        let gguf = read_header(src, file)?;
        Self::from_header(gguf, src, file, ov)
    }

    /// Builds the engine for a parsed header, reading tensors from `src`.
    pub fn from_header(gguf: Gguf, src: &mut dyn ByteSource, file: &str, ov: &Overrides) -> Result<Self, LoadError> {
        let hp = Hparams::from_gguf(&gguf, ov).map_err(|e| LoadError::Hparams { file: file.into(), source: e })?;
        let tokenizer = Tokenizer::from_gguf(&gguf).map_err(|e| LoadError::Tokenizer { file: file.into(), source: e })?;
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
        let hp = Hparams::from_gguf(&gguf, ov).map_err(|e| LoadError::Hparams { file: file.into(), source: e })?;
        let tokenizer = Tokenizer::from_gguf(&gguf).map_err(|e| LoadError::Tokenizer { file: file.into(), source: e })?;
        let spec = ModelSpec::resolve(&gguf, &hp, file)?;
        let model = crate::gpu::GpuModel::load(ctx, src, file, &spec, hp.clone()).await.map_err(|e| LoadError::Gpu { file: file.into(), source: e })?;
        Ok(Self::assemble(file, &gguf, hp, Backend::Gpu(model), tokenizer))
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

    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_file(path: &str, ov: &Overrides) -> Result<Self, LoadError> {
        let mut f = std::fs::File::open(path).map_err(|e| LoadError::Io { file: path.into(), source: e })?;
        Self::load(&mut f, path, ov)
    }

    fn assemble(file: &str, gguf: &Gguf, hp: Hparams, backend: Backend, tokenizer: Tokenizer) -> Self {
        let text = |id: Option<u32>| id.and_then(|i| tokenizer.token_text(i)).unwrap_or("").to_string();
        let template = ChatTemplate::new(
            gguf.get("tokenizer.chat_template").and_then(|v| v.as_str()).map(str::to_string),
            &text(tokenizer.bos),
            &text(tokenizer.eos),
        );
        let mut eog: Vec<u32> = tokenizer.eos.into_iter().collect();
        for t in ["<|im_end|>", "<|eot_id|>", "<|end|>", "<|endoftext|>", "</s>"] {
            if let Some(id) = tokenizer.token_id(t).filter(|&id| tokenizer.is_control(id)) {
                if !eog.contains(&id) {
                    eog.push(id);
                }
            }
        }
        Engine { file: file.into(), hp, backend, tokenizer, template, eog }
    }

    /// Renders a chat and tokenizes it (specials parsed; BOS added unless the
    /// template already wrote it).
    pub fn chat_tokens(&self, messages: &[Message]) -> Result<Vec<u32>, crate::text::chat::ChatError> {
        let text = self.template.render(messages, true)?;
        let bos_text = self.tokenizer.bos.and_then(|b| self.tokenizer.token_text(b)).unwrap_or("\u{0}");
        let add_special = !text.starts_with(bos_text);
        Ok(self.tokenizer.encode(&text, add_special, true))
    }

    /// Context positions a generation may use: the option, capped by training.
    fn n_ctx(&self, opts: &GenerateOptions) -> usize {
        opts.n_ctx.min(self.hp.n_ctx_train).max(1)
    }

    #[cfg_attr(not(feature = "gpu"), allow(unused_variables))]
    fn start(&self, prompt: &[u32], opts: &GenerateOptions, processor: bool) -> Result<Run<'_>, ModelError> {
        match &self.backend {
            Backend::Cpu(m) => Ok(Run::Cpu(m, m.new_cache(self.n_ctx(opts)))),
            #[cfg(feature = "gpu")]
            Backend::Gpu(g) => {
                // A dense model's GPU cache holds only what this generation can reach.
                let n_ctx = self.n_ctx(opts).min(prompt.len() + opts.max_tokens + 1);
                let cache = g.new_cache(n_ctx).map_err(gpu_err)?;
                // A LogitsProcessor or a repetition penalty needs the logits on the CPU.
                let s = &opts.sampler;
                let pick = if processor || s.repeat_penalty != 1.0 {
                    None
                } else if s.temperature <= 0.0 {
                    Some(GpuPick::Greedy)
                } else {
                    crate::gpu::sample::SampleParams::from_config(s).map(|sp| GpuPick::Sample(sp, 0))
                };
                Ok(Run::Gpu(g, cache, pick))
            }
        }
    }

    /// Generates a continuation of `prompt`, calling `on_text` with each complete
    /// piece of text; `on_text` returning false aborts.
    pub fn generate(&self, prompt: &[u32], opts: &GenerateOptions, on_text: &mut dyn FnMut(&str) -> bool) -> Result<Generation, ModelError> {
        self.generate_with(prompt, opts, None, on_text)
    }

    /// As [`Engine::generate`], with `processor` consulted before every sampling
    /// step (and told every sampled token). Blocks natively; in the browser only a CPU
    /// engine may call it (the GPU's readbacks must be awaited: [`Engine::generate_async`]).
    pub fn generate_with(
        &self,
        prompt: &[u32],
        opts: &GenerateOptions,
        processor: Option<&mut dyn LogitsProcessor>,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation, ModelError> {
        crate::platform::exec::block_on(self.generate_async(prompt, opts, processor, on_text)).unwrap_or_else(|| Err(ModelError::Compute("a GPU engine in the browser must be driven with generate_async".into())))
    }

    /// The generation loop. Its only awaits are GPU readbacks.
    pub async fn generate_async(
        &self,
        prompt: &[u32],
        opts: &GenerateOptions,
        mut processor: Option<&mut dyn LogitsProcessor>,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation, ModelError> {
        let mut run = self.start(prompt, opts, processor.is_some())?;
        let mut sampler = Sampler::new(opts.sampler.clone());
        let mut history = prompt.to_vec();
        let mut stats = Stats { prompt_tokens: prompt.len(), ..Default::default() };
        let mut out = StopText::new(&opts.stop);
        let mut dec = StreamDecoder::default();
        let mut tokens = vec![];

        let t0 = crate::platform::clock::now();
        let mut next_in = run.prefill(prompt, opts.chunk).await?;
        stats.prefill_s = crate::platform::clock::now() - t0;
        let t1 = crate::platform::clock::now();
        let stop = 'gen: loop {
            if tokens.len() >= opts.max_tokens {
                break StopReason::MaxTokens;
            }
            let next = match &mut next_in {
                Next::Token(t) => *t,
                Next::Logits(logits) => {
                    if let Some(p) = processor.as_deref_mut() {
                        if !p.process(logits) {
                            break StopReason::Complete;
                        }
                    }
                    sampler.sample(logits, &history)
                }
            };
            if !opts.ignore_eos && self.eog.contains(&next) {
                break StopReason::Eos;
            }
            let mut step = vec![next];
            if let Some(p) = processor.as_deref_mut() {
                step.extend(p.accept(next));
            }
            for &t in &step {
                tokens.push(t);
                history.push(t);
                stats.generated_tokens += 1;
                let piece = dec.push(&self.tokenizer.token_bytes(t));
                let (emit, hit) = out.push(&piece);
                if !emit.is_empty() && !on_text(&emit) {
                    break 'gen StopReason::Aborted;
                }
                if hit {
                    break 'gen StopReason::StopString;
                }
            }
            if run.full(step.len()) {
                break StopReason::ContextFull;
            }
            next_in = run.forward(&step).await?;
        };
        stats.decode_s = crate::platform::clock::now() - t1;
        if stop != StopReason::StopString {
            let (emit, _) = out.push(&dec.finish());
            let rest = emit + &out.flush();
            if !rest.is_empty() {
                on_text(&rest);
            }
        }
        Ok(Generation { text: out.text, tokens, stop, stats })
    }
}

/// Loading driven by the caller, for byte ranges that arrive asynchronously: offer a
/// prefix until the header parses, fetch the listed ranges in any order, then finish.
pub struct Loader {
    file: String,
    overrides: Overrides,
    gguf: Option<Gguf>,
    spec: Option<ModelSpec>,
    store: crate::format::tensors::RangeStore,
}

impl Loader {
    pub fn new(file: &str, size: u64, overrides: Overrides) -> Self {
        Loader { file: file.into(), overrides, gguf: None, spec: None, store: crate::format::tensors::RangeStore::new(size) }
    }

    /// Offers the file's first bytes. `Ok(None)`: header parsed and checked;
    /// `Ok(Some(n))`: offer at least `n` bytes.
    pub fn header(&mut self, prefix: &[u8]) -> Result<Option<u64>, LoadError> {
        let size = self.store.len();
        let g = match Gguf::parse(prefix, size) {
            Err(GgufError::NeedMore { .. }) => return Ok(Some((prefix.len() as u64 * 4).clamp(1 << 20, size))),
            r => r.map_err(|e| LoadError::Gguf { file: self.file.clone(), source: e })?,
        };
        let hp = Hparams::from_gguf(&g, &self.overrides).map_err(|e| LoadError::Hparams { file: self.file.clone(), source: e })?;
        self.spec = Some(ModelSpec::resolve(&g, &hp, &self.file)?);
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
        let g = self.gguf.take().ok_or_else(|| LoadError::Io {
            file: self.file.clone(),
            source: std::io::Error::other("finish() before the header was parsed"),
        })?;
        Engine::from_header(g, &mut self.store, &self.file, &self.overrides)
    }
}

fn read_header(src: &mut dyn ByteSource, file: &str) -> Result<Gguf, LoadError> {
    let size = src.len();
    let mut want = (1u64 << 20).min(size);
    loop {
        let prefix = src.read_range(0..want).map_err(|e| LoadError::Io { file: file.into(), source: e })?;
        match Gguf::parse(&prefix, size) {
            Err(GgufError::NeedMore { .. }) if want < size => want = (want * 4).min(size),
            r => return r.map_err(|e| LoadError::Gguf { file: file.into(), source: e }),
        }
    }
}

/// Accumulates output text, holding back any tail that could begin a stop string.
struct StopText {
    stops: Vec<String>,
    text: String,
    emitted: usize,
}

impl StopText {
    fn new(stops: &[String]) -> Self {
        StopText { stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(), text: String::new(), emitted: 0 }
    }

    /// Appends `piece`; returns the text safe to show now and whether a stop string
    /// completed (the text is then cut before it).
    fn push(&mut self, piece: &str) -> (String, bool) {
        self.text.push_str(piece);
        let search_from = self.emitted.saturating_sub(self.stops.iter().map(|s| s.len()).max().unwrap_or(0));
        let search_from = (0..=search_from).rev().find(|&i| self.text.is_char_boundary(i)).unwrap_or(0);
        if let Some(at) = self.stops.iter().filter_map(|s| self.text[search_from..].find(s.as_str()).map(|i| i + search_from)).min() {
            self.text.truncate(at);
            let emit = self.text[self.emitted.min(at)..].to_string();
            self.emitted = at;
            return (emit, true);
        }
        let mut safe = self.text.len();
        for s in &self.stops {
            for k in (1..s.len()).rev() {
                if s.is_char_boundary(k) && self.text.ends_with(&s[..k]) {
                    safe = safe.min(self.text.len() - k);
                    break;
                }
            }
        }
        let safe = safe.max(self.emitted);
        let emit = self.text[self.emitted..safe].to_string();
        self.emitted = safe;
        (emit, false)
    }

    fn flush(&mut self) -> String {
        let s = self.text[self.emitted..].to_string();
        self.emitted = self.text.len();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::StopText;

    #[test]
    fn stop_strings_are_cut_and_never_half_shown() {
        let mut s = StopText::new(&["</end>".to_string()]);
        assert_eq!(s.push("hello </"), ("hello ".to_string(), false));
        assert_eq!(s.push("en"), (String::new(), false));
        assert_eq!(s.push("d> tail"), (String::new(), true));
        assert_eq!(s.text, "hello ");
        // "</x" cannot begin "</end>": nothing is held back.
        let mut s = StopText::new(&["</end>".to_string()]);
        assert_eq!(s.push("a </x"), ("a </x".to_string(), false));
        assert_eq!(s.push("y <"), ("y ".to_string(), false));
        assert_eq!(s.flush(), "<");
    }
}
