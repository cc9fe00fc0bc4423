//! Caption start times glued to words with their decimal point lost.

use super::Segment;

/// The length of the digit prefix of a word such as `208696all`: 5 to 9
/// digits glued to a letter. See "Stray caption offsets" in the
/// documentation of the `transcript` module.
fn stray_offset_len(word: &str) -> Option<usize> {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let glued = word
        .as_bytes()
        .get(digits)
        .is_some_and(u8::is_ascii_alphabetic);
    ((5..=9).contains(&digits) && glued).then_some(digits)
}

/// Removes the digit prefixes of stray caption offsets, when at least three
/// words have one (one or two could be real, like `10000mah`).
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
