//! How a transcript will be summarized, worked out before any generation: the
//! token arithmetic that chooses one pass or map-reduce and sizes the answers
//! and the map's chunks.

use super::formats::{NotesShape, StructuredSizes, TextShape};
use super::grammar::{self, GrammarSpec, NotesSection};
use super::mapreduce::{self, Piece};
use super::{prompt, Format, SummarizeError, SummarizeOptions, Summarizer};
use crate::transcript::Transcript;

/// Transcript tokens per notes section: one-pass notes get one section per
/// this many tokens (at least 5, at most [`MAX_SECTIONS`]); in the map, a
/// chunk's notes get one per this many (notes format) or per twice as many
/// (notes to be condensed into another format).
pub(super) const TOKENS_PER_SECTION: usize = 700;
const MAX_SECTIONS: usize = 12;

impl Summarizer {
    /// Whether `transcript` fits one pass or will be map-reduced: the plan
    /// [`Summarizer::summarize_async`] starts from (the web app warns before it starts).
    pub fn plan(&self, transcript: &Transcript, opts: &SummarizeOptions) -> PassPlan {
        self.work_plan(transcript, opts).pass
    }

    /// The plan with what the passes need of its arithmetic: the transcript
    /// cut into pieces, the one-pass notes' sections, the instructions' tokens.
    pub(super) fn work_plan(&self, transcript: &Transcript, opts: &SummarizeOptions) -> WorkPlan {
        let text = transcript.text();
        let context = self.context(opts);
        let transcript_tokens = self.count_tokens(&text);
        let sections = transcript_tokens.div_ceil(TOKENS_PER_SECTION).clamp(5, MAX_SECTIONS);
        let piece_chars = (text.len() / (3 * sections)).clamp(20, 600);
        let pieces = mapreduce::pieces(&transcript.segments, piece_chars);
        let notes_shape = NotesShape::for_length(opts.length);
        // The one-pass prompt (notes: the transcript in parts, one per section) and its answer.
        let (input_tokens, spec) = match opts.format {
            Format::Notes => {
                let parts = mapreduce::partition(&pieces, sections);
                (self.count_tokens(&self.notes_input(&parts)), grammar::notes(&notes_outline(&parts), &notes_shape))
            }
            f => (transcript_tokens, self.answer_grammar(f, opts)),
        };
        // The margin covers the user turn's heading and the chat markup.
        let instruction_tokens = self.count_tokens(&prompt::system(opts.format)) + self.count_tokens(&prompt::task(opts.format, &self.text_shape(opts), &notes_shape).unwrap_or_default()) + 32;
        let prompt_tokens = input_tokens + instruction_tokens;
        let answer_tokens = self.answer_sizes(&spec).budget;
        if opts.format == Format::Structured {
            // Written section by section (sections.rs); a plan that cannot be made
            // (a context too small for the overview) shows as no pass at all, and the
            // run itself reports why.
            let pass = match self.sections_plan(&pieces, transcript_tokens, opts, context) {
                Ok(s) => s.pass,
                Err(_) => PassPlan { transcript_tokens, prompt_tokens, answer_tokens, context, one_pass: false, passes: 0 },
            };
            return WorkPlan { transcript_text: text, pieces, sections, notes_shape, instruction_tokens, map: None, pass };
        }
        let one_pass = prompt_tokens + answer_tokens <= context;
        let map = (!one_pass).then(|| self.map_plan(opts, context, &pieces, notes_shape));
        let passes = match &map {
            None => 1,
            // A pass per chunk, then (except for notes, the chunks' notes joined) one to
            // write the result; further condensing rounds are not foreseen here.
            Some(Ok(m)) => m.first_chunks.len() + usize::from(opts.format != Format::Notes),
            Some(Err(_)) => 0,
        };
        let pass = PassPlan { transcript_tokens, prompt_tokens, answer_tokens, context, one_pass, passes };
        WorkPlan { transcript_text: text, pieces, sections, notes_shape, instruction_tokens, map, pass }
    }

    /// The map step's sizes and its first round of chunks, worked out once for the
    /// plan and the pipeline.
    fn map_plan(&self, opts: &SummarizeOptions, context: usize, pieces: &[Piece], notes_shape: NotesShape) -> Result<MapPlan, SummarizeError> {
        let shape = if opts.format == Format::Notes { notes_shape } else { NotesShape::condensed() };
        let instruction_tokens = self.count_tokens(&prompt::system(Format::Notes)) + self.count_tokens(&prompt::task(Format::Notes, &self.text_shape(opts), &shape).unwrap_or_default()) + 48;
        let (chunk_tokens, max_sections) = self.chunk_budget(context, instruction_tokens, &shape)?;
        let first_chunks = self.map_chunks(pieces, chunk_tokens);
        Ok(MapPlan { shape, chunk_tokens, max_sections, first_chunks })
    }

    /// `pieces` grouped into chunks of at most `chunk_tokens`, overlapping a little.
    pub(super) fn map_chunks(&self, pieces: &[Piece], chunk_tokens: usize) -> Vec<Vec<Piece>> {
        mapreduce::chunks(pieces, chunk_tokens, (chunk_tokens / 10).min(200), &|s: &str| self.count_tokens(s))
    }

