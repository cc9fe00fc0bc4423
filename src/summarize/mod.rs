//! Summarizing a transcript: prompt, grammar-constrained generation, and
//! map-reduce when the transcript does not fit the context.
//!
//! One pass when everything fits: instruction (+ worked examples while they
//! fit) + transcript → the requested format, its layout enforced by a grammar.
//! Otherwise the transcript is cut into chunks that fit; each chunk becomes
//! notes with time ranges (map), and the final format is written from the
//! notes (reduce), condensing them again if even they are too long. For the
//! `notes` format the chunk notes *are* the output.

pub mod constrain;
pub mod formats;
pub mod grammar;
pub mod mapreduce;
pub mod notes;
pub mod prompt;
pub mod structured;

pub use formats::{Format, Length};

use crate::text::chat::ChatError;
use crate::cpu::model::ModelError;
use crate::model::sampling::SamplerConfig;
use crate::transcript::Transcript;
use crate::{Engine, GenerateOptions, StopReason};
use constrain::{Budget, ConstrainError, MaskStats, TokenSpace};
use formats::{NotesShape, StructuredSizes, TextShape};
use grammar::{GrammarSpec, NotesSection};
use mapreduce::Piece;
use notes::QuoteReport;
use prompt::Source;
use structured::{StructuredError, StructuredSummary};

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
    /// Worked examples (structured format only) to include when they fit.
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
        SummarizeOptions { format: Format::Structured, length: Length::Medium, context_tokens: None, max_shots: 2, sampler: SamplerConfig::default(), repeat_penalty: 1.2 }
    }
}

/// Which generation pass is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Map: notes on chunk `index` (0-based) of `of`, in round `round` (1 = the transcript).
    Chunk { round: usize, index: usize, of: usize },
    /// The one pass that writes the requested format.
    Final,
}

/// Reported as the work goes (a CLI progress bar, the web app's status line).
#[derive(Debug, Clone)]
pub enum Progress {
    /// The transcript needs `chunks` map passes before the final one.
    Plan { chunks: usize, prompt_tokens: usize, context: usize },
    Started { pass: Pass },
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
        self.generated_tokens += g.stats.generated_tokens;
        self.prefill_s += g.stats.prefill_s;
        self.decode_s += g.stats.decode_s;
        self.mask.steps += m.steps;
        self.mask.mask_s += m.mask_s;
        self.mask.commit_s += m.commit_s;
        self.mask.forced_tokens += m.forced_tokens;
        self.mask.closed_early |= m.closed_early;
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

/// Notes sections: at least 5, one per this many transcript tokens beyond that.
const TOKENS_PER_SECTION: usize = 700;
const MAX_SECTIONS: usize = 12;
/// Map rounds before giving up on shrinking the notes.
const MAX_ROUNDS: usize = 4;

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

    fn count(&self, text: &str) -> usize {
        self.engine.tokenizer.encode(text, false, false).len()
    }

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

    /// Whether `transcript` fits one pass or will be map-reduced: the plan
    /// [`Summarizer::summarize_async`] starts from (the web app warns before it starts).
    pub fn plan(&self, transcript: &Transcript, opts: &SummarizeOptions) -> PassPlan {
        self.work_plan(transcript, opts).pass
    }

