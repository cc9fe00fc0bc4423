//! Summarizing a transcript: prompt, grammar-constrained generation, and
//! map-reduce when the transcript does not fit the context.
//!
//! One pass when everything fits: instruction (+ worked examples while they
//! fit) + transcript → the requested format, its layout enforced by a grammar.
//! Otherwise the transcript is cut into chunks that fit; each chunk becomes
//! notes with time ranges (map), and the final format is written from the
//! notes (reduce), condensing them again if even they are too long. For the
//! `notes` format the chunk notes *are* the output. The structured summary is
//! always written in passes, each of its five sections from its own part of the
//! transcript, then the overview from the sections (`sections.rs`).
//! [`Summarizer::plan`] tells which it will be before anything is generated.

pub mod constrain;
pub mod echo;
pub mod repeats;
pub mod formats;
pub mod grammar;
pub mod mapreduce;
pub mod notes;
pub mod prompt;
pub mod structured;
pub mod terms;
mod pipeline;
mod plan;
mod sections;

pub use formats::{Format, Length};
pub use plan::PassPlan;

use crate::text::chat::ChatError;
use crate::model::ModelError;
use crate::model::sampling::SamplerConfig;
use crate::transcript::Transcript;
use crate::{Engine, StopReason};
use constrain::{ConstrainError, MaskStats, TokenSpace};
use notes::QuoteReport;
use structured::StructuredError;