    /// Transcript tokens per map chunk, and the most sections such a chunk's
    /// answer has room for.
    pub(super) fn chunk_budget(&self, context: usize, system: usize, shape: &NotesShape) -> Result<(usize, usize), SummarizeError> {
        let per_section = self.answer_sizes(&grammar::notes(&[NotesSection { range: Some("00:00 - 00:00".into()), text: "x".repeat(200) }], shape)).budget;
        // A chunk of c tokens gets about c / T sections of `per_section` answer
        // tokens each: c + c·per/T + system + one spare section ≤ context.
        let avail = context.saturating_sub(system + 2 * per_section);
        let chunk = avail * TOKENS_PER_SECTION / (TOKENS_PER_SECTION + per_section);
        if chunk < 64 {
            return Err(SummarizeError::ContextTooSmall { context, needed: system, output: 2 * per_section });
        }
        Ok((chunk, ((context - system - chunk) / per_section).max(1)))
    }

    /// Length limits of a text format's answer.
    pub(super) fn text_shape(&self, opts: &SummarizeOptions) -> TextShape {
        TextShape::for_format(opts.format, opts.length)
    }

    /// The grammar of the answer in `format` (for notes, one without sections:
    /// the notes passes build theirs from the sections they ask for).
    pub(super) fn answer_grammar(&self, format: Format, opts: &SummarizeOptions) -> GrammarSpec {
        match format {
            // The overview's (the last pass); the layout and sizes do not depend on the
            // talk, which the pass adds.
            Format::Structured => grammar::overview(&StructuredSizes::for_length(opts.length), None),
            Format::Notes => grammar::notes(&[], &NotesShape::for_length(opts.length)),
            f => grammar::text(f, &self.text_shape(opts)),
        }
    }

    /// Token sizes of a grammar's answer: its layout as it will be forced, the
    /// closing reserve, and the budget (layout + fields at about 3.5
    /// characters per token + reserve).
    pub(super) fn answer_sizes(&self, spec: &GrammarSpec) -> AnswerSizes {
        let structure = spec.layout.iter().map(|p| self.engine.tokenizer.encode_continuation(p).len()).sum::<usize>();
        let reserve = spec.fields * spec.close_tokens + spec.closing.wrap_up + 8;
        AnswerSizes { structure, reserve, budget: structure + spec.content_chars * 2 / 7 + reserve }
    }

    /// The notes prompt's input: each part of the transcript under a
    /// `[Part i, range]` heading, one part per section the notes must have.
    pub(super) fn notes_input(&self, parts: &[Vec<Piece>]) -> String {
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
}

/// What [`Summarizer::plan`] found.
#[derive(Debug, Clone, Copy)]
pub struct PassPlan {
    pub transcript_tokens: usize,
    /// Prompt of the one-pass attempt: instructions plus the transcript (a
    /// structured summary: every pass's prompt tokens that are not the kept prefix's).
    pub prompt_tokens: usize,
    /// Token budget of the answer (a structured summary: of its largest pass).
    pub answer_tokens: usize,
    pub context: usize,
    /// False: the transcript will be summarized chunk by chunk (map-reduce; a
    /// structured summary: some of its parts).
    pub one_pass: bool,
    /// Model passes foreseen: 1, or the map's chunks plus the pass that writes the
    /// result (0: the context cannot hold a map pass).
    pub passes: usize,
}

/// The map step of a transcript that does not fit one pass.
pub(super) struct MapPlan {
    /// The notes each chunk is turned into.
    pub(super) shape: NotesShape,
    pub(super) chunk_tokens: usize,
    /// The most sections a chunk's notes have room for.
    pub(super) max_sections: usize,
    /// Round one's chunks of the transcript's pieces.
    pub(super) first_chunks: Vec<Vec<Piece>>,
}

/// [`Summarizer::work_plan`]: the [`PassPlan`] and the parts of its arithmetic
/// the passes go on with.
pub(super) struct WorkPlan {
    /// The transcript's text.
    pub(super) transcript_text: String,
    /// The transcript cut into pieces of about a third of a section's text
    /// (20 to 600 bytes); the notes' sections and the map's chunks are made of them.
    pub(super) pieces: Vec<Piece>,
    /// Sections of one-pass notes.
    pub(super) sections: usize,
    pub(super) notes_shape: NotesShape,
    /// Tokens of the requested format's instructions, with a margin for the chat markup.
    pub(super) instruction_tokens: usize,
    /// The map step, when the transcript does not fit one pass.
    pub(super) map: Option<Result<MapPlan, SummarizeError>>,
    pub(super) pass: PassPlan,
}

/// [`Summarizer::answer_sizes`], in tokens.
pub(super) struct AnswerSizes {
    /// The grammar's fixed layout (keys, headers, punctuation).
    pub(super) structure: usize,
    /// Kept for closing every field.
    pub(super) reserve: usize,
    /// The most the answer may take.
    pub(super) budget: usize,
}

/// What the notes grammar is built from: each part's time range and text.
pub(super) fn notes_outline(parts: &[Vec<Piece>]) -> Vec<NotesSection> {
    parts.iter().map(|p| NotesSection { range: mapreduce::time_range(p), text: mapreduce::join(p) }).collect()
}
