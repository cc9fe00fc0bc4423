//! Which [`TranscriptFormat`] a text is in.

use super::timestamp::{parse_stamp_token, parse_timing_line};
use super::whitespace::words;
use super::TranscriptFormat;

/// Which format `text` (decoded, `\n` newlines) is in, by the rules of the
/// module documentation, tried in this order: a `WEBVTT` header, cue timing
/// lines, YouTube, inline timestamps, plain.
pub(super) fn detect_format(text: &str) -> TranscriptFormat {
    let first_line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if let Some(rest) = first_line.strip_prefix("WEBVTT") {
        if rest.is_empty() || rest.starts_with(|c: char| c.is_whitespace() || c == '-') {
            return TranscriptFormat::WebVtt;
        }
    }

    let (mut timings, mut comma_timings) = (0usize, 0usize);
    for line in text.lines().filter(|l| l.contains("-->")) {
        if let Some((_, _, comma)) = parse_timing_line(line) {
            timings += 1;
            comma_timings += usize::from(comma);
        }
    }
    if timings > 0 {
        return if comma_timings * 2 >= timings {
            TranscriptFormat::Srt
        } else {
            TranscriptFormat::WebVtt
        };
    }

    if looks_like_youtube(text) {
        return TranscriptFormat::YouTube;
    }
    if looks_like_inline(text) {
        return TranscriptFormat::InlineTimestamps;
    }
    TranscriptFormat::Plain
}

/// At least three quarters of consecutive times do not go backwards.
fn mostly_forwards(times: &[f64]) -> bool {
    if times.len() < 2 {
        return true;
    }
    let forwards = times.windows(2).filter(|w| w[1] >= w[0]).count();
    forwards * 4 >= (times.len() - 1) * 3
}

/// Timestamps alone on their lines: at least two, making up a quarter of the
/// non-blank lines and mostly running forwards; or one, as the first of
/// several lines.
fn looks_like_youtube(text: &str) -> bool {
    let mut stamps = Vec::new();
    let mut nonblank = 0usize;
    let mut first_is_stamp = false;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        nonblank += 1;
        if let Some(t) = parse_stamp_token(line) {
            if nonblank == 1 {
                first_is_stamp = true;
            }
            stamps.push(t);
        }
    }
    match stamps.len() {
        0 => false,
        1 => first_is_stamp && nonblank >= 2,
        n => n * 4 >= nonblank && mostly_forwards(&stamps),
    }
}

/// Timestamps as words: dense, early and mostly running forwards; or one, as
/// the very first word. Density and position keep prose that mentions "3:30"
/// or "John 3:16" plain.
fn looks_like_inline(text: &str) -> bool {
    let mut first_word_offset = None;
    let mut first_stamp_offset = None;
    let mut times = Vec::new();
    for (offset, word) in words(text) {
        first_word_offset.get_or_insert(offset);
        if let Some(t) = parse_stamp_token(word) {
            first_stamp_offset.get_or_insert(offset);
            times.push(t);
        }
    }
    let Some(first) = first_stamp_offset else {
        return false;
    };
    if times.len() == 1 {
        return first_word_offset == Some(first);
    }
    let early = first <= 1000 || first <= text.len() / 10;
    let dense = (text.len() - first) / times.len() <= 1000;
    early && dense && mostly_forwards(&times)
}
