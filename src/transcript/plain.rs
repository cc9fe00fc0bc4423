//! Text without timestamps: one segment per paragraph.

use super::whitespace::clean_text;
use super::Segment;

/// One untimed segment per paragraph (paragraphs are separated by blank lines).
pub(super) fn parse_plain(text: &str) -> Vec<Segment> {
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
