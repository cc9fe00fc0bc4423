//! The structured summary as data: parsing it back from the model's JSON,
//! checking the rules the schema states, and writing it in the one layout the
//! grammar produces (so the worked examples look exactly like the output).

use serde::Deserialize;

/// The fixed list `instruction.txt` names; `generalTopics[].name` is one of these.
pub const GENERAL_TOPICS: [&str; 12] = [
    "Algorithms and Data Structures",
    "Artificial Intelligence (AI) and Machine Learning",
    "Computer Architecture",
    "Data Science and Analytics",
    "Database Systems and Management",
    "Human-Computer Interaction (HCI)",
    "Programming Languages and Software Development",
    "Software Engineering and System Design",
    "Web Development and Internet Technologies",
    "Computer Graphics and Visualization",
    "Theoretical Computer Science",
    "Quantum Computing",
];

pub const SECTIONS: usize = 5;
pub const BULLETS: usize = 4;
pub const SECTION_TOPICS: usize = 3;
pub const TOPICS: usize = 5;
pub const GENERAL: usize = 3;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StructuredSummary {
    pub introduction: String,
    pub sections: Vec<Section>,
    pub topics: Vec<String>,
    #[serde(rename = "generalTopics")]
    pub general_topics: Vec<GeneralTopic>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Section {
    pub title: String,
    pub content: Vec<String>,
    pub topics: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GeneralTopic {
    pub name: String,
    pub complexity: f64,
}

/// What a structured summary says of the whole talk: the fields the overview pass
/// writes from the five sections (the summary's other keys, in the same JSON names).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Overview {
    pub introduction: String,
    pub topics: Vec<String>,
    #[serde(rename = "generalTopics")]
    pub general_topics: Vec<GeneralTopic>,
}

impl Overview {
    /// The overview in the layout `grammar::overview` enforces.
    pub fn render(&self) -> String {
        let o = self;
        let q = |s: &str| serde_json::to_string(s).expect("strings always serialize");
        let topics: Vec<String> = o.topics.iter().map(|t| format!("    {}", q(t))).collect();
        let general: Vec<String> = o.general_topics.iter().map(|g| format!("    {{\n      \"name\": {},\n      \"complexity\": {:.2}\n    }}", q(&g.name), g.complexity)).collect();
        format!("{{\n  \"introduction\": {},\n  \"topics\": [\n{}\n  ],\n  \"generalTopics\": [\n{}\n  ]\n}}", q(&o.introduction), topics.join(",\n"), general.join(",\n"))
    }
}

impl Section {
    /// The section as the overview pass reads it: title, then one bullet a line, then
    /// its topics.
    pub fn as_notes(&self) -> String {
        let mut out = self.title.clone();
        for b in &self.content {
            out.push_str(&format!("\n- {b}"));
        }
        out.push_str(&format!("\nTopics: {}", self.topics.join(", ")));
        out
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StructuredError {
    #[error("not JSON of the summary's shape: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{field}: {problem}")]
    Rule { field: String, problem: String },
}

fn rule(field: impl Into<String>, problem: impl Into<String>) -> StructuredError {
    StructuredError::Rule { field: field.into(), problem: problem.into() }
}

impl StructuredSummary {
    /// The summary made of an overview and its sections, in order.
    pub fn assemble(overview: Overview, sections: Vec<Section>) -> Self {
        StructuredSummary { introduction: overview.introduction, sections, topics: overview.topics, general_topics: overview.general_topics }
    }

    /// The overview part of a whole summary (the worked examples' answers for the
    /// overview pass).
    pub fn overview(&self) -> Overview {
        Overview { introduction: self.introduction.clone(), topics: self.topics.clone(), general_topics: self.general_topics.clone() }
    }

    /// Parses and checks every rule of `summary.schema.json` (and the two-decimal
    /// complexity `instruction.txt` asks for, which JSON numbers cannot show).
    pub fn parse(json: &str) -> Result<Self, StructuredError> {
        let s: StructuredSummary = serde_json::from_str(json)?;
        s.check()?;
        for i in 0..s.general_topics.len() {
            let written = complexity_literal(json, i);
            if !written.as_deref().is_some_and(is_two_decimals) {
                return Err(rule(format!("generalTopics[{i}].complexity"), format!("written as {written:?}, not with two decimals")));
            }
        }
        Ok(s)
    }

    pub fn check(&self) -> Result<(), StructuredError> {
        if self.introduction.is_empty() {
            return Err(rule("introduction", "is empty"));
        }
        if self.sections.len() != SECTIONS {
            return Err(rule("sections", format!("has {} entries, not {SECTIONS}", self.sections.len())));
        }
        for (i, s) in self.sections.iter().enumerate() {
            let n = i + 1;
            let prefix = format!("Section {n}");
            let ok = s.title == prefix || s.title.strip_prefix(&prefix).and_then(|r| r.strip_prefix(": ")).is_some_and(|r| !r.is_empty() && !r.contains('\n'));
            if !ok {
                return Err(rule(format!("sections[{i}].title"), format!("{:?} is not \"{prefix}\" or \"{prefix}: ...\"", s.title)));
            }
            if s.content.len() != BULLETS || s.content.iter().any(String::is_empty) {
                return Err(rule(format!("sections[{i}].content"), format!("needs {BULLETS} non-empty bullets, has {:?}", s.content)));
            }
            if s.topics.len() != SECTION_TOPICS || s.topics.iter().any(String::is_empty) {
                return Err(rule(format!("sections[{i}].topics"), format!("needs {SECTION_TOPICS} non-empty topics, has {:?}", s.topics)));
            }
        }
        if self.topics.len() != TOPICS {
            return Err(rule("topics", format!("has {} entries, not {TOPICS}", self.topics.len())));
        }
        for (i, t) in self.topics.iter().enumerate() {
            let words: Vec<&str> = t.split(' ').collect();
            if words.len() > 2 || words.iter().any(|w| w.is_empty() || w.chars().any(char::is_whitespace)) {
                return Err(rule(format!("topics[{i}]"), format!("{t:?} is not one or two words")));
            }
        }
        if self.general_topics.len() != GENERAL {
            return Err(rule("generalTopics", format!("has {} entries, not {GENERAL}", self.general_topics.len())));
        }
        for (i, g) in self.general_topics.iter().enumerate() {
            if !GENERAL_TOPICS.contains(&g.name.as_str()) {
                return Err(rule(format!("generalTopics[{i}].name"), format!("{:?} is not in the list of general topics", g.name)));
            }
            if !(0.0..=1.0).contains(&g.complexity) {
                return Err(rule(format!("generalTopics[{i}].complexity"), format!("{} is outside 0.00-1.00", g.complexity)));
            }
        }
        Ok(())
    }

    /// The layout the grammar enforces: two-space indentation, one array item per
    /// line, complexity with two decimals.
    pub fn render(&self) -> String {
        let q = |s: &str| serde_json::to_string(s).expect("strings always serialize");
        let list = |items: &[String], indent: &str| items.iter().map(|t| format!("{indent}{}", q(t))).collect::<Vec<_>>().join(",\n");
        let sections: Vec<String> = self
            .sections
            .iter()
            .map(|s| {
                format!(
                    "    {{\n      \"title\": {},\n      \"content\": [\n{}\n      ],\n      \"topics\": [\n{}\n      ]\n    }}",
                    q(&s.title),
                    list(&s.content, "        "),
                    list(&s.topics, "        ")
                )
            })
            .collect();
        let general: Vec<String> = self
            .general_topics
            .iter()
            .map(|g| format!("    {{\n      \"name\": {},\n      \"complexity\": {:.2}\n    }}", q(&g.name), g.complexity))
            .collect();
        format!(
            "{{\n  \"introduction\": {},\n  \"sections\": [\n{}\n  ],\n  \"topics\": [\n{}\n  ],\n  \"generalTopics\": [\n{}\n  ]\n}}",
            q(&self.introduction),
            sections.join(",\n"),
            list(&self.topics, "    "),
            general.join(",\n")
        )
    }
}

/// `0.dd` or `1.00`.
pub fn is_two_decimals(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 4 && b[1] == b'.' && b[2].is_ascii_digit() && b[3].is_ascii_digit() && (b[0] == b'0' || s == "1.00")
}

/// The literal text of the `i`-th `"complexity":` value in `json`.
fn complexity_literal(json: &str, i: usize) -> Option<String> {
    let key = "\"complexity\":";
    let (at, _) = json.match_indices(key).nth(i)?;
    let rest = json[at + key.len()..].trim_start();
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == 'e' || c == 'E' || c == '+')).unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOT: &str = include_str!("prompts/shots/full-stack.json");

    #[test]
    fn worked_example_parses_and_renders_byte_for_byte() {
        let s = StructuredSummary::parse(SHOT).unwrap();
        assert_eq!(s.render(), SHOT.trim_end());
    }

    #[test]
    fn rule_breaks_are_named() {
        let mut s = StructuredSummary::parse(SHOT).unwrap();
        s.sections[2].title = "Part 3".into();
        assert!(s.check().unwrap_err().to_string().contains("sections[2].title"));
        let mut s = StructuredSummary::parse(SHOT).unwrap();
        s.topics[0] = "three word topic".into();
        assert!(s.check().unwrap_err().to_string().contains("topics[0]"));
        let e = StructuredSummary::parse(&SHOT.replace("0.59", "0.5")).unwrap_err().to_string();
        assert!(e.contains("two decimals"), "{e}");
        assert!(is_two_decimals("1.00") && is_two_decimals("0.07") && !is_two_decimals("1.01") && !is_two_decimals("0.5"));
    }
}
