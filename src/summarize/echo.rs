//! Keeps the output from repeating the prompt's own instructions.
//!
//! A small model asked for a teaser "highlighting its most intriguing content,
//! without giving away the conclusion" writes "…a teaser that highlights its most
//! interesting content, without giving away the conclusion": the task is the last
//! fluent text it read. Rewording the tasks ([`super::prompt::task`]) makes that
//! rarer but cannot rule it out for every transcript and model, so the decoder
//! also refuses any token that would complete a run of [`RUN`] consecutive words
//! standing in a row in an instruction. The ban works on words, not tokens, so
//! re-spelling the same words in other tokens, other case or other punctuation
//! does not get past it; it only ever removes the tokens that complete such a
//! run, so what the model writes otherwise is its own choice.
//!
//! Six words: five-word runs of an instruction are still ordinary phrasing that
//! a summary may need ("the most important points of"); six in a row are a copy.
//!
//! A word is a run of ASCII letters and digits, lowercased; every other byte
//! (punctuation, spaces, and any non-ASCII byte, so a token may end inside a
//! multi-byte character) separates words. The instructions are ASCII, so every
//! word that could match one is ASCII too.

use llguidance::toktrie::TokTrie;
use std::collections::{HashMap, HashSet};

/// Consecutive instruction words the output may not repeat.
pub const RUN: usize = 6;
const CONTEXT: usize = RUN - 1;
/// A word that is in no instruction.
const OTHER: u32 = u32::MAX;
/// Longest word kept while it is being written; a longer one matches nothing
/// (no instruction word is this long).
const MAX_WORD: usize = 32;

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// The words of `bytes`, lowercased, each with whether it reaches the end of
/// `bytes` (an open word the next token may continue).
fn words(bytes: &[u8]) -> Vec<(Vec<u8>, bool)> {
    let mut out = vec![];
    let mut cur: Option<Vec<u8>> = None;
    for &b in bytes {
        if is_word(b) {
            cur.get_or_insert_with(Vec::new).push(b.to_ascii_lowercase());
        } else if let Some(w) = cur.take() {
            out.push((w, false));
        }
    }
    if let Some(w) = cur {
        out.push((w, true));
    }
    out
}

/// The vocabulary indexed by words, so that each step looks at the few tokens
/// that could complete a run instead of all of them. Built once per model.
pub struct TokenWords {
    /// Tokens that start with a letter or digit (continuing the open word, if
    /// any), by that first word piece.
    by_head: HashMap<Vec<u8>, Vec<u32>>,
    /// Tokens that start with a separator, by the first word after it.
    by_next: HashMap<Vec<u8>, Vec<u32>>,
    /// Tokens holding two words or more: each step checks them one by one
    /// (their later words could complete a run the index does not foresee).
    multi: Vec<u32>,
}

impl TokenWords {
    pub fn new(trie: &TokTrie) -> Self {
        let mut by_head: HashMap<Vec<u8>, Vec<u32>> = HashMap::new();
        let mut by_next: HashMap<Vec<u8>, Vec<u32>> = HashMap::new();
        let mut multi = vec![];
        for t in 0..trie.vocab_size() as u32 {
            let bytes = trie.token(t);
            // Control tokens (marked 0xFF) write no text.
            if bytes.first().is_none_or(|&b| b == TokTrie::SPECIAL_TOKEN_MARKER) {
                continue;
            }
            let w = words(bytes);
            let Some((first, _)) = w.first() else { continue };
            let index = if is_word(bytes[0]) { &mut by_head } else { &mut by_next };
            index.entry(first.clone()).or_default().push(t);
            if w.len() > 1 {
                multi.push(t);
            }
        }
        TokenWords { by_head, by_next, multi }
    }
}

/// The last words written: the [`CONTEXT`] complete ones before the open word.
#[derive(Debug, Clone, Copy)]
struct State {
    last: [u32; CONTEXT],
    open: [u8; MAX_WORD],
    /// Bytes of the open word; `MAX_WORD`: too long to be any instruction word.
    len: usize,
}

