//! Grammar-constrained decoding with llguidance: the model's vocabulary as a
//! token trie, a Lark grammar compiled into a per-step token mask, and the
//! [`LogitsProcessor`] that applies the mask before sampling.
//!
//! The mask makes every output a sentence of the grammar whatever the model
//! prefers (or a transcript tells it). Two more things make it *finish*:
//! forced stretches of the grammar (JSON punctuation, fixed keys) are appended
//! as whole tokens without sampling, and past a token budget the processor
//! switches to closing mode, which steers towards the shortest way out: the
//! field under way first gets a few tokens to end its sentence, then its
//! sentence's end and its closer are forced. On top of the grammar, an
//! [`EchoGuard`] keeps the output from copying the prompt's instructions.

use super::echo::{EchoGuard, TokenWords};
pub use super::grammar::Closing;
use super::repeats::{Fields, RepeatGuard};
use crate::engine::LogitsProcessor;
use crate::text::tokenizer::Tokenizer;
use llguidance::api::TopLevelGrammar;
use llguidance::earley::SlicedBiasComputer;
use llguidance::toktrie::{InferenceCapabilities, TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};
use llguidance::{Constraint, ParserFactory};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ConstrainError {
    #[error("the tokenizer has no end-of-generation token, so a grammar could never end")]
    NoEos,
    #[error("cannot set up the token trie for llguidance: {0}")]
    Setup(String),
    #[error("grammar does not compile: {0}")]
    Compile(String),
    #[error("constraint failed after {tokens} tokens: {message}")]
    Step { tokens: usize, message: String },
}

/// The vocabulary as llguidance sees it: each token's bytes, control tokens
/// marked with 0xFF so no grammar text can ever match them.
struct Vocab {
    trie: TokTrie,
    tokenizer: Tokenizer,
}

impl TokenizerEnv for Vocab {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    /// Forced grammar text is tokenized as the model's own tokenizer would
    /// continue a text (llguidance only forces tokens through a canonical
    /// tokenizer); bytes that are not UTF-8 fall back to the trie's greedy split.
    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        match std::str::from_utf8(s) {
            Ok(text) => self.tokenizer.encode_continuation(text),
            Err(_) => self.trie.greedy_tokenize(s),
        }
    }
}

/// Per-model state shared by every constraint: the token trie and the compiled
/// tokenizer slices (built once; a few hundred ms for a 50k vocabulary).
pub struct TokenSpace {
    factory: ParserFactory,
    n_vocab: usize,
    words: Arc<TokenWords>,
    probe: Vec<u32>,
}

impl TokenSpace {
    /// `eog`: the ids that end a turn (the grammar's "end of output");
    /// `n_vocab`: the width of the model's logits, which may exceed the
    /// tokenizer's vocabulary (padding rows that must never be sampled).
    pub fn new(tokenizer: &Tokenizer, eog: &[u32], n_vocab: usize) -> Result<Self, ConstrainError> {
        let &eos = eog.first().ok_or(ConstrainError::NoEos)?;
        let n = n_vocab.max(tokenizer.vocab_size());
        let words: Vec<Vec<u8>> = (0..n as u32)
            .map(|id| {
                if tokenizer.is_control(id) || eog.contains(&id) {
                    let mut w = vec![TokTrie::SPECIAL_TOKEN_MARKER];
                    w.extend_from_slice(tokenizer.token_text(id).unwrap_or("").as_bytes());
                    w
                } else {
                    tokenizer.token_bytes(id)
                }
            })
            .collect();
        let info = TokRxInfo {
            vocab_size: n as u32,
            tok_eos: eos,
            tok_bos: tokenizer.bos,
            tok_pad: None,
            tok_unk: None,
            tok_end_of_turn: None,
        };
        let trie = TokTrie::from(&info, &words).with_eos_tokens(eog);
        let env: TokEnv = Arc::new(Vocab { trie, tokenizer: tokenizer.clone() });
        // Forced tokens save a sampling step each; backtracking would need the KV
        // cache rolled back, so it stays off (llguidance then re-tokenizes forced
        // text on its own instead of healing the previous token).
        let caps = InferenceCapabilities { ff_tokens: true, conditional_ff_tokens: false, backtrack: false, fork: false };
        let mut factory = ParserFactory::new(&env, caps, &SlicedBiasComputer::general_slices()).map_err(|e| ConstrainError::Setup(e.to_string()))?;
        factory.quiet();
        let words = Arc::new(TokenWords::new(factory.tok_env().tok_trie()));
        let probe = tokenizer.encode_continuation(&ROOM_PROBE.repeat(ROOM_PROBES));
        Ok(TokenSpace { factory, n_vocab, words, probe })
    }

    pub fn trie(&self) -> &TokTrie {
        self.factory.tok_env().tok_trie()
    }

