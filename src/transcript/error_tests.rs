//! What [`parse_transcript`] refuses, and the messages it gives.

use super::*;

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
    let t = parse_transcript(text.as_bytes()).unwrap();
    assert!(t.text().ends_with("word end"));
}
