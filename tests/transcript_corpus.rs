//! The transcript parser on every real transcript in ../shared/corpus.

use precis::transcript::{parse_transcript, TranscriptFormat};

fn corpus_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/corpus/transcripts"
    ))
}

#[test]
fn corpus_transcripts() {
    let dir = corpus_dir();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    assert!(!entries.is_empty(), "no transcripts in {}", dir.display());
    let mut saw_timestamped = false;
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        let t = parse_transcript(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let text = t.text();
        assert!(!text.is_empty(), "{name}: empty text");
        assert!(!text.contains("  "), "{name}: double space");
        assert!(t.segments.iter().all(|s| !s.text.is_empty()), "{name}");
        if name == "intro-to-llms-timestamped.txt" {
            saw_timestamped = true;
            assert_eq!(t.format, TranscriptFormat::InlineTimestamps, "{name}");
            assert!(
                t.segments.len() > 50,
                "{name}: {} segments",
                t.segments.len()
            );
            assert_eq!(t.segments[0].start, Some(0.0));
            assert!(t.segments[0]
                .text
                .starts_with("Intro: Large Language Model (LLM) talk hi everyone"));
            assert_eq!(t.segments[1].start, Some(6.0));
            let times: Vec<f64> = t.segments.iter().map(|s| s.start.unwrap()).collect();
            assert!(
                times.windows(2).all(|w| w[0] <= w[1]),
                "{name}: not monotonic"
            );
            // Short gaps between stamps, and a plausible length (under 2 hours).
            assert!(times.windows(2).all(|w| w[1] - w[0] < 120.0), "{name}: gap");
            assert!(t.duration().unwrap() > 60.0 && t.duration().unwrap() < 7200.0);
            assert!(!text.contains(" 0:06 "));
        } else {
            assert_eq!(t.format, TranscriptFormat::Plain, "{name}");
            assert!(!t.has_timestamps(), "{name}");
        }
        if name == "consistent-hashing.txt" {
            // The stray caption offsets are gone.
            assert!(text.contains("well learn all about it"), "{name}");
            assert!(text.contains("to build such a system"), "{name}");
            assert!(!text.contains('\u{a0}'), "{name}: no-break space left");
            // No word still starts with a glued run of 5+ digits.
            let glued = |w: &str| {
                let d = w.bytes().take_while(u8::is_ascii_digit).count();
                d >= 5 && w[d..].starts_with(|c: char| c.is_alphabetic())
            };
            assert!(!text.split(' ').any(glued), "{name}");
        }
    }
    assert!(saw_timestamped, "intro-to-llms-timestamped.txt missing");
}

