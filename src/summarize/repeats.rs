//! Keeps a summary from saying the same thing twice (issue 16): no title, bullet,
//! topic, notes point or key point may equal an earlier one, normalized — and so no
//! bullet may restate its section's title, which comes before it.
//!
//! A small model, greedy, falls into loops: the five sections of a structured
//! summary came out word for word alike, and topics repeated across sections. The
//! repetition penalty discourages reused tokens but cannot see a whole field. This
//! guard works at the moment a field would end: a token that closes the field (`"`
//! after a JSON string value, `\n` after a line) is refused when the field so far,
//! normalized, is one already written, so the model has to go on and make it
//! different. Deleting repeats afterwards would instead leave a structured summary
//! one bullet short of its schema. A field that the grammar will close by itself (a
//! topic at its three-word limit) gives no closing step to refuse, so the token that
//! would complete such a repeat is refused instead: the constraint looks one token
//! ahead ([`RepeatGuard::completing`]) where the field so far is the start of an
//! earlier one. Where the grammar leaves nothing but a repeat (the field is at its
//! size limit) it is let through and counted.
//!
//! Fields are what the model wrote: a field whose bytes all came from forced tokens
//! (JSON keys, `Quotes:`) is layout and is not remembered. Normalized text is the
//! field's words (runs of ASCII letters and digits, lowercased), without a leading
//! list number (`2.`) or section label (`Section 3:`).

use llguidance::toktrie::TokTrie;
use std::collections::HashSet;

/// How a format's fields are delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fields {
    /// JSON: the values of strings (`"` opens and closes; the grammars allow no escapes).
    JsonStrings,
    /// Markdown and plain text: lines.
    Lines,
}

impl Fields {
    fn delimiter(self) -> u8 {
        match self {
            Fields::JsonStrings => b'"',
            Fields::Lines => b'\n',
        }
    }
}

/// The words of a field, without its list number or section label.
pub fn normalize(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes).to_ascii_lowercase();
    let mut words: Vec<&str> = text.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
    if words.len() >= 2 && words[0] == "section" && words[1].bytes().all(|b| b.is_ascii_digit()) {
        words.drain(..2);
    } else if list_number(bytes) {
        words.remove(0);
    }
    words.join(" ")
}

/// Whether `bytes` open with a list number: digits, then `.` or `)`.
fn list_number(bytes: &[u8]) -> bool {
    let b = bytes.trim_ascii_start();
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    digits > 0 && matches!(b.get(digits), Some(b'.' | b')'))
}

/// Tokens looked ahead for at one step, at most: each costs a copy of the parser.
pub const MAX_AHEAD: usize = 48;
/// A step that allows at most this many tokens has each of them looked ahead for.
const NARROW: usize = 32;

pub struct RepeatGuard {
    fields: Fields,
    /// Tokens whose bytes hold the delimiter (precomputed once per constraint).
    closing: Vec<u32>,
    /// JSON: inside a string.
    inside: bool,
    current: Vec<u8>,
    /// Whether a sampled token wrote into the current field.
    sampled: bool,
    seen: HashSet<String>,
    /// Each token's letters and digits, lowercased, to the tokens that have them
    /// (built on the first look ahead): the tokens that could complete a field.
    by_words: Option<std::collections::HashMap<Vec<u8>, Vec<u32>>>,
    /// Steps at which closing tokens were refused.
    pub refusals: usize,
    /// Steps at which only a repeat could close the field, so it was let through.
    pub unavoidable: usize,
    /// Set by the constraint in closing mode, where finishing within the budget
    /// comes first: nothing is refused, and a repeat closed then is counted as let
    /// through.
    pub relaxed: bool,
}

