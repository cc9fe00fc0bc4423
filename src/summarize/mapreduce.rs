//! Cutting a transcript into pieces: small time-stamped pieces on sentence (or
//! word) boundaries, grouped into the chronological parts of the notes, or
//! packed into chunks that fit the model's context for map-reduce.

use crate::transcript::{format_timestamp, Segment};

/// A stretch of transcript text with its time span when the transcript has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub text: String,
}

/// Splits segments into pieces of at most `max_chars` (a single word longer
/// than that stays whole). Cuts go after sentence ends when the text has
/// punctuation, else between words; times inside a segment are interpolated by
/// character position, which is as good as a caption's timing gets.
pub fn pieces(segments: &[Segment], max_chars: usize) -> Vec<Piece> {
    let max_chars = max_chars.max(1);
    let mut out = vec![];
    for (i, seg) in segments.iter().enumerate() {
        // A segment without an end lasts until the next one starts.
        let end = seg.end.or_else(|| segments.get(i + 1).and_then(|n| n.start)).or(seg.start);
        let len = seg.text.len().max(1) as f64;
        let at = |pos: usize| match (seg.start, end) {
            (Some(s), Some(e)) if e >= s => Some(s + (e - s) * pos as f64 / len),
            (s, _) => s,
        };
        let mut from = 0;
        for cut in cuts(&seg.text, max_chars) {
            let text = seg.text[from..cut].trim();
            if !text.is_empty() {
                out.push(Piece { start: at(from), end: at(cut), text: text.to_string() });
            }
            from = cut;
        }
    }
    out
}

/// Byte offsets ending each piece of `text`, the last being `text.len()`.
fn cuts(text: &str, max_chars: usize) -> Vec<usize> {
    // Candidate cut points: after sentence-ending punctuation followed by a
    // space; where the text has none (auto-captions), after every word.
    let sentence_ends: Vec<usize> = text.char_indices().filter(|&(i, c)| matches!(c, '.' | '!' | '?') && text[i + 1..].starts_with(' ')).map(|(i, _)| i + 1).collect();
    let word_ends: Vec<usize> = text.char_indices().filter(|&(_, c)| c == ' ').map(|(i, _)| i).collect();
    let mut out = vec![];
    let mut from = 0;
    while text.len() - from > max_chars {
        let limit = floor_char(text, from + max_chars);
        let best = |points: &[usize]| points.iter().copied().filter(|&p| p > from && p <= limit).last();
        // A sentence end in the second half of the window beats a word end.
        let cut = best(&sentence_ends)
            .filter(|&p| p - from >= max_chars / 2)
            .or_else(|| best(&word_ends))
            // One unbroken piece of text longer than a piece (a pasted hash, a URL
            // list without spaces, a hostile 5 MB "word"): cut it where the piece
            // ends, or it would reach the model whole and overflow any context.
            .unwrap_or_else(|| if limit > from { limit } else { from + text[from..].chars().next().map_or(1, char::len_utf8) });
        out.push(cut);
        from = cut;
    }
    out.push(text.len());
    out.dedup();
    out
}

