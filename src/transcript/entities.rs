//! HTML character references: the few named ones captions use (`&amp;`,
//! `&nbsp;`, ...; the full list is
//! <https://html.spec.whatwg.org/multipage/named-characters.html>) and
//! numeric ones (`&#39;`, `&#x21;`).

/// Decodes a character reference at the start of `b` (which starts with
/// `&`). Returns the character (`None` for ones that render as nothing) and
/// the length consumed. The `;` is looked for in the first 12 bytes only,
/// which every reference decoded here fits and which keeps a stray `&` cheap.
pub(super) fn decode_entity(b: &[u8]) -> Option<(Option<char>, usize)> {
    let semi = b.iter().take(12).position(|&c| c == b';')?;
    let name = std::str::from_utf8(&b[1..semi]).ok()?;
    let c = match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        "lrm" | "rlm" | "zwj" | "zwnj" => None,
        _ => {
            let num = name.strip_prefix('#')?;
            let value = if let Some(hex) = num.strip_prefix(['x', 'X']) {
                if hex.is_empty() || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return None;
                }
                u32::from_str_radix(hex, 16).ok()?
            } else {
                if num.is_empty() || !num.bytes().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                num.parse().ok()?
            };
            Some(char::from_u32(value).filter(|&c| c != '\0')?)
        }
    };
    Some((c, semi + 1))
}
