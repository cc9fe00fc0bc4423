//! Markdown notes after generation: every quote is checked against the
//! transcript with [`find_verbatim`]; one that is not there is replaced by the
//! closest span of its section's text (itself checked), or dropped, and the
//! quotes renumbered. A quote line comes out as exactly `N. "…"`: text after
//! the closing mark is cut off. Double quotation marks elsewhere (a point
//! quoting a word) stay only around words that are in the transcript.
//! (The grammar already confines quotes to the section's text and keeps
//! quotation marks out of the points, so this is the second line of defence —
//! and the only one for notes made any other way.)

use super::grammar::DOUBLE_QUOTES;
use crate::transcript::find_verbatim;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuoteReport {
    pub kept: usize,
    pub repaired: usize,
    pub dropped: usize,
}

/// Checks and fixes the quotes of one section. `section` is the Markdown of the
/// section, `source` the transcript text its quotes should come from, `full`
/// the whole transcript text (a quote from elsewhere in it is still verbatim).
pub fn verify_quotes(section: &str, source: &str, full: &str, report: &mut QuoteReport) -> String {
    let mut out: Vec<String> = vec![];
    let mut in_quotes = false;
    let mut quotes: Vec<String> = vec![];
    for line in section.lines() {
        if line == "Quotes:" {
            in_quotes = true;
            continue;
        }
        if in_quotes {
            if let Some(q) = quote_of(line) {
                let q = q.trim();
                let kept = find_verbatim(full, q).is_some();
                let fixed = if kept { Some(q.to_string()) } else { closest_span(source, q).filter(|f| printable(f) && find_verbatim(full, f).is_some()) };
                match fixed {
                    // A quote met twice in the section is dropped the second time.
                    Some(f) if !quotes.contains(&f) => {
                        if kept {
                            report.kept += 1;
                        } else {
                            report.repaired += 1;
                        }
                        quotes.push(f);
                    }
                    _ => report.dropped += 1,
                }
                continue;
            }
            in_quotes = false;
        }
        out.push(unquote_unless_verbatim(line, full));
    }
    let mut text = out.join("\n").trim_end().to_string();
    if !quotes.is_empty() {
        text.push_str("\nQuotes:");
        for (i, q) in quotes.iter().enumerate() {
            text.push_str(&format!("\n{}. \"{q}\"", i + 1));
        }
    }
    text
}

/// The quote in a line `N. "…"`: the text between the opening mark and the
/// next double quotation mark, whatever follows that.
fn quote_of(line: &str) -> Option<&str> {
    let rest = line[numbered(line)?..].strip_prefix(DOUBLE_QUOTES)?;
    Some(rest.split(DOUBLE_QUOTES).next().unwrap_or(rest))
}

/// Where the text of a numbered line `N. …` starts.
fn numbered(line: &str) -> Option<usize> {
    let (num, _) = line.split_once(". ")?;
    (!num.is_empty() && num.bytes().all(|b| b.is_ascii_digit())).then_some(num.len() + 2)
}

/// Whether `q` can stand between the quote line's marks as it is: one line,
/// no double quotation mark, something to read.
fn printable(q: &str) -> bool {
    !q.trim().is_empty() && !q.contains(DOUBLE_QUOTES) && !q.contains('\n')
}

/// `line` with the double quotation marks taken off every quoted stretch that
/// is not in `full` (and off an unpaired mark), so nothing outside the quote
/// lines is printed as a quote unless the transcript says it; and off a
/// stretch that opens a numbered line, which would read as a quote line.
fn unquote_unless_verbatim(line: &str, full: &str) -> String {
    if !line.contains(DOUBLE_QUOTES) {
        return line.to_string();
    }
    let lead = numbered(line);
    let marks: Vec<usize> = line.match_indices(DOUBLE_QUOTES).map(|(i, _)| i).collect();
    let mut drop = vec![];
    for pair in marks.chunks(2) {
        match *pair {
            [open, close] => {
                let inner = &line[open + line[open..].chars().next().map_or(1, char::len_utf8)..close];
                if lead == Some(open) || find_verbatim(full, inner).is_none() {
                    drop.extend([open, close]);
                }
            }
            [unpaired] => drop.push(unpaired),
            _ => {}
        }
    }
    line.char_indices().filter(|(i, _)| !drop.contains(i)).map(|(_, c)| c).collect()
}

