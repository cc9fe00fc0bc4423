//! Text in and out of the model: the GGUF's [`tokenizer`] and its [`chat`] template.

pub mod chat;
pub mod tokenizer;
