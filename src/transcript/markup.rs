//! Caption markup: HTML-like tags (the `<i>`, `<b>` and `<font>` of SRT
//! files; the cue text tags of WebVTT, <https://www.w3.org/TR/webvtt1/>)
//! and SubStation Alpha override blocks such as `{\an8}`, which some SRT
//! files converted from SSA/ASS keep.

use super::entities::decode_entity;

/// Removes caption markup from one line: tags, `{\...}` override blocks and
/// character references. `<v Name>` becomes `Name: `.
pub(super) fn strip_markup(line: &str) -> String {
    // How far a `<` or `{\` looks for its closing character: bounded so that
    // the work per character is too and parsing stays linear.
    const LOOKAHEAD: usize = 256;
    let b = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'<' => {
                if let Some(close) = tag_end(b, i, LOOKAHEAD) {
                    let inner = &line[i + 1..close];
                    if let Some(voice) = inner
                        .strip_prefix('v')
                        .filter(|r| r.starts_with([' ', '.', '\t']))
                    {
                        let name = voice
                            .split_once(char::is_whitespace)
                            .map_or("", |(_, n)| n.trim());
                        if !name.is_empty() {
                            out.push_str(name);
                            out.push_str(": ");
                        }
                    }
                    i = close + 1;
                    continue;
                }
            }
            b'{' if b.get(i + 1) == Some(&b'\\') => {
                if let Some(rel) = b[i..b.len().min(i + LOOKAHEAD)]
                    .iter()
                    .position(|&c| c == b'}')
                {
                    i += rel + 1;
                    continue;
                }
            }
            b'&' => {
                if let Some((decoded, len)) = decode_entity(&b[i..]) {
                    if let Some(c) = decoded {
                        out.push(c);
                    }
                    i += len;
                    continue;
                }
            }
            _ => {}
        }
        let c = line[i..].chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// The index of the `>` closing a tag that opens at `b[open]`, if it really
/// looks like a tag: `<x`, `</x` or `<0` (a WebVTT timestamp tag).
fn tag_end(b: &[u8], open: usize, lookahead: usize) -> Option<usize> {
    let first = *b.get(open + 1)?;
    let looks_like_tag = first.is_ascii_alphabetic()
        || first.is_ascii_digit()
        || (first == b'/' && b.get(open + 2).is_some_and(|c| c.is_ascii_alphabetic()));
    if !looks_like_tag {
        return None;
    }
    let limit = b.len().min(open + 1 + lookahead);
    for (j, &c) in b.iter().enumerate().take(limit).skip(open + 1) {
        match c {
            b'>' => return Some(j),
            b'<' => return None,
            _ => {}
        }
    }
    None
}