/// Normalized words with their byte spans in `s`.
fn words(s: &str) -> Vec<(String, usize, usize)> {
    let mut out = vec![];
    let mut start = None;
    for (i, c) in s.char_indices().chain(std::iter::once((s.len(), ' '))) {
        if c.is_whitespace() {
            if let Some(st) = start.take() {
                let w: String = s[st..i].chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect();
                out.push((w, st, i));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    out
}

/// The span of `source` with as many words as `quote` that shares the most
/// words with it, if it shares at least 60% of them: the quote the model
/// meant, as the transcript actually says it.
pub fn closest_span(source: &str, quote: &str) -> Option<String> {
    let q = words(quote);
    let s = words(source);
    let n = q.len();
    if n == 0 || s.len() < n {
        return None;
    }
    let mut want: std::collections::HashMap<&str, i32> = Default::default();
    for (w, ..) in &q {
        *want.entry(w.as_str()).or_default() += 1;
    }
    // Sliding window of n words; `score` counts words matched (with multiplicity).
    let mut have: std::collections::HashMap<&str, i32> = Default::default();
    let mut score = 0i32;
    let mut best = (0i32, 0usize);
    for i in 0..s.len() {
        let w = s[i].0.as_str();
        let h = have.entry(w).or_default();
        *h += 1;
        if *h <= *want.get(w).unwrap_or(&0) {
            score += 1;
        }
        if i >= n {
            let old = s[i - n].0.as_str();
            let h = have.get_mut(old).unwrap();
            if *h <= *want.get(old).unwrap_or(&0) {
                score -= 1;
            }
            *h -= 1;
        }
        if i + 1 >= n && score > best.0 {
            best = (score, i + 1 - n);
        }
    }
    if (best.0 as usize) * 10 < n * 6 {
        return None;
    }
    let (from, to) = (s[best.1].1, s[best.1 + n - 1].2);
    Some(source[from..to].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "so the key idea is that the cache keeps the last W keys and values and nothing else";

    #[test]
    fn verbatim_quotes_are_kept_and_others_repaired_or_dropped() {
        let section = "### Caches (0:10 - 0:40)\n1. It keeps the window.\n2. Old keys go.\nQuotes:\n1. \"the cache keeps the last W keys\"\n2. \"the cache holds the last W keys and values\"\n3. \"completely unrelated words here\"";
        let mut r = QuoteReport::default();
        let out = verify_quotes(section, SRC, SRC, &mut r);
        assert_eq!(r, QuoteReport { kept: 1, repaired: 1, dropped: 1 });
        assert!(out.ends_with("Quotes:\n1. \"the cache keeps the last W keys\"\n2. \"the cache keeps the last W keys and values\""), "{out}");
        for line in out.lines().filter_map(quote_of) {
            assert!(find_verbatim(SRC, line).is_some(), "{line}");
        }
    }

    #[test]
    fn a_section_left_without_quotes_loses_the_heading() {
        let mut r = QuoteReport::default();
        let out = verify_quotes("### A\n1. x.\n2. y.\nQuotes:\n1. \"zzz qqq\"", SRC, SRC, &mut r);
        assert_eq!(out, "### A\n1. x.\n2. y.");
        assert_eq!(r.dropped, 1);
    }

    /// Every line that opens with a double quotation mark after its number is
    /// exactly `N. "…"` with the text in `full`; no other line quotes anything
    /// that is not in `full`.
    fn assert_quotes_are_verbatim(out: &str, full: &str) {
        for line in out.lines() {
            if let Some(q) = quote_of(line) {
                assert_eq!(line, format!("{}. \"{q}\"", &line[..numbered(line).unwrap() - 2]), "free text after the quote");
                assert!(find_verbatim(full, q).is_some(), "{q:?} is not in the transcript");
            } else {
                for (k, inner) in line.split(DOUBLE_QUOTES).enumerate() {
                    assert!(k % 2 == 0 || find_verbatim(full, inner).is_some(), "{line:?} quotes {inner:?}");
                }
            }
        }
    }

    #[test]
    fn a_quote_line_ends_at_its_closing_mark() {
        // As SmolLM2-135M wrote them before the grammar closed the line (issue 22).
        let section = "### Caches (0:10 - 0:40)\n1. It keeps the window.\n2. Old keys go.\nQuotes:\n\
            1. \"the cache keeps the last W keys\" (Part 4) - This is what it does\" (Quotes) (5:21 - 8:55) (6.\n\
            2. \"What I did\" (part quoted sentence without quotation marks)[] (listing quotes";
        let mut r = QuoteReport::default();
        let out = verify_quotes(section, SRC, SRC, &mut r);
        assert_eq!(r, QuoteReport { kept: 1, repaired: 0, dropped: 1 });
        assert!(out.ends_with("Quotes:\n1. \"the cache keeps the last W keys\""), "{out}");
        assert_quotes_are_verbatim(&out, SRC);
    }

    #[test]
    fn a_repair_must_be_in_the_whole_transcript() {
        // The section's text has a word cut in two that the transcript has whole:
        // its closest span is no quote of the transcript.
        let full = "the cache keeps the last W keysandvalues and nothing else";
        let source = "the cache keeps the last W keys andvalues and nothing else";
        let mut r = QuoteReport::default();
        let out = verify_quotes("### A\n1. x.\n2. y.\nQuotes:\n1. \"the last W keys andvalues and\"", source, full, &mut r);
        assert_eq!(r, QuoteReport { kept: 0, repaired: 0, dropped: 1 });
        assert_eq!(out, "### A\n1. x.\n2. y.");
    }

    #[test]
    fn points_keep_quotation_marks_only_around_the_transcript() {
        let section = "### A\n1. \"This is what it does\" - the cache explained.\n2. The \u{201C}last W keys\u{201D} stay, \"the next word\" goes.\n\
            3. \"the cache\" (7 times.\n4. An unpaired \" mark.";
        let out = verify_quotes(section, SRC, SRC, &mut QuoteReport::default());
        assert_eq!(
            out,
            "### A\n1. This is what it does - the cache explained.\n2. The \u{201C}last W keys\u{201D} stay, the next word goes.\n3. the cache (7 times.\n4. An unpaired  mark."
        );
        assert_quotes_are_verbatim(&out, SRC);
    }
}
