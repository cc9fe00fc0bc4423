//! The generation loop: chunked prefill, then one token at a time until EOS, a stop
//! string, the length limit, a full context or the caller's abort; on the CPU or the
//! GPU through one [`Session`].

use super::stop::StopText;
use super::{Backend, Engine};
use crate::cpu::cache::KvCache;
use crate::cpu::model::Model;
use super::prefix::Snapshot;
use crate::model::cache::{CachePos, CacheShape};
use crate::model::input::prefill_chunk;
use crate::model::sampling::{Sampler, SamplerConfig};
use crate::model::{Logits, ModelError};
use crate::text::tokenizer::StreamDecoder;

/// What a forward step hands the sampler: logits, or on the GPU's greedy fast path
/// just the chosen id (the logits never leave the device).
enum StepOutput {
    Logits(Vec<f32>),
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    Token(u32),
}

/// The model and its cache for one generation, on the CPU or the GPU.
enum Session<'a> {
    Cpu(&'a Model, KvCache),
    /// `Some`: choose on the GPU and read back only the token id (the sampler's draw
    /// counts the steps); `None`: read back the logits for the CPU sampler.
    #[cfg(feature = "gpu")]
    Gpu(&'a crate::gpu::GpuModel, crate::gpu::GpuKvCache, Option<crate::gpu::DeviceSampling>),
}

/// A GPU error as the engine reports it: a rejected input keeps its own variant.
#[cfg(feature = "gpu")]
fn gpu_err(e: crate::gpu::GpuError) -> ModelError {
    match e {
        crate::gpu::GpuError::Input(e) => e,
        e => ModelError::Compute(e.to_string()),
    }
}

impl Session<'_> {
    /// Tokens per prefill chunk on this backend.
    fn chunk(&self, requested: usize) -> usize {
        match self {
            Session::Cpu(m, _) => prefill_chunk(&m.hp, requested),
            #[cfg(feature = "gpu")]
            Session::Gpu(m, ..) => m.prefill_chunk(requested),
        }
    }

    /// A prefill chunk whose logits nobody reads. The CPU asks `go_on` between layers.
    async fn part(&mut self, tokens: &[u32], go_on: &mut dyn FnMut() -> bool) -> Result<(), ModelError> {
        match self {
            Session::Cpu(m, c) => m.forward_until(tokens, c, Logits::Last, go_on).map(drop),
            #[cfg(feature = "gpu")]
            Session::Gpu(m, c, _) => m.prefill_part(tokens, c).await.map_err(gpu_err),
        }
    }

    /// A forward call whose last row the sampler reads (the prompt's last chunk, or a
    /// decode step).
    async fn forward(&mut self, tokens: &[u32], go_on: &mut dyn FnMut() -> bool) -> Result<StepOutput, ModelError> {
        match self {
            Session::Cpu(m, c) => m.forward_until(tokens, c, Logits::Last, go_on).map(StepOutput::Logits),
            #[cfg(feature = "gpu")]
            Session::Gpu(m, c, Some(pick)) => m.forward_sampled(tokens, c, pick.advance()).await.map(StepOutput::Token).map_err(gpu_err),
            #[cfg(feature = "gpu")]
            Session::Gpu(m, c, None) => m.forward(tokens, c, Logits::Last).await.map(StepOutput::Logits).map_err(gpu_err),
        }
    }

    /// Whether `n` more tokens would overflow a dense model's context.
    fn full(&self, n: usize) -> bool {
        match self {
            Session::Cpu(_, c) => c.full_after(n),
            #[cfg(feature = "gpu")]
            Session::Gpu(_, c, _) => c.full_after(n),
        }
    }

    /// The cache as it stands, for the prefix cache.
    fn snapshot(&self) -> Result<Option<Snapshot>, ModelError> {
        match self {
            Session::Cpu(_, c) => Ok(Some(Snapshot::Cpu(c.clone()))),
            #[cfg(feature = "gpu")]
            Session::Gpu(m, c, _) => Ok(m.copy_cache(c, c.pos).map_err(gpu_err)?.map(Snapshot::Gpu)),
        }
    }

    /// Starts from a kept prefix's state; false where it does not carry over (another
    /// backend's, or a shape this generation's cache cannot take).
    fn restore(&mut self, kept: &Snapshot) -> Result<bool, ModelError> {
        match (self, kept) {
            (Session::Cpu(m, c), Snapshot::Cpu(k)) => Ok(match k.reshaped(CacheShape::for_model(&m.hp, c.capacity)) {
                Some(r) => {
                    *c = r;
                    true
                }
                None => false,
            }),
            #[cfg(feature = "gpu")]
            (Session::Gpu(m, c, _), Snapshot::Gpu(k)) => Ok(match m.copy_cache(k, c.capacity).map_err(gpu_err)? {
                Some(r) => {
                    *c = r;
                    true
                }
                None => false,
            }),
            #[cfg(feature = "gpu")]
            _ => Ok(false),
        }
    }
}

