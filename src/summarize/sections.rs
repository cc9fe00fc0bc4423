//! The structured summary in passes (issue 16): its five sections follow the talk.
//!
//! One greedy pass over the whole transcript gave sections that repeated each other
//! word for word (Qwen2.5-Coder-1.5B through llama.cpp, with a JSON-schema grammar):
//! nothing in the prompt made section 3 about the third part of the talk. Here the
//! structure comes from the pipeline instead:
//! 1. the transcript is cut into five contiguous parts of about equal text, on the
//!    pieces' sentence (or word) boundaries, each with its time range when the
//!    transcript has times;
//! 2. section k is written from part k alone (a part too long for the context is
//!    first condensed into notes by the map step long transcripts already have), its
//!    topics runs of that part's own words, and none of its fields equal to a field of
//!    an earlier section;
//! 3. the overview (introduction, the five global topics from the whole talk's words,
//!    the general topics with their complexity) is written from the five sections,
//!    after the worked examples' sections and overviews (they fit the overview's input,
//!    sections, and cannot leak topics: those must be the talk's words).
//! The sections and the overview are assembled into the schema's JSON, each section's
//! title ending with its part's time range when known (`Section 2: Title (4:10 -
//! 8:35)`, which the schema's `^Section 2(: .+)?$` allows).

use super::formats::{NotesShape, StructuredSizes};
use super::grammar;
use super::mapreduce::{self, Piece};
use super::notes::QuoteReport;
use super::pipeline::MAX_ROUNDS;
use super::plan::{PassPlan, TOKENS_PER_SECTION};
use super::prompt::{self, Source};
use super::structured::{Overview, Section, StructuredSummary, SECTIONS};
use super::{Format, Pass, Progress, SummarizeError, SummarizeOptions, Summarizer, Summary, SummaryStats};
use crate::transcript::Transcript;

/// Tokens of chat markup and the part's heading around a pass's input.
const MARKUP_TOKENS: usize = 48;

/// A part's distinctive words named in its section's task ([`super::terms`]), and
/// the tokens that line may take.
const TERMS: usize = 8;
const TERMS_TOKENS: usize = 24 + 4 * TERMS;

/// How a structured summary will be written, worked out before any generation.
pub(super) struct SectionsPlan {
    /// The transcript's five parts, in order (fewer when it has fewer pieces: then
    /// sections share parts, see [`SectionsPlan::part_of`]).
    pub(super) parts: Vec<Vec<Piece>>,
    /// Per part: whether its section pass reads it whole (else its notes).
    pub(super) fits: Vec<bool>,
    /// The map step for parts that do not fit: chunk size and the most sections a
    /// chunk's (condensed) notes have room for.
    map: Option<(usize, usize)>,
    /// Map passes foreseen (first round only).
    pub(super) chunks: usize,
    pub(super) pass: PassPlan,
}

impl SectionsPlan {
    /// The part section `n` (0-based) is written from.
    fn part_of(&self, n: usize) -> usize {
        n * self.parts.len() / SECTIONS
    }
}

impl Summarizer {
    /// The transcript text each section of a structured summary of `transcript` is
    /// written from, in section order.
    pub fn section_parts(&self, transcript: &Transcript, opts: &SummarizeOptions) -> Vec<String> {
        let parts = mapreduce::partition(&self.work_plan(transcript, opts).pieces, SECTIONS);
        (0..SECTIONS).map(|n| mapreduce::join(&parts[n * parts.len() / SECTIONS])).collect()
    }

