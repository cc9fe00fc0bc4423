//! The passes: one over the whole transcript, or map (chunks to notes) and
//! reduce (notes to the requested format); each is one grammar-constrained
//! generation.

use super::constrain::Budget;
use super::formats::NotesShape;
use super::grammar::{self, GrammarSpec};
use super::mapreduce::{self, Piece};
use super::notes::{self, QuoteReport};
use super::plan::{notes_outline, MapPlan, WorkPlan, TOKENS_PER_SECTION};
use super::prompt::{self, Source};
use super::{Format, Pass, Progress, SummarizeError, SummarizeOptions, Summarizer, Summary, SummaryStats};
use crate::transcript::Transcript;
use crate::engine::Event;
use crate::{GenerateOptions, StopReason};

/// Map rounds before giving up on shrinking the notes.
pub(super) const MAX_ROUNDS: usize = 4;

impl Summarizer {
    /// The pipeline itself; its only awaits are the GPU's readbacks, so the browser
    /// can run it on WebGPU (natively [`Summarizer::summarize_until`] blocks on it).
    pub async fn summarize_async(&self, transcript: &Transcript, opts: &SummarizeOptions, progress: &mut dyn FnMut(&Progress) -> bool) -> Result<Summary, SummarizeError> {
        if opts.format == Format::Structured {
            return self.structured_async(transcript, opts, progress).await;
        }
        let WorkPlan { transcript_text, pieces, sections, notes_shape, instruction_tokens, map, pass: plan } = self.work_plan(transcript, opts);
        let context = plan.context;
        let mut stats = SummaryStats::default();
        let mut quotes = QuoteReport::default();

        // One pass if the whole transcript fits with its answer.
        if plan.one_pass {
            if !progress(&Progress::Plan { chunks: 0, passes: 1, prompt_tokens: plan.prompt_tokens, context }) {
                return Err(SummarizeError::Aborted);
            }
            let text = match opts.format {
                Format::Notes => self.notes_pass(&pieces, sections, &notes_shape, &transcript_text, opts, context, Pass::Final, &mut stats, &mut quotes, progress).await?.0,
                _ => self.final_pass(Source::Transcript, &transcript_text, opts, context, &mut stats, progress).await?,
            };
            return Ok(Summary { format: opts.format, text, stats, quotes, map_notes: None });
        }

        // Map: chunks of transcript → notes with time ranges.
        let final_notes = opts.format == Format::Notes;
        let MapPlan { shape, chunk_tokens, max_sections, first_chunks } = map.expect("work_plan plans the map when one pass will not do")?;
        let final_answer_tokens = self.answer_sizes(&self.answer_grammar(opts.format, opts)).budget;
        let count_tokens = |s: &str| self.count_tokens(s);
        let mut round_pieces = pieces;
        let mut first_chunks = Some(first_chunks);
        for round in 1..=MAX_ROUNDS {
            let chunks = first_chunks.take().unwrap_or_else(|| self.map_chunks(&round_pieces, chunk_tokens));
            if round == 1 {
                stats.chunks = chunks.len();
                if !progress(&Progress::Plan { chunks: chunks.len(), passes: plan.passes, prompt_tokens: plan.transcript_tokens, context }) {
                    return Err(SummarizeError::Aborted);
                }
            }
            let mut notes_md = vec![];
            let mut next_round_pieces = vec![];
            for (index, chunk) in chunks.iter().enumerate() {
                let tokens: usize = chunk.iter().map(|p| count_tokens(&p.text) + 1).sum();
                let chunk_sections = if final_notes {
                    // Enough sections overall for the notes' five, more for long chunks.
                    tokens.div_ceil(TOKENS_PER_SECTION).max(5usize.div_ceil(chunks.len()))
                } else {
                    tokens.div_ceil(2 * TOKENS_PER_SECTION)
                };
                let pass = Pass::Chunk { round, index, of: chunks.len() };
                let (md, section_pieces) = self.notes_pass(chunk, chunk_sections.clamp(1, max_sections), &shape, &transcript_text, opts, context, pass, &mut stats, &mut quotes, progress).await?;
                notes_md.push(md);
                next_round_pieces.extend(section_pieces);
            }
            let notes = notes_md.join("\n\n");
            if final_notes {
                return Ok(Summary { format: opts.format, text: notes, stats, quotes, map_notes: None });
            }
            // Reduce when the notes fit; otherwise condense the notes themselves.
            let reduce_prompt_tokens = self.count_tokens(&notes) + instruction_tokens + 16;
            if reduce_prompt_tokens + final_answer_tokens <= context {
                let text = self.final_pass(Source::Notes, &notes, opts, context, &mut stats, progress).await?;
                return Ok(Summary { format: opts.format, text, stats, quotes, map_notes: Some(notes) });
            }
            if round == MAX_ROUNDS || next_round_pieces.len() >= round_pieces.len() {
                return Err(SummarizeError::NoProgress { tokens: self.count_tokens(&notes), budget: context.saturating_sub(final_answer_tokens), rounds: round });
            }
            round_pieces = next_round_pieces;
        }
        unreachable!("the loop returns by its last round")
    }

