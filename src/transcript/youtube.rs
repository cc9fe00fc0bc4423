//! YouTube's "Show transcript" copy: each timestamp on a line of its own.

use super::plain::parse_plain;
use super::timestamp::parse_stamp_token;
use super::whitespace::clean_text;
use super::{timed_segments, Segment};

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

/// One segment per timestamp line, holding the lines up to the next one;
/// lines before the first stamp open the first segment. The spoken label the
/// panel may copy after a stamp (`1 hour, 2 seconds`) is dropped.
pub(super) fn parse_youtube(text: &str) -> Vec<Segment> {
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
    timed_segments(
        pieces
            .into_iter()
            .map(|(t, s)| (t, clean_text(&s)))
            .collect(),
    )
}
