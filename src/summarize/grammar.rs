//! Lark grammars (llguidance's dialect) for every output format.
//!
//! Each grammar fixes the layout byte for byte and leaves the model only the
//! words: string fields are bounded character classes, so a field can neither
//! break the JSON or Markdown around it nor run on forever. Next to the grammar
//! come its fixed text and field sizes, from which the caller sizes the answer
//! budget and the reserve that closing mode needs.

use super::repeats::Fields;
use super::formats::{NotesShape, StructuredSizes, TextShape};
use super::structured::{BULLETS, GENERAL, GENERAL_TOPICS, SECTION_TOPICS, TOPICS};

pub struct GrammarSpec {
    pub lark: String,
    /// The fixed text between the fields, piece by piece as it gets forced.
    pub layout: Vec<String>,
    /// Free fields.
    pub fields: usize,
    /// The fields' combined maximum length in characters.
    pub content_chars: usize,
    /// Most tokens a field may take in closing mode before its closer is
    /// allowed (a name: a character, then the closer; a sentence: a word,
    /// its full stop, then the closer; a notes or W3C sentence needs 8
    /// characters first).
    pub close_tokens: usize,
    /// What ends a field and its sentence in closing mode.
    pub closing: Closing,
    /// How fields are delimited for the rule that none repeats an earlier one.
    pub repeat_fields: Fields,
}

fn starts(s: &[&str]) -> Vec<Vec<u8>> {
    s.iter().map(|s| s.as_bytes().to_vec()).collect()
}

/// Tokens of closing mode's grace, in which the field under way may end its
/// sentence where the model likes (a long clause is ~10 tokens).
const WRAP_UP_TOKENS: usize = 12;

/// Closing mode for fields ended by `closers` whose sentences end at `.`, `!` or `?`.
fn closing(closers: &[&str]) -> Closing {
    Closing { closers: starts(closers), enders: starts(&[".", "!", "?"]), wrap_up: WRAP_UP_TOKENS, penalize_enders: false }
}

/// How closing mode ends fields. A field whose grammar demands a sentence's
/// end before its closer (prose in JSON, a notes point, a key point) is ended
/// in two steps: an ender, then the closer.
#[derive(Debug, Clone, Default)]
pub struct Closing {
    /// Starts of tokens that end an open field (`"` in JSON, `\n` in Markdown).
    pub closers: Vec<Vec<u8>>,
    /// Starts of tokens that end a sentence (`.`, `!`, `?`).
    pub enders: Vec<Vec<u8>>,
    /// Sampled tokens in which the field open when closing mode starts may end
    /// its sentence on its own (closers and enders favoured, not yet forced):
    /// forcing the full stop at once would end the sentence mid-clause.
    pub wrap_up: usize,
    /// Whether the repetition penalty applies to enders. In JSON prose it must:
    /// a full stop left alone by the penalty over a long summary became the
    /// default model's favourite token ("Word. Word. Word."). Lines end at
    /// their full stop anyway, and there it was always exempt.
    pub penalize_enders: bool,
}

/// A Lark string literal (JSON string syntax).
fn lit(s: &str) -> String {
    serde_json::to_string(s).expect("strings always serialize")
}

/// JSON string content that needs no escaping: no quote, backslash or control
/// character (so a field cut short at any character is still valid JSON).
const JSON_CHAR: &str = r#"[^"\\\x00-\x1F\x7F\x{2028}\x{2029}]"#;
/// As [`JSON_CHAR`], and not whitespace either: a field's first character.
const JSON_START: &str = r#"[^\s"\\\x00-\x1F\x7F\x{2028}\x{2029}\x{FEFF}]"#;

fn json_text(max_chars: usize) -> String {
    format!("/{JSON_START}{JSON_CHAR}{{0,{}}}/", max_chars.saturating_sub(1))
}

