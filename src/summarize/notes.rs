//! Markdown notes after generation: every quote is checked against the
//! transcript with [`find_verbatim`]; one that is not there is replaced by the
//! closest span of its section's text, or dropped, and the quotes renumbered.
//! (The grammar already confines quotes to the section's text, so this is the
//! second line of defence — and the only one for notes made any other way.)

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
                if find_verbatim(full, q).is_some() {
                    report.kept += 1;
                    quotes.push(q.to_string());
                } else if let Some(fixed) = closest_span(source, q) {
                    report.repaired += 1;
                    quotes.push(fixed);
                } else {
                    report.dropped += 1;
                }
                continue;
            }
            in_quotes = false;
        }
        out.push(line.to_string());
    }
    quotes.dedup();
    let mut text = out.join("\n").trim_end().to_string();
    if !quotes.is_empty() {
        text.push_str("\nQuotes:");
        for (i, q) in quotes.iter().enumerate() {
            text.push_str(&format!("\n{}. \"{q}\"", i + 1));
        }
    }
    text
}

/// The quote in a line `N. "…"`.
fn quote_of(line: &str) -> Option<&str> {
    let (num, rest) = line.split_once(". ")?;
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.strip_prefix('"')?.strip_suffix('"')
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
}