    /// The plan with what the passes need of its arithmetic: the transcript
    /// cut into pieces, the one-pass notes' sections, the instructions' tokens.
    fn work_plan(&self, transcript: &Transcript, opts: &SummarizeOptions) -> WorkPlan {
        let text = transcript.text();
        let context = self.context(opts);
        let transcript_tokens = self.count(&text);
        let sections = transcript_tokens.div_ceil(TOKENS_PER_SECTION).clamp(5, MAX_SECTIONS);
        let piece_chars = (text.len() / (3 * sections)).clamp(20, 600);
        let pieces = mapreduce::pieces(&transcript.segments, piece_chars);
        let notes_shape = NotesShape::for_length(opts.length);
        // The one-pass prompt (notes: the transcript in parts, one per section) and its answer.
        let (input_tokens, spec) = match opts.format {
            Format::Notes => {
                let parts = mapreduce::partition(&pieces, sections);
                (self.count(&self.notes_input(&parts)), grammar::notes(&notes_plan(&parts), &notes_shape))
            }
            f => (transcript_tokens, self.final_spec(f, opts)),
        };
        let overhead = self.count(&prompt::system(opts.format)) + self.count(&prompt::task(opts.format, &self.text_shape(opts), &notes_shape).unwrap_or_default()) + 32;
        let prompt_tokens = input_tokens + overhead;
        let answer_tokens = self.sizes(&spec).budget;
        let pass = PassPlan { transcript_tokens, prompt_tokens, answer_tokens, context, one_pass: prompt_tokens + answer_tokens <= context };
        WorkPlan { text, pieces, sections, notes_shape, overhead, pass }
    }

    /// As [`Summarizer::summarize`], but `progress` returning false stops the work
    /// ([`SummarizeError::Aborted`]); the browser's Stop button goes through here.
    pub fn summarize_until(&self, transcript: &Transcript, opts: &SummarizeOptions, progress: &mut dyn FnMut(&Progress) -> bool) -> Result<Summary, SummarizeError> {
        crate::platform::exec::block_on(self.summarize_async(transcript, opts, progress)).unwrap_or(Err(SummarizeError::NeedsAsync))
    }

    /// The pipeline itself; its only awaits are the GPU's readbacks, so the browser
    /// can run it on WebGPU (natively [`Summarizer::summarize_until`] blocks on it).
    pub async fn summarize_async(&self, transcript: &Transcript, opts: &SummarizeOptions, progress: &mut dyn FnMut(&Progress) -> bool) -> Result<Summary, SummarizeError> {
        let WorkPlan { text: full, pieces, sections, notes_shape, overhead, pass: plan } = self.work_plan(transcript, opts);
        let context = plan.context;
        let mut stats = SummaryStats::default();
        let mut quotes = QuoteReport::default();

        // One pass if the whole transcript fits with its answer.
        if plan.one_pass {
            if !progress(&Progress::Plan { chunks: 0, prompt_tokens: plan.prompt_tokens, context }) {
                return Err(SummarizeError::Aborted);
            }
            let text = match opts.format {
                Format::Notes => self.notes_pass(&pieces, sections, &notes_shape, &full, opts, context, Pass::Final, &mut stats, &mut quotes, progress).await?.0,
                _ => self.final_pass(Source::Transcript, &full, opts, context, &mut stats, progress).await?,
            };
            return Ok(Summary { format: opts.format, text, stats, quotes, map_notes: None });
        }

        // Map: chunks of transcript → notes with time ranges.
        let final_notes = opts.format == Format::Notes;
        let shape = if final_notes { notes_shape } else { NotesShape::condensed() };
        let map_system = self.count(&prompt::system(Format::Notes)) + self.count(&prompt::task(Format::Notes, &self.text_shape(opts), &shape).unwrap_or_default()) + 48;
        let final_out = self.sizes(&self.final_spec(opts.format, opts)).budget;
        let mut units = pieces;
        for round in 1..=MAX_ROUNDS {
            let (chunk_tokens, max_sections) = self.chunk_budget(context, map_system, &shape)?;
            let count = |s: &str| self.count(s);
            let chunks = mapreduce::chunks(&units, chunk_tokens, (chunk_tokens / 10).min(200), &count);
            if round == 1 {
                stats.chunks = chunks.len();
                if !progress(&Progress::Plan { chunks: chunks.len(), prompt_tokens: plan.transcript_tokens, context }) {
                    return Err(SummarizeError::Aborted);
                }
            }
            let mut notes_md = vec![];
            let mut next_units = vec![];
            for (index, chunk) in chunks.iter().enumerate() {
                let used: usize = chunk.iter().map(|p| count(&p.text) + 1).sum();
                let k = if final_notes {
                    // Enough sections overall for the notes' five, more for long chunks.
                    used.div_ceil(TOKENS_PER_SECTION).max(5usize.div_ceil(chunks.len()))
                } else {
                    used.div_ceil(2 * TOKENS_PER_SECTION)
                };
                let pass = Pass::Chunk { round, index, of: chunks.len() };
                let (md, sections) = self.notes_pass(chunk, k.clamp(1, max_sections), &shape, &full, opts, context, pass, &mut stats, &mut quotes, progress).await?;
                notes_md.push(md);
                next_units.extend(sections);
            }
            let notes = notes_md.join("\n\n");
            if final_notes {
                return Ok(Summary { format: opts.format, text: notes, stats, quotes, map_notes: None });
            }
            // Reduce when the notes fit; otherwise condense the notes themselves.
            let need = self.count(&notes) + overhead + 16;
            if need + final_out <= context {
                let text = self.final_pass(Source::Notes, &notes, opts, context, &mut stats, progress).await?;
                return Ok(Summary { format: opts.format, text, stats, quotes, map_notes: Some(notes) });
            }
            if round == MAX_ROUNDS || next_units.len() >= units.len() {
                return Err(SummarizeError::NoProgress { tokens: self.count(&notes), budget: context.saturating_sub(final_out), rounds: round });
            }
            units = next_units;
        }
        unreachable!("the loop returns by its last round")
    }