    /// Compiles a Lark grammar into a fresh constraint whose output may not
    /// repeat a run of [`super::echo::RUN`] words of any of `instructions`.
    /// No field (delimited as `fields` says) may equal an earlier one.
    pub fn constrain(&self, lark: &str, budget: Budget, instructions: &[&str], fields: Fields) -> Result<GrammarConstraint, ConstrainError> {
        // llguidance's message quotes the offending grammar lines.
        let parser = self.factory.create_parser(TopLevelGrammar::from_lark(lark.to_string())).map_err(|e| ConstrainError::Compile(e.to_string()))?;
        let trie = self.trie();
        let starting = |starts: &[Vec<u8>]| (0..trie.vocab_size() as u32).filter(|&t| starts.iter().any(|c| trie.token(t).starts_with(c))).collect::<Vec<u32>>();
        let closer_tokens = starting(&budget.closing.closers);
        let ender_tokens = starting(&budget.closing.enders);
        let mut penalized = vec![true; trie.vocab_size()];
        let exempt = if budget.closing.penalize_enders { &[][..] } else { &ender_tokens[..] };
        for &t in closer_tokens.iter().chain(exempt) {
            penalized[t as usize] = false;
        }
        Ok(GrammarConstraint {
            constraint: Constraint::new(parser),
            budget,
            n_vocab: self.n_vocab,
            closer_tokens,
            ender_tokens,
            penalized,
            echo: EchoGuard::new(self.words.clone(), instructions),
            repeats: RepeatGuard::new(trie, fields),
            recent: std::collections::VecDeque::new(),
            generated: 0,
            wrap_up: None,
            error: None,
            finished: false,
            probe: self.probe.clone(),
            roomy: false,
            stats: MaskStats::default(),
        })
    }
}


/// How long the output may get, how it ends, and how repetition of the
/// model's own words is discouraged.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Hard limit on generated tokens (forced ones included).
    pub max_tokens: usize,
    /// Tokens the grammar's fixed text takes, as it will be forced.
    pub structure_tokens: usize,
    /// Tokens the free fields need at least, closing each as soon as allowed
    /// (the wrap-up included).
    pub field_reserve: usize,
    /// What closing mode chooses; closers (and enders, unless
    /// [`Closing::penalize_enders`]) are exempt from the repetition penalty, so
    /// ending a field is never discouraged.
    pub closing: Closing,
    /// Penalty (llama.cpp's rule) on tokens the model itself sampled within
    /// the last `repeat_window` sampled tokens; forced layout does not count.
    pub repeat_penalty: f32,
    pub repeat_window: usize,
}

/// Logit bonus of closers and enders during the wrap-up: about 50 times the
/// odds, enough that a sentence ends at its next natural stop, not so much
/// that a stop mid-phrase (odds of 1 in 10,000) becomes likely.
const WRAP_UP_BIAS: f32 = 4.0;

/// What the room left in a field is measured with: a run of plain words that any
/// prose field (JSON text, a notes point, a key point) takes in its middle.
const ROOM_PROBE: &str = " and the";
/// Times [`ROOM_PROBE`] must still fit for a field to count as roomy: ~48 characters,
/// about the 12 tokens of a wrap-up.
const ROOM_PROBES: usize = 6;

impl Budget {
    /// Whether the rest must now be written as briefly as the grammar allows:
    /// what is left of the layout (by forced tokens so far) plus every field's
    /// minimum would no longer fit otherwise.
    fn must_close(&self, generated: usize, forced: usize) -> bool {
        generated + self.structure_tokens.saturating_sub(forced) + self.field_reserve >= self.max_tokens
    }
}

/// Time spent computing masks, for comparison with the model's decode step.
#[derive(Debug, Clone, Default)]
pub struct MaskStats {
    /// Sampling steps that needed a mask.
    pub steps: usize,
    /// Seconds in `compute_mask` plus applying it to the logits.
    pub mask_s: f64,
    /// Seconds in `commit_token` (advancing the parser, finding forced tokens).
    pub commit_s: f64,
    /// Tokens appended without sampling because the grammar forced them.
    pub forced_tokens: usize,
    /// Whether closing mode was needed.
    pub closed_early: bool,
    /// Steps at which a copy of the instructions was refused, and at which one had
    /// to be let through (the grammar spelled it out).
    pub echoes_refused: usize,
    pub echoes_unavoidable: usize,
    /// Steps at which a repeated field was refused, and let through.
    pub repeats_refused: usize,
    pub repeats_unavoidable: usize,
    /// Steps at which a field near its size limit had its sentence's end favoured.
    pub near_limit_steps: usize,
}

pub struct GrammarConstraint {
    constraint: Constraint,
    budget: Budget,
    n_vocab: usize,
    /// Tokens that start with a closer, and with an ender (precomputed once per grammar).
    closer_tokens: Vec<u32>,
    ender_tokens: Vec<u32>,
    /// Per token: subject to the repetition penalty (closers and enders are not).
    penalized: Vec<bool>,
    /// Refuses tokens that would repeat the instructions.
    echo: EchoGuard,
    /// Refuses tokens that would end a field as a copy of an earlier one.
    repeats: RepeatGuard,
    /// The last sampled (not forced) tokens.
    recent: std::collections::VecDeque<u32>,
    generated: usize,
    /// In closing mode: tokens generated when it began, while the open field's
    /// wrap-up lasts (`None` before closing mode and once the wrap-up is over).
    wrap_up: Option<usize>,
    error: Option<String>,
    finished: bool,
    /// [`ROOM_PROBE`] × [`ROOM_PROBES`] as tokens (empty: the tokenizer cannot spell it).
    probe: Vec<u32>,
    /// The open field had room for the probe at some step: when it no longer has,
    /// it is near its size limit.
    roomy: bool,
    pub stats: MaskStats,
}

impl GrammarConstraint {
    /// Fields written by earlier passes of the same summary (a structured summary's
    /// sections before this one): none of them may be written again.
    pub fn remember(&mut self, fields: &[String]) {
        self.repeats.remember(fields);
    }

    /// Why the constraint stopped generation early, if it did.
    pub fn error(&self) -> Option<ConstrainError> {
        self.error.as_ref().map(|m| ConstrainError::Step { tokens: self.generated, message: m.clone() })
    }