impl RepeatGuard {
    pub fn new(trie: &TokTrie, fields: Fields) -> Self {
        let d = fields.delimiter();
        let closing = (0..trie.vocab_size() as u32).filter(|&t| {
            let b = trie.token(t);
            b.first() != Some(&TokTrie::SPECIAL_TOKEN_MARKER) && b.contains(&d)
        });
        RepeatGuard { fields, closing: closing.collect(), inside: false, current: vec![], sampled: false, seen: HashSet::new(), by_words: None, refusals: 0, unavoidable: 0, relaxed: false }
    }

    /// Fields written before this output began, as if it had written them.
    pub fn remember(&mut self, fields: &[String]) {
        self.seen.extend(fields.iter().map(|f| normalize(f.as_bytes())).filter(|n| !n.is_empty()));
    }

    /// The open field's bytes so far (empty between fields).
    pub fn current(&self) -> &[u8] {
        &self.current
    }

    /// Whether a field is open, nothing written in it yet, and there are earlier fields.
    pub fn at_field_start(&self) -> bool {
        self.in_field() && self.current.is_empty() && !self.seen.is_empty()
    }

    /// Whether a field is open for the model to write in.
    fn in_field(&self) -> bool {
        self.fields == Fields::Lines || self.inside
    }

    /// Sets to -inf the allowed tokens that would end the current field as a copy
    /// of an earlier one, unless every allowed token does.
    /// Whether `t` holds the delimiter (it would close the field).
    pub fn closes(&self, t: u32) -> bool {
        self.closing.binary_search(&t).is_ok()
    }

    /// Allowed tokens that do not close the field but spell the start (or all) of what
    /// an earlier field has beyond this one: harmless where the model may go on, a
    /// repeat where the grammar then leaves nothing but that earlier field (a topic at
    /// its word limit; " add" where only "ing" may follow). The caller looks ahead for
    /// those ([`GrammarConstraint::forces_repeat`]) and passes them back to
    /// [`RepeatGuard::restrict`]. Empty unless the field so far is the start of an
    /// earlier one (most steps cost one prefix check); then every allowed token where
    /// the grammar allows at most `NARROW` (a space or a hyphen may be all it takes
    /// before the grammar spells the rest), else at most [`MAX_AHEAD`] tokens.
    ///
    /// [`GrammarConstraint::forces_repeat`]: super::constrain::GrammarConstraint
    pub fn completing(&mut self, trie: &TokTrie, logits: &[f32]) -> Vec<u32> {
        if !self.in_field() || self.seen.is_empty() {
            return vec![];
        }
        let now = normalize(&self.current);
        if now.is_empty() {
            return vec![];
        }
        // What an earlier field has beyond this one, as letters and digits only:
        // "consistent hashing add" before "consistent hashing adding" leaves "ing".
        let alnum = |s: &str| s.bytes().filter(u8::is_ascii_alphanumeric).collect::<Vec<u8>>();
        let rests: Vec<Vec<u8>> = self.seen.iter().filter(|s| s.len() > now.len() && s.starts_with(&now)).map(|s| alnum(&s[now.len()..])).filter(|r| !r.is_empty()).collect();
        if rests.is_empty() {
            return vec![];
        }
        // Where the grammar is narrow (a topic inside the talk's words) every way on is
        // looked at: a bare " " after "consistent", with "hashing" then forced by the
        // grammar, spells a repeat as surely as " hashing" does (the 1.5B model's
        // section 3 repeated "consistent hashing adding" that way).
        let open: Vec<u32> = (0..logits.len() as u32).filter(|&t| logits[t as usize].is_finite()).take(NARROW + 1).collect();
        if open.len() <= NARROW {
            return open.into_iter().filter(|&t| self.closing.binary_search(&t).is_err() && trie.token(t).first() != Some(&TokTrie::SPECIAL_TOKEN_MARKER)).collect();
        }
        let by_words = self.by_words.get_or_insert_with(|| {
            let mut m: std::collections::HashMap<Vec<u8>, Vec<u32>> = Default::default();
            for t in 0..trie.vocab_size() as u32 {
                let b = trie.token(t);
                if b.first() == Some(&TokTrie::SPECIAL_TOKEN_MARKER) {
                    continue;
                }
                let w: Vec<u8> = b.iter().filter(|c| c.is_ascii_alphanumeric()).map(u8::to_ascii_lowercase).collect();
                if !w.is_empty() {
                    m.entry(w).or_default().push(t);
                }
            }
            m
        });
        let mut out = vec![];
        // Longest spellings first: the whole rest, then ever shorter starts of it.
        for r in &rests {
            for k in (1..=r.len()).rev() {
                for &t in by_words.get(&r[..k]).map(Vec::as_slice).unwrap_or(&[]) {
                    if out.len() < MAX_AHEAD && logits.get(t as usize).is_some_and(|l| l.is_finite()) && self.closing.binary_search(&t).is_err() && !out.contains(&t) {
                        out.push(t);
                    }
                }
            }
        }
        out
    }