    /// Transcript tokens per map chunk, and the most sections such a chunk's
    /// answer has room for.
    fn chunk_budget(&self, context: usize, system: usize, shape: &NotesShape) -> Result<(usize, usize), SummarizeError> {
        let per_section = self.sizes(&grammar::notes(&[NotesSection { range: Some("00:00 - 00:00".into()), text: "x".repeat(200) }], shape)).budget;
        // A chunk of c tokens gets about c / T sections of `per_section` answer
        // tokens each: c + c·per/T + system + one spare section ≤ context.
        let avail = context.saturating_sub(system + 2 * per_section);
        let chunk = avail * TOKENS_PER_SECTION / (TOKENS_PER_SECTION + per_section);
        if chunk < 64 {
            return Err(SummarizeError::ContextTooSmall { context, needed: system, output: 2 * per_section });
        }
        Ok((chunk, ((context - system - chunk) / per_section).max(1)))
    }

    fn text_shape(&self, opts: &SummarizeOptions) -> TextShape {
        TextShape::for_format(opts.format, opts.length)
    }

    /// The grammar of a non-notes format.
    fn final_spec(&self, format: Format, opts: &SummarizeOptions) -> GrammarSpec {
        match format {
            Format::Structured => grammar::structured(&StructuredSizes::for_length(opts.length)),
            Format::Notes => grammar::notes(&[], &NotesShape::for_length(opts.length)),
            f => grammar::text(f, &self.text_shape(opts)),
        }
    }

    /// Token sizes of a grammar's answer: its layout as it will be forced, the
    /// closing reserve, and the budget (layout + fields at about 3.5
    /// characters per token + reserve).
    fn sizes(&self, spec: &GrammarSpec) -> AnswerSizes {
        let structure = spec.layout.iter().map(|p| self.engine.tokenizer.encode_continuation(p).len()).sum::<usize>();
        let reserve = spec.fields * spec.close_tokens + 8;
        AnswerSizes { structure, reserve, budget: structure + spec.content_chars * 2 / 7 + reserve }
    }

    fn notes_input(&self, parts: &[Vec<Piece>]) -> String {
        parts
            .iter()
            .enumerate()
            .map(|(i, p)| match mapreduce::time_range(p) {
                Some(r) => format!("[Part {}, {r}]\n{}", i + 1, mapreduce::join(p)),
                None => format!("[Part {}]\n{}", i + 1, mapreduce::join(p)),
            })
            .collect::<Vec<_>>()
            .join("\n\n")
    }