    /// Whether the grammar reached its end (the output is a complete sentence).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn fail(&mut self, message: String) -> bool {
        self.error = Some(message);
        false
    }

    fn penalize(&self, logits: &mut [f32]) {
        let p = self.budget.repeat_penalty;
        if p == 1.0 {
            return;
        }
        let mut seen = std::collections::HashSet::new();
        for &t in &self.recent {
            if seen.insert(t) && self.penalized.get(t as usize).copied().unwrap_or(false) {
                if let Some(l) = logits.get_mut(t as usize) {
                    *l = if *l > 0.0 { *l / p } else { *l * p };
                }
            }
        }
    }

    /// Closing mode: when a token that closes the open field is allowed, only
    /// such tokens stay allowed (the model picks among them); failing that,
    /// when one that ends its sentence is, only those; elsewhere the model
    /// writes the least the grammar demands before either is possible.
    fn close(&self, logits: &mut [f32]) {
        for tier in [&self.closer_tokens, &self.ender_tokens] {
            let keep: Vec<(u32, f32)> = tier.iter().filter(|&&t| allowed(logits, t)).map(|&t| (t, logits[t as usize])).collect();
            if keep.is_empty() {
                continue;
            }
            logits.iter_mut().for_each(|l| *l = f32::NEG_INFINITY);
            for (t, l) in keep {
                logits[t as usize] = l;
            }
            return;
        }
    }

    /// The wrap-up: closers and enders made likelier, nothing forbidden.
    fn favour_ends(&self, logits: &mut [f32]) {
        for &t in self.closer_tokens.iter().chain(&self.ender_tokens) {
            if allowed(logits, t) {
                logits[t as usize] += WRAP_UP_BIAS;
            }
        }
    }

    /// A field near its own size limit (issue 21: "…these advancements are reshaping"
    /// where the grammar cut the introduction off): once the open field has no room
    /// left for [`ROOM_PROBE`] × [`ROOM_PROBES`] after having had it, its sentence's
    /// end is made likelier, and once the sentence has ended the field is closed. The
    /// end is only a nudge, as in closing mode's wrap-up: a field whose grammar never
    /// took the probe (a topic, a title) is left alone, and the grammar still cuts a
    /// sentence that will not end.
    fn near_field_limit(&mut self, logits: &mut [f32]) {
        let field = self.repeats.current();
        if field.is_empty() || self.probe.is_empty() {
            self.roomy = false;
            return;
        }
        let fits = self.constraint.validate_tokens_raw(&self.probe).unwrap_or(0) == self.probe.len();
        if fits {
            self.roomy = true;
            return;
        }
        if !self.roomy {
            return;
        }
        self.stats.near_limit_steps += 1;
        // A sentence that ended this near the limit closes the field: another would
        // be cut by the grammar ("…to distribute. 2").
        if field.trim_ascii_end().last().is_some_and(|b| matches!(b, b'.' | b'!' | b'?')) && self.closer_tokens.iter().any(|&t| allowed(logits, t)) {
            let keep: Vec<(u32, f32)> = self.closer_tokens.iter().filter(|&&t| allowed(logits, t)).map(|&t| (t, logits[t as usize])).collect();
            logits.iter_mut().for_each(|l| *l = f32::NEG_INFINITY);
            for (t, l) in keep {
                logits[t as usize] = l;
            }
            return;
        }
        for &t in &self.ender_tokens {
            if allowed(logits, t) {
                logits[t as usize] += WRAP_UP_BIAS;
            }
        }
    }

    /// Closing mode, once it is due: the wrap-up while it lasts, then [`Self::close`].
    fn closing(&mut self, logits: &mut [f32]) {
        let first = !self.stats.closed_early;
        self.stats.closed_early = true;
        if first {
            self.wrap_up = Some(self.generated);
        }
        match self.wrap_up {
            Some(from) if self.generated - from < self.budget.closing.wrap_up => self.favour_ends(logits),
            _ => {
                self.wrap_up = None;
                self.close(logits);
            }
        }
    }

    /// The guards' counts into [`MaskStats`].
    fn guard_stats(&mut self) {
        (self.stats.echoes_refused, self.stats.echoes_unavoidable) = (self.echo.refusals, self.echo.unavoidable);
        (self.stats.repeats_refused, self.stats.repeats_unavoidable) = (self.repeats.refusals, self.repeats.unavoidable);
    }

    /// Runs of the instructions refused, and runs let through because the grammar
    /// left no other way (see [`EchoGuard::restrict`]).
    pub fn echo_counts(&self) -> (usize, usize) {
        (self.echo.refusals, self.echo.unavoidable)
    }
}

impl GrammarConstraint {
    /// At a field's start the ways on are too many to look at each: the likeliest
    /// first tokens are, best first, until one does not lead into a repeat (greedy
    /// decoding takes that one) or [`FIRST_LOOK`] have been. "consistent" opening a
    /// topic, where "consistent" and "consistent hashing" were written before and the
    /// talk's words leave only those two ends, is refused here: one token later
    /// nothing but a repeat is left (the 1.5B model's sections 2, 3 and 5 each ended
    /// on "consistent hashing", section 1's title).
    fn first_tokens_into_repeats(&self, logits: &[f32]) -> Vec<u32> {
        let mut best: Vec<u32> = (0..logits.len() as u32).filter(|&t| allowed(logits, t)).collect();
        let by_logit = |a: &u32, b: &u32| logits[*b as usize].total_cmp(&logits[*a as usize]);
        let k = FIRST_LOOK.min(best.len());
        if k == 0 {
            return vec![];
        }
        best.select_nth_unstable_by(k - 1, by_logit);
        best.truncate(k);
        best.sort_by(by_logit);
        best.into_iter().take_while(|&t| !self.repeats.closes(t) && self.forces_repeat(&self.constraint, b"", t, 3)).collect()
    }