/// JSON prose: [`json_text`] that ends with its sentence (`.`, `!` or `?` before the
/// closing quote; issue 21: fields ended "…these advancements are reshaping"). Inside,
/// any sentence may start and end: a grammar that refused new sentences past a size
/// made the default model glue words with full stops ("That.Is.An.Im") instead. With
/// the constraint's nudge near the size limit (`constrain.rs`, `near_field_limit`),
/// the model ends its sentence itself before the grammar would force the stop.
fn json_prose(max_chars: usize) -> String {
    format!("/{JSON_START}{JSON_CHAR}{{0,{}}}[.!?]/", max_chars.saturating_sub(2))
}

/// One section of the structured summary (issue 16: written from its own part of the
/// talk, so section 3 is about the third part), laid out as
/// [`super::structured::Section`] renders inside the summary. With `part` (the part's
/// transcript text), its topics are runs of the part's own words, the first of them
/// holding one of `terms` (the part's distinctive words) where the part has such a run
/// not in `written` (the fields of the summary so far).
///
/// The topics come first (the summary renders them after the bullets): a section is
/// about its part when its words are the part's own, and bullets written after
/// "block diagonal mask" were about the mask. Written last, the topics of
/// `mixtral8x7b`'s last section followed its generic bullets ("mistal", "attention"),
/// and the section was closer to the talk's first part than to its own.
pub fn section(n: usize, z: &StructuredSizes, part: Option<&str>, terms: &[String], written: &[String]) -> GrammarSpec {
    // Without the ones written before: the repeat guard would refuse them, and a list
    // of those alone would leave the first topic nothing to be.
    let seen: std::collections::HashSet<String> = written.iter().map(|w| super::repeats::normalize(w.as_bytes())).collect();
    let term_topics: Vec<String> = part.map(|p| term_topics(p, terms, z.topic)).unwrap_or_default().into_iter().filter(|t| !seen.contains(&super::repeats::normalize(t.as_bytes()))).collect();
    let mut b = Builder::default();
    b.lit("{\n  \"topics\": [\n");
    for i in 0..SECTION_TOPICS {
        b.lit("    \"");
        b.field(if i == 0 && !term_topics.is_empty() { "TERM_TOPIC" } else { "TOPIC" }, z.topic);
        b.lit(if i + 1 < SECTION_TOPICS { "\",\n" } else { "\"\n" });
    }
    b.lit(&format!("  ],\n  \"title\": \"Section {n}: "));
    b.field("TITLE", z.title);
    b.lit("\",\n  \"content\": [\n");
    for i in 0..BULLETS {
        b.lit("    \"");
        b.field("BULLET", z.bullet);
        b.lit(if i + 1 < BULLETS { "\",\n" } else { "\"\n" });
    }
    b.lit("  ]\n}");
    let mut g = format!("start: {}\n", b.seq.join(" "));
    // The schema's title pattern is `^Section N(: .+)?$`; `.` excludes line
    // terminators, which JSON_CHAR already leaves out.
    g.push_str(&format!("TITLE: {}\n", json_text(z.title)));
    g.push_str(&format!("BULLET: {}\n", json_prose(z.bullet)));
    // Topics are names, not sentences: letters and digits with the few signs
    // technical names use (C++, C#, Node.js, TCP/IP, O(n), R&D).
    // At most three words: runs of the talk's words ran on into phrases ("consistent
    // hashing why do all the cool", Qwen2.5-Coder-1.5B).
    let topic = format!("/[\\p{{L}}\\p{{N}}][\\p{{L}}\\p{{N}} \\-+#.\\/'&()]{{0,{}}}/ & /[^ ]+( [^ ]+){{0,2}}/", z.topic - 1);
    g.push_str(&format!("TOPIC: {}\n", from_talk(&topic, part)));
    if !term_topics.is_empty() {
        g.push_str(&format!("TERM_TOPIC: {}\n", term_topics.iter().map(|t| lit(t)).collect::<Vec<_>>().join(" | ")));
    }
    b.finish(g, 3, Closing { penalize_enders: true, ..closing(&["\""]) }, Fields::JsonStrings)
}

