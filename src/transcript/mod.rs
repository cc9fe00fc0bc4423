//! Parsing of pasted video transcripts.
//!
//! People paste transcripts in many shapes. [`parse_transcript`] takes the raw
//! bytes, validates them and works out which of these it is looking at:
//!
//! * **WebVTT** – the first non-blank line starts with `WEBVTT`.
//! * **SRT** – no `WEBVTT` header, but at least one cue timing line
//!   (`00:00:01,000 --> 00:00:04,000`). A header-less file whose timing lines
//!   mostly use `.` before the milliseconds is labelled WebVTT instead; both
//!   are read by the same lenient cue reader.
//! * **YouTube** ("Show transcript" copy) – timestamps such as `0:06` or
//!   `1:02:03` standing alone on their own lines, each followed by the text
//!   line(s) for that moment. Chosen when at least two such lines exist, they
//!   make up at least a quarter of the non-blank lines and they mostly run
//!   forwards (or when the only one is the very first non-blank line).
//! * **Inline timestamps** – timestamps as separate words inside the text:
//!   `0:24 text`, `1:02:03 text`, `[00:01:02] text`, or many of them inside one
//!   long line. Chosen when the stamps are dense (on average at most one per
//!   1000 bytes after the first one), the first one appears early (within the
//!   first 1000 bytes or the first tenth of the text) and at least three
//!   quarters of consecutive stamps run forwards. The density and position
//!   rules keep an ordinary transcript that mentions "3:30" or "John 3:16"
//!   from being taken for a timestamped one. A single stamp counts only when
//!   it is the very first word.
//! * **Plain** – everything else (for instance lowercase, unpunctuated
//!   auto-captions).
//!
//! Normalisation applied to every format:
//!
//! * a UTF-8 byte order mark is removed; text starting with a UTF-16 byte order
//!   mark is decoded as UTF-16 (Windows editors save "Unicode" text that way);
//! * `\r\n` and lone `\r` become `\n`;
//! * inside a segment every run of whitespace (including no-break spaces and
//!   stray control characters) becomes one space, and the text is trimmed;
//! * segments left without text are dropped;
//! * where the format has no explicit end time, a segment ends where the next
//!   one starts (if that is not earlier); the last one has no end.
//!
//! Caption files (SRT and WebVTT) also have their markup removed: HTML-like
//! tags (`<i>`, `<b>`, `<font color=..>`, `<c.yellow>`, `<00:00:01.000>`), SSA
//! override blocks such as `{\an8}`, and character references (`&amp;`,
//! `&lt;`, `&nbsp;`, `&#39;`, ...). A WebVTT voice tag `<v Alice>` is kept as
//! the prefix `Alice: ` because who is speaking is useful for a summary.
//! `NOTE`, `STYLE` and `REGION` blocks and cue identifiers are skipped. The
//! rolling two-line captions of YouTube's automatic subtitles (each cue repeats
//! the previous cue's line before adding a new one) are detected and the
//! repeated lines removed, so the words are not doubled. Plain, YouTube and
//! inline transcripts are taken literally: a `<` or `&` there is text.
//!
//! Sound annotations such as `[Music]` or `[Applause]` are kept as text. They
//! are genuinely part of what was captioned, they are harmless for a summary,
//! and keeping them means a quote that includes one still verifies.
//!
//! In the text-only formats a stamp's text starts at the stamp; any words
//! before the first stamp (typically a title or chapter heading, as in
//! "Intro: Large Language Model (LLM) talk 0:00 hi everyone") are put at the
//! front of the first segment. Chapter titles further in cannot be told apart
//! from speech and simply stay in the text where they appear.
//!
//! **Stray caption offsets.** Some transcripts scraped from caption tracks
//! contain the cue start times glued to the first word of the cue, with the
//! decimal point lost: `learn   208696all about it`, `such   34852a system`.
//! Read with the decimal point restored they are seconds into the video (20.8696,
//! 34.852, ... 478.0536) but which digits are whole seconds can no longer be
//! known, so they cannot be used as timestamps. When a transcript contains at
//! least three words that start with 5 to 9 digits immediately followed by a
//! letter, those digit prefixes are removed from the text (`208696all` becomes
//! `all`). A lone `10000mah` is left alone. Such a transcript stays `Plain`.
//!
//! The parser never panics and runs in time linear in the input (markup and
//! entity look-ahead is bounded).

mod captions;
mod decode;
mod detect;
mod entities;
#[cfg(test)]
mod error_tests;
mod inline;
mod markup;
mod plain;
mod quote;
mod stray_offsets;
#[cfg(test)]
mod tests;
mod timestamp;
mod whitespace;
mod youtube;

pub use quote::find_verbatim;
pub use timestamp::format_timestamp;

use captions::parse_cues;
use decode::{decode, normalise_newlines};
use detect::detect_format;
use inline::parse_inline;
use plain::parse_plain;
use stray_offsets::strip_stray_offsets;
use youtube::parse_youtube;

