//! [`parse_transcript`] on each format, and on randomly mutated input.

use super::whitespace::clean_text;
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
    let t = parse(
        "My talk 0:00 intro words 0:59 - more words 1:00:00 hour mark at 3:16 pm 1:02:03 end words",
    );
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
fn verbatim_search_in_parsed_text() {
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