impl State {
    fn open(&self) -> &[u8] {
        &self.open[..self.len.min(MAX_WORD)]
    }
    fn push(&mut self, b: u8) {
        if self.len < MAX_WORD {
            self.open[self.len] = b.to_ascii_lowercase();
            self.len += 1;
        } else {
            self.len = MAX_WORD;
        }
    }
    fn close(&mut self, id: u32) {
        self.last.rotate_left(1);
        self.last[CONTEXT - 1] = id;
        self.len = 0;
    }
}

/// The instructions' runs: for each [`CONTEXT`] words in a row, the words that
/// follow them somewhere in an instruction.
pub struct EchoGuard {
    vocab: std::sync::Arc<TokenWords>,
    ids: HashMap<Vec<u8>, u32>,
    spelled: Vec<Vec<u8>>,
    next: HashMap<[u32; CONTEXT], Vec<u32>>,
    state: State,
    /// Steps at which tokens were refused.
    pub refusals: usize,
    /// Steps at which every token the grammar allowed went on with the same run
    /// (a fixed name the grammar spells out), so none was refused.
    pub unavoidable: usize,
}

impl EchoGuard {
    /// A guard against runs of each of `texts` (a run never spans two texts).
    pub fn new(vocab: std::sync::Arc<TokenWords>, texts: &[&str]) -> Self {
        let mut ids = HashMap::new();
        let mut spelled: Vec<Vec<u8>> = vec![];
        let mut next: HashMap<[u32; CONTEXT], Vec<u32>> = HashMap::new();
        for text in texts {
            let seq: Vec<u32> = words(text.as_bytes())
                .into_iter()
                .map(|(w, _)| {
                    if w.len() >= MAX_WORD {
                        return OTHER;
                    }
                    *ids.entry(w.clone()).or_insert_with(|| {
                        spelled.push(w);
                        spelled.len() as u32 - 1
                    })
                })
                .collect();
            for run in seq.windows(RUN) {
                if run.contains(&OTHER) {
                    continue;
                }
                let ctx: [u32; CONTEXT] = run[..CONTEXT].try_into().expect("a run is CONTEXT + 1 words");
                let follow = next.entry(ctx).or_default();
                if !follow.contains(&run[CONTEXT]) {
                    follow.push(run[CONTEXT]);
                }
            }
        }
        let state = State { last: [OTHER; CONTEXT], open: [0; MAX_WORD], len: 0 };
        EchoGuard { vocab, ids, spelled, next, state, refusals: 0, unavoidable: 0 }
    }

    fn id(&self, w: &[u8]) -> u32 {
        self.ids.get(w).copied().unwrap_or(OTHER)
    }

    fn completes(&self, ctx: &[u32; CONTEXT], id: u32) -> bool {
        id != OTHER && self.next.get(ctx).is_some_and(|f| f.contains(&id))
    }

    /// Whether writing `bytes` after `s` completes a run with a word it writes
    /// (in part or whole). A word the token leaves open counts once it is
    /// spelled out in full: the run is refused before the word could go on to
    /// become another one, which costs only the rare longer word.
    fn writes_run(&self, mut s: State, bytes: &[u8]) -> bool {
        let mut touched = false;
        for &b in bytes {
            if is_word(b) {
                s.push(b);
                touched = true;
            } else if s.len > 0 {
                let id = self.id(s.open());
                // An open word this token only ends was written before it.
                if touched && self.completes(&s.last, id) {
                    return true;
                }
                s.close(id);
            }
        }
        touched && s.len > 0 && self.completes(&s.last, self.id(s.open()))
    }

    fn after(&self, mut s: State, bytes: &[u8]) -> State {
        for &b in bytes {
            if is_word(b) {
                s.push(b);
            } else if s.len > 0 {
                let id = self.id(s.open());
                s.close(id);
            }
        }
        s
    }

