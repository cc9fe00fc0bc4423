//! What the user can ask for: the output format and its length, with the
//! concrete sizes each combination stands for.
//!
//! `key-points`, `tldr`, `teaser` and `headline` with `short`/`medium`/`long`
//! follow the W3C Summarizer API: 3/5/7 bullets, 1/3/5 sentences, and
//! headlines of at most 12/17/22 words.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// JSON as `instruction.txt` asks and `summary.schema.json` checks.
    #[default]
    Structured,
    /// Markdown study notes: timed sections, summaries, verbatim quotes.
    Notes,
    KeyPoints,
    Tldr,
    Teaser,
    Headline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Length {
    Short,
    #[default]
    Medium,
    Long,
}

#[derive(Debug, thiserror::Error)]
#[error("unknown {what} `{given}`; expected one of: {expected}")]
pub struct ParseError {
    what: &'static str,
    given: String,
    expected: &'static str,
}

impl Format {
    pub const ALL: [Format; 6] = [Format::Structured, Format::Notes, Format::KeyPoints, Format::Tldr, Format::Teaser, Format::Headline];

    pub fn name(self) -> &'static str {
        match self {
            Format::Structured => "structured",
            Format::Notes => "notes",
            Format::KeyPoints => "key-points",
            Format::Tldr => "tldr",
            Format::Teaser => "teaser",
            Format::Headline => "headline",
        }
    }

    /// File extension for saved output.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Structured => "json",
            Format::Notes | Format::KeyPoints => "md",
            Format::Tldr | Format::Teaser | Format::Headline => "txt",
        }
    }
}

impl FromStr for Format {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Format::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| ParseError {
            what: "format",
            given: s.into(),
            expected: "structured, notes, key-points, tldr, teaser, headline",
        })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Length {
    pub fn name(self) -> &'static str {
        match self {
            Length::Short => "short",
            Length::Medium => "medium",
            Length::Long => "long",
        }
    }

    /// Picks the short/medium/long value.
    pub fn pick<T>(self, short: T, medium: T, long: T) -> T {
        match self {
            Length::Short => short,
            Length::Medium => medium,
            Length::Long => long,
        }
    }
}

impl FromStr for Length {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s {
            "short" => Ok(Length::Short),
            "medium" => Ok(Length::Medium),
            "long" => Ok(Length::Long),
            _ => Err(ParseError { what: "length", given: s.into(), expected: "short, medium, long" }),
        }
    }
}

impl fmt::Display for Length {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Field sizes for the structured JSON, in characters. They keep a small model
/// from pouring its whole budget into one field.
#[derive(Debug, Clone, Copy)]
pub struct StructuredSizes {
    pub introduction: usize,
    pub title: usize,
    pub bullet: usize,
    pub topic: usize,
    /// Per word of a one-or-two-word global topic.
    pub word: usize,
}

impl StructuredSizes {
    pub fn for_length(l: Length) -> Self {
        StructuredSizes {
            introduction: l.pick(200, 480, 800),
            title: l.pick(40, 64, 80),
            bullet: l.pick(100, 200, 260),
            topic: l.pick(24, 40, 48),
            word: 20,
        }
    }
}

/// Shape of the Markdown notes.
#[derive(Debug, Clone, Copy)]
pub struct NotesShape {
    /// Summary sentences per section (numbered points), at least 2.
    pub max_points: usize,
    /// Quotes per section.
    pub quotes: usize,
    pub title_chars: usize,
    pub sentence_chars: usize,
    pub quote_chars: usize,
}

impl NotesShape {
    pub fn for_length(l: Length) -> Self {
        NotesShape { max_points: l.pick(2, 3, 4), quotes: l.pick(1, 2, 3), title_chars: 60, sentence_chars: l.pick(160, 220, 260), quote_chars: l.pick(160, 200, 240) }
    }

    /// Intermediate notes of a map step: no quotes, terse.
    pub fn condensed() -> Self {
        NotesShape { max_points: 2, quotes: 0, title_chars: 50, sentence_chars: 160, quote_chars: 0 }
    }
}

/// How many items a W3C-style text format has, and how long one may be.
#[derive(Debug, Clone, Copy)]
pub struct TextShape {
    /// Bullets (key-points), sentences (tldr, teaser) or words (headline).
    pub count: usize,
    pub sentence_chars: usize,
}

impl TextShape {
    pub fn for_format(f: Format, l: Length) -> Self {
        let count = match f {
            Format::KeyPoints => l.pick(3, 5, 7),
            Format::Headline => l.pick(12, 17, 22),
            _ => l.pick(1, 3, 5),
        };
        TextShape { count, sentence_chars: 240 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_errors_list_choices() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>().unwrap(), f);
        }
        let e = "bullets".parse::<Format>().unwrap_err().to_string();
        assert!(e.contains("`bullets`") && e.contains("key-points"), "{e}");
        assert_eq!("long".parse::<Length>().unwrap(), Length::Long);
        assert!("huge".parse::<Length>().unwrap_err().to_string().contains("short, medium, long"));
    }
}
