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

use std::borrow::Cow;

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

/// Formats seconds as `m:ss` under an hour and `h:mm:ss` from an hour on.
/// Fractions are dropped; negative or non-finite values give `0:00`.
pub fn format_timestamp(seconds: f64) -> String {
    let total = if seconds.is_finite() && seconds > 0.0 {
        seconds.floor() as u64
    } else {
        0
    };
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    if h == 0 {
        format!("{m}:{s:02}")
    } else {
        format!("{h}:{m:02}:{s:02}")
    }
}

/// Finds `quote` in `haystack` and returns the byte offset in `haystack` where
/// it starts, or `None`.
///
/// The comparison is exact (case, punctuation and spelling all matter) except
/// that any run of whitespace matches any other run of whitespace. Before
/// searching, surrounding quotation marks (`"`, `'`, curly quotes,
/// guillemets, backticks), a leading ellipsis and trailing punctuation
/// (`. , ; : ! ? …`) are removed from the quote, since models add them. The
/// match must not start or end in the middle of a word, so `"the cat"` is not
/// found in "the cats". A quote that is empty after trimming is never found.
pub fn find_verbatim(haystack: &str, quote: &str) -> Option<usize> {
    let quote = collapse_whitespace(trim_quote(quote));
    if quote.is_empty() {
        return None;
    }
    let hay = collapse_whitespace(haystack);
    let first_word = quote.chars().next().is_some_and(char::is_alphanumeric);
    let last_word = quote.chars().next_back().is_some_and(char::is_alphanumeric);
    let mut from = 0;
    while let Some(rel) = hay[from..].find(&quote) {
        let pos = from + rel;
        let end = pos + quote.len();
        let before_ok = !first_word
            || !hay[..pos]
                .chars()
                .next_back()
                .is_some_and(char::is_alphanumeric);
        let after_ok = !last_word || !hay[end..].chars().next().is_some_and(char::is_alphanumeric);
        if before_ok && after_ok {
            return Some(original_offset(haystack, pos));
        }
        // Continue just after the first character of this match.
        from = pos + hay[pos..].chars().next().map_or(1, char::len_utf8);
    }
    None
}

// ---------------------------------------------------------------------------
// Decoding and validation

fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, TranscriptError> {
    let le = bytes.starts_with(&[0xFF, 0xFE]);
    if le || bytes.starts_with(&[0xFE, 0xFF]) {
        return decode_utf16(bytes, le).map(Cow::Owned);
    }
    check_binary(
        bytes.iter().enumerate().map(|(i, &b)| (i, u32::from(b))),
        bytes.len(),
    )?;
    let text = std::str::from_utf8(bytes).map_err(|e| TranscriptError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    Ok(Cow::Borrowed(text.strip_prefix('\u{feff}').unwrap_or(text)))
}

fn decode_utf16(bytes: &[u8], little_endian: bool) -> Result<String, TranscriptError> {
    let body = &bytes[2..];
    let units: Vec<u16> = body
        .chunks_exact(2)
        .map(|p| {
            if little_endian {
                u16::from_le_bytes([p[0], p[1]])
            } else {
                u16::from_be_bytes([p[0], p[1]])
            }
        })
        .collect();
    check_binary(
        units
            .iter()
            .enumerate()
            .map(|(i, &u)| (2 + 2 * i, u32::from(u))),
        units.len(),
    )?;
    let mut out = String::with_capacity(body.len());
    let mut unit = 0usize;
    for r in char::decode_utf16(units.iter().copied()) {
        match r {
            Ok(c) => {
                unit += c.len_utf16();
                out.push(c);
            }
            Err(_) => {
                return Err(TranscriptError::NotUtf8 {
                    offset: 2 + 2 * unit,
                })
            }
        }
    }
    if body.len() % 2 == 1 {
        return Err(TranscriptError::NotUtf8 {
            offset: bytes.len() - 1,
        });
    }
    Ok(out)
}

/// Control characters that have no business in text. Tab, newline, carriage
/// return and form feed are fine.
fn is_suspicious_control(v: u32) -> bool {
    (v < 0x20 && !matches!(v, 0x09 | 0x0A | 0x0C | 0x0D)) || v == 0x7F
}

fn check_binary(
    units: impl Iterator<Item = (usize, u32)>,
    total: usize,
) -> Result<(), TranscriptError> {
    let mut first: Option<(usize, u32)> = None;
    let mut count = 0usize;
    for (offset, v) in units {
        if v == 0 {
            return Err(TranscriptError::Binary { offset, byte: 0 });
        }
        if is_suspicious_control(v) {
            count += 1;
            first.get_or_insert((offset, v));
        }
    }
    match first {
        Some((offset, v)) if count.saturating_mul(32) > total => Err(TranscriptError::Binary {
            offset,
            byte: v as u8,
        }),
        _ => Ok(()),
    }
}

fn normalise_newlines(s: &str) -> Cow<'_, str> {
    if s.contains('\r') {
        Cow::Owned(s.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Cow::Borrowed(s)
    }
}

// ---------------------------------------------------------------------------
// Timestamps

/// Parses `m:ss`, `mm:ss`, `h:mm:ss` (minutes of a two-part stamp may exceed
/// 59), with an optional fraction after `.` (or also `,` when `allow_comma`).
/// Seconds, and minutes of a three-part stamp, are two digits below 60.
fn parse_clock(s: &str, allow_comma: bool) -> Option<f64> {
    let (main, frac) = match s.find(|c| c == '.' || (allow_comma && c == ',')) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let frac_secs = match frac {
        None => 0.0,
        Some(f) => {
            if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            f.parse::<u64>().ok()? as f64 / 10f64.powi(f.len() as i32)
        }
    };
    let mut parts = main.split(':');
    let a = parts.next()?;
    let b = parts.next()?;
    let c = parts.next();
    if parts.next().is_some() {
        return None;
    }
    let num = |p: &str, min: usize, max: usize| -> Option<u64> {
        if p.len() < min || p.len() > max || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok()
    };
    let whole = match c {
        None => {
            let m = num(a, 1, 3)?;
            let s = num(b, 2, 2)?;
            if s >= 60 {
                return None;
            }
            m * 60 + s
        }
        Some(c) => {
            let h = num(a, 1, 5)?;
            let m = num(b, 2, 2)?;
            let s = num(c, 2, 2)?;
            if m >= 60 || s >= 60 {
                return None;
            }
            h * 3600 + m * 60 + s
        }
    };
    Some(whole as f64 + frac_secs)
}

/// A timestamp written as a word of its own, optionally in `[...]` or `(...)`.
fn parse_stamp_token(tok: &str) -> Option<f64> {
    let inner = if (tok.starts_with('[') && tok.ends_with(']'))
        || (tok.starts_with('(') && tok.ends_with(')'))
    {
        tok.get(1..tok.len().saturating_sub(1))?
    } else {
        tok
    };
    if inner.is_empty() || !inner.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    parse_clock(inner, false)
}

/// A cue timing line: `start --> end [settings]`. Returns the times and
/// whether the start used a comma before the milliseconds (SRT style).
fn parse_timing_line(line: &str) -> Option<(f64, f64, bool)> {
    let arrow = line.find("-->")?;
    let left = line[..arrow].trim();
    let right = line[arrow + 3..].split_whitespace().next()?;
    if !left.as_bytes().first()?.is_ascii_digit() || !right.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    let start = parse_clock(left, true)?;
    let end = parse_clock(right, true)?;
    Some((start, end, left.contains(',')))
}

// ---------------------------------------------------------------------------
// Format detection

fn detect_format(text: &str) -> TranscriptFormat {
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

fn mostly_forwards(times: &[f64]) -> bool {
    if times.len() < 2 {
        return true;
    }
    let forwards = times.windows(2).filter(|w| w[1] >= w[0]).count();
    forwards * 4 >= (times.len() - 1) * 3
}

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

/// Whitespace-separated words with their byte offsets.
fn words(s: &str) -> impl Iterator<Item = (usize, &str)> {
    let base = s.as_ptr() as usize;
    s.split(char::is_whitespace)
        .filter(|w| !w.is_empty())
        .map(move |w| (w.as_ptr() as usize - base, w))
}

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

// ---------------------------------------------------------------------------
// Parsers

/// Whitespace runs (and control characters, and stray byte order marks)
/// collapsed to single spaces; trimmed.
fn clean_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for c in s.chars() {
        if c == '\u{feff}' {
            continue;
        }
        if c.is_whitespace() || c.is_control() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    out
}

/// Whitespace runs collapsed to single spaces, nothing trimmed.
fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}

/// Maps a byte offset in `collapse_whitespace(s)` that falls on a
/// non-whitespace character back to the byte offset in `s`.
fn original_offset(s: &str, collapsed: usize) -> usize {
    let mut pos = 0usize;
    let mut in_space = false;
    for (i, c) in s.char_indices() {
        if c.is_whitespace() {
            if !in_space {
                pos += 1;
            }
            in_space = true;
        } else {
            if pos == collapsed {
                return i;
            }
            pos += c.len_utf8();
            in_space = false;
        }
    }
    s.len()
}

fn trim_quote(q: &str) -> &str {
    const QUOTES: &[char] = &[
        '"', '\'', '`', '\u{201C}', '\u{201D}', '\u{2018}', '\u{2019}', '\u{201E}', '\u{00AB}',
        '\u{00BB}',
    ];
    const TRAILING: &[char] = &['.', ',', ';', ':', '!', '?', '\u{2026}'];
    let mut q = q;
    loop {
        let before = q.len();
        q = q.trim();
        q = q.trim_start_matches(QUOTES);
        q = q.trim_start_matches(['.', '\u{2026}']);
        q = q.trim_end_matches(QUOTES);
        q = q.trim_end_matches(TRAILING);
        if q.len() == before {
            return q;
        }
    }
}

/// Timed pieces of text in order; drops empty ones and fills in end times
/// from the next start.
fn finish_timed(pieces: Vec<(f64, String)>) -> Vec<Segment> {
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

fn parse_plain(text: &str) -> Vec<Segment> {
    // One segment per paragraph (blank-line separated).
    let mut segs = Vec::new();
    let mut para = String::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !para.is_empty() {
                segs.push(Segment {
                    start: None,
                    end: None,
                    text: clean_text(&para),
                });
                para.clear();
            }
        } else {
            para.push_str(line);
            para.push(' ');
        }
    }
    if !para.is_empty() {
        segs.push(Segment {
            start: None,
            end: None,
            text: clean_text(&para),
        });
    }
    segs
}

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