    /// Notes on `pieces` in `k` chronological sections. Returns the Markdown and
    /// each section as a piece (its time span; title and points as text) for a
    /// further round of condensing.
    #[allow(clippy::too_many_arguments)]
    async fn notes_pass(
        &self,
        pieces: &[Piece],
        k: usize,
        shape: &NotesShape,
        full: &str,
        opts: &SummarizeOptions,
        context: usize,
        pass: Pass,
        stats: &mut SummaryStats,
        quotes: &mut QuoteReport,
        progress: &mut dyn FnMut(&Progress) -> bool,
    ) -> Result<(String, Vec<Piece>), SummarizeError> {
        let parts = mapreduce::partition(pieces, k);
        let plan = notes_plan(&parts);
        let spec = grammar::notes(&plan, shape);
        let task = prompt::task(Format::Notes, &self.text_shape(opts), shape);
        let messages = prompt::messages(&prompt::system(Format::Notes), &[], &prompt::user(Source::Transcript, &self.defuse(&self.notes_input(&parts)), task.as_deref()));
        let md = self.generate(&messages, &spec, Format::Notes, opts, context, pass, stats, progress).await?;
        // Split at headers; each section's quotes are checked against its own text.
        let mut out = vec![];
        let mut units = vec![];
        for (i, sec) in split_sections(&md).into_iter().enumerate() {
            let (source, part) = match (plan.get(i), parts.get(i)) {
                (Some(s), Some(p)) => (s.text.as_str(), p.as_slice()),
                _ => (full, &[][..]),
            };
            let fixed = if shape.quotes > 0 { notes::verify_quotes(sec, source, full, quotes) } else { sec.trim_end().to_string() };
            units.push(Piece {
                start: part.iter().find_map(|p| p.start),
                end: part.iter().rev().find_map(|p| p.end.or(p.start)),
                text: fixed.lines().filter(|l| !l.starts_with('"') && *l != "Quotes:").map(|l| l.trim_start_matches("### ")).collect::<Vec<_>>().join(" "),
            });
            out.push(fixed);
        }
        Ok((out.join("\n\n"), units))
    }

    /// The requested (non-notes) format from the transcript or from notes.
    async fn final_pass(&self, source: Source, input: &str, opts: &SummarizeOptions, context: usize, stats: &mut SummaryStats, progress: &mut dyn FnMut(&Progress) -> bool) -> Result<String, SummarizeError> {
        let system = prompt::system(opts.format);
        let task = prompt::task(opts.format, &self.text_shape(opts), &NotesShape::for_length(opts.length));
        let spec = self.final_spec(opts.format, opts);
        let out = self.sizes(&spec).budget;
        let user = prompt::user(source, &self.defuse(input), task.as_deref());
        // Worked examples are transcripts, so they only help a transcript input.
        let mut shots = vec![];
        if opts.format == Format::Structured && source == Source::Transcript {
            for shot in prompt::shots(input).into_iter().take(opts.max_shots) {
                shots.push(shot);
                let n = self.engine.chat_tokens(&prompt::messages(&system, &shots, &user))?.len();
                if n + out > context {
                    shots.pop();
                    break;
                }
            }
        }
        stats.shots = shots.len();
        let messages = prompt::messages(&system, &shots, &user);
        let text = self.generate(&messages, &spec, opts.format, opts, context, Pass::Final, stats, progress).await?;
        if opts.format == Format::Structured {
            StructuredSummary::parse(&text)?;
        }
        Ok(text)
    }