    /// The byte that ends a field.
    pub fn delimiter(&self) -> u8 {
        self.fields.delimiter()
    }

    /// Whether `field` (its bytes so far, without the delimiter), normalized, is an
    /// earlier field.
    pub fn is_seen(&self, field: &[u8]) -> bool {
        let n = normalize(field);
        !n.is_empty() && self.seen.contains(&n)
    }

    /// Refuses the allowed tokens of `also` unless nothing else is left (then counts
    /// the step as unavoidable). Alone, in closing mode: the tokens after which the
    /// grammar closes a repeat (without them the field ends sooner, never later).
    pub fn refuse_only(&mut self, logits: &mut [f32], also: &[u32]) {
        let refuse: Vec<u32> = also.iter().copied().filter(|&t| logits.get(t as usize).is_some_and(|l| l.is_finite())).collect();
        if refuse.is_empty() {
            return;
        }
        if !logits.iter().enumerate().any(|(t, l)| l.is_finite() && !refuse.contains(&(t as u32))) {
            self.unavoidable += 1;
            return;
        }
        for t in refuse {
            logits[t as usize] = f32::NEG_INFINITY;
        }
        self.refusals += 1;
    }

    /// Refuses the closing tokens that would end the field as a repeat, and `also`
    /// (tokens after which the grammar closes the field as a repeat, see
    /// [`RepeatGuard::completing`]), unless nothing else is left.
    pub fn restrict(&mut self, trie: &TokTrie, logits: &mut [f32], also: &[u32]) {
        if !self.in_field() || self.seen.is_empty() {
            return;
        }
        let d = self.fields.delimiter();
        let allowed = |t: u32| logits.get(t as usize).is_some_and(|l| l.is_finite());
        let mut field = self.current.clone();
        let base = field.len();
        let refuse: Vec<u32> = self
            .closing
            .iter()
            .copied()
            .filter(|&t| allowed(t))
            .filter(|&t| {
                let b = trie.token(t);
                let cut = b.iter().position(|&x| x == d).expect("a closing token holds the delimiter");
                field.truncate(base);
                field.extend_from_slice(&b[..cut]);
                let n = normalize(&field);
                !n.is_empty() && self.seen.contains(&n)
            })
            .chain(also.iter().copied())
            .collect();
        self.refuse_only(logits, &refuse);
    }

    /// Follows the output; `sampled`: the model chose this token (not the grammar).
    pub fn accept(&mut self, trie: &TokTrie, token: u32, sampled: bool) {
        let bytes = trie.token(token);
        if bytes.first() == Some(&TokTrie::SPECIAL_TOKEN_MARKER) {
            return;
        }
        let d = self.fields.delimiter();
        for &b in bytes {
            if b == d {
                if self.in_field() {
                    self.close(sampled && !self.relaxed);
                }
                if self.fields == Fields::JsonStrings {
                    self.inside = !self.inside;
                }
            } else if self.in_field() {
                self.current.push(b);
                self.sampled |= sampled;
            }
        }
    }

