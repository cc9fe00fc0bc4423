//! Chat prompts: the GGUF's own `tokenizer.chat_template` (Jinja, rendered by
//! minijinja with Python-style string methods), else Mistral's `[INST]` format.
//!
//! The template comes from the model file, so its render is bounded: in steps
//! (minijinja's fuel), in recursion, in output (the [`Capped`] writer) and in the
//! values it builds on the way ([`budget`]): the template is printed back from its
//! syntax tree with every amplifying operation behind a size check ([`rewrite`],
//! [`guards`]) before minijinja compiles it.

mod budget;
mod guards;
mod rewrite;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use serde::Serialize;

use budget::{Budget, Trip, MAX_DEPTH};

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("{file}: chat template does not compile: {message}")]
    Compile { file: String, message: String },
    #[error("{file}: chat template failed to render: {message}")]
    Render { file: String, message: String },
    #[error("{file}: the model's chat template ran too long (over {FUEL} template steps) for {messages} messages; its `tokenizer.chat_template` loops without end or far more than a chat needs")]
    TooLong { file: String, messages: usize },
    #[error("{file}: the model's chat template produced over {limit} bytes for {input} bytes of messages; its `tokenizer.chat_template` is not a chat template")]
    TooLarge { file: String, limit: usize, input: usize },
    #[error("{file}: the model's chat template built a value of over {limit} bytes for {input} bytes of messages; its `tokenizer.chat_template` amplifies its input far beyond any chat prompt")]
    TooBig { file: String, limit: usize, input: usize },
    #[error("{file}: the model's chat template nested values over {MAX_DEPTH} levels deep or inside themselves; its `tokenizer.chat_template` is not a chat template")]
    TooDeep { file: String },
    #[error("{file}: the model's chat template reworked over {limit} bytes of values for {input} bytes of messages; its `tokenizer.chat_template` reprocesses large values far more often than a chat needs")]
    TooMuchWork { file: String, limit: usize, input: usize },
    #[error("{file}: chat template cannot be used: {what} has no place in a model's chat template (it is rendered alone)")]
    Unsupported { file: String, what: &'static str },
    #[error("{file}: the model's chat template rendered these messages as nothing; its `tokenizer.chat_template` writes no prompt")]
    Empty { file: String },
}

/// Template steps (minijinja "fuel") a render may take. Real templates take a few
/// thousand for a long chat (SmolLM2's, Qwen's, Llama 3's); nested `range(100000)`
/// loops would take billions.
pub const FUEL: u64 = 5_000_000;
/// Bytes a render may write beyond the messages' own: room for every role marker and
/// system preamble a real template adds, but not for an amplifying one.
const OUTPUT_SLACK: usize = 1 << 20;
/// Bytes any one value a template builds may take beyond [`VALUE_FACTOR`] times the
/// messages' bytes (a value is sized as [`budget`] measures it: its text, plus 24
/// bytes per value). The largest value a real template builds is the prompt itself
/// (every message plus its markers) or the messages list; 4× the messages covers
/// holding several such at once (a message, its stripped copy, the prompt so far),
/// and 4 MiB covers the longest fixed preambles and tool descriptions.
const VALUE_SLACK: usize = 4 << 20;
const VALUE_FACTOR: usize = 4;
/// How many values' worth of bytes the size checks may measure, and the render may
/// build, in all: every value a render allocates is checked (see rewrite.rs), so
/// this also bounds what a hostile template can make the machine hold at once (it
/// could otherwise keep one full-size value per `{% set %}` it contains): with the
/// output and capture caps and a filter's result before its check, about 25
/// values' worth, some 100 MiB for a short chat. A real template builds and measures
/// each message a few times (a prompt's worth per `+` chain, a walk of the messages
/// per `|length`): 10–20 messages' worth, where this allows 64.
const WORK_FACTOR: usize = 16;
/// An error message of minijinja's (which can quote the template's own values, e.g.
/// `raise_exception`'s) is cut to this many bytes.
const MESSAGE_CAP: usize = 1000;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Self {
        Message { role: role.into(), content: content.into() }
    }
}

pub struct ChatTemplate {
    source: Option<String>,
    /// The model file the template came from, for error messages.
    pub file: String,
    bos: String,
    eos: String,
}

impl ChatTemplate {
    pub fn new(source: Option<String>, bos: &str, eos: &str) -> Self {
        ChatTemplate { source, file: String::new(), bos: bos.into(), eos: eos.into() }
    }

    /// Names the model file in this template's errors.
    pub fn named(mut self, file: &str) -> Self {
        self.file = file.into();
        self
    }