fn parse_inline(text: &str) -> Vec<Segment> {
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
    finish_timed(pieces)
}

/// Whether `line` spells out `seconds` the way YouTube's transcript panel
/// does for screen readers, e.g. "1 hour, 2 minutes, 3 seconds".
fn is_spoken_time_label(line: &str, seconds: f64) -> bool {
    let mut total = 0u64;
    let mut any = false;
    for part in line.split(',') {
        let mut it = part.split_whitespace();
        let (Some(n), Some(unit), None) = (it.next(), it.next(), it.next()) else {
            return false;
        };
        let Ok(n) = n.parse::<u64>() else {
            return false;
        };
        let mult = match unit {
            "hour" | "hours" => 3600,
            "minute" | "minutes" => 60,
            "second" | "seconds" => 1,
            _ => return false,
        };
        total = total.saturating_add(n.saturating_mul(mult));
        any = true;
    }
    any && total == seconds.floor() as u64
}

fn parse_youtube(text: &str) -> Vec<Segment> {
    let mut preamble = String::new();
    let mut pieces: Vec<(f64, String)> = Vec::new();
    let mut just_stamped = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        if let Some(t) = parse_stamp_token(line) {
            let initial = if pieces.is_empty() {
                std::mem::take(&mut preamble)
            } else {
                String::new()
            };
            pieces.push((t, initial));
            just_stamped = true;
            continue;
        }
        if just_stamped
            && pieces
                .last()
                .is_some_and(|(t, _)| is_spoken_time_label(line, *t))
        {
            just_stamped = false;
            continue;
        }
        just_stamped = false;
        let buf = match pieces.last_mut() {
            Some((_, b)) => b,
            None => &mut preamble,
        };
        if !buf.is_empty() {
            buf.push(' ');
        }
        buf.push_str(line);
    }
    if pieces.is_empty() {
        return parse_plain(&preamble);
    }
    finish_timed(
        pieces
            .into_iter()
            .map(|(t, s)| (t, clean_text(&s)))
            .collect(),
    )
}

struct Cue {
    start: f64,
    end: f64,
    lines: Vec<String>,
    /// WebVTT: a blank line ended the cue text; later lines until the next
    /// timing line are identifiers or NOTE/STYLE/REGION blocks.
    closed: bool,
}

/// SRT and WebVTT. Text is every line after a timing line, up to a blank
/// line (WebVTT) or up to the next timing line (SRT, which tolerates blank
/// lines inside cues), minus a cue number on the last line before the next
/// timing line.
fn parse_cues(text: &str, vtt: bool) -> Vec<Segment> {
    let mut cues: Vec<Cue> = Vec::new();
    for line in text.lines() {
        if line.contains("-->") {
            if let Some((start, end, _)) = parse_timing_line(line) {
                if let Some(prev) = cues.last_mut() {
                    if prev
                        .lines
                        .last()
                        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
                    {
                        prev.lines.pop();
                    }
                }
                cues.push(Cue {
                    start,
                    end,
                    lines: Vec::new(),
                    closed: false,
                });
                continue;
            }
        }
        let Some(cue) = cues.last_mut() else {
            continue; // header, NOTE/STYLE blocks, first cue number
        };
        if cue.closed {
            continue;
        }
        if line.trim().is_empty() {
            // Per WebVTT only an empty line ends a cue; YouTube's automatic
            // captions start cues with a line holding one space.
            if vtt && (line.is_empty() || !cue.lines.is_empty()) {
                cue.closed = true;
            }
            continue;
        }
        let cleaned = clean_text(&strip_markup(line));
        if !cleaned.is_empty() {
            cue.lines.push(cleaned);
        }
    }

    // Rolling captions: most cues start with the previous cue's last line.
    let repeats = cues
        .windows(2)
        .filter(|w| matches!((w[0].lines.last(), w[1].lines.first()), (Some(a), Some(b)) if a == b))
        .count();
    let rolling = repeats >= 2 && repeats * 2 >= cues.len().saturating_sub(1);

    let mut prev_last: Option<String> = None;
    let mut segs = Vec::with_capacity(cues.len());
    for cue in cues {
        let mut lines = cue.lines;
        let last = lines.last().cloned();
        if rolling && prev_last.is_some() && lines.first() == prev_last.as_ref() {
            lines.remove(0);
        }
        if last.is_some() {
            prev_last = last;
        }
        let text = lines.join(" ");
        if !text.is_empty() {
            segs.push(Segment {
                start: Some(cue.start),
                end: Some(cue.end),
                text,
            });
        }
    }
    segs
}

