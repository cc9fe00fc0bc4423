//! Chat prompts: the GGUF's own `tokenizer.chat_template` (Jinja, rendered by
//! minijinja with Python-style string methods), else Mistral's `[INST]` format.

use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("chat template does not compile: {0}")]
    Compile(String),
    #[error("chat template failed to render: {0}")]
    Render(String),
}

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
    bos: String,
    eos: String,
}

impl ChatTemplate {
    pub fn new(source: Option<String>, bos: &str, eos: &str) -> Self {
        ChatTemplate { source, bos: bos.into(), eos: eos.into() }
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
        env.add_template("chat", src).map_err(|e| ChatError::Compile(e.to_string()))?;
        let t = env.get_template("chat").map_err(|e| ChatError::Compile(e.to_string()))?;
        t.render(minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos,
            eos_token => self.eos,
        })
        .map_err(|e| ChatError::Render(e.to_string()))
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
}