    /// The plan of a structured summary of `pieces` (the transcript's, cut as
    /// [`Summarizer::work_plan`] cuts them).
    pub(super) fn sections_plan(&self, pieces: &[Piece], transcript_tokens: usize, opts: &SummarizeOptions, context: usize) -> Result<SectionsPlan, SummarizeError> {
        let sizes = StructuredSizes::for_length(opts.length);
        let parts = mapreduce::partition(pieces, SECTIONS);
        let section_answer = self.answer_sizes(&grammar::section(SECTIONS, &sizes, None, &[], &[])).budget;
        let section_instructions = self.count_tokens(prompt::section_system()) + self.count_tokens(&prompt::section_task(SECTIONS)) + MARKUP_TOKENS + TERMS_TOKENS;
        let overview_answer = self.answer_sizes(&grammar::overview(&sizes, None)).budget;
        // The overview reads the sections, each at most its answer's size.
        let overview_prompt = self.count_tokens(&prompt::system(Format::Structured)) + MARKUP_TOKENS + SECTIONS * section_answer;
        if overview_prompt + overview_answer > context {
            return Err(SummarizeError::ContextTooSmall { context, needed: overview_prompt, output: overview_answer });
        }
        let part_tokens: Vec<usize> = parts.iter().map(|p| self.count_tokens(&mapreduce::join(p)) + 16).collect();
        let fits: Vec<bool> = part_tokens.iter().map(|t| t + section_instructions + section_answer <= context).collect();
        let mut map = None;
        let mut chunks = 0;
        if fits.iter().any(|f| !f) {
            let shape = NotesShape::condensed();
            let notes_instructions = self.count_tokens(&prompt::system(Format::Notes)) + self.count_tokens(&prompt::task(Format::Notes, &self.text_shape(opts), &shape).unwrap_or_default()) + MARKUP_TOKENS;
            let (chunk_tokens, max_sections) = self.chunk_budget(context, notes_instructions, &shape)?;
            for (p, _) in parts.iter().zip(&fits).filter(|(_, f)| !**f) {
                chunks += self.map_chunks(p, chunk_tokens).len();
            }
            map = Some((chunk_tokens, max_sections));
        }
        let read: usize = part_tokens.iter().zip(&fits).map(|(t, f)| if *f { *t } else { 0 }).sum();
        let prompt_tokens = read + SECTIONS * section_instructions + overview_prompt;
        let passes = SECTIONS + 1 + chunks;
        let pass = PassPlan { transcript_tokens, prompt_tokens, answer_tokens: section_answer.max(overview_answer), context, one_pass: chunks == 0, passes };
        Ok(SectionsPlan { parts, fits, map, chunks, pass })
    }

    /// The structured summary: five section passes, then the overview (see the module).
    pub(super) async fn structured_async(&self, transcript: &Transcript, opts: &SummarizeOptions, progress: &mut dyn FnMut(&Progress) -> bool) -> Result<Summary, SummarizeError> {
        let work = self.work_plan(transcript, opts);
        let context = work.pass.context;
        let plan = self.sections_plan(&work.pieces, work.pass.transcript_tokens, opts, context)?;
        debug_assert_eq!(plan.parts, mapreduce::partition(&work.pieces, SECTIONS), "section_parts cuts the same parts");
        let sizes = StructuredSizes::for_length(opts.length);
        let mut stats = SummaryStats { chunks: plan.chunks, ..SummaryStats::default() };
        let mut quotes = QuoteReport::default();
        if !progress(&Progress::Plan { chunks: plan.chunks, passes: plan.pass.passes, prompt_tokens: plan.pass.prompt_tokens, context }) {
            return Err(SummarizeError::Aborted);
        }
        // Every field written so far: none may be written again (normalized).
        let mut written: Vec<String> = vec![];
        let mut sections: Vec<Section> = vec![];
        let mut map_notes = vec![];
        let texts: Vec<String> = plan.parts.iter().map(|p| mapreduce::join(p)).collect();
        let terms = super::terms::distinctive(&texts.iter().map(String::as_str).collect::<Vec<_>>(), TERMS);
        for n in 0..SECTIONS {
            let p = plan.part_of(n);
            let part = &plan.parts[p];
            let text = &texts[p];
            let range = mapreduce::time_range(part);
            let heading = match &range {
                Some(r) => format!("[Part {} of {SECTIONS}, {r}]", n + 1),
                None => format!("[Part {} of {SECTIONS}]", n + 1),
            };
            let (source, body) = if plan.fits[p] {
                (Source::Part, format!("{heading}\n{text}"))
            } else {
                let (chunk_tokens, max_sections) = plan.map.expect("the plan maps the parts that do not fit");
                let notes = self.part_notes(part, chunk_tokens, max_sections, &work.transcript_text, opts, context, &mut stats, &mut quotes, progress).await?;
                map_notes.push(notes.clone());
                (Source::Notes, format!("{heading}\n{notes}"))
            };
            let system = prompt::section_system();
            let task = prompt::section_task(n + 1);
            let asked = match prompt::section_terms(&terms[p]) {
                Some(t) => format!("{task}\n{t}"),
                None => task.clone(),
            };
            let messages = prompt::messages(system, &[], &prompt::user(source, &self.defuse(&body), Some(&asked)));
            let spec = grammar::section(n + 1, &sizes, Some(text), &terms[p], &written);
            let pass = Pass::Section { index: n, of: SECTIONS };
            let json = self.generate(&messages, &prompt::fixed_texts(system, Some(&task)), &written, &spec, Format::Structured, opts, context, pass, &mut stats, progress).await?;
            let mut section: Section = serde_json::from_str(&json).map_err(super::structured::StructuredError::from)?;
            written.push(section.title.clone());
            written.extend(section.content.iter().chain(&section.topics).cloned());
            if let Some(r) = range {
                section.title = format!("{} ({r})", section.title);
            }
            sections.push(section);
        }
        let overview = self.overview_pass(&sections, &written, &work.transcript_text, &sizes, opts, context, &mut stats, progress).await?;
        let text = StructuredSummary::assemble(overview, sections).render();
        // Every rule of the schema, checked on the JSON as the user gets it.
        StructuredSummary::parse(&text)?;
        let map_notes = (!map_notes.is_empty()).then(|| map_notes.join("\n\n"));
        Ok(Summary { format: Format::Structured, text, stats, quotes, map_notes })
    }