/// Largest accepted transcript, in bytes.
pub const MAX_TRANSCRIPT_BYTES: usize = 5 * 1024 * 1024;

/// How the transcript was laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranscriptFormat {
    /// Text without any timestamps.
    Plain,
    /// Timestamps written as words inside the text (`0:24 text`, `[00:01:02] text`).
    InlineTimestamps,
    /// SubRip subtitles.
    Srt,
    /// WebVTT captions.
    WebVtt,
    /// YouTube "Show transcript" copy: each timestamp alone on its own line.
    YouTube,
}

/// A stretch of transcript text, with times in seconds when known.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Seconds from the start of the video, when the format gives it.
    pub start: Option<f64>,
    /// Seconds from the start of the video: the cue's end time, or else the
    /// next segment's start.
    pub end: Option<f64>,
    /// Cleaned text: trimmed, single spaces, never empty.
    pub text: String,
}

/// A parsed transcript. Segment texts are never empty, are trimmed and
/// contain no runs of whitespace.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    pub format: TranscriptFormat,
    pub segments: Vec<Segment>,
}

impl Transcript {
    /// All segment texts joined by single spaces.
    pub fn text(&self) -> String {
        let len = self.segments.iter().map(|s| s.text.len() + 1).sum();
        let mut out = String::with_capacity(len);
        for seg in &self.segments {
            if seg.text.is_empty() {
                continue;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&seg.text);
        }
        out
    }

    /// Whether any segment has a start time.
    pub fn has_timestamps(&self) -> bool {
        self.segments.iter().any(|s| s.start.is_some())
    }

    /// The latest time mentioned by any segment (its end, or else its start),
    /// i.e. how far into the video the transcript reaches. `None` without
    /// timestamps.
    pub fn duration(&self) -> Option<f64> {
        self.segments
            .iter()
            .filter_map(|s| s.end.or(s.start))
            .filter(|t| t.is_finite())
            .fold(None, |acc: Option<f64>, t| {
                Some(acc.map_or(t, |a| a.max(t)))
            })
    }
}

/// Why a transcript could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranscriptError {
    #[error("transcript is empty")]
    Empty,
    #[error("transcript is too large: {bytes} bytes, the limit is {limit} bytes")]
    TooLarge { bytes: usize, limit: usize },
    #[error("transcript is not UTF-8: invalid byte sequence at offset {offset}")]
    NotUtf8 { offset: usize },
    #[error("transcript looks like binary data: control byte 0x{byte:02x} at offset {offset}")]
    Binary { offset: usize, byte: u8 },
}

/// Parses a pasted transcript; see the module documentation for the rules.
///
/// Errors, checked in this order: more than [`MAX_TRANSCRIPT_BYTES`] bytes
/// (`TooLarge`); a NUL byte, or control characters other than tab, newline,
/// carriage return and form feed making up more than 1/32 of the input
/// (`Binary`, naming the first offending byte); invalid UTF-8 (`NotUtf8`);
/// nothing but whitespace, or nothing left once markup is removed (`Empty`).
pub fn parse_transcript(bytes: &[u8]) -> Result<Transcript, TranscriptError> {
    if bytes.len() > MAX_TRANSCRIPT_BYTES {
        return Err(TranscriptError::TooLarge {
            bytes: bytes.len(),
            limit: MAX_TRANSCRIPT_BYTES,
        });
    }
    let decoded = decode(bytes)?;
    let text = normalise_newlines(&decoded);
    if text.chars().all(|c| c.is_whitespace() || c == '\u{feff}') {
        return Err(TranscriptError::Empty);
    }
    let format = detect_format(&text);
    let mut segments = match format {
        TranscriptFormat::Srt | TranscriptFormat::WebVtt => {
            parse_cues(&text, format == TranscriptFormat::WebVtt)
        }
        TranscriptFormat::YouTube => parse_youtube(&text),
        TranscriptFormat::InlineTimestamps => parse_inline(&text),
        TranscriptFormat::Plain => parse_plain(&text),
    };
    strip_stray_offsets(&mut segments);
    segments.retain(|s| !s.text.is_empty());
    if segments.is_empty() {
        return Err(TranscriptError::Empty);
    }
    Ok(Transcript { format, segments })
}

/// Timed pieces of text in order; drops empty ones and fills in end times
/// from the next start.
fn timed_segments(pieces: Vec<(f64, String)>) -> Vec<Segment> {
    let mut segs: Vec<Segment> = pieces
        .into_iter()
        .filter(|(_, t)| !t.is_empty())
        .map(|(start, text)| Segment {
            start: Some(start),
            end: None,
            text,
        })
        .collect();
    for i in 1..segs.len() {
        let next = segs[i].start;
        if next >= segs[i - 1].start {
            segs[i - 1].end = next;
        }
    }
    segs
}