#[derive(Debug, thiserror::Error)]
pub enum SummarizeError {
    #[error(transparent)]
    Constrain(#[from] ConstrainError),
    #[error("model failed: {0}")]
    Model(#[from] ModelError),
    #[error(transparent)]
    Chat(#[from] ChatError),
    #[error("a {context}-token context cannot hold the {needed}-token instructions plus a {output}-token answer; raise --context or pick a shorter --length")]
    ContextTooSmall { context: usize, needed: usize, output: usize },
    #[error("the {format} output stopped unfinished ({stop:?}) after {tokens} tokens")]
    Incomplete { format: Format, stop: StopReason, tokens: usize },
    #[error("the structured output breaks a rule: {0}")]
    Invalid(#[from] StructuredError),
    #[error("map-reduce: {tokens} tokens of notes still exceed the {budget}-token budget after {rounds} rounds")]
    NoProgress { tokens: usize, budget: usize, rounds: usize },
    #[error("summarizing was stopped")]
    Aborted,
    #[error("a GPU engine in the browser must be driven with summarize_async")]
    NeedsAsync,
}

#[derive(Debug, Clone)]
pub struct SummarizeOptions {
    pub format: Format,
    pub length: Length,
    /// Tokens for prompt plus answer; `None`: the model's trained context.
    /// A small budget forces map-reduce (tests use that to stay fast).
    pub context_tokens: Option<usize>,
    /// Worked examples (the structured format's overview pass) to include when they
    /// fit. None by default: on the default model every figure of `make bench-quality`
    /// came out the same with 0 and 2 over the seven corpus transcripts (2026-12-06),
    /// while 2 cost ~1,400 prompt tokens of prefill (issue 21: leave them out where
    /// they do not help).
    pub max_shots: usize,
    /// Temperature, top-k/p and seed. Its repetition penalty should stay 1.0:
    /// it would also hit the quotes and commas the layout needs.
    pub sampler: SamplerConfig,
    /// Penalty on the model repeating its own words (the layout exempt);
    /// small models loop without it.
    pub repeat_penalty: f32,
}

impl Default for SummarizeOptions {
    fn default() -> Self {
        SummarizeOptions { format: Format::Structured, length: Length::Medium, context_tokens: None, max_shots: 0, sampler: SamplerConfig::default(), repeat_penalty: 1.2 }
    }
}

/// Which generation pass is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Map: notes on chunk `index` (0-based) of `of`, in round `round` (1 = the transcript).
    Chunk { round: usize, index: usize, of: usize },
    /// A structured summary's section `index` (0-based) of `of`, written from its
    /// own part of the transcript.
    Section { index: usize, of: usize },
    /// The one pass that writes the requested format (a structured summary's
    /// overview, from its sections).
    Final,
}

/// Reported as the work goes (a CLI progress bar, the web app's status line).
#[derive(Debug, Clone)]
pub enum Progress {
    /// Reported first: the transcript needs `chunks` map passes before the
    /// final one (0: it fits one pass), `passes` model passes in all (a
    /// structured summary: one per section and the overview, plus the map's).
    /// `prompt_tokens` is the one-pass prompt's size, or with chunks the
    /// transcript's.
    Plan { chunks: usize, passes: usize, prompt_tokens: usize, context: usize },
    Started { pass: Pass },
    /// The model has read `done` of the pass's `total` prompt tokens (`cached` of
    /// them from the prefix cache) in `seconds`; reported before the first chunk and
    /// after each, so a slow prefill shows as progress and a stalled one as none.
    Prefill { pass: Pass, done: usize, total: usize, cached: usize, seconds: f64 },
    /// Between two layers of a CPU prefill chunk: nothing to show, only a chance to
    /// stop (the callback's `false`).
    Busy,
    Finished { pass: Pass, tokens: usize, seconds: f64 },
    /// Text of `pass` as it is generated (the web app streams it).
    Text { pass: Pass, piece: String },
}

#[derive(Debug, Clone, Default)]
pub struct SummaryStats {
    pub passes: usize,
    /// Chunks of the first map round (0: the transcript fit in one pass).
    pub chunks: usize,
    pub shots: usize,
    pub prompt_tokens: usize,
    /// Prompt tokens taken from the engine's prefix cache instead of read again.
    pub cached_tokens: usize,
    pub generated_tokens: usize,
    pub prefill_s: f64,
    pub decode_s: f64,
    pub mask: MaskStats,
}

impl SummaryStats {
    pub fn seconds(&self) -> f64 {
        self.prefill_s + self.decode_s
    }
    /// Generated tokens per second of decoding.
    pub fn decode_tps(&self) -> f64 {
        self.generated_tokens as f64 / self.decode_s.max(1e-9)
    }
    fn add(&mut self, g: &crate::Generation, m: &MaskStats) {
        self.passes += 1;
        self.prompt_tokens += g.stats.prompt_tokens;
        self.cached_tokens += g.stats.cached_tokens;
        self.generated_tokens += g.stats.generated_tokens;
        self.prefill_s += g.stats.prefill_s;
        self.decode_s += g.stats.decode_s;
        self.mask.steps += m.steps;
        self.mask.mask_s += m.mask_s;
        self.mask.commit_s += m.commit_s;
        self.mask.forced_tokens += m.forced_tokens;
        self.mask.closed_early |= m.closed_early;
        self.mask.echoes_refused += m.echoes_refused;
        self.mask.echoes_unavoidable += m.echoes_unavoidable;
        self.mask.repeats_refused += m.repeats_refused;
        self.mask.repeats_unavoidable += m.repeats_unavoidable;
        self.mask.near_limit_steps += m.near_limit_steps;
    }
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub format: Format,
    pub text: String,
    pub stats: SummaryStats,
    /// Notes only: what the verbatim check did to the quotes.
    pub quotes: QuoteReport,
    /// After map-reduce to another format: the notes (with time ranges) the
    /// summary was written from, last round.
    pub map_notes: Option<String>,
}

/// An engine plus its token trie; build once per model, summarize many times.
pub struct Summarizer {
    pub engine: Engine,
    space: TokenSpace,
}

impl Summarizer {
    pub fn new(engine: Engine) -> Result<Self, ConstrainError> {
        let space = TokenSpace::new(&engine.tokenizer, &engine.eog, engine.hp.n_vocab)?;
        Ok(Summarizer { engine, space })
    }

    /// `text` with every special-token spelling broken by a zero-width space, so
    /// a transcript that contains `<|im_end|>` cannot end its turn and speak
    /// as the system (chat prompts are tokenized with specials parsed).
    fn defuse(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in self.engine.tokenizer.special_texts() {
            if s.chars().count() > 1 && out.contains(s) {
                let first = s.chars().next().map_or(0, char::len_utf8);
                out = out.replace(s, &format!("{}\u{200B}{}", &s[..first], &s[first..]));
            }
        }
        out
    }

    /// Tokens of `text` alone (no chat markup, specials as text).
    fn count_tokens(&self, text: &str) -> usize {
        self.engine.tokenizer.encode(text, false, false).len()
    }

    /// The context every pass works in: the option, at most the model's trained context.
    fn context(&self, opts: &SummarizeOptions) -> usize {
        let train = self.engine.hp.n_ctx_train;
        opts.context_tokens.map_or(train, |c| c.min(train))
    }

    pub fn summarize(&self, transcript: &Transcript, opts: &SummarizeOptions, progress: &mut dyn FnMut(&Progress)) -> Result<Summary, SummarizeError> {
        self.summarize_until(transcript, opts, &mut |p| {
            progress(p);
            true
        })
    }

    /// As [`Summarizer::summarize`], but `progress` returning false stops the work
    /// ([`SummarizeError::Aborted`]); the browser's Stop button goes through here.
    pub fn summarize_until(&self, transcript: &Transcript, opts: &SummarizeOptions, progress: &mut dyn FnMut(&Progress) -> bool) -> Result<Summary, SummarizeError> {
        crate::platform::exec::block_on(self.summarize_async(transcript, opts, progress)).unwrap_or(Err(SummarizeError::NeedsAsync))
    }
}