    /// The introduction, global topics and general topics, from the sections.
    #[allow(clippy::too_many_arguments)]
    async fn overview_pass(
        &self,
        sections: &[Section],
        written: &[String],
        talk: &str,
        sizes: &StructuredSizes,
        opts: &SummarizeOptions,
        context: usize,
        stats: &mut SummaryStats,
        progress: &mut dyn FnMut(&Progress) -> bool,
    ) -> Result<Overview, SummarizeError> {
        let system = prompt::system(Format::Structured);
        let spec = grammar::overview(sizes, Some(talk));
        let answer_tokens = self.answer_sizes(&spec).budget;
        let input: Vec<String> = sections.iter().map(Section::as_notes).collect();
        let user = prompt::user(Source::Sections, &self.defuse(&input.join("\n\n")), None);
        let mut shots = vec![];
        for shot in prompt::shots(talk).into_iter().take(opts.max_shots) {
            shots.push(shot);
            let n = self.engine.chat_tokens(&prompt::messages(&system, &shots, &user))?.len();
            if n + answer_tokens > context {
                shots.pop();
                break;
            }
        }
        stats.shots = shots.len();
        let messages = prompt::messages(&system, &shots, &user);
        let json = self.generate(&messages, &prompt::fixed_texts(&system, None), written, &spec, Format::Structured, opts, context, Pass::Final, stats, progress).await?;
        Ok(serde_json::from_str(&json).map_err(super::structured::StructuredError::from)?)
    }

    /// Notes on a part too long to read at once, condensed in rounds until they fit
    /// a section pass (the map step of a long transcript, on one part).
    #[allow(clippy::too_many_arguments)]
    async fn part_notes(
        &self,
        part: &[Piece],
        chunk_tokens: usize,
        max_sections: usize,
        transcript_text: &str,
        opts: &SummarizeOptions,
        context: usize,
        stats: &mut SummaryStats,
        quotes: &mut QuoteReport,
        progress: &mut dyn FnMut(&Progress) -> bool,
    ) -> Result<String, SummarizeError> {
        let shape = NotesShape::condensed();
        let sizes = StructuredSizes::for_length(opts.length);
        let budget = context
            .saturating_sub(self.answer_sizes(&grammar::section(SECTIONS, &sizes, None, &[], &[])).budget)
            .saturating_sub(self.count_tokens(prompt::section_system()) + self.count_tokens(&prompt::section_task(SECTIONS)) + MARKUP_TOKENS + TERMS_TOKENS);
        let mut pieces = part.to_vec();
        for round in 1..=MAX_ROUNDS {
            let chunks = self.map_chunks(&pieces, chunk_tokens);
            let mut notes = vec![];
            let mut next = vec![];
            for (index, chunk) in chunks.iter().enumerate() {
                let tokens: usize = chunk.iter().map(|p| self.count_tokens(&p.text) + 1).sum();
                let sections = tokens.div_ceil(2 * TOKENS_PER_SECTION).clamp(1, max_sections);
                let pass = Pass::Chunk { round, index, of: chunks.len() };
                let (md, section_pieces) = self.notes_pass(chunk, sections, &shape, transcript_text, opts, context, pass, stats, quotes, progress).await?;
                notes.push(md);
                next.extend(section_pieces);
            }
            let notes = notes.join("\n\n");
            let tokens = self.count_tokens(&notes);
            if tokens <= budget {
                return Ok(notes);
            }
            if round == MAX_ROUNDS || next.len() >= pieces.len() {
                return Err(SummarizeError::NoProgress { tokens, budget, rounds: round });
            }
            pieces = next;
        }
        unreachable!("the loop returns by its last round")
    }
}
