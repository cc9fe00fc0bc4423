//! Finding a quote in the transcript text: the notes format checks every
//! quote the model writes this way (`crate::summarize::notes`).

/// Finds `quote` in `haystack` and returns the byte offset in `haystack` where
/// it starts, or `None`.
///
/// The comparison is exact (case, punctuation and spelling all matter) except
/// that any run of whitespace matches any other run of whitespace. Before
/// searching, surrounding quotation marks (`"`, `'`, curly quotes,
/// guillemets, backticks), a leading ellipsis and trailing punctuation
/// (`. , ; : ! ? …`) are removed from the quote, since models add them. The
/// match must not start or end in the middle of a word, so `"the cat"` is not
/// found in "the cats". A quote that is empty after trimming is never found.
pub fn find_verbatim(haystack: &str, quote: &str) -> Option<usize> {
    let quote = collapse_whitespace(trim_quote(quote));
    if quote.is_empty() {
        return None;
    }
    let hay = collapse_whitespace(haystack);
    let first_word = quote.chars().next().is_some_and(char::is_alphanumeric);
    let last_word = quote.chars().next_back().is_some_and(char::is_alphanumeric);
    let mut from = 0;
    while let Some(rel) = hay[from..].find(&quote) {
        let pos = from + rel;
        let end = pos + quote.len();
        let before_ok = !first_word
            || !hay[..pos]
                .chars()
                .next_back()
                .is_some_and(char::is_alphanumeric);
        let after_ok = !last_word || !hay[end..].chars().next().is_some_and(char::is_alphanumeric);
        if before_ok && after_ok {
            return Some(original_offset(haystack, pos));
        }
        // Continue just after the first character of this match.
        from = pos + hay[pos..].chars().next().map_or(1, char::len_utf8);
    }
    None
}

/// Whitespace runs collapsed to single spaces, nothing trimmed.
fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}

/// Maps a byte offset in `collapse_whitespace(s)` that falls on a
/// non-whitespace character back to the byte offset in `s`.
fn original_offset(s: &str, collapsed: usize) -> usize {
    let mut pos = 0usize;
    let mut in_space = false;
    for (i, c) in s.char_indices() {
        if c.is_whitespace() {
            if !in_space {
                pos += 1;
            }
            in_space = true;
        } else {
            if pos == collapsed {
                return i;
            }
            pos += c.len_utf8();
            in_space = false;
        }
    }
    s.len()
}

/// `q` without the surrounding quotation marks, leading ellipsis and trailing
/// punctuation that models add (see [`find_verbatim`]).
fn trim_quote(q: &str) -> &str {
    const QUOTES: &[char] = &[
        '"', '\'', '`', '\u{201C}', '\u{201D}', '\u{2018}', '\u{2019}', '\u{201E}', '\u{00AB}',
        '\u{00BB}',
    ];
    const TRAILING: &[char] = &['.', ',', ';', ':', '!', '?', '\u{2026}'];
    let mut q = q;
    loop {
        let before = q.len();
        q = q.trim();
        q = q.trim_start_matches(QUOTES);
        q = q.trim_start_matches(['.', '\u{2026}']);
        q = q.trim_end_matches(QUOTES);
        q = q.trim_end_matches(TRAILING);
        if q.len() == before {
            return q;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbatim_search() {
        let hay = "so the  busy person's\n intro to large language models\tis here. \"Quoted\" bit";
        assert_eq!(find_verbatim(hay, "the busy person's intro"), Some(3));
        assert_eq!(find_verbatim(hay, "  busy   person's \n intro  "), Some(8));
        assert_eq!(
            find_verbatim(hay, "\u{201C}large language models.\u{201D}"),
            Some(32)
        );
        assert_eq!(find_verbatim(hay, "\"is here\"."), Some(54));
        assert_eq!(find_verbatim(hay, "...intro to large"), Some(23));
        // A changed word, a changed case, a partial word: all rejected.
        assert_eq!(find_verbatim(hay, "the busy people's intro"), None);
        assert_eq!(find_verbatim(hay, "The busy person's intro"), None);
        assert_eq!(find_verbatim(hay, "he busy"), None);
        assert_eq!(find_verbatim(hay, "large language model"), None);
        // Nothing to find.
        assert_eq!(find_verbatim(hay, " \"...\" "), None);
        assert_eq!(find_verbatim(hay, ""), None);
        // A later occurrence is found when the first is inside a word.
        assert_eq!(find_verbatim("xab ab ab", "ab ab"), Some(4));
        // Non-ASCII offsets are byte offsets.
        let hay = "caf\u{e9} \u{a0} cr\u{e8}me br\u{fb}l\u{e9}e";
        let at = find_verbatim(hay, "cr\u{e8}me br\u{fb}l\u{e9}e").unwrap();
        assert_eq!(at, 9);
        assert!(hay[at..].starts_with("cr\u{e8}me"));
    }
}