fn floor_char(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Groups pieces into `k` contiguous parts of about equal text length (fewer
/// when there are fewer pieces).
pub fn partition(pieces: &[Piece], k: usize) -> Vec<Vec<Piece>> {
    let k = k.clamp(1, pieces.len().max(1));
    let total: usize = pieces.iter().map(|p| p.text.len() + 1).sum();
    let mut parts: Vec<Vec<Piece>> = vec![];
    let mut cur = vec![];
    let mut acc = 0;
    for (i, p) in pieces.iter().enumerate() {
        let left_pieces = pieces.len() - i;
        let left_parts = k - parts.len();
        // Close the current part at the boundary nearest its share of the text,
        // but never so late that a later part would be left empty.
        let target = total * (parts.len() + 1) / k;
        let len = p.text.len() + 1;
        let closes = !cur.is_empty() && left_parts > 1 && (left_pieces < left_parts || acc + len / 2 > target);
        if closes {
            parts.push(std::mem::take(&mut cur));
        }
        cur.push(p.clone());
        acc += len;
    }
    if !cur.is_empty() {
        parts.push(cur);
    }
    parts
}

/// Packs pieces into chunks of at most `max_tokens` (counted by `count`), each
/// chunk after the first starting with up to `overlap_tokens` of the previous
/// chunk's end so no thought is cut in half without context.
pub fn chunks(pieces: &[Piece], max_tokens: usize, overlap_tokens: usize, count: &dyn Fn(&str) -> usize) -> Vec<Vec<Piece>> {
    let sizes: Vec<usize> = pieces.iter().map(|p| count(&p.text) + 1).collect();
    let mut out: Vec<Vec<Piece>> = vec![];
    let mut i = 0;
    while i < pieces.len() {
        let mut start = i;
        if !out.is_empty() {
            let mut back = 0;
            while start > 0 && back + sizes[start - 1] <= overlap_tokens && start > i.saturating_sub(8) {
                back += sizes[start - 1];
                start -= 1;
            }
        }
        let mut used: usize = sizes[start..i].iter().sum();
        let mut end = i;
        while end < pieces.len() && (end == i || used + sizes[end] <= max_tokens) {
            used += sizes[end];
            end += 1;
        }
        out.push(pieces[start..end].to_vec());
        i = end;
    }
    out
}

/// The pieces' text joined with single spaces (a span of [`crate::transcript::Transcript::text`]).
pub fn join(pieces: &[Piece]) -> String {
    pieces.iter().map(|p| p.text.as_str()).collect::<Vec<_>>().join(" ")
}

/// `m:ss - m:ss` for the pieces' span, when they are timed.
pub fn time_range(pieces: &[Piece]) -> Option<String> {
    let start = pieces.iter().find_map(|p| p.start)?;
    let end = pieces.iter().rev().find_map(|p| p.end.or(p.start)).unwrap_or(start).max(start);
    Some(format!("{} - {}", format_timestamp(start), format_timestamp(end)))
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_unbroken_word_longer_than_a_piece_is_cut() {
        let word = "é".repeat(3000) + "x".repeat(5000).as_str();
        let seg = Segment { start: None, end: None, text: format!("short words {word} then more") };
        let ps = pieces(std::slice::from_ref(&seg), 600);
        assert!(ps.len() > 10, "{} pieces", ps.len());
        for (i, p) in ps.iter().enumerate() {
            assert!(p.text.len() <= 600, "piece {i} has {} bytes", p.text.len());
        }
        let joined: String = ps.iter().map(|p| p.text.as_str()).collect::<Vec<_>>().join("");
        assert_eq!(joined.replace(' ', ""), seg.text.replace(' ', ""), "no text is lost");
    }
    use super::*;

    fn seg(start: Option<f64>, end: Option<f64>, text: &str) -> Segment {
        Segment { start, end, text: text.into() }
    }

    #[test]
    fn pieces_cut_at_sentences_then_words_and_interpolate_time() {
        let s = [seg(Some(10.0), Some(20.0), "One two three. Four five six seven. Eight nine.")];
        let p = pieces(&s, 20);
        assert_eq!(p.iter().map(|p| p.text.as_str()).collect::<Vec<_>>(), ["One two three.", "Four five six", "seven. Eight nine."]);
        assert_eq!(p[0].start, Some(10.0));
        assert!(p[1].start.unwrap() > 12.0 && p[1].start.unwrap() < 14.0);
        assert_eq!(p.last().unwrap().end, Some(20.0));
        let plain = pieces(&[seg(None, None, "aaa bbb ccc ddd eee")], 8);
        assert_eq!(plain.iter().map(|p| p.text.as_str()).collect::<Vec<_>>(), ["aaa bbb", "ccc ddd", "eee"]);
        assert!(plain.iter().all(|p| p.start.is_none()));
    }

    #[test]
    fn partition_is_balanced_contiguous_and_never_empty() {
        let ps: Vec<Piece> = (0..23).map(|i| Piece { start: Some(i as f64), end: Some(i as f64 + 1.0), text: format!("piece{i:02}") }).collect();
        let parts = partition(&ps, 5);
        assert_eq!(parts.len(), 5);
        assert!(parts.iter().all(|p| (4..=6).contains(&p.len())), "{:?}", parts.iter().map(Vec::len).collect::<Vec<_>>());
        assert_eq!(parts.concat(), ps);
        assert_eq!(time_range(&parts[1]).unwrap(), format!("0:{:02} - 0:{:02}", parts[1][0].start.unwrap() as u32, parts[1].last().unwrap().end.unwrap() as u32));
        assert_eq!(partition(&ps[..3], 5).len(), 3);
    }

    #[test]
    fn chunks_fit_the_budget_and_overlap_a_little() {
        let ps: Vec<Piece> = (0..40).map(|i| Piece { start: None, end: None, text: format!("w{i} x y z") }).collect();
        let count = |s: &str| s.split(' ').count();
        let cs = chunks(&ps, 21, 5, &count);
        assert!(cs.len() >= 8);
        for c in &cs {
            assert!(c.iter().map(|p| count(&p.text) + 1).sum::<usize>() <= 21);
        }
        assert_eq!(cs[1][0], *cs[0].last().unwrap(), "one piece of overlap");
        let covered: std::collections::HashSet<String> = cs.iter().flatten().map(|p| p.text.clone()).collect();
        assert_eq!(covered.len(), 40);
    }
}
