//! Timestamps written as words inside the text.

use super::plain::parse_plain;
use super::timestamp::parse_stamp_token;
use super::whitespace::{clean_text, words};
use super::{timed_segments, Segment};

/// Drops a lone separator such as the `-` in `0:24 - text`.
fn strip_leading_separator(text: String) -> String {
    for sep in ["-", "\u{2013}", "\u{2014}", "|", ":"] {
        if text == sep {
            return String::new();
        }
        if let Some(rest) = text.strip_prefix(sep).and_then(|r| r.strip_prefix(' ')) {
            return rest.to_string();
        }
    }
    text
}

/// One segment per stamp, holding the words up to the next stamp; words
/// before the first stamp open the first segment. Without a stamp, plain
/// paragraphs.
pub(super) fn parse_inline(text: &str) -> Vec<Segment> {
    let mut preamble = String::new();
    let mut pieces: Vec<(f64, String)> = Vec::new();
    for (_, word) in words(text) {
        if let Some(t) = parse_stamp_token(word) {
            let initial = if pieces.is_empty() {
                std::mem::take(&mut preamble)
            } else {
                String::new()
            };
            pieces.push((t, initial));
            continue;
        }
        let buf = match pieces.last_mut() {
            Some((_, b)) => b,
            None => &mut preamble,
        };
        if !buf.is_empty() {
            buf.push(' ');
        }
        buf.push_str(word);
    }
    if pieces.is_empty() {
        return parse_plain(&preamble);
    }
    let pieces = pieces
        .into_iter()
        .enumerate()
        .map(|(i, (t, s))| {
            let cleaned = clean_text(&s);
            // The preamble of the first piece comes before any separator.
            (
                t,
                if i == 0 {
                    cleaned
                } else {
                    strip_leading_separator(cleaned)
                },
            )
        })
        .collect();
    timed_segments(pieces)
}