/// Removes caption markup from one line: tags, `{\...}` override blocks and
/// character references. `<v Name>` becomes `Name: `.
fn strip_markup(line: &str) -> String {
    const LOOKAHEAD: usize = 256;
    let b = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'<' => {
                if let Some(close) = tag_end(b, i, LOOKAHEAD) {
                    let inner = &line[i + 1..close];
                    if let Some(voice) = inner
                        .strip_prefix('v')
                        .filter(|r| r.starts_with([' ', '.', '\t']))
                    {
                        let name = voice
                            .split_once(char::is_whitespace)
                            .map_or("", |(_, n)| n.trim());
                        if !name.is_empty() {
                            out.push_str(name);
                            out.push_str(": ");
                        }
                    }
                    i = close + 1;
                    continue;
                }
            }
            b'{' if b.get(i + 1) == Some(&b'\\') => {
                if let Some(rel) = b[i..b.len().min(i + LOOKAHEAD)]
                    .iter()
                    .position(|&c| c == b'}')
                {
                    i += rel + 1;
                    continue;
                }
            }
            b'&' => {
                if let Some((decoded, len)) = decode_entity(&b[i..]) {
                    if let Some(c) = decoded {
                        out.push(c);
                    }
                    i += len;
                    continue;
                }
            }
            _ => {}
        }
        let c = line[i..].chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// The index of the `>` closing a tag that opens at `b[open]`, if it really
/// looks like a tag: `<x`, `</x` or `<0` (a WebVTT timestamp tag).
fn tag_end(b: &[u8], open: usize, lookahead: usize) -> Option<usize> {
    let first = *b.get(open + 1)?;
    let looks_like_tag = first.is_ascii_alphabetic()
        || first.is_ascii_digit()
        || (first == b'/' && b.get(open + 2).is_some_and(|c| c.is_ascii_alphabetic()));
    if !looks_like_tag {
        return None;
    }
    let limit = b.len().min(open + 1 + lookahead);
    for (j, &c) in b.iter().enumerate().take(limit).skip(open + 1) {
        match c {
            b'>' => return Some(j),
            b'<' => return None,
            _ => {}
        }
    }
    None
}

/// Decodes a character reference at the start of `b` (which starts with
/// `&`). Returns the character (`None` for ones that render as nothing) and
/// the length consumed.
fn decode_entity(b: &[u8]) -> Option<(Option<char>, usize)> {
    let semi = b.iter().take(12).position(|&c| c == b';')?;
    let name = std::str::from_utf8(&b[1..semi]).ok()?;
    let c = match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        "lrm" | "rlm" | "zwj" | "zwnj" => None,
        _ => {
            let num = name.strip_prefix('#')?;
            let value = if let Some(hex) = num.strip_prefix(['x', 'X']) {
                if hex.is_empty() || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return None;
                }
                u32::from_str_radix(hex, 16).ok()?
            } else {
                if num.is_empty() || !num.bytes().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                num.parse().ok()?
            };
            Some(char::from_u32(value).filter(|&c| c != '\0')?)
        }
    };
    Some((c, semi + 1))
}

/// See "Stray caption offsets" in the module documentation.
fn stray_offset_len(word: &str) -> Option<usize> {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let glued = word
        .as_bytes()
        .get(digits)
        .is_some_and(u8::is_ascii_alphabetic);
    ((5..=9).contains(&digits) && glued).then_some(digits)
}