    /// Ends the current field; `by_model`: the model chose the closing token. A
    /// repeat the grammar closed (a field at its size limit, or a fixed name the
    /// grammar spelled out after its first token) is counted as let through.
    fn close(&mut self, by_model: bool) {
        let n = normalize(&self.current);
        if self.sampled && !n.is_empty() && !self.seen.insert(n) && !by_model {
            self.unavoidable += 1;
        }
        self.current.clear();
        self.sampled = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llguidance::toktrie::TokRxInfo;

    fn trie(words: &[&str]) -> TokTrie {
        let w: Vec<Vec<u8>> = words.iter().map(|s| s.as_bytes().to_vec()).collect();
        let info = TokRxInfo { vocab_size: w.len() as u32, tok_eos: 0, tok_bos: None, tok_pad: None, tok_unk: None, tok_end_of_turn: None };
        TokTrie::from(&info, &w)
    }

    const VOCAB: &[&str] = &["\"", "\",", "Redis", " Redis", " cache", "\n", "- ", "Section 1: ", "Caching", ".", "key", "\": \"", "2. "];

    fn id(s: &str) -> u32 {
        VOCAB.iter().position(|v| *v == s).unwrap_or_else(|| panic!("no token {s:?}")) as u32
    }

    /// Feeds `(token, sampled)` pairs, then returns the probe tokens refused.
    fn refused(fields: Fields, written: &[(&str, bool)], probe: &[&str]) -> Vec<String> {
        let t = trie(VOCAB);
        let mut g = RepeatGuard::new(&t, fields);
        for (tok, sampled) in written {
            g.accept(&t, id(tok), *sampled);
        }
        let mut logits = vec![0.0f32; VOCAB.len()];
        g.restrict(&t, &mut logits, &[]);
        probe.iter().filter(|p| !logits[id(p) as usize].is_finite()).map(|p| p.to_string()).collect()
    }

    #[test]
    fn normalized_text_drops_case_punctuation_numbers_and_labels() {
        assert_eq!(normalize(b"Section 3: Redis, the Cache!"), "redis the cache");
        assert_eq!(normalize(b"2. Redis the cache."), "redis the cache");
        assert_eq!(normalize(b"2020 was the year."), "2020 was the year");
        assert_eq!(normalize(b"3) Redis"), "redis");
        assert_eq!(normalize(b"..."), "");
    }

    #[test]
    fn a_json_value_equal_to_an_earlier_one_cannot_close() {
        // {"key": "Redis", "key": "Redis| — the closing quote is refused, a longer value is not.
        let first = [("\"", false), ("key", false), ("\": \"", false), ("Redis", true), ("\",", false), ("\"", false), ("key", false), ("\": \"", false), ("Redis", true)];
        assert_eq!(refused(Fields::JsonStrings, &first, &["\"", "\",", " cache"]), vec!["\"", "\","]);
        // Keys are forced: "key" twice is layout, not a repeat.
        let keys = [("\"", false), ("key", false), ("\": \"", false), ("Redis", true), ("\",", false), ("\"", false), ("key", false)];
        assert_eq!(refused(Fields::JsonStrings, &keys, &["\"", "\",", "\": \""]), Vec::<String>::new());
        // A bullet that restates the title ("Section 1: Caching" then "Caching").
        let title = [("\"", false), ("Section 1: ", false), ("Caching", true), ("\",", false), ("\"", false), ("Caching", true)];
        assert_eq!(refused(Fields::JsonStrings, &title, &["\"", "."]), vec!["\""]);
    }

    #[test]
    fn a_line_equal_to_an_earlier_one_cannot_end() {
        let lines = [("- ", false), ("Redis", true), (" cache", true), ("\n", true), ("- ", false), ("Redis", true), (" cache", true)];
        assert_eq!(refused(Fields::Lines, &lines, &["\n", "."]), vec!["\n"]);
        // Numbered points: "2. Redis" after "Redis".
        let numbered = [("Redis", true), ("\n", true), ("2. ", false), ("Redis", true)];
        assert_eq!(refused(Fields::Lines, &numbered, &["\n"]), vec!["\n"]);
    }

    #[test]
    fn a_field_of_an_earlier_pass_cannot_close_either() {
        // A later section pass, told the earlier sections' fields: "Redis" was a topic there.
        let t = trie(VOCAB);
        let mut g = RepeatGuard::new(&t, Fields::JsonStrings);
        g.remember(&["Section 2: Redis".to_string(), "Caching.".to_string()]);
        for (tok, sampled) in [("\"", false), ("Redis", true)] {
            g.accept(&t, id(tok), sampled);
        }
        let mut logits = vec![0.0f32; VOCAB.len()];
        g.restrict(&t, &mut logits, &[]);
        assert!(!logits[id("\"") as usize].is_finite() && logits[id(" cache") as usize].is_finite(), "{logits:?}");
    }

    #[test]
    fn a_repeat_the_grammar_leaves_no_way_around_is_let_through() {
        let t = trie(VOCAB);
        let mut g = RepeatGuard::new(&t, Fields::Lines);
        for tok in ["Redis", "\n", "Redis"] {
            g.accept(&t, id(tok), true);
        }
        let mut logits = vec![f32::NEG_INFINITY; VOCAB.len()];
        logits[id("\n") as usize] = 0.0;
        g.restrict(&t, &mut logits, &[]);
        assert!(logits[id("\n") as usize].is_finite() && g.unavoidable == 1 && g.refusals == 0);
    }

    /// A field the grammar closes by itself: the token that would complete an earlier
    /// field is found, the caller refuses it (when the close is forced after it), and
    /// only where nothing else is allowed is it let through.
    #[test]
    fn the_token_that_would_complete_a_repeat_is_found_and_refused() {
        let t = trie(VOCAB);
        let mut g = RepeatGuard::new(&t, Fields::JsonStrings);
        g.remember(&["Redis cache".to_string()]);
        for (tok, sampled) in [("\"", false), ("Redis", true)] {
            g.accept(&t, id(tok), sampled);
        }
        let mut logits = vec![0.0f32; VOCAB.len()];
        // Thirteen tokens allowed: a narrow step, every way on but the closes is looked at.
        let closes = [id("\""), id("\","), id("\": \"")];
        let narrow: Vec<u32> = (0..VOCAB.len() as u32).filter(|t| !closes.contains(t)).collect();
        assert_eq!(g.completing(&t, &logits), narrow);
        // A wide step (40 more tokens allowed): only the tokens that spell the rest.
        let mut wide_vocab: Vec<String> = VOCAB.iter().map(|s| s.to_string()).collect();
        wide_vocab.extend((0..40).map(|i| format!("x{i}")));
        let wt = trie(&wide_vocab.iter().map(String::as_str).collect::<Vec<_>>());
        let mut wg = RepeatGuard::new(&wt, Fields::JsonStrings);
        wg.remember(&["Redis cache".to_string()]);
        wg.accept(&wt, id("\""), false);
        wg.accept(&wt, id("Redis"), true);
        assert_eq!(wg.completing(&wt, &vec![0.0f32; wide_vocab.len()]), vec![id(" cache")]);
        // Not the start of an earlier field: nothing to look ahead for.
        let mut other = RepeatGuard::new(&t, Fields::JsonStrings);
        other.remember(&["cache".to_string()]);
        other.accept(&t, id("\""), false);
        other.accept(&t, id("Redis"), true);
        assert!(other.completing(&t, &logits).is_empty());
        g.restrict(&t, &mut logits, &[id(" cache")]);
        assert!(!logits[id(" cache") as usize].is_finite() && logits[id(".") as usize].is_finite() && g.refusals == 1);
        let mut only = vec![f32::NEG_INFINITY; VOCAB.len()];
        only[id(" cache") as usize] = 0.0;
        g.restrict(&t, &mut only, &[id(" cache")]);
        assert!(only[id(" cache") as usize].is_finite() && g.unavoidable == 1);
    }
}