    /// Whether some word could complete a run from `s`: with no open word,
    /// whether its last words begin a run; otherwise whether the open word is
    /// the start of a word that ends one.
    fn threatened(&self, s: &State) -> bool {
        let Some(follow) = self.next.get(&s.last) else { return false };
        s.len == 0 || follow.iter().any(|&n| self.spelled[n as usize].starts_with(s.open()))
    }

    /// The tokens that could complete a run after the current state: by the
    /// index for the open word or the next, and every multi-word token.
    fn candidates(&self) -> Vec<u32> {
        let s = &self.state;
        let v = &self.vocab;
        let mut c = vec![];
        let mut add = |index: &HashMap<Vec<u8>, Vec<u32>>, key: &[u8]| c.extend(index.get(key).into_iter().flatten().copied());
        if let Some(follow) = self.next.get(&s.last) {
            for &n in follow {
                let w = &self.spelled[n as usize];
                if s.len == 0 {
                    add(&v.by_head, w);
                    add(&v.by_next, w);
                } else if w.len() > s.len && w.starts_with(s.open()) {
                    add(&v.by_head, &w[s.len..]);
                }
            }
        }
        // The open word ended by a separator becomes the last word of the context.
        if s.len > 0 {
            let mut ctx = s.last;
            ctx.rotate_left(1);
            ctx[CONTEXT - 1] = self.id(s.open());
            for &n in self.next.get(&ctx).into_iter().flatten() {
                add(&v.by_next, &self.spelled[n as usize]);
            }
        }
        c.extend_from_slice(&v.multi);
        c
    }

    /// Sets to -inf the allowed tokens (finite logits) that would complete a
    /// run, unless none of the allowed tokens leads away from it: then the
    /// grammar itself spells the run out (the instruction's topic names, which
    /// the structured format must copy), and refusing would only make the model
    /// spell the same words in smaller pieces.
    pub fn restrict(&mut self, trie: &TokTrie, logits: &mut [f32]) {
        let allowed = |t: u32| logits.get(t as usize).is_some_and(|l| l.is_finite());
        let mut refuse: Vec<u32> = self.candidates().into_iter().filter(|&t| allowed(t) && self.writes_run(self.state, trie.token(t))).collect();
        if refuse.is_empty() {
            return;
        }
        refuse.sort_unstable();
        refuse.dedup();
        let refused: HashSet<u32> = refuse.iter().copied().collect();
        let way_out = (0..logits.len() as u32).any(|t| allowed(t) && !refused.contains(&t) && !self.threatened(&self.after(self.state, trie.token(t))));
        if !way_out {
            self.unavoidable += 1;
            return;
        }
        for t in refuse {
            logits[t as usize] = f32::NEG_INFINITY;
        }
        self.refusals += 1;
    }