fn strip_stray_offsets(segs: &mut [Segment]) {
    let count: usize = segs
        .iter()
        .map(|s| {
            s.text
                .split(' ')
                .filter(|w| stray_offset_len(w).is_some())
                .count()
        })
        .sum();
    if count < 3 {
        return;
    }
    for seg in segs.iter_mut() {
        if !seg.text.split(' ').any(|w| stray_offset_len(w).is_some()) {
            continue;
        }
        let mut out = String::with_capacity(seg.text.len());
        for w in seg.text.split(' ') {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&w[stray_offset_len(w).unwrap_or(0)..]);
        }
        seg.text = out;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Transcript {
        parse_transcript(s.as_bytes()).unwrap_or_else(|e| panic!("parse failed: {e}"))
    }

    fn starts(t: &Transcript) -> Vec<Option<f64>> {
        t.segments.iter().map(|s| s.start).collect()
    }

    fn texts(t: &Transcript) -> Vec<&str> {
        t.segments.iter().map(|s| s.text.as_str()).collect()
    }

    const SRT: &str = "1\r\n\
00:00:01,000 --> 00:00:04,200\r\n\
<i>Welcome back</i> to the   channel.\r\n\
\r\n\
2\r\n\
00:00:04,500 --> 00:00:07,250\r\n\
{\\an8}Today we're looking at\r\n\
<font color=\"#ffff00\">consistent hashing</font> &amp; rings.\r\n\
\r\n\
3\r\n\
00:00:07,300 --> 00:00:09,000\r\n\
[Music]\r\n\
\r\n\
4\r\n\
00:00:09,000 --> 00:00:10,000\r\n\
<b></b>\r\n\
\r\n\
5\r\n\
01:02:03,040 --> 01:02:05,000 X1:40 X2:600 Y1:20 Y2:50\r\n\
- Is 2 < 3?\r\n\
- <b>Yes</b>.\r\n\
\r\n";

    #[test]
    fn srt_multiline_cues_and_markup() {
        let t = parse(SRT);
        assert_eq!(t.format, TranscriptFormat::Srt);
        assert_eq!(
            texts(&t),
            [
                "Welcome back to the channel.",
                "Today we're looking at consistent hashing & rings.",
                "[Music]",
                "- Is 2 < 3? - Yes.",
            ]
        );
        assert_eq!(starts(&t), [Some(1.0), Some(4.5), Some(7.3), Some(3723.04)]);
        assert_eq!(t.segments[0].end, Some(4.2));
        assert_eq!(t.segments[3].end, Some(3725.0));
        assert_eq!(t.duration(), Some(3725.0));
        assert!(t.has_timestamps());
    }

    #[test]
    fn srt_without_blank_lines_or_with_blank_line_inside_cue() {
        let t = parse("1\n00:00:00,000 --> 00:00:02,000\nfirst\n2\n00:00:02,000 --> 00:00:03,000\nsecond\n\nstill second\n\n3\n00:00:03,000 --> 00:00:04,000\n1999\n");
        assert_eq!(t.format, TranscriptFormat::Srt);
        assert_eq!(texts(&t), ["first", "second still second", "1999"]);
    }

    const VTT: &str = "\u{feff}WEBVTT - Lecture 3\n\
Kind: captions\n\
Language: en\n\
\n\
STYLE\n\
::cue { color: yellow }\n\
\n\
NOTE This file was edited\n\
by hand, no timing here\n\
\n\
intro\n\
00:01.000 --> 00:04.000 align:start position:10%\n\
<v Alice>Hello &amp; welcome</v>\n\
\n\
00:04.500 --> 00:06.000\n\
<c.yellow>Caching</c> is <00:00:05.000><c>hard</c>\n\
to get&#39;right&#x21;\n\
\n\
NOTE another note\n\
\n\
2\n\
01:00:00.000 --> 01:00:02.500 line:0\n\
Wrap&nbsp;up &lt;here&gt;\n\
\n\
00:00:00.000 --> 00:00:01.000\n\
\n";

    #[test]
    fn vtt_header_notes_settings_and_tags() {
        let t = parse(VTT);
        assert_eq!(t.format, TranscriptFormat::WebVtt);
        assert_eq!(
            texts(&t),
            [
                "Alice: Hello & welcome",
                "Caching is hard to get'right!",
                "Wrap up <here>"
            ]
        );
        assert_eq!(starts(&t), [Some(1.0), Some(4.5), Some(3600.0)]);
        assert_eq!(t.segments[1].end, Some(6.0));
        assert_eq!(t.segments[2].end, Some(3602.5));
    }

    #[test]
    fn vtt_rolling_youtube_auto_captions_are_not_doubled() {
        let vtt = "WEBVTT\nKind: captions\nLanguage: en\n\n\
00:00:00.160 --> 00:00:02.869 align:start position:0%\n \n\
hi<00:00:00.400><c> everyone</c><00:00:00.640><c> so</c>\n\n\
00:00:02.869 --> 00:00:02.879 align:start position:0%\nhi everyone so\n \n\n\
00:00:02.879 --> 00:00:05.749 align:start position:0%\nhi everyone so\n\
recently<00:00:03.360><c> I</c><00:00:03.600><c> gave</c>\n\n\
00:00:05.749 --> 00:00:05.759 align:start position:0%\nrecently I gave\n \n\n\
00:00:05.759 --> 00:00:08.000 align:start position:0%\nrecently I gave\na talk\n\n";
        let t = parse(vtt);
        assert_eq!(t.format, TranscriptFormat::WebVtt);
        assert_eq!(texts(&t), ["hi everyone so", "recently I gave", "a talk"]);
        assert_eq!(starts(&t), [Some(0.16), Some(2.879), Some(5.759)]);
        assert_eq!(t.text(), "hi everyone so recently I gave a talk");
    }

    #[test]
    fn vtt_genuine_repeats_are_kept() {
        let t = parse("WEBVTT\n\n00:01.000 --> 00:02.000\nNo.\n\n00:02.000 --> 00:03.000\nNo.\n\n00:03.000 --> 00:04.000\nAbsolutely not.\n");
        assert_eq!(texts(&t), ["No.", "No.", "Absolutely not."]);
    }

    #[test]
    fn headerless_vtt_style_timings_are_webvtt() {
        let t = parse("00:01.000 --> 00:02.000\nhello\n\n00:02.000 --> 00:03.000\nworld\n");
        assert_eq!(t.format, TranscriptFormat::WebVtt);
        assert_eq!(starts(&t), [Some(1.0), Some(2.0)]);
    }

    const YOUTUBE: &str = "Intro\n\
0:00\n\
hi everyone welcome\n\
0:04\n\
today we talk about\n\
hashing\n\
59:58\n\
almost an hour in\n\
1:00:02\n\
1 hour, 2 seconds\n\
past the hour now\n\
1:02:03\n\
the end\n";

    #[test]
    fn youtube_copy_with_hour_long_timestamps() {
        let t = parse(YOUTUBE);
        assert_eq!(t.format, TranscriptFormat::YouTube);
        assert_eq!(
            texts(&t),
            [
                "Intro hi everyone welcome",
                "today we talk about hashing",
                "almost an hour in",
                "past the hour now",
                "the end",
            ]
        );
        assert_eq!(
            starts(&t),
            [
                Some(0.0),
                Some(4.0),
                Some(3598.0),
                Some(3602.0),
                Some(3723.0)
            ]
        );
        assert_eq!(t.segments[0].end, Some(4.0));
        assert_eq!(t.segments[4].end, None);
        assert_eq!(t.duration(), Some(3723.0));
    }

    #[test]
    fn youtube_copy_short() {
        let t = parse("0:00\nhi everyone\n0:06\nunfortunately that talk\n");
        assert_eq!(t.format, TranscriptFormat::YouTube);
        assert_eq!(texts(&t), ["hi everyone", "unfortunately that talk"]);
        assert_eq!(starts(&t), [Some(0.0), Some(6.0)]);
    }

    #[test]
    fn inline_bracketed_stamps() {
        let t = parse("[00:00:00] Welcome to the show.\n[00:00:05] Today:   databases.\n\n[00:01:02] Indexes speed up reads.\n[01:02:03] Goodbye.\n");
        assert_eq!(t.format, TranscriptFormat::InlineTimestamps);
        assert_eq!(
            texts(&t),
            [
                "Welcome to the show.",
                "Today: databases.",
                "Indexes speed up reads.",
                "Goodbye."
            ]
        );
        assert_eq!(starts(&t), [Some(0.0), Some(5.0), Some(62.0), Some(3723.0)]);
        assert_eq!(t.segments[2].end, Some(3723.0));
        assert_eq!(t.segments[3].end, None);
    }

    #[test]
    fn inline_stamps_in_one_long_line() {
        let t = parse("My talk 0:00 intro words 0:59 - more words 1:00:00 hour mark at 3:16 pm 1:02:03 end words");
        assert_eq!(t.format, TranscriptFormat::InlineTimestamps);
        // "3:16" inside the text is a stamp too: stamps are read as words.
        assert_eq!(
            texts(&t),
            [
                "My talk intro words",
                "more words",
                "hour mark at",
                "pm",
                "end words"
            ]
        );
        assert_eq!(
            starts(&t),
            [
                Some(0.0),
                Some(59.0),
                Some(3600.0),
                Some(196.0),
                Some(3723.0)
            ]
        );
        // A stamp earlier than its predecessor gets no end from it.
        assert_eq!(t.segments[2].end, None);
        assert_eq!(t.segments[3].end, Some(3723.0));
    }

    #[test]
    fn clock_times_in_plain_speech_do_not_make_it_timestamped() {
        let filler = "and so we kept talking about the system design for a long while ".repeat(40);
        let text = format!("{filler} we met at 3:30 and {filler} left at 4:15 {filler}");
        let t = parse(&text);
        assert_eq!(t.format, TranscriptFormat::Plain);
        assert!(!t.has_timestamps());
        assert_eq!(t.duration(), None);
        assert!(t.text().contains("at 3:30 and"));
    }

    #[test]
    fn plain_paragraphs() {
        let t = parse("\u{feff}hello there this is plain text\r\nacross lines\r\n\r\n\r\nsecond\tparagraph\u{a0}here\r");
        assert_eq!(t.format, TranscriptFormat::Plain);
        assert_eq!(
            texts(&t),
            [
                "hello there this is plain text across lines",
                "second paragraph here"
            ]
        );
        assert_eq!(starts(&t), [None, None]);
        assert_eq!(
            t.text(),
            "hello there this is plain text across lines second paragraph here"
        );
    }

    #[test]
    fn stray_caption_offsets_are_removed() {
        // As in corpus/transcripts/consistent-hashing.txt: cue start times with
        // the decimal point lost, glued to the next word.
        let t = parse("in this video well learn \u{a0} 208696all about it to build such   34852a system evenly across   400672those servers");
        assert_eq!(t.format, TranscriptFormat::Plain);
        assert_eq!(
            t.text(),
            "in this video well learn all about it to build such a system evenly across those servers"
        );
        // Fewer than three such words: left alone.
        let t = parse("a 10000mah battery and a 20000mah one");
        assert_eq!(t.text(), "a 10000mah battery and a 20000mah one");
    }

    #[test]
    fn utf16_with_bom_is_decoded() {
        let mut bytes = vec![0xFF, 0xFE];
        for u in "1\r\n00:00:01,000 --> 00:00:02,000\r\nh\u{e9}llo\r\n".encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        let t = parse_transcript(&bytes).unwrap();
        assert_eq!(t.format, TranscriptFormat::Srt);
        assert_eq!(texts(&t), ["h\u{e9}llo"]);
    }

    #[test]
    fn error_empty() {
        assert_eq!(parse_transcript(b""), Err(TranscriptError::Empty));
        assert_eq!(
            parse_transcript(b"  \n\t \r\n"),
            Err(TranscriptError::Empty)
        );
        assert_eq!(
            parse_transcript("\u{feff}".as_bytes()),
            Err(TranscriptError::Empty)
        );
        // Nothing left once the markup is gone.
        assert_eq!(
            parse_transcript(b"WEBVTT\n\n00:01.000 --> 00:02.000\n<i></i>\n"),
            Err(TranscriptError::Empty)
        );
        assert_eq!(TranscriptError::Empty.to_string(), "transcript is empty");
    }

    #[test]
    fn error_too_large() {
        let big = vec![b'a'; MAX_TRANSCRIPT_BYTES + 1];
        let err = parse_transcript(&big).unwrap_err();
        assert_eq!(
            err,
            TranscriptError::TooLarge {
                bytes: MAX_TRANSCRIPT_BYTES + 1,
                limit: MAX_TRANSCRIPT_BYTES
            }
        );
        assert_eq!(
            err.to_string(),
            "transcript is too large: 5242881 bytes, the limit is 5242880 bytes"
        );
        // The size is checked before anything else.
        let mut bad = vec![0u8; MAX_TRANSCRIPT_BYTES + 1];
        bad[0] = 0xFF;
        assert!(matches!(
            parse_transcript(&bad),
            Err(TranscriptError::TooLarge { .. })
        ));
        assert!(parse_transcript(&big[..MAX_TRANSCRIPT_BYTES]).is_ok());
    }

    #[test]
    fn error_not_utf8() {
        let err = parse_transcript(b"hello \xff world").unwrap_err();
        assert_eq!(err, TranscriptError::NotUtf8 { offset: 6 });
        assert_eq!(
            err.to_string(),
            "transcript is not UTF-8: invalid byte sequence at offset 6"
        );
        // Latin-1 "caf\xe9".
        assert_eq!(
            parse_transcript(b"un caf\xe9 noir"),
            Err(TranscriptError::NotUtf8 { offset: 6 })
        );
        // Unpaired surrogate in UTF-16.
        assert_eq!(
            parse_transcript(&[0xFF, 0xFE, b'a', 0, 0x00, 0xD8, b'b', 0]),
            Err(TranscriptError::NotUtf8 { offset: 4 })
        );
    }

    #[test]
    fn error_binary() {
        let err = parse_transcript(b"abc\0def").unwrap_err();
        assert_eq!(err, TranscriptError::Binary { offset: 3, byte: 0 });
        assert_eq!(
            err.to_string(),
            "transcript looks like binary data: control byte 0x00 at offset 3"
        );
        // A PNG header: NUL wins over the invalid UTF-8 byte before it.
        assert_eq!(
            parse_transcript(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Err(TranscriptError::Binary { offset: 8, byte: 0 })
        );
        // Many control characters.
        assert_eq!(
            parse_transcript(b"ab\x01\x02c\x03d\x04efgh"),
            Err(TranscriptError::Binary { offset: 2, byte: 1 })
        );
        // A stray one in ordinary text is tolerated and becomes a space.
        let mut text = "word ".repeat(20);
        text.push('\x07');
        text.push_str("end");
        let t = parse(&text);
        assert!(t.text().ends_with("word end"));
    }

    #[test]
    fn timestamps_format() {
        assert_eq!(format_timestamp(0.0), "0:00");
        assert_eq!(format_timestamp(24.9), "0:24");
        assert_eq!(format_timestamp(62.0), "1:02");
        assert_eq!(format_timestamp(3599.99), "59:59");
        assert_eq!(format_timestamp(3600.0), "1:00:00");
        assert_eq!(format_timestamp(3723.0), "1:02:03");
        assert_eq!(format_timestamp(36000.0 + 61.0), "10:01:01");
        assert_eq!(format_timestamp(-5.0), "0:00");
        assert_eq!(format_timestamp(f64::NAN), "0:00");
    }

    #[test]
    fn clock_parsing() {
        assert_eq!(parse_clock("0:24", false), Some(24.0));
        assert_eq!(parse_clock("75:30", false), Some(4530.0));
        assert_eq!(parse_clock("1:02:03", false), Some(3723.0));
        assert_eq!(parse_clock("00:00:01,500", true), Some(1.5));
        assert_eq!(parse_clock("00:00:01,500", false), None);
        assert_eq!(parse_clock("0:60", false), None);
        assert_eq!(parse_clock("1:2", false), None);
        assert_eq!(parse_clock("1:60:00", false), None);
        assert_eq!(parse_clock("16:9", false), None);
        assert_eq!(parse_stamp_token("[00:01:02]"), Some(62.0));
        assert_eq!(parse_stamp_token("(1:05)"), Some(65.0));
        assert_eq!(parse_stamp_token("0:24,"), None);
        assert_eq!(parse_stamp_token("[]"), None);
    }

    #[test]
    fn verbatim_search() {
        let hay = "so the  busy person's\n intro to large language models\tis here. \"Quoted\" bit";
        assert_eq!(find_verbatim(hay, "the busy person's intro"), Some(3));
        assert_eq!(find_verbatim(hay, "  busy   person's \n intro  "), Some(8));
        assert_eq!(
            find_verbatim(hay, "\u{201C}large language models.\u{201D}"),
            Some(32)
        );
        assert_eq!(find_verbatim(hay, "\"is here\"."), Some(54));
        assert_eq!(find_verbatim(hay, "...intro to large"), Some(23));
        // A changed word, a changed case, a partial word: all rejected.
        assert_eq!(find_verbatim(hay, "the busy people's intro"), None);
        assert_eq!(find_verbatim(hay, "The busy person's intro"), None);
        assert_eq!(find_verbatim(hay, "he busy"), None);
        assert_eq!(find_verbatim(hay, "large language model"), None);
        // Nothing to find.
        assert_eq!(find_verbatim(hay, " \"...\" "), None);
        assert_eq!(find_verbatim(hay, ""), None);
        // A later occurrence is found when the first is inside a word.
        assert_eq!(find_verbatim("xab ab ab", "ab ab"), Some(4));
        // Non-ASCII offsets are byte offsets.
        let hay = "caf\u{e9} \u{a0} cr\u{e8}me br\u{fb}l\u{e9}e";
        let at = find_verbatim(hay, "cr\u{e8}me br\u{fb}l\u{e9}e").unwrap();
        assert_eq!(at, 9);
        assert!(hay[at..].starts_with("cr\u{e8}me"));
        // Works against a parsed transcript's text.
        let t = parse(SRT);
        assert!(find_verbatim(&t.text(), "looking at consistent hashing & rings").is_some());
        assert!(find_verbatim(&t.text(), "looking at consistent caching & rings").is_none());
    }

    /// xorshift64*, fixed seed: deterministic.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    #[test]
    fn mutated_inputs_never_panic() {
        let samples: Vec<Vec<u8>> = [
            SRT,
            VTT,
            YOUTUBE,
            "[00:00:00] a b\n[00:00:05] c <i>d</i> &amp;\n",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        const INTERESTING: &[u8] =
            b"\n\r\t :,.-><&;{}\\[]()0123456789#xWEBVTT\xef\xbb\xbf\xff\xfe\xc3\x00\x01";
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut outcomes = [0usize; 2];
        for _ in 0..20_000 {
            let mut input = samples[rng.below(samples.len())].clone();
            for _ in 0..1 + rng.below(8) {
                let len = input.len();
                match rng.below(6) {
                    0 => {
                        if len > 0 {
                            let i = rng.below(len);
                            input[i] ^= 1 << rng.below(8);
                        }
                    }
                    1 => input.truncate(rng.below(len + 1)),
                    2 => {
                        let b = INTERESTING[rng.below(INTERESTING.len())];
                        input.insert(rng.below(len + 1), b);
                    }
                    3 => {
                        let b = rng.next() as u8;
                        input.insert(rng.below(len + 1), b);
                    }
                    4 => {
                        if len > 0 {
                            input.remove(rng.below(len));
                        }
                    }
                    _ => {
                        // Duplicate a slice somewhere else.
                        if len > 0 {
                            let a = rng.below(len);
                            let b = (a + 1 + rng.below(64)).min(len);
                            let chunk = input[a..b].to_vec();
                            let at = rng.below(len + 1);
                            input.splice(at..at, chunk);
                        }
                    }
                }
            }
            match parse_transcript(&input) {
                Ok(t) => {
                    outcomes[0] += 1;
                    assert!(!t.segments.is_empty());
                    for s in &t.segments {
                        assert!(!s.text.is_empty());
                        assert_eq!(s.text, clean_text(&s.text));
                    }
                    let text = t.text();
                    assert!(!text.contains("  "));
                    let _ = t.duration();
                    if let Some(s) = t.segments.first() {
                        let q: String = s.text.chars().take(20).collect();
                        let _ = find_verbatim(&text, &q);
                        if let Some(start) = s.start {
                            let _ = format_timestamp(start);
                        }
                    }
                }
                Err(e) => {
                    outcomes[1] += 1;
                    let _ = e.to_string();
                }
            }
        }
        // Both outcomes were exercised.
        assert!(outcomes[0] > 1000 && outcomes[1] > 100, "{outcomes:?}");
    }
}