    /// Whether, once `t` is accepted, the grammar leaves nothing but ending the current
    /// field as an earlier one: the close comes forced with a repeated text, or every
    /// token it then allows either closes the field as a repeat or (up to `depth` more
    /// tokens) leads there in turn. Looked at on copies of the parser, only for the few
    /// tokens that spell the start of an earlier field ([`RepeatGuard::completing`]);
    /// a step that allows more than [`AHEAD_FANOUT`] tokens counts as a way out.
    fn forces_repeat(&self, parser: &llguidance::Constraint, field: &[u8], t: u32, depth: usize) -> bool {
        let trie = self.constraint.tok_trie();
        let d = self.repeats.delimiter();
        let mut c = parser.deep_clone();
        let Ok(r) = c.commit_token(Some(t)) else { return false };
        let mut field = field.to_vec();
        // The field as it ends (the bytes before the delimiter) if `tokens` close it.
        let ends = |field: &mut Vec<u8>, tokens: &[u32]| -> Option<bool> {
            for &f in tokens {
                let b = trie.token(f);
                if let Some(cut) = b.iter().position(|&x| x == d) {
                    field.extend_from_slice(&b[..cut]);
                    return Some(self.repeats.is_seen(field));
                }
                field.extend_from_slice(b);
            }
            None
        };
        if let Some(repeat) = ends(&mut field, &r.ff_tokens) {
            return repeat;
        }
        let Ok(step) = c.compute_mask() else { return false };
        // With forced tokens on, an all-forced step comes back as a splice, not a mask.
        let Some(mask) = step.sample_mask.as_ref() else {
            let forced: Vec<u32> = step.splices.iter().flat_map(|s| s.ff_tokens.iter().copied()).collect();
            return ends(&mut field, &forced).unwrap_or(false);
        };
        let mut allowed = vec![];
        // Set bits only: a narrow step's mask is a few bits in ~4,700 words (Qwen2.5).
        for (w, &bits) in mask.as_slice().iter().enumerate() {
            let mut rest = bits;
            while rest != 0 {
                if allowed.len() == AHEAD_FANOUT {
                    return false;
                }
                allowed.push((w * 32) as u32 + rest.trailing_zeros());
                rest &= rest - 1;
            }
        }
        let step_field = field;
        !allowed.is_empty()
            && allowed.iter().all(|&u| {
                let mut f = step_field.clone();
                match ends(&mut f, &[u]) {
                    Some(repeat) => repeat,
                    None => depth > 0 && self.forces_repeat(&c, &step_field, u, depth - 1),
                }
            })
    }
}

/// A field's first tokens looked ahead for, at most, likeliest first.
const FIRST_LOOK: usize = 8;

/// Tokens a looked-ahead step may allow and still be followed: the words of a topic
/// are few; a step that allows more is a way out of the repeat.
const AHEAD_FANOUT: usize = 32;

/// Whether the grammar allows token `t` (its logit is still finite).
fn allowed(logits: &[f32], t: u32) -> bool {
    logits.get(t as usize).is_some_and(|l| l.is_finite())
}

impl LogitsProcessor for GrammarConstraint {
    fn process(&mut self, logits: &mut [f32]) -> bool {
        if self.error.is_some() || self.finished {
            return false;
        }
        let t0 = crate::platform::clock::now();
        let step = match self.constraint.compute_mask() {
            Ok(r) => r.clone(),
            Err(e) => return self.fail(e.to_string()),
        };
        if step.is_stop() {
            self.finished = true;
            self.stats.mask_s += crate::platform::clock::now() - t0;
            return false;
        }
        let Some(mask) = step.sample_mask.as_ref() else {
            return self.fail("llguidance returned neither a mask nor a stop".into());
        };
        let n = logits.len().min(self.n_vocab);
        self.penalize(logits);
        // Words of 32 token bits; a clear bit (or a token past the mask) is forbidden.
        let words = mask.as_slice();
        for (w, chunk) in logits[..n].chunks_mut(32).enumerate() {
            let bits = words.get(w).copied().unwrap_or(0);
            if bits == u32::MAX {
                continue;
            }
            for (b, l) in chunk.iter_mut().enumerate() {
                if bits & (1 << b) == 0 {
                    *l = f32::NEG_INFINITY;
                }
            }
        }
        for l in &mut logits[n..] {
            *l = f32::NEG_INFINITY;
        }
        self.echo.restrict(self.constraint.tok_trie(), &mut logits[..n]);
        // Finishing within the budget comes first: in closing mode a repeat may close.
        let must_close = self.budget.must_close(self.generated, self.stats.forced_tokens);
        self.repeats.relaxed = must_close;
        // A word after which the grammar closes the field as a repeat is refused even in
        // closing mode: the field can only end sooner without it (the 1.5B model's
        // topics come last in a section, often in closing mode, and repeated there).
        let also: Vec<u32> = if self.repeats.at_field_start() {
            self.first_tokens_into_repeats(&logits[..n])
        } else {
            let also = self.repeats.completing(self.constraint.tok_trie(), &logits[..n]);
            also.into_iter().filter(|&t| self.forces_repeat(&self.constraint, self.repeats.current(), t, 3)).collect()
        };
        if !must_close {
            self.repeats.restrict(self.constraint.tok_trie(), &mut logits[..n], &also);
        } else if !also.is_empty() {
            self.repeats.refuse_only(&mut logits[..n], &also);
        }
        self.guard_stats();
        if !must_close {
            self.near_field_limit(logits);
        }
        if must_close {
            // An allowed end-of-output token means the grammar may end here: do.
            if self.constraint.tok_trie().eos_tokens().iter().any(|&t| (t as usize) < n && logits[t as usize].is_finite()) {
                self.stats.closed_early = true;
                self.finished = true;
                self.stats.mask_s += crate::platform::clock::now() - t0;
                return false;
            }
            self.closing(logits);
        }
        if !logits.iter().any(|l| l.is_finite()) {
            return self.fail("the grammar allows no token here".into());
        }
        self.stats.steps += 1;
        self.stats.mask_s += crate::platform::clock::now() - t0;
        true
    }