/// The topics of at most `max_chars` that `part` says word for word and that hold one
/// of `terms` (lowercase words, as `terms::distinctive` gives them) as one of their
/// words or its start ("mask" in "masks"): runs of one to three of the part's words,
/// each a name the `TOPIC` terminal would allow (letters, digits and `-+#./'&()`, a
/// letter first) without a function word ("models and compare" was one, Qwen2.5-Coder-1.5B),
/// those with the best of `terms` first, each group in the order the part says them. Listed as literals, not as a regex over the
/// part: llguidance's lexer ran out of fuel on another regex intersected with the
/// part's substrings (mixtral8x7b).
pub(crate) fn term_topics(part: &str, terms: &[String], max_chars: usize) -> Vec<String> {
    let function = super::terms::function_words();
    let clean = talk_words(part);
    let words: Vec<&str> = clean.split(' ').collect();
    let name_char = |c: char| c.is_alphanumeric() || " -+#./'&()".contains(c);
    // The best of `terms` a word holds, by its own words as `terms` counts them
    // ("KV-cache" is "kv" and "cache").
    let best_term = |w: &str| {
        w.split(|c: char| !c.is_alphanumeric()).filter_map(|p| {
            let p = p.to_lowercase();
            terms.iter().position(|t| p.starts_with(t.as_str()))
        }).min()
    };
    let mut out: Vec<(usize, String)> = vec![];
    let mut seen = std::collections::HashSet::new();
    for i in 0..words.len() {
        for n in 1..=3.min(words.len() - i) {
            let run = &words[i..i + n];
            let text = run.join(" ");
            let ok = text.chars().count() <= max_chars
                && text.chars().next().is_some_and(char::is_alphabetic)
                && text.chars().count() >= 2
                && text.chars().all(name_char)
                // Not "padding." or "diagonal-": a name ends on a letter, a digit, or the
                // sign of C++, C# or O(n).
                && text.chars().last().is_some_and(|c| c.is_alphanumeric() || "+#)".contains(c))
                && run.iter().all(|w| !function.contains(w.to_lowercase().as_str()));
            if let Some(best) = run.iter().filter_map(|w| best_term(w)).min().filter(|_| ok) {
                if seen.insert(text.clone()) {
                    out.push((best, text));
                }
            }
        }
    }
    // A long part says its terms hundreds of times: the runs of the best terms first
    // (stable: then in the part's order), at most MAX_TERM_TOPICS of them, so the
    // grammar stays small.
    out.sort_by_key(|(best, _)| *best);
    out.into_iter().take(MAX_TERM_TOPICS).map(|(_, t)| t).collect()
}

/// The most candidates [`term_topics`] lists (the corpus talks' parts, 1,300–2,900
/// characters each, have 10 to 60 at the medium length's 40 characters).
const MAX_TERM_TOPICS: usize = 256;