    /// Notes on `pieces` in `sections` chronological sections. Returns the Markdown and
    /// each section as a piece (its time span; title and points as text) for a
    /// further round of condensing.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn notes_pass(
        &self,
        pieces: &[Piece],
        sections: usize,
        shape: &NotesShape,
        transcript_text: &str,
        opts: &SummarizeOptions,
        context: usize,
        pass: Pass,
        stats: &mut SummaryStats,
        quotes: &mut QuoteReport,
        progress: &mut dyn FnMut(&Progress) -> bool,
    ) -> Result<(String, Vec<Piece>), SummarizeError> {
        let parts = mapreduce::partition(pieces, sections);
        let outline = notes_outline(&parts);
        let spec = grammar::notes(&outline, shape);
        let task = prompt::task(Format::Notes, &self.text_shape(opts), shape);
        let system = prompt::system(Format::Notes);
        let messages = prompt::messages(&system, &[], &prompt::user(Source::Transcript, &self.defuse(&self.notes_input(&parts)), task.as_deref()));
        let md = self.generate(&messages, &prompt::fixed_texts(&system, task.as_deref()), &[], &spec, Format::Notes, opts, context, pass, stats, progress).await?;
        // Split at headers; each section's quotes are checked against its own text.
        let mut markdown = vec![];
        let mut section_pieces = vec![];
        for (i, section) in split_sections(&md).into_iter().enumerate() {
            let (source, part) = match (outline.get(i), parts.get(i)) {
                (Some(s), Some(p)) => (s.text.as_str(), p.as_slice()),
                _ => (transcript_text, &[][..]),
            };
            let fixed = if shape.quotes > 0 { notes::verify_quotes(section, source, transcript_text, quotes) } else { section.trim_end().to_string() };
            section_pieces.push(Piece {
                start: part.iter().find_map(|p| p.start),
                end: part.iter().rev().find_map(|p| p.end.or(p.start)),
                text: fixed.lines().filter(|l| !l.starts_with('"') && *l != "Quotes:").map(|l| l.trim_start_matches("### ")).collect::<Vec<_>>().join(" "),
            });
            markdown.push(fixed);
        }
        Ok((markdown.join("\n\n"), section_pieces))
    }

    /// The prompt's own words for `opts` that no summary may copy six of in a
    /// row ([`super::echo::RUN`]): the system turn, the task (the notes task of
    /// a map step too, whose shape may differ) and the headings over the input.
    pub fn instructions(&self, opts: &SummarizeOptions) -> Vec<String> {
        let text = self.text_shape(opts);
        let system = prompt::system(opts.format);
        let task = prompt::task(opts.format, &text, &NotesShape::for_length(opts.length));
        let mut v: Vec<String> = prompt::fixed_texts(&system, task.as_deref()).into_iter().map(str::to_string).collect();
        if opts.format == Format::Structured {
            v.push(prompt::section_system().to_string());
            v.extend((1..=super::structured::SECTIONS).map(prompt::section_task));
        }
        for shape in [NotesShape::for_length(opts.length), NotesShape::condensed()] {
            v.extend(prompt::task(Format::Notes, &text, &shape));
        }
        v.push(prompt::system(Format::Notes));
        v.sort();
        v.dedup();
        v
    }

    /// The requested format (not notes, not structured: see `sections.rs`) from the
    /// transcript or from notes.
    async fn final_pass(&self, source: Source, input: &str, opts: &SummarizeOptions, context: usize, stats: &mut SummaryStats, progress: &mut dyn FnMut(&Progress) -> bool) -> Result<String, SummarizeError> {
        let system = prompt::system(opts.format);
        let task = prompt::task(opts.format, &self.text_shape(opts), &NotesShape::for_length(opts.length));
        let spec = self.answer_grammar(opts.format, opts);
        let messages = prompt::messages(&system, &[], &prompt::user(source, &self.defuse(input), task.as_deref()));
        self.generate(&messages, &prompt::fixed_texts(&system, task.as_deref()), &[], &spec, opts.format, opts, context, Pass::Final, stats, progress).await
    }

    /// One constrained generation within the grammar's budget (less if the
    /// context is shorter); closing mode starts early enough that the rest of
    /// the layout and every field's minimum always fit. The output may not
    /// repeat runs of the prompt's `instructions`.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn generate(
        &self,
        messages: &[crate::text::chat::Message],
        instructions: &[&str],
        remember: &[String],
        spec: &GrammarSpec,
        format: Format,
        opts: &SummarizeOptions,
        context: usize,
        pass: Pass,
        stats: &mut SummaryStats,
        progress: &mut dyn FnMut(&Progress) -> bool,
    ) -> Result<String, SummarizeError> {
        let prompt = self.engine.chat_tokens(messages)?;
        let sizes = self.answer_sizes(spec);
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
            closing: spec.closing.clone(),
            repeat_penalty: opts.repeat_penalty,
            repeat_window: 256,
        };
        let mut constraint = self.space.constrain(&spec.lark, budget, instructions, spec.repeat_fields)?;
        constraint.remember(remember);
        let keep_prefix = self.fixed_prefix(messages, &prompt)?;
        let gen_opts = GenerateOptions { max_tokens, sampler: opts.sampler.clone(), stop: vec![], chunk: 512, n_ctx: context, ignore_eos: false, keep_prefix };
        if !progress(&Progress::Started { pass }) {
            return Err(SummarizeError::Aborted);
        }
        let t0 = crate::platform::clock::now();
        let g = self
            .engine
            .generate_async(&prompt, &gen_opts, Some(&mut constraint), &mut |e| match e {
                Event::Prefill { done, total, cached } => progress(&Progress::Prefill { pass, done, total, cached, seconds: crate::platform::clock::now() - t0 }),
                Event::Busy => progress(&Progress::Busy),
                Event::Text(piece) => progress(&Progress::Text { pass, piece: piece.to_string() }),
            })
            .await?;
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

impl Summarizer {
    /// How many leading tokens of `prompt` every input of this pass shares: its
    /// system turn, worked examples and the user turn's opening line. Found by
    /// rendering the same chat with the input's body left out and comparing tokens,
    /// so whatever the template and tokenizer do at the seam, the count never takes
    /// a token that depends on the input.
    fn fixed_prefix(&self, messages: &[crate::text::chat::Message], prompt: &[u32]) -> Result<usize, SummarizeError> {
        let Some((last, head)) = messages.split_last() else { return Ok(0) };
        let opening = last.content.split("\n\n").next().unwrap_or("");
        let mut probe = head.to_vec();
        probe.push(crate::text::chat::Message::new(&last.role, opening));
        let other = self.engine.chat_tokens(&probe)?;
        Ok(prompt.iter().zip(&other).take_while(|(a, b)| a == b).count())
    }
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