    /// One constrained generation within the grammar's budget (less if the
    /// context is shorter); closing mode starts early enough that the rest of
    /// the layout and every field's minimum always fit.
    #[allow(clippy::too_many_arguments)]
    async fn generate(
        &self,
        messages: &[crate::text::chat::Message],
        spec: &GrammarSpec,
        format: Format,
        opts: &SummarizeOptions,
        context: usize,
        pass: Pass,
        stats: &mut SummaryStats,
        progress: &mut dyn FnMut(&Progress) -> bool,
    ) -> Result<String, SummarizeError> {
        let prompt = self.engine.chat_tokens(messages)?;
        let sizes = self.sizes(spec);
        let max_tokens = sizes.budget.min(context.saturating_sub(prompt.len()));
        // Below this even the shortest answer cannot be written.
        let least = sizes.structure + sizes.reserve + spec.fields;
        if max_tokens < least {
            return Err(SummarizeError::ContextTooSmall { context, needed: prompt.len(), output: least });
        }
        let budget = Budget {
            max_tokens,
            structure_tokens: sizes.structure,
            field_reserve: sizes.reserve,
            closers: spec.closers.clone(),
            repeat_penalty: opts.repeat_penalty,
            repeat_window: 256,
        };
        let mut constraint = self.space.constrain(&spec.lark, budget)?;
        let gen_opts = GenerateOptions { max_tokens, sampler: opts.sampler.clone(), stop: vec![], chunk: 512, n_ctx: context, ignore_eos: false };
        if !progress(&Progress::Started { pass }) {
            return Err(SummarizeError::Aborted);
        }
        let g = self.engine.generate_async(&prompt, &gen_opts, Some(&mut constraint), &mut |piece| progress(&Progress::Text { pass, piece: piece.to_string() })).await?;
        if g.stop == StopReason::Aborted {
            return Err(SummarizeError::Aborted);
        }
        stats.add(&g, &constraint.stats);
        progress(&Progress::Finished { pass, tokens: g.stats.generated_tokens, seconds: g.stats.prefill_s + g.stats.decode_s });
        if let Some(e) = constraint.error() {
            return Err(e.into());
        }
        // The grammar's end, or an end-of-turn token the mask only allows where
        // the grammar may end.
        let complete = (g.stop == StopReason::Complete && constraint.is_finished()) || g.stop == StopReason::Eos;
        if !complete {
            return Err(SummarizeError::Incomplete { format, stop: g.stop, tokens: g.tokens.len() });
        }
        Ok(g.text)
    }
}

/// What [`Summarizer::plan`] found.
#[derive(Debug, Clone, Copy)]
pub struct PassPlan {
    pub transcript_tokens: usize,
    /// Prompt of the one-pass attempt: instructions plus the transcript.
    pub prompt_tokens: usize,
    /// Token budget of the answer.
    pub answer_tokens: usize,
    pub context: usize,
    /// False: the transcript will be summarized chunk by chunk (map-reduce).
    pub one_pass: bool,
}

/// [`Summarizer::work_plan`]: the [`PassPlan`] and the parts of its arithmetic
/// the passes go on with.
struct WorkPlan {
    /// The transcript's text.
    text: String,
    /// The transcript cut into pieces of about a third of a section's text
    /// (20 to 600 bytes); the notes' sections and the map's chunks are made of them.
    pieces: Vec<Piece>,
    /// Sections of one-pass notes.
    sections: usize,
    notes_shape: NotesShape,
    /// Tokens of the requested format's instructions, with a margin for the chat markup.
    overhead: usize,
    pass: PassPlan,
}

struct AnswerSizes {
    structure: usize,
    reserve: usize,
    budget: usize,
}

fn notes_plan(parts: &[Vec<Piece>]) -> Vec<NotesSection> {
    parts.iter().map(|p| NotesSection { range: mapreduce::time_range(p), text: mapreduce::join(p) }).collect()
}

/// The sections of generated notes, each starting at its `### ` header.
fn split_sections(md: &str) -> Vec<&str> {
    let mut starts: Vec<usize> = md.match_indices("### ").filter(|&(i, _)| i == 0 || md[..i].ends_with('\n')).map(|(i, _)| i).collect();
    starts.push(md.len());
    starts.windows(2).map(|w| md[w[0]..w[1]].trim_end()).filter(|s| !s.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_split_at_headers_only() {
        let md = "### A (0:00 - 0:10)\n1. x ### y.\n2. z.\n\n### B\n1. q.\n2. r.";
        assert_eq!(split_sections(md), vec!["### A (0:00 - 0:10)\n1. x ### y.\n2. z.", "### B\n1. q.\n2. r."]);
    }
}
