//! Caption files: SRT and WebVTT cues, read by one lenient reader.
//!
//! WebVTT: <https://www.w3.org/TR/webvtt1/>. SRT (SubRip) has no
//! specification; files are numbered cues, each a timing line with `,`
//! before the milliseconds and text lines, separated by blank lines.

use super::markup::strip_markup;
use super::timestamp::parse_timing_line;
use super::whitespace::clean_text;
use super::Segment;

/// One cue as read: its times and its text lines, markup already removed.
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
pub(super) fn parse_cues(text: &str, vtt: bool) -> Vec<Segment> {
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