/// What a generation reports as it goes; the callback's `false` stops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// `done` of the prompt's `total` tokens are in the cache, `cached` of them taken
    /// from the prefix cache: sent before the first chunk and after every chunk.
    Prefill { done: usize, total: usize, cached: usize },
    /// Between two layers of a CPU prefill chunk: only asks whether to go on.
    Busy,
    /// A complete piece of generated text.
    Text(&'a str),
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
    /// Leading prompt tokens that later prompts will share (a format's instruction
    /// and examples): the prefill cuts there, and the state after them is kept in the
    /// engine's [`PrefixCache`](super::PrefixCache) for the next generation that asks
    /// for the same tokens. 0: none.
    pub keep_prefix: usize,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions { max_tokens: 256, sampler: SamplerConfig::default(), stop: vec![], chunk: 512, n_ctx: crate::format::hparams::DEFAULT_CONTEXT, ignore_eos: false, keep_prefix: 0 }
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
    /// Prompt tokens taken from the prefix cache instead of computed.
    pub cached_tokens: usize,
    pub generated_tokens: usize,
    pub prefill_s: f64,
    pub decode_s: f64,
}

impl Stats {
    /// Prompt tokens computed (not taken from the prefix cache) per second.
    pub fn prefill_tps(&self) -> f64 {
        (self.prompt_tokens - self.cached_tokens) as f64 / self.prefill_s.max(1e-9)
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
    /// Context positions a generation may use: the option, capped by training.
    fn n_ctx(&self, opts: &GenerateOptions) -> usize {
        opts.n_ctx.min(self.hp.n_ctx_train).max(1)
    }

    #[cfg_attr(not(feature = "gpu"), allow(unused_variables))]
    fn start(&self, prompt: &[u32], opts: &GenerateOptions, processor: bool) -> Result<Session<'_>, ModelError> {
        match &self.backend {
            Backend::Cpu(m) => Ok(Session::Cpu(m, m.new_cache(self.n_ctx(opts)))),
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
                    Some(crate::gpu::DeviceSampling::Greedy)
                } else {
                    crate::gpu::sample::SampleParams::from_config(s).map(|sp| crate::gpu::DeviceSampling::Sample(sp, 0))
                };
                Ok(Session::Gpu(g, cache, pick))
            }
        }
    }

    /// Generates a continuation of `prompt`, calling `on_text` with each complete
    /// piece of text; `on_text` returning false aborts.
    pub fn generate(&self, prompt: &[u32], opts: &GenerateOptions, on_text: &mut dyn FnMut(&str) -> bool) -> Result<Generation, ModelError> {
        self.generate_with(prompt, opts, None, &mut |e| match e {
            Event::Text(s) => on_text(s),
            _ => true,
        })
    }

    /// As [`Engine::generate`], with `processor` consulted before every sampling
    /// step (and told every sampled token) and every [`Event`] reported. Blocks natively; in the browser only a CPU
    /// engine may call it (the GPU's readbacks must be awaited: [`Engine::generate_async`]).
    pub fn generate_with(
        &self,
        prompt: &[u32],
        opts: &GenerateOptions,
        processor: Option<&mut dyn LogitsProcessor>,
        on_event: &mut dyn FnMut(Event) -> bool,
    ) -> Result<Generation, ModelError> {
        crate::platform::exec::block_on(self.generate_async(prompt, opts, processor, on_event)).unwrap_or_else(|| Err(ModelError::Compute("a GPU engine in the browser must be driven with generate_async".into())))
    }

    /// The generation loop: the prompt in chunks (from a kept prefix where there is
    /// one), then token by token. Its only awaits are GPU readbacks.
    pub async fn generate_async(
        &self,
        prompt: &[u32],
        opts: &GenerateOptions,
        mut processor: Option<&mut dyn LogitsProcessor>,
        on_event: &mut dyn FnMut(Event) -> bool,
    ) -> Result<Generation, ModelError> {
        let mut run = self.start(prompt, opts, processor.is_some())?;
        let mut sampler = Sampler::new(opts.sampler.clone());
        let mut history = prompt.to_vec();
        let mut stats = Stats { prompt_tokens: prompt.len(), ..Default::default() };
        let mut out = StopText::new(&opts.stop);
        let mut dec = StreamDecoder::default();
        let mut tokens = vec![];
        let stopped = |stats: Stats| Ok(Generation { text: String::new(), tokens: vec![], stop: StopReason::Aborted, stats });

        let t0 = crate::platform::clock::now();
        // The prefill: cut at `keep` (cached or not, so both runs chunk the same),
        // reporting each chunk; a Stop between chunks or layers ends it at once.
        let total = prompt.len();
        let keep = opts.keep_prefix.min(total.saturating_sub(1));
        let mut done = 0;
        if let Some(restored) = self.prefixes.with_match(prompt, keep, |kept| run.restore(kept)) {
            if restored? {
                done = keep;
            }
        }
        stats.cached_tokens = done;
        let chunk = run.chunk(opts.chunk);
        let mut next_in = loop {
            if !on_event(Event::Prefill { done, total, cached: stats.cached_tokens }) {
                return stopped(stats);
            }
            let end = (done + chunk).min(if done < keep { keep } else { total });
            let step = if end == total { run.forward(&prompt[done..], &mut || on_event(Event::Busy)).await } else { run.part(&prompt[done..end], &mut || on_event(Event::Busy)).await.map(|()| StepOutput::Token(0)) };
            match step {
                Err(ModelError::Stopped) => return stopped(stats),
                Err(e) => return Err(e),
                Ok(s) if end == total => break s,
                Ok(_) => {}
            }
            done = end;
            if done == keep && self.prefixes.wants(&prompt[..keep]) {
                if let Some(s) = run.snapshot()? {
                    self.prefixes.put(&prompt[..keep], s);
                }
            }
        };
        stats.prefill_s = crate::platform::clock::now() - t0;
        if !on_event(Event::Prefill { done: total, total, cached: stats.cached_tokens }) {
            return stopped(stats);
        }
        let t1 = crate::platform::clock::now();
        let stop = 'gen: loop {
            if tokens.len() >= opts.max_tokens {
                break StopReason::MaxTokens;
            }
            let next = match &mut next_in {
                StepOutput::Token(t) => *t,
                StepOutput::Logits(logits) => {
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
                if !emit.is_empty() && !on_event(Event::Text(&emit)) {
                    break 'gen StopReason::Aborted;
                }
                if hit {
                    break 'gen StopReason::StopString;
                }
            }
            if run.full(step.len()) {
                break StopReason::ContextFull;
            }
            next_in = match run.forward(&step, &mut || true).await {
                Err(ModelError::Stopped) => break StopReason::Aborted,
                r => r?,
            };
        };
        stats.decode_s = crate::platform::clock::now() - t1;
        if stop != StopReason::StopString {
            let (emit, _) = out.push(&dec.finish());
            let rest = emit + &out.flush();
            if !rest.is_empty() {
                on_event(Event::Text(&rest));
            }
        }
        Ok(Generation { text: out.text, tokens, stop, stats })
    }
}