    pub fn has_template(&self) -> bool {
        self.source.is_some()
    }

    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String, ChatError> {
        let Some(src) = &self.source else { return Ok(self.mistral(messages)) };
        let input: usize = messages.iter().map(|m| m.content.len() + m.role.len()).sum();
        let limit = 2 * input + OUTPUT_SLACK;
        let value_limit = VALUE_SLACK.saturating_add(input.saturating_mul(VALUE_FACTOR));
        let work_limit = value_limit.saturating_mul(WORK_FACTOR);
        // Everything `{{ }}` writes, captured or not, is counted: the output's own cap
        // plus one value's worth for what blocks and macros capture along the way.
        let budget = Arc::new(Budget::new(value_limit, limit.saturating_add(value_limit), work_limit));

        let mut env = minijinja::Environment::new();
        // The environment's whitespace rules, so that the rewrite parses the template
        // as minijinja would, text chunks included.
        let ws = minijinja::machinery::WhitespaceConfig {
            keep_trailing_newline: env.keep_trailing_newline(),
            lstrip_blocks: env.lstrip_blocks(),
            trim_blocks: env.trim_blocks(),
        };
        let bounded = rewrite::rewrite(src, ws).map_err(|e| match e {
            rewrite::RewriteError::Syntax(e) => ChatError::Compile { file: self.file.clone(), message: e.to_string() },
            rewrite::RewriteError::Unsupported(what) => ChatError::Unsupported { file: self.file.clone(), what },
        })?;
        minijinja_contrib::add_to_environment(&mut env);
        guards::install(&mut env, &budget, bounded.raws);
        env.add_function("raise_exception", |msg: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
        });
        env.add_function("strftime_now", |_fmt: String| "26 Jul 2024".to_string());
        // The template comes from the model file: bound its time and its output (and,
        // through the rewrite above, the values it builds).
        env.set_fuel(Some(FUEL));
        env.set_recursion_limit(64);
        env.add_template_owned("chat", bounded.source)
            .map_err(|e| ChatError::Compile { file: self.file.clone(), message: e.to_string() })?;
        let t = env.get_template("chat").map_err(|e| ChatError::Compile { file: self.file.clone(), message: e.to_string() })?;
        let mut out = Capped { text: String::new(), limit, over: false };
        let ctx = minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            // Summaries want the answer, not a reasoning trace: templates with a reasoning
            // toggle read it (SmolLM3's `/no_think` mode, Qwen3's empty think block); the
            // others never name it.
            enable_thinking => false,
            bos_token => self.bos,
            eos_token => self.eos,
        };
        let rendered = t.render_captured_to(ctx, &mut out).map(|_| ());
        let file = self.file.clone();
        match rendered {
            Ok(_) if out.text.is_empty() && !messages.is_empty() => Err(ChatError::Empty { file }),
            Ok(_) => Ok(out.text),
            // A guard's stop is the cause of whatever error the render ended with.
            Err(_) if budget.tripped() == Some(Trip::Size) => Err(ChatError::TooBig { file, limit: value_limit, input }),
            Err(_) if budget.tripped() == Some(Trip::Depth) => Err(ChatError::TooDeep { file }),
            Err(_) if budget.tripped() == Some(Trip::Work) => Err(ChatError::TooMuchWork { file, limit: work_limit, input }),
            Err(e) if e.kind() == minijinja::ErrorKind::OutOfFuel => Err(ChatError::TooLong { file, messages: messages.len() }),
            Err(_) if out.over => Err(ChatError::TooLarge { file, limit, input }),
            Err(e) => Err(ChatError::Render { file, message: cut(e.to_string()) }),
        }
    }

    /// Mistral's instruct format: `<s>[INST] user [/INST]assistant</s>[INST] …`, a
    /// system message folded into the first user turn (it has no system role).
    fn mistral(&self, messages: &[Message]) -> String {
        let mut out = self.bos.clone();
        let mut system = String::new();
        for m in messages {
            match m.role.as_str() {
                "system" => system = format!("{}\n\n", m.content),
                "user" => {
                    out.push_str(&format!("[INST] {}{} [/INST]", std::mem::take(&mut system), m.content));
                }
                _ => out.push_str(&format!("{}{}", m.content, self.eos)),
            }
        }
        out
    }
}

/// A render target that refuses to grow past `limit` bytes (the write fails, and the
/// render with it).
struct Capped {
    text: String,
    limit: usize,
    over: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.text.len() + buf.len() > self.limit {
            self.over = true;
            return Err(std::io::Error::other("chat template output over its cap"));
        }
        self.text.push_str(std::str::from_utf8(buf).map_err(std::io::Error::other)?);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `message` cut to [`MESSAGE_CAP`] bytes (at a character boundary).
fn cut(mut message: String) -> String {
    if message.len() > MESSAGE_CAP {
        let mut end = MESSAGE_CAP;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}
