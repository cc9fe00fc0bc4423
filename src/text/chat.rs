//! Chat prompts: the GGUF's own `tokenizer.chat_template` (Jinja, rendered by
//! minijinja with Python-style string methods), else Mistral's `[INST]` format.

use serde::Serialize;

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
        let mut env = minijinja::Environment::new();
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
        });
        env.add_function("strftime_now", |_fmt: String| "26 Jul 2024".to_string());
        // The template comes from the model file: bound its time and its output. (An
        // intermediate string the template builds, e.g. by doubling, is not bounded by
        // minijinja; the fuel bounds how many times it can be built.)
        env.set_fuel(Some(FUEL));
        env.set_recursion_limit(64);
        env.add_template("chat", src).map_err(|e| ChatError::Compile { file: self.file.clone(), message: e.to_string() })?;
        let t = env.get_template("chat").map_err(|e| ChatError::Compile { file: self.file.clone(), message: e.to_string() })?;
        let input: usize = messages.iter().map(|m| m.content.len() + m.role.len()).sum();
        let limit = 2 * input + OUTPUT_SLACK;
        let mut out = Capped { text: String::new(), limit, over: false };
        let ctx = minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos,
            eos_token => self.eos,
        };
        let rendered = t.render_captured_to(ctx, &mut out).map(|_| ());
        match rendered {
            Ok(_) if out.text.is_empty() && !messages.is_empty() => Err(ChatError::Empty { file: self.file.clone() }),
            Ok(_) => Ok(out.text),
            Err(e) if e.kind() == minijinja::ErrorKind::OutOfFuel => Err(ChatError::TooLong { file: self.file.clone(), messages: messages.len() }),
            Err(_) if out.over => Err(ChatError::TooLarge { file: self.file.clone(), limit, input }),
            Err(e) => Err(ChatError::Render { file: self.file.clone(), message: e.to_string() }),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mistral_fallback_format() {
        let t = ChatTemplate::new(None, "<s>", "</s>");
        let m = [Message::new("system", "Be brief."), Message::new("user", "Hi"), Message::new("assistant", "Hello"), Message::new("user", "Bye")];
        assert_eq!(t.render(&m, true).unwrap(), "<s>[INST] Be brief.\n\nHi [/INST]Hello</s>[INST] Bye [/INST]");
    }

    #[test]
    fn jinja_template_with_python_methods() {
        let src = "{% for m in messages %}<|{{ m.role }}|>{{ m.content.strip() }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";
        let t = ChatTemplate::new(Some(src.into()), "", "");
        assert_eq!(t.render(&[Message::new("user", "  hi  ")], true).unwrap(), "<|user|>hi\n<|assistant|>");
    }

    #[test]
    fn raise_exception_is_an_error_not_a_panic() {
        let t = ChatTemplate::new(Some("{{ raise_exception('roles must alternate') }}".into()), "", "");
        let e = t.render(&[], true).unwrap_err().to_string();
        assert!(e.contains("roles must alternate"), "{e}");
    }

    #[test]
    fn a_template_that_loops_for_ever_runs_out_of_fuel() {
        let t = ChatTemplate::new(Some("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}".into()), "", "");
        let e = t.render(&[Message::new("user", "hi")], true).unwrap_err();
        assert!(matches!(e, ChatError::TooLong { messages: 1, .. }), "{e}");
        assert!(e.to_string().contains("ran too long"), "{e}");
    }

    #[test]
    fn a_template_that_amplifies_its_output_is_cut_off() {
        let t = ChatTemplate::new(Some("{% for i in range(20) %}{{ messages[0].content * 10000 }}{% endfor %}".into()), "", "");
        let e = t.render(&[Message::new("user", "0123456789")], true).unwrap_err();
        assert!(matches!(e, ChatError::TooLarge { .. }), "{e}");
        assert!(e.to_string().contains("produced over"), "{e}");
    }

    #[test]
    fn a_template_that_writes_nothing_says_so() {
        let t = ChatTemplate::new(Some("{# nothing #}".into()), "", "");
        let e = t.render(&[Message::new("user", "hi")], true).unwrap_err();
        assert!(matches!(e, ChatError::Empty { .. }), "{e}");
    }
}