/// What the structured summary says of the whole talk, written from its five
/// sections: the introduction, the five global topics (runs of the talk's own
/// words, with `talk`) and the general topics from the fixed list with complexity.
pub fn overview(z: &StructuredSizes, talk: Option<&str>) -> GrammarSpec {
    let mut b = Builder::default();
    b.lit("{\n  \"introduction\": \"");
    b.field("INTRO", z.introduction);
    b.lit("\",\n  \"topics\": [\n");
    for i in 0..TOPICS {
        b.lit("    \"");
        b.field("TAG", 2 * z.word + 1);
        b.lit(if i + 1 < TOPICS { "\",\n" } else { "\"\n" });
    }
    b.lit("  ],\n  \"generalTopics\": [\n");
    let longest = GENERAL_TOPICS.iter().map(|t| t.len()).max().unwrap_or(0);
    for i in 0..GENERAL {
        b.lit("    {\n      \"name\": \"");
        b.field("NAME", longest);
        b.lit("\",\n      \"complexity\": ");
        b.field("COMPLEXITY", 4);
        b.lit(if i + 1 < GENERAL { "\n    },\n" } else { "\n    }\n" });
    }
    b.lit("  ]\n}");
    let mut g = format!("start: {}\n", b.seq.join(" "));
    g.push_str(&format!("INTRO: {}\n", json_prose(z.introduction)));
    // `^\S+( \S+)?$`: one or two words.
    let word = format!(r#"[\p{{L}}\p{{N}}][\p{{L}}\p{{N}}\-+#.\/'&]{{0,{}}}"#, z.word - 1);
    g.push_str(&format!("TAG: {}\n", from_talk(&format!("/{word}( {word})?/"), talk)));
    g.push_str(&format!("NAME: {}\n", GENERAL_TOPICS.iter().map(|t| lit(t)).collect::<Vec<_>>().join(" | ")));
    g.push_str("COMPLEXITY: /0\\.[0-9][0-9]|1\\.00/\n");
    b.finish(g, 3, Closing { penalize_enders: true, ..closing(&["\""]) }, Fields::JsonStrings)
}

/// A topic terminal of `shape`, restricted with `talk` to llguidance's substring
/// automaton over the talk's words (as the notes' quotes are built), starting with
/// a letter and three characters or more: issue 16 saw topics lifted from the worked
/// examples ("React, Express, Redis" for a talk with none of them), and without the
/// letter rule the default model picked the talk's "1", "45" and "is".
///
/// Nor may a topic end on a function word: runs of the talk's words cut mid-phrase
/// gave Qwen2.5-Coder-1.5B the global topics "hashing and" and "replication so", and
/// the section topics "consistent hashing are" and "index as the". (The same ban on a
/// topic's first word as well made llguidance's lexer run out of fuel on every corpus
/// talk: negations cost it most, and two of them over the talk's substrings too much.
/// The last word is where the 1.5B model's topics went wrong.)
pub(crate) fn from_talk(shape: &str, talk: Option<&str>) -> String {
    match talk.map(talk_words) {
        Some(words) if !words.is_empty() => {
            let span = serde_json::json!({ "substring_words": words }).to_string();
            let f = function_words();
            format!("%regex {span} & {shape} & /\\p{{L}}[^\"]+[^\" ]/ & ~/([^ ]+ ){{0,2}}({f})/")
        }
        _ => shape.to_string(),
    }
}

/// [`super::terms::FUNCTION_WORDS`], lowercase and capitalized, as a regex alternation.
fn function_words() -> String {
    super::terms::FUNCTION_WORDS
        .split_whitespace()
        .flat_map(|w| {
            let mut c = w.chars();
            let cap: String = c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default();
            [w.to_string(), cap]
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// The talk's text as the topics may quote it: words between single spaces (a
/// caption's line break is a space here), without the characters no topic may hold
/// (quotes, backslashes, control characters), which would otherwise split nothing
/// and only make the automaton larger.
fn talk_words(talk: &str) -> String {
    let clean: String = talk.chars().map(|c| if c == '"' || c == '\\' || c.is_control() { ' ' } else { c }).collect();
    clean.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Collects a grammar's top-level sequence with its layout and field sizes.
#[derive(Default)]
struct Builder {
    seq: Vec<String>,
    layout: Vec<String>,
    fields: usize,
    content_chars: usize,
}

impl Builder {
    fn lit(&mut self, s: &str) {
        self.seq.push(lit(s));
        self.layout.push(s.to_string());
    }
    /// A terminal or rule standing for a free field of at most `chars` characters.
    fn field(&mut self, symbol: &str, chars: usize) {
        self.seq.push(symbol.to_string());
        self.fields += 1;
        self.content_chars += chars;
    }
    fn finish(self, lark: String, close_tokens: usize, closing: Closing, repeat_fields: Fields) -> GrammarSpec {
        GrammarSpec { lark, layout: self.layout, fields: self.fields, content_chars: self.content_chars, close_tokens, closing, repeat_fields }
    }
}

/// One section of the notes as planned: its time range (when known) and the
/// transcript text its quotes must come from.
#[derive(Debug, Clone)]
pub struct NotesSection {
    pub range: Option<String>,
    pub text: String,
}

/// Shortest quote worth having, in characters; a part shorter than a few of
/// these gets no quotes.
pub const MIN_QUOTE_CHARS: usize = 24;

/// Markdown notes: for each planned section a `### Title (m:ss - m:ss)` header,
/// 2..=max numbered one-sentence points, then `Quotes:` with numbered quotes
/// that the grammar only lets be word-aligned spans of that section's text.
pub fn notes(sections: &[NotesSection], shape: &NotesShape) -> GrammarSpec {
    let mut terminals = String::new();
    let mut rules = String::new();
    let mut all = Builder::default();
    for (i, s) in sections.iter().enumerate() {
        let mut b = Builder::default();
        b.lit("### ");
        match &s.range {
            // The title terminal ends with the space before the time range, so the
            // lexer knows the title is over when `(` comes.
            Some(r) => {
                b.field("TITLE_SP", shape.title_chars + 1);
                b.lit(&format!("({r})\n"));
            }
            None => {
                b.field("TITLE", shape.title_chars);
                b.lit("\n");
            }
        }
        // Points 3.. are optional, each only after the one before; all count
        // towards the size, the optional ones' numbers too.
        b.lit("1. ");
        b.field("SENTENCE", shape.sentence_chars);
        b.lit("\n2. ");
        b.field("SENTENCE", shape.sentence_chars);
        b.lit("\n");
        if shape.max_points > 2 {
            b.field("more_points", (shape.max_points - 2) * (shape.sentence_chars + 4));
        }
        let quotes = if s.text.chars().count() >= 3 * MIN_QUOTE_CHARS { shape.quotes } else { 0 };
        if quotes > 0 {
            b.lit("Quotes:\n");
            for q in 1..=quotes {
                b.lit(&format!("{q}. \""));
                b.field(&format!("QUOTE_{i}"), shape.quote_chars);
                b.lit("\"\n");
            }
            let span = serde_json::json!({ "substring_words": s.text }).to_string();
            terminals.push_str(&format!(
                "QUOTE_{i}: %regex {span} & /[^\\s\"][^\\n\"]{{{},{}}}[^\\s\"]/\n",
                MIN_QUOTE_CHARS - 2,
                shape.quote_chars.max(MIN_QUOTE_CHARS) - 2
            ));
        }
        if i + 1 < sections.len() {
            b.lit("\n");
        }
        rules.push_str(&format!("section_{i}: {}\n", b.seq.join(" ")));
        all.seq.push(format!("section_{i}"));
        all.layout.extend(b.layout);
        all.fields += b.fields;
        all.content_chars += b.content_chars;
    }
    let mut more = String::new();
    for p in (3..=shape.max_points).rev() {
        more = format!("{} SENTENCE \"\\n\" {more}", lit(&format!("{p}. ")));
        more = format!("({more})?");
    }
    let mut g = format!("start: {}\n{rules}{terminals}", all.seq.join(" "));
    if shape.max_points > 2 {
        g.push_str(&format!("more_points: {more}\n"));
    }
    // A title is words: a Latin capital first (small models otherwise dodge
    // into exotic capitals to number it anyway), then letters, digits and the signs of
    // technical names — no dots (small models number headers "1.2.3" when let),
    // no Markdown, no parentheses (the time range follows).
    let title = format!("[A-Z][\\p{{L}}\\p{{N}} ,:'&+\\-\\/]{{1,{}}}", shape.title_chars);
    g.push_str(&format!("TITLE: /{title}/\nTITLE_SP: /{title} /\n"));
    g.push_str(&format!("SENTENCE: {}\n", notes_sentence(shape.sentence_chars)));
    all.finish(g, 12, closing(&["\"", "\n", "(", " ("]), Fields::Lines)
}

/// Shorter "sentences" are a small model giving up ("The run."). Raising it
/// to 20 made SmolLM2-135M pad the gap with letter soup instead of writing
/// more words, so the floor stays low.
const MIN_SENTENCE_CHARS: usize = 8;

/// One sentence on one line: starts with a non-space non-Markdown character,
/// ends at `.`, `!` or `?`. A full stop inside a number ("2.5") or before a
/// lowercase letter ("node.js", "e.g.") does not end it; anything else after
/// a stop would let a model that wants to stop early pad the minimum with
/// "Compressing.7.1.D.H." (seen with SmolLM2-135M when `[.!?][^\s]` was allowed).
fn sentence(max_chars: usize) -> String {
    sentence_excluding(max_chars, "", "")
}

/// Double quotation marks, straight and typographic: in notes they appear
/// only around the quotes, which are checked against the transcript.
pub const DOUBLE_QUOTES: &[char] = &['"', '\u{201C}', '\u{201D}', '\u{201E}', '\u{201F}', '\u{00AB}', '\u{00BB}'];

/// A notes point: a [`sentence`] without double quotation marks, not starting
/// with a single one either. Points that may quote made small models write
/// `1. "server" (7 times.`: a line that reads as a quote, with free text after
/// it and words that are not in the transcript.
fn notes_sentence(max_chars: usize) -> String {
    let marks: String = DOUBLE_QUOTES.iter().map(|c| format!("\\x{{{:X}}}", *c as u32)).collect();
    sentence_excluding(max_chars, &format!("{marks}'\\x{{2018}}\\x{{2019}}"), &marks)
}

/// [`sentence`] with the characters (regex class syntax) `first` left out of
/// its first character and `inner` out of every character.
fn sentence_excluding(max_chars: usize, first: &str, inner: &str) -> String {
    format!(r#"/[^\s#*\-.!?,;:{first}{inner}]([^\n.!?{inner}]|[0-9]\.[0-9]|\.[a-z])*[.!?]/ & /[^\n]{{{MIN_SENTENCE_CHARS},{max_chars}}}/"#)
}

/// The W3C-style plain formats.
pub fn text(format: super::Format, shape: &TextShape) -> GrammarSpec {
    use super::Format;
    let n = shape.count.max(1);
    let mut b = Builder::default();
    match format {
        Format::KeyPoints => {
            for _ in 0..n {
                b.lit("- ");
                b.field("SENTENCE", shape.sentence_chars);
                b.lit("\n");
            }
            let g = format!("start: {}\nSENTENCE: {}\n", b.seq.join(" "), sentence(shape.sentence_chars));
            b.finish(g, 12, closing(&["\n"]), Fields::Lines)
        }
        Format::Headline => {
            // 3..=n words on one line.
            // Words of letters, digits and the signs of technical names.
            b.field("HEADLINE", 21 * n);
            let word = r#"[\p{L}\p{N}][\p{L}\p{N}'’\-+#.:,&\/]{0,19}"#;
            let first = r#"[\p{Lu}\p{N}][\p{L}\p{N}'’\-+#.:,&\/]{0,19}"#;
            let g = format!("start: HEADLINE\nHEADLINE: /{first}( {word}){{2,{}}}/\n", n.max(3) - 1);
            b.finish(g, 4, Closing::default(), Fields::Lines)
        }
        _ => {
            // 1..=n sentences in one paragraph.
            b.field("sentences", n * (shape.sentence_chars + 1));
            let mut rest = String::new();
            for _ in 1..n {
                rest = format!("(\" \" SENTENCE {rest})?");
            }
            let g = format!("start: SENTENCE {rest}\nSENTENCE: {}\n", sentence(shape.sentence_chars));
            b.finish(g, 12, closing(&[]), Fields::Lines)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::formats::{Length, StructuredSizes};
    use super::*;

    /// The layout with "x" for every string field, a general topic's name and 0.50 for
    /// complexities.
    fn filled(g: &GrammarSpec) -> String {
        let mut out = String::new();
        for piece in &g.layout {
            out.push_str(piece);
            if piece.ends_with("\"complexity\": ") {
                out.push_str("0.50");
            } else if piece.ends_with("\"name\": \"") {
                out.push_str(GENERAL_TOPICS[0]);
            } else if piece.ends_with('"') || piece.contains("\"title\"") {
                out.push('x');
            }
        }
        out
    }

    #[test]
    fn section_and_overview_layouts_are_the_summary_s_parts() {
        let z = StructuredSizes::for_length(Length::Medium);
        let s = section(3, &z, None, &[], &[]);
        assert_eq!(s.fields, 1 + 4 + 3);
        let part: crate::summarize::structured::Section = serde_json::from_str(&filled(&s)).unwrap();
        assert_eq!((part.title.as_str(), part.content.len(), part.topics.len()), ("Section 3: x", 4, 3));
        let o = overview(&z, None);
        assert_eq!(o.fields, 1 + 5 + 3 * 2);
        let v: crate::summarize::structured::Overview = serde_json::from_str(&filled(&o)).unwrap();
        assert_eq!((v.topics.len(), v.general_topics.len(), v.general_topics[2].complexity), (5, 3, 0.5));
        // Both grammars compile into one summary that passes every rule.
        let summary = crate::summarize::structured::StructuredSummary::assemble(v, (1..=5).map(|n| {
            let mut p: crate::summarize::structured::Section = serde_json::from_str(&filled(&section(n, &z, None, &[], &[]))).unwrap();
            p.content = (0..4).map(|i| format!("point {n}.{i}")).collect();
            p
        }).collect());
        crate::summarize::structured::StructuredSummary::parse(&summary.render()).unwrap();
    }

    #[test]
    fn a_term_topic_is_a_run_of_the_part_that_names_a_term() {
        let part = "so the block diagonal mask with offset padding. It masks the KV-cache, and the masking layer of caches";
        let terms = vec!["mask".to_string(), "cache".to_string()];
        // Runs of up to three words holding a word that starts with "mask" or "cache"
        // (in any case, "KV-cache" counting as "kv" and "cache"), each once, those
        // with the first term first, in the part's order; a function word anywhere in
        // a run ("mask with", "masks the"), a comma ("KV-cache,") or a run over 16
        // characters ("block diagonal mask") rules it out.
        assert_eq!(term_topics(part, &terms, 16), ["diagonal mask", "mask", "masks", "masking", "masking layer", "caches"]);
        let swapped = vec!["cache".to_string(), "mask".to_string()];
        assert_eq!(term_topics(part, &swapped, 16), ["caches", "diagonal mask", "mask", "masks", "masking", "masking layer"]);
        assert_eq!(term_topics(part, &terms, 24)[0], "block diagonal mask");
        assert!(term_topics(part, &[], 24).is_empty(), "no terms, no term topics");
        let terms = vec!["padding".to_string()];
        assert!(term_topics(part, &terms, 24).is_empty(), "\"offset padding.\" ends with a sign no name ends with");
    }

    #[test]
    fn a_section_writes_its_topics_first_the_first_from_the_terms() {
        let z = StructuredSizes::for_length(Length::Medium);
        let part = "the block diagonal mask tells the cache how many items to use";
        let s = section(5, &z, Some(part), &["mask".to_string()], &["Diagonal  Mask".to_string()]);
        assert!(s.layout[0].contains("\"topics\""), "topics first: {:?}", s.layout);
        let start = s.lark.lines().next().unwrap();
        let at = |sym: &str| start.find(sym).unwrap_or_else(|| panic!("{sym} in {start}"));
        assert!(at(" TERM_TOPIC ") < at(" TOPIC ") && at(" TOPIC ") < at(" TITLE ") && at(" TITLE ") < at(" BULLET "), "term topic, topics, title, bullets: {start}");
        let terminal = s.lark.lines().find(|l| l.starts_with("TERM_TOPIC: ")).unwrap();
        for t in ["\"block diagonal mask\"", "\"mask\"", "\"mask tells\""] {
            assert!(terminal.contains(t), "{t} in {terminal}");
        }
        assert!(!terminal.contains("\"diagonal mask\""), "written before (normalized), so not offered: {terminal}");
        assert!(!terminal.contains("the"), "no function word: {terminal}");
        // Without terms the section has no such terminal.
        assert!(!section(5, &z, Some(part), &[], &[]).lark.contains("TERM_TOPIC"));
        // Nor when every run with a term was written before.
        assert!(!section(5, &z, Some("the mask"), &["mask".to_string()], &["Mask".to_string()]).lark.contains("TERM_TOPIC"));
    }
}
