//! Caption start times glued to words with their decimal point lost.

use super::Segment;

/// See "Stray caption offsets" in the module documentation.
fn stray_offset_len(word: &str) -> Option<usize> {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let glued = word
        .as_bytes()
        .get(digits)
        .is_some_and(u8::is_ascii_alphabetic);
    ((5..=9).contains(&digits) && glued).then_some(digits)
}

pub(super) fn strip_stray_offsets(segs: &mut [Segment]) {
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