    /// Follows the output: every token written, sampled or forced.
    pub fn accept(&mut self, trie: &TokTrie, token: u32) {
        let bytes = trie.token(token);
        if bytes.first() == Some(&TokTrie::SPECIAL_TOKEN_MARKER) {
            return;
        }
        self.state = self.after(self.state, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llguidance::toktrie::TokRxInfo;
    use std::sync::Arc;

    /// A vocabulary of `words`, `<eos>` a control token (marked 0xFF, as
    /// [`super::super::constrain::TokenSpace`] marks them).
    fn trie(words: &[&str]) -> TokTrie {
        let w: Vec<Vec<u8>> = words.iter().map(|s| if *s == "<eos>" { b"\xFF<eos>".to_vec() } else { s.as_bytes().to_vec() }).collect();
        let info = TokRxInfo { vocab_size: w.len() as u32, tok_eos: 0, tok_bos: None, tok_pad: None, tok_unk: None, tok_end_of_turn: None };
        TokTrie::from(&info, &w)
    }

    /// Writes `tokens` (by text) through the guard, returning which of `probe`
    /// it refuses at the end.
    fn refused_after(vocab: &[&str], instruction: &str, tokens: &[&str], probe: &[&str]) -> Vec<String> {
        let trie = trie(vocab);
        let mut g = EchoGuard::new(Arc::new(TokenWords::new(&trie)), &[instruction]);
        let id = |s: &str| vocab.iter().position(|v| *v == s).unwrap_or_else(|| panic!("no token {s:?}")) as u32;
        for t in tokens {
            g.accept(&trie, id(t));
        }
        let mut logits = vec![0.0f32; vocab.len()];
        g.restrict(&trie, &mut logits);
        probe.iter().filter(|p| !logits[id(p) as usize].is_finite()).map(|p| p.to_string()).collect()
    }

    const TASK: &str = "Write a teaser: highlight its most intriguing content, without giving away the conclusion.";
    const VOCAB: &[&str] = &["<eos>", " content", " Content", ",", " without", " giving", " away", " the", " conclusion", " ending", " con", "clusion", "clus", "ion", " twist", " its", " most", " intriguing", " interesting", ".", "CONCLUSION", " the conclusion", " away the", "\n"];

    #[test]
    fn the_word_that_completes_a_run_is_refused_however_it_is_spelled() {
        let probe = [" conclusion", " con", " ending", " twist", " the conclusion"];
        // Five words in a row from the task: the sixth is refused, other words are not.
        let written = [" content", ",", " without", " giving", " away", " the"];
        assert_eq!(refused_after(VOCAB, TASK, &written, &probe), vec![" conclusion"]);
        // Other case and punctuation are the same words.
        let shouted = [" Content", " without", ",", " giving", " away", ",", " the"];
        assert_eq!(refused_after(VOCAB, TASK, &shouted, &probe), vec![" conclusion"]);
        // The last word in pieces: the piece that completes it is refused.
        let pieces = [" content", " without", " giving", " away", " the", " con"];
        assert_eq!(refused_after(VOCAB, TASK, &pieces, &["clusion", "clus", "ion"]), vec!["clusion"]);
        // A token holding two words completes the run with its second.
        let before = [" content", " without", " giving", " away"];
        assert_eq!(refused_after(VOCAB, TASK, &before, &[" the conclusion", " the", " away the"]), vec![" the conclusion"]);
        // Four words in a row from the task after one of the output's own: nothing to refuse.
        let own = [" content", " twist", " without", " giving", " away", " the"];
        assert_eq!(refused_after(VOCAB, TASK, &own, &probe), Vec::<String>::new());
    }

    #[test]
    fn a_run_the_grammar_leaves_no_way_around_is_let_through() {
        // Only the run's own word (and a piece of it) is allowed: refusing would
        // only make the model spell it in pieces.
        let trie = trie(VOCAB);
        let mut g = EchoGuard::new(Arc::new(TokenWords::new(&trie)), &[TASK]);
        for t in [" content", " without", " giving", " away", " the"] {
            g.accept(&trie, VOCAB.iter().position(|v| v == &t).unwrap() as u32);
        }
        let conclusion = VOCAB.iter().position(|v| *v == " conclusion").unwrap();
        let con = VOCAB.iter().position(|v| *v == " con").unwrap();
        let mut logits = vec![f32::NEG_INFINITY; VOCAB.len()];
        logits[conclusion] = 1.0;
        logits[con] = 0.5;
        g.restrict(&trie, &mut logits);
        assert!(logits[conclusion].is_finite() && g.unavoidable == 1 && g.refusals == 0);
        // With another word allowed too, the run's word is refused.
        let ending = VOCAB.iter().position(|v| *v == " ending").unwrap();
        logits[ending] = 0.0;
        g.restrict(&trie, &mut logits);
        assert!(!logits[conclusion].is_finite() && logits[ending].is_finite() && g.refusals == 1);
    }
}
