#![no_main]
//! The transcript parser on arbitrary bytes: a transcript or a named error,
//! never a panic; and every segment it returns can be found verbatim again.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = precis::transcript::parse_transcript(data) {
        let full = t.text();
        assert!(!full.trim().is_empty(), "a parsed transcript is never empty");
        // A whole segment that begins and ends with a word is exactly what a
        // verbatim quote of it looks like.
        for seg in t.segments.iter().take(3) {
            let words = seg.text.starts_with(char::is_alphanumeric) && seg.text.ends_with(char::is_alphanumeric);
            if words {
                assert!(precis::transcript::find_verbatim(&full, &seg.text).is_some(), "{:?} not found in its own transcript", seg.text);
            }
        }
    }
});
