//! Bytes to text: byte order marks, UTF-16, the binary-data check, newlines.

use std::borrow::Cow;

use super::TranscriptError;

/// The text of `bytes`: UTF-16 after a UTF-16 byte order mark, otherwise
/// UTF-8 without its byte order mark. Binary data and invalid sequences are
/// errors, reported as [`super::parse_transcript`] documents.
pub(super) fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, TranscriptError> {
    let little_endian = bytes.starts_with(&[0xFF, 0xFE]);
    if little_endian || bytes.starts_with(&[0xFE, 0xFF]) {
        return decode_utf16(bytes, little_endian).map(Cow::Owned);
    }
    check_binary(
        bytes.iter().enumerate().map(|(i, &b)| (i, u32::from(b))),
        bytes.len(),
    )?;
    let text = std::str::from_utf8(bytes).map_err(|e| TranscriptError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    Ok(Cow::Borrowed(text.strip_prefix('\u{feff}').unwrap_or(text)))
}

fn decode_utf16(bytes: &[u8], little_endian: bool) -> Result<String, TranscriptError> {
    let body = &bytes[2..];
    let units: Vec<u16> = body
        .chunks_exact(2)
        .map(|p| {
            if little_endian {
                u16::from_le_bytes([p[0], p[1]])
            } else {
                u16::from_be_bytes([p[0], p[1]])
            }
        })
        .collect();
    check_binary(
        units
            .iter()
            .enumerate()
            .map(|(i, &u)| (2 + 2 * i, u32::from(u))),
        units.len(),
    )?;
    let mut out = String::with_capacity(body.len());
    let mut unit = 0usize;
    for r in char::decode_utf16(units.iter().copied()) {
        match r {
            Ok(c) => {
                unit += c.len_utf16();
                out.push(c);
            }
            Err(_) => {
                return Err(TranscriptError::NotUtf8 {
                    offset: 2 + 2 * unit,
                })
            }
        }
    }
    if body.len() % 2 == 1 {
        return Err(TranscriptError::NotUtf8 {
            offset: bytes.len() - 1,
        });
    }
    Ok(out)
}

/// Control characters that have no business in text. Tab, newline, carriage
/// return and form feed are fine.
fn is_suspicious_control(v: u32) -> bool {
    (v < 0x20 && !matches!(v, 0x09 | 0x0A | 0x0C | 0x0D)) || v == 0x7F
}

/// `Binary` for any NUL, or for suspicious control characters making up more
/// than 1/32 of the `total` code units (a stray one in real text is
/// tolerated); names the first offender. `units` are (byte offset, code unit).
fn check_binary(
    units: impl Iterator<Item = (usize, u32)>,
    total: usize,
) -> Result<(), TranscriptError> {
    let mut first: Option<(usize, u32)> = None;
    let mut count = 0usize;
    for (offset, v) in units {
        if v == 0 {
            return Err(TranscriptError::Binary { offset, byte: 0 });
        }
        if is_suspicious_control(v) {
            count += 1;
            first.get_or_insert((offset, v));
        }
    }
    match first {
        Some((offset, v)) if count.saturating_mul(32) > total => Err(TranscriptError::Binary {
            offset,
            byte: v as u8,
        }),
        _ => Ok(()),
    }
}

/// `\r\n` and lone `\r` as `\n`.
pub(super) fn normalise_newlines(s: &str) -> Cow<'_, str> {
    if s.contains('\r') {
        Cow::Owned(s.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Cow::Borrowed(s)
    }
}