    fn accept(&mut self, token: u32) -> Vec<u32> {
        let t0 = crate::platform::clock::now();
        self.generated += 1;
        self.recent.push_back(token);
        if self.recent.len() > self.budget.repeat_window {
            self.recent.pop_front();
        }
        // The wrap-up is over once the model ends its sentence or the field.
        if self.wrap_up.is_some() && (self.closer_tokens.contains(&token) || self.ender_tokens.contains(&token)) {
            self.wrap_up = None;
        }
        self.echo.accept(self.constraint.tok_trie(), token);
        self.repeats.accept(self.constraint.tok_trie(), token, true);
        let res = self.constraint.commit_token(Some(token));
        self.stats.commit_s += crate::platform::clock::now() - t0;
        match res {
            Ok(r) if r.backtrack > 0 => {
                self.fail(format!("llguidance asked to backtrack {} tokens, which this engine does not do", r.backtrack));
                vec![]
            }
            Ok(r) => {
                // `ff_tokens` starts with the sampled token itself.
                let forced: Vec<u32> = r.ff_tokens.into_iter().skip(1).collect();
                for &t in &forced {
                    self.echo.accept(self.constraint.tok_trie(), t);
                    self.repeats.accept(self.constraint.tok_trie(), t, false);
                }
                self.guard_stats();
                self.generated += forced.len();
                self.stats.forced_tokens += forced.len();
                if r.stop {
                    self.finished = true;
                }
                forced
            }
            Err(e) => {
                self.fail(e.to_string());
                vec![]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A constraint over a hand-built vocabulary, stepped without a model.
    fn tiny(words: &[&str], lark: &str) -> (TokTrie, GrammarConstraint) {
        tiny_closing(words, lark, Closing { closers: vec![b"\"".to_vec()], enders: vec![], wrap_up: 0, penalize_enders: false })
    }

    fn tiny_closing(words: &[&str], lark: &str, closing: Closing) -> (TokTrie, GrammarConstraint) {
        tiny_caps(words, lark, closing, InferenceCapabilities::default())
    }

    fn tiny_caps(words: &[&str], lark: &str, closing: Closing, caps: InferenceCapabilities) -> (TokTrie, GrammarConstraint) {
        let mut w: Vec<Vec<u8>> = words.iter().map(|s| s.as_bytes().to_vec()).collect();
        w.push(b"\xFF<eos>".to_vec());
        let eos = w.len() as u32 - 1;
        let info = TokRxInfo { vocab_size: w.len() as u32, tok_eos: eos, tok_bos: None, tok_pad: None, tok_unk: None, tok_end_of_turn: None };
        let trie = TokTrie::from(&info, &w);
        let env: TokEnv = Arc::new(llguidance::toktrie::ApproximateTokEnv::new(trie.clone()));
        let mut factory = ParserFactory::new(&env, caps, &SlicedBiasComputer::general_slices()).unwrap();
        factory.quiet();
        let words = Arc::new(TokenWords::new(&trie));
        let space = TokenSpace { factory, n_vocab: w.len(), words, probe: vec![] };
        let budget = Budget { max_tokens: 1000, structure_tokens: 0, field_reserve: 0, closing, repeat_penalty: 1.0, repeat_window: 0 };
        let c = space.constrain(lark, budget, &[], Fields::JsonStrings).unwrap();
        (trie, c)
    }

    /// A topic (terminal `topic`, token 0 its quote, token 1 `hash`) after an earlier
    /// "hash ring": the field opened and "hash" written in it, `first` being what the
    /// grammar allowed to open it.
    fn after_hash(words: &[&str], topic: &str, first: &[usize]) -> GrammarConstraint {
        let (_, mut c) = tiny(words, &format!("start: \"\\\"\" TOPIC \"\\\"\"\nTOPIC: {topic}\n"));
        c.remember(&["hash ring".to_string()]);
        let n = words.len() + 1;
        assert_eq!(allowed(&mut c, n), vec![0]);
        assert!(c.accept(0).is_empty());
        assert_eq!(allowed(&mut c, n), first);
        assert!(c.accept(1).is_empty());
        c
    }

    fn allowed(c: &mut GrammarConstraint, n: usize) -> Vec<usize> {
        let mut logits = vec![0.0f32; n];
        assert!(c.process(&mut logits));
        (0..n).filter(|&i| logits[i].is_finite()).collect()
    }

    #[test]
    fn a_field_near_its_size_limit_ends_its_sentence_then_closes() {
        // Vocabulary: 0 `"`, 1 `a`, 2 ` and`, 3 ` the`, 4 `.`, 5 <eos>; the field is
        // `a`, then at most 16 more characters, then its full stop.
        let words = ["\"", "a", " and", " the", "."];
        let closing = Closing { closers: vec![b"\"".to_vec()], enders: vec![b".".to_vec()], wrap_up: 0, penalize_enders: false };
        let (_, mut c) = tiny_closing(&words, "start: \"\\\"\" TEXT \"\\\"\"\nTEXT: /a[a-z .]{0,16}[.]/\n", closing);
        c.probe = vec![2, 3]; // " and the": 8 characters of room
        let step = |c: &mut GrammarConstraint, t: u32| -> Vec<f32> {
            let mut logits = vec![0.0f32; words.len() + 1];
            assert!(c.process(&mut logits));
            c.accept(t);
            logits
        };
        step(&mut c, 0);
        step(&mut c, 1);
        for t in [2, 3, 2] {
            // At "a", "a and", "a and the": room for 8 more and the stop; nothing favoured.
            let l = step(&mut c, t);
            assert_eq!((l[4], c.stats.near_limit_steps), (0.0, 0), "before token {t}: {l:?}");
        }
        // At "a and the and" (13 characters): no room for 8 more, so the stop is favoured...
        let l = step(&mut c, 4);
        assert_eq!((l[4], c.stats.near_limit_steps), (WRAP_UP_BIAS, 1), "{l:?}");
        // ...and once the sentence has ended, the field closes.
        let l = step(&mut c, 0);
        assert_eq!(l.iter().map(|x| x.is_finite()).collect::<Vec<_>>(), [true, false, false, false, false, false], "{l:?}");
    }

    #[test]
    fn a_word_that_would_complete_an_earlier_topic_at_the_word_limit_is_refused() {
        // Vocabulary: 0 `"`, 1 `hash`, 2 ` ring`, 3 ` node`, 4 `ring`, 5 <eos>; a topic is
        // at most two words, so after the second word the grammar closes it by itself.
        let words = ["\"", "hash", " ring", " node", "ring"];
        let mut c = after_hash(&words, "/(hash|ring)( ring| node)?/", &[1, 4]);
        // " ring" would make "hash ring" again, after which only the close is allowed:
        // refused; " node" (a new topic) and closing at "hash" stay.
        assert_eq!(allowed(&mut c, 6), vec![0, 3]);
        assert_eq!(c.stats.repeats_refused, 1);
    }

    #[test]
    fn the_lookahead_sees_a_close_that_comes_with_the_layout_after_it() {
        // As the structured topics: the close is followed by more layout (`, "end"`),
        // which llguidance forces at the next step rather than with the sampled word.
        let words = ["\"", "hash", " ring", " node", "ring", ", ", "end", "\", \"", "\",", " \"", "\"end"];
        let (_, mut c) = tiny(&words, "start: \"\\\"\" TOPIC \"\\\", \\\"end\\\"\"\nTOPIC: /(hash|ring)( ring| node)?/\n");
        c.remember(&["hash ring".to_string()]);
        let n = words.len() + 1;
        assert_eq!(allowed(&mut c, n), vec![0]);
        assert!(c.accept(0).is_empty());
        assert!(allowed(&mut c, n).contains(&1));
        assert!(c.accept(1).is_empty());
        let a = allowed(&mut c, n);
        assert!(!a.contains(&2) && a.contains(&3), "{a:?}");
    }

    #[test]
    fn in_closing_mode_the_word_that_completes_a_repeat_is_still_refused() {
        let words = ["\"", "hash", " ring", " node", "ring"];
        let (_, mut c) = tiny(&words, "start: \"\\\"\" TOPIC \"\\\"\"\nTOPIC: /(hash|ring)( ring| node)?/\n");
        c.remember(&["hash ring".to_string(), "hash".to_string()]);
        assert_eq!(allowed(&mut c, 6), vec![0]);
        assert!(c.accept(0).is_empty());
        assert!(allowed(&mut c, 6).contains(&1));
        assert!(c.accept(1).is_empty());
        c.budget.max_tokens = 0; // closing mode from here on
        // " ring" is refused; closing at "hash" (itself a repeat) is let through: in
        // closing mode finishing comes first.
        let a = allowed(&mut c, 6);
        assert!(!a.contains(&2) && a.contains(&0), "{a:?}");
    }

    #[test]
    fn a_repeat_spelled_over_two_tokens_is_refused_at_its_first() {
        // Vocabulary: 0 `"`, 1 `hash`, 2 ` ring`, 3 ` node`, 4 `ring`, 5 ` r`, 6 `ing`,
        // 7 <eos>. " r" then "ing" spells " ring": after " r" the grammar allows only
        // "ing", then only the close, so " r" is a repeat as surely as " ring".
        let words = ["\"", "hash", " ring", " node", "ring", " r", "ing"];
        let mut c = after_hash(&words, "/(hash|ring)( ring| node)?/", &[1, 4]);
        assert_eq!(allowed(&mut c, 8), vec![0, 3]);
    }

    #[test]
    fn a_bare_space_before_a_word_the_grammar_spells_is_refused_where_that_repeats() {
        // Vocabulary: 0 `"`, 1 `hash`, 2 ` ring`, 3 ` `, 4 `ring`, 5 <eos>. After "hash"
        // the grammar allows the close, " ring", or " " after which it spells "ring"
        // itself: with "hash ring" written before, " " is a repeat as surely as " ring"
        // (the 1.5B model's "consistent hashing adding" came twice that way).
        let words = ["\"", "hash", " ring", " ", "ring"];
        let mut c = after_hash(&words, "/hash( ring)?/", &[1]);
        assert_eq!(allowed(&mut c, 6), vec![0]);
        assert_eq!(c.stats.repeats_refused, 1);
    }

    #[test]
    fn a_first_word_that_leaves_only_a_repeat_is_refused() {
        // Vocabulary: 0 `"`, 1 `hash`, 2 ` ring`, 3 `node`, 4 <eos>. A topic is "hash
        // ring" or "node": with "hash ring" written before, "hash" leaves nothing but
        // the repeat, so the model's favourite "hash" is refused at the field's start.
        let words = ["\"", "hash", " ring", "node"];
        let (_, mut c) = tiny(&words, "start: \"\\\"\" TOPIC \"\\\"\"\nTOPIC: /hash ring|node/\n");
        c.remember(&["hash ring".to_string()]);
        assert_eq!(allowed(&mut c, 5), vec![0]);
        assert!(c.accept(0).is_empty());
        let mut logits = vec![0.0f32, 5.0, 0.0, 1.0, 0.0];
        assert!(c.process(&mut logits));
        assert!(!logits[1].is_finite() && logits[3].is_finite(), "{logits:?}");
        assert_eq!(c.stats.repeats_refused, 1);
        // Where the favourite leads elsewhere, nothing is looked at past it.
        let (_, mut c) = tiny(&words, "start: \"\\\"\" TOPIC \"\\\"\"\nTOPIC: /hash ring|node/\n");
        c.remember(&["hash ring".to_string()]);
        allowed(&mut c, 5);
        assert!(c.accept(0).is_empty());
        let mut logits = vec![0.0f32, 1.0, 0.0, 5.0, 0.0];
        assert!(c.process(&mut logits));
        assert!(logits[1].is_finite() && logits[3].is_finite() && c.stats.repeats_refused == 0, "{logits:?}");
    }

    #[test]
    fn invalid_continuations_are_masked_and_valid_ones_allowed() {
        // Vocabulary: 0 `{"a":`, 1 `1`, 2 `2`, 3 `x`, 4 `}`, 5 `12`, 6 `"`, 7 <eos>.
        let words = ["{\"a\":", "1", "2", "x", "}", "12", "\""];
        let (_trie, mut c) = tiny(&words, r#"start: "{\"a\":" NUM "}"
NUM: /[12]{1,2}/"#);
        assert_eq!(allowed(&mut c, 8), vec![0], "only the object opener may start");
        assert!(c.accept(0).is_empty());
        let a = allowed(&mut c, 8);
        assert!(a.contains(&1) && a.contains(&2) && a.contains(&5), "digits and `12` are valid: {a:?}");
        assert!(!a.contains(&3) && !a.contains(&4) && !a.contains(&6) && !a.contains(&7), "`x`, an early `}}`, a quote and EOS are not: {a:?}");
        c.accept(5);
        assert_eq!(allowed(&mut c, 8), vec![4], "two digits used up: only `}}` remains");
        c.accept(4);
        let mut logits = vec![0.0f32; 8];
        assert!(!c.process(&mut logits), "complete: generation must stop");
        assert!(c.is_finished() && c.error().is_none());
    }

    #[test]
    fn a_topic_is_a_run_of_the_talks_words() {
        // The structured format's topic terminal, as it is built with a talk:
        // a substring of the talk's words, in a topic's shape.
        // 0 `"`, 1 `consistent`, 2 ` hashing`, 3 `react`, 4 ` keys`, 5 `hashing`, 6 <eos>.
        let words = ["\"", "consistent", " hashing", "react", " keys", "hashing"];
        let span = serde_json::json!({ "substring_words": "consistent hashing moves few keys" });
        let lark = format!("start: \"\\\"\" TOPIC \"\\\"\"\nTOPIC: %regex {span} & /[a-z][a-z ]{{0,30}}/\n");
        let (_trie, mut c) = tiny(&words, &lark);
        c.process(&mut vec![0.0; 7]);
        c.accept(0);
        let a = allowed(&mut c, 7);
        assert!(a.contains(&1) && a.contains(&5), "a topic may start at any word of the talk: {a:?}");
        assert!(!a.contains(&3), "a word the talk does not have may not: {a:?}");
        c.accept(1);
        let a = allowed(&mut c, 7);
        assert!(a.contains(&2) && a.contains(&0), "the talk's next word, or the end: {a:?}");
        assert!(!a.contains(&4), "a word that does not follow in the talk may not: {a:?}");
    }

    #[test]
    fn a_topic_does_not_end_on_a_function_word() {
        // The topic terminal as `grammar` builds it from the talk "hashing and the ring".
        // 0 `"`, 1 `hashing`, 2 ` and`, 3 ` the`, 4 ` ring`, 5 `and`, 6 `The`, 7 `ring`, 8 <eos>.
        let words = ["\"", "hashing", " and", " the", " ring", "and", "The", "ring"];
        let topic = crate::summarize::grammar::from_talk("/[A-Za-z][a-z ]{0,30}/", Some("hashing and the ring. The ring"));
        let (_trie, mut c) = tiny(&words, &format!("start: \"\\\"\" TOPIC \"\\\"\"\nTOPIC: {topic}\n"));
        c.process(&mut vec![0.0; 9]);
        c.accept(0);
        let a = allowed(&mut c, 9);
        assert!(a.contains(&1) && a.contains(&7), "a topic may start at any word of the talk: {a:?}");
        c.accept(1);
        let a = allowed(&mut c, 9);
        assert!(a.contains(&0) && a.contains(&2), "\"hashing\" may end, or go on: {a:?}");
        c.accept(2);
        let a = allowed(&mut c, 9);
        assert!(!a.contains(&0), "\"hashing and\" may not end there: {a:?}");
        assert!(a.contains(&3), "it may go on with the talk's next word: {a:?}");
        c.accept(3);
        let a = allowed(&mut c, 9);
        assert!(!a.contains(&0) && a.contains(&4), "nor end at \"the\"; \"ring\" follows: {a:?}");
        c.accept(4);
        assert!(allowed(&mut c, 9).contains(&0), "\"hashing and the ring\" ends on a content word");
    }

    #[test]
    fn the_structured_grammars_compile_with_and_without_the_talk() {
        use crate::summarize::formats::{Length, StructuredSizes};
        use crate::summarize::grammar;
        let z = StructuredSizes::for_length(Length::Medium);
        let talk = "consistent hashing puts servers and keys on a ring";
        for talk in [Some(talk), None] {
            for spec in [grammar::section(2, &z, talk, &["servers".to_string()], &[]), grammar::overview(&z, talk)] {
                tiny(&["\"", "x"], &spec.lark);
            }
        }
    }

    #[test]
    fn closing_mode_prefers_closers_once_allowed() {
        // 0 `"`, 1 `ab`, 2 `abc`, 3 `"}`, 4 `}`, 5 `a"}`, 6 <eos>.
        let words = ["\"", "ab", "abc", "\"}", "}", "a\"}"];
        let (_trie, mut c) = tiny(&words, r#"start: "\"" TEXT "\"}"
TEXT: /[abc]{1,50}/"#);
        c.budget.max_tokens = 1;
        c.closer_tokens = vec![3];
        c.process(&mut vec![0.0; 7]);
        c.accept(0);
        // Over budget, but the field is still empty: no closer is allowed yet,
        // so the model's own choice stands.
        let mut logits = vec![0.0f32, 9.0, 8.0, 0.0, 0.0, 0.0, 0.0];
        assert!(c.process(&mut logits));
        assert!(logits[1].is_finite() && logits[2].is_finite() && logits[5].is_finite());
        c.accept(1);
        // Now a closer is allowed: only closers remain, however much the model
        // would like to go on.
        let mut logits = vec![0.0f32, 9.0, 9.0, 0.0, 0.0, 0.0, 0.0];
        assert!(c.process(&mut logits));
        let a: Vec<usize> = (0..7).filter(|&i| logits[i].is_finite()).collect();
        assert_eq!(a, vec![3]);
        assert!(c.stats.closed_early);
    }
    /// Steps `text` through `c` one single-character token at a time,
    /// asserting the grammar allows each.
    fn feed(c: &mut GrammarConstraint, vocab: &[String], text: &str) {
        for ch in text.chars() {
            let t = vocab.iter().position(|w| *w == ch.to_string()).unwrap_or_else(|| panic!("no token {ch:?}"));
            assert!(allowed(c, vocab.len() + 1).contains(&t), "{ch:?} refused after {text:?}");
            c.accept(t as u32);
        }
    }

    #[test]
    fn a_notes_quote_can_only_continue_along_the_transcript() {
        use crate::summarize::formats::NotesShape;
        use crate::summarize::grammar::{notes, NotesSection};
        let text = "so the key idea is that the cache keeps the last W keys and values and nothing else";
        let shape = NotesShape { max_points: 2, quotes: 1, title_chars: 20, sentence_chars: 40, quote_chars: 60 };
        let spec = notes(&[NotesSection { range: None, text: text.into() }], &shape);
        // Every printable ASCII character and newline as a token, plus three words.
        let mut vocab: Vec<String> = (b' '..=b'~').map(|b| (b as char).to_string()).collect();
        vocab.push("\n".into());
        let [keeps, holds, keys_quote] = [" keeps the", " holds the", "keys\""].map(|w| {
            vocab.push(w.into());
            vocab.len() - 1
        });
        let quote_mark = vocab.iter().position(|w| w == "\"").unwrap();
        let newline = vocab.iter().position(|w| w == "\n").unwrap();
        let words: Vec<&str> = vocab.iter().map(String::as_str).collect();
        let (_trie, mut c) = tiny(&words, &spec.lark);
        let n = vocab.len() + 1;

        feed(&mut c, &vocab, "### Caches\n1. It keeps ");
        assert!(!allowed(&mut c, n).contains(&quote_mark), "a point may not quote");
        feed(&mut c, &vocab, "keys.\n2. Old keys go.\nQuotes:\n1. \"the cache");
        let a = allowed(&mut c, n);
        assert!(a.contains(&keeps), "the transcript goes on with \" keeps the\"");
        assert!(!a.contains(&holds), "\"the cache holds the\" is not in the transcript");
        assert!(!a.contains(&quote_mark), "shorter than a quote may be");
        for ch in ['x', 'Z', '.'] {
            let t = vocab.iter().position(|w| *w == ch.to_string()).unwrap();
            assert!(!a.contains(&t), "{ch:?} leaves the transcript");
        }
        c.accept(keeps as u32);
        feed(&mut c, &vocab, " last W ke");
        let a = allowed(&mut c, n);
        assert!(!a.contains(&quote_mark), "a quote ends at the end of a word");
        assert!(!a.contains(&keys_quote), "\"ke\" + \"keys\" is no word of the transcript");
        feed(&mut c, &vocab, "ys");
        // The line ends at the closing mark: nothing but the newline may follow.
        feed(&mut c, &vocab, "\"");
        assert_eq!(allowed(&mut c, n), vec![newline], "only the newline after the closing mark");
        feed(&mut c, &vocab, "\n");
        let mut logits = vec![0.0f32; n];
        assert!(!c.process(&mut logits) && c.is_finished() && c.error().is_none(), "the notes are complete");
    }
}
