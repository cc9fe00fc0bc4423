//! Tokenizers built from GGUF metadata (`tokenizer.ggml.*`), matching llama.cpp's ids.
//!
//! - `llama`: SentencePiece-style merge-by-score with byte fallback ([`spm`]).
//! - `gpt2`: byte-level BPE with merges and the `tokenizer.ggml.pre` split rule, run by
//!   the `tokenizers` crate.
//!
//! Special tokens are split out first, as llama.cpp does: control and unknown tokens
//! only when the caller asks to parse specials, user-defined tokens always.

mod spm;

use crate::format::gguf::Gguf;
use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("metadata key `{key}` is {found}; expected {expected}")]
    Key { key: String, found: String, expected: &'static str },
    #[error("unsupported tokenizer model `{0}` (tokenizer.ggml.model); supported: llama, gpt2")]
    Model(String),
    #[error("{key} = {id} is outside the vocabulary of {n} tokens")]
    BadId { key: &'static str, id: u64, n: usize },
    #[error("cannot build the BPE tokenizer: {0}")]
    Bpe(String),
}

/// llama.cpp's `llama_token_type` values as GGUF stores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

impl TokenType {
    fn from_i64(v: i64) -> Self {
        match v {
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => TokenType::Normal,
        }
    }
}

#[derive(Clone)]
enum Kind {
    Spm { scores: Vec<f32>, byte_tokens: Box<[Option<u32>; 256]>, add_space_prefix: bool },
    Bpe { tk: Box<tokenizers::Tokenizer>, byte_of_char: HashMap<char, u8> },
}

#[derive(Clone)]
pub struct Tokenizer {
    kind: Kind,
    tokens: Vec<String>,
    types: Vec<TokenType>,
    token_to_id: HashMap<String, u32>,
    /// Control/user-defined/unknown tokens, longest first (llama.cpp's partition order).
    specials: Vec<u32>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub unk: u32,
    pub add_bos: bool,
    pub add_eos: bool,
    pub model_name: String,
    pub pre: String,
}

enum Fragment<'a> {
    Text(&'a str),
    Token(u32),
}

impl Tokenizer {
    pub fn from_gguf(g: &Gguf) -> Result<Self, TokenizerError> {
        let key_err = |key: &str, expected: &'static str| TokenizerError::Key {
            key: key.into(),
            found: g.describe(key),
            expected,
        };
        let model_name = g.get("tokenizer.ggml.model").and_then(|v| v.as_str()).ok_or_else(|| key_err("tokenizer.ggml.model", "a string"))?.to_string();
        let tokens: Vec<String> = g
            .get("tokenizer.ggml.tokens")
            .and_then(|v| v.as_array())
            .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_string)).collect())
            .ok_or_else(|| key_err("tokenizer.ggml.tokens", "an array of strings"))?;
        let n = tokens.len();
        // Lengths are checked before an array is widened (8 bytes an element).
        let types: Vec<TokenType> = match g.get("tokenizer.ggml.token_type").filter(|v| v.numbers_len() == Some(n)).and_then(|v| v.numbers()) {
            Some(a) => a.iter().map(|&v| TokenType::from_i64(v as i64)).collect(),
            None if g.get("tokenizer.ggml.token_type").is_some() => return Err(key_err("tokenizer.ggml.token_type", "one number per token")),
            None => vec![TokenType::Normal; n],
        };
        let mut token_to_id = HashMap::with_capacity(n);
        for (i, t) in tokens.iter().enumerate() {
            token_to_id.insert(t.clone(), i as u32);
        }
        let id = |key: &'static str| -> Result<Option<u32>, TokenizerError> {
            match g.get(key) {
                None => Ok(None),
                Some(v) => {
                    let id = v.as_u64().ok_or_else(|| key_err(key, "an integer"))?;
                    if id >= n as u64 {
                        return Err(TokenizerError::BadId { key, id, n });
                    }
                    Ok(Some(id as u32))
                }
            }
        };
        let flag = |key: &str, default: bool| g.get(key).and_then(|v| v.as_bool()).unwrap_or(default);
        let is_spm = model_name == "llama";
        let bos = id("tokenizer.ggml.bos_token_id")?;
        let eos = id("tokenizer.ggml.eos_token_id")?;
        let unk = id("tokenizer.ggml.unknown_token_id")?.unwrap_or(0);
        let pre = g.get("tokenizer.ggml.pre").and_then(|v| v.as_str()).unwrap_or("default").to_string();

        let kind = match model_name.as_str() {
            "llama" => {
                let scores: Vec<f32> = match g.get("tokenizer.ggml.scores").filter(|v| v.numbers_len() == Some(n)).and_then(|v| v.numbers()) {
                    Some(a) => a.iter().map(|&v| v as f32).collect(),
                    None if g.get("tokenizer.ggml.scores").is_some() => return Err(key_err("tokenizer.ggml.scores", "one number per token")),
                    None => vec![0.0; n],
                };
                let mut byte_tokens = Box::new([None; 256]);
                for (b, slot) in byte_tokens.iter_mut().enumerate() {
                    *slot = token_to_id.get(&format!("<0x{b:02X}>")).copied();
                }
                Kind::Spm { scores, byte_tokens, add_space_prefix: flag("tokenizer.ggml.add_space_prefix", true) }
            }
            "gpt2" => {
                let merges: Vec<(String, String)> = g
                    .get("tokenizer.ggml.merges")
                    .and_then(|v| v.as_array())
                    .ok_or_else(|| key_err("tokenizer.ggml.merges", "an array of strings"))?
                    .iter()
                    .filter_map(|v| v.as_str())
                    .filter_map(|m| m.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())))
                    .collect();
                Kind::Bpe { tk: Box::new(build_bpe(&token_to_id, merges, &pre)?), byte_of_char: byte_level_decoder() }
            }
            other => return Err(TokenizerError::Model(other.into())),
        };

        let mut specials: Vec<u32> = (0..n as u32)
            .filter(|&i| matches!(types[i as usize], TokenType::Control | TokenType::UserDefined | TokenType::Unknown))
            .filter(|&i| !tokens[i as usize].is_empty())
            .collect();
        specials.sort_by_key(|&i| std::cmp::Reverse(tokens[i as usize].len()));

        Ok(Tokenizer {
            kind,
            add_bos: flag("tokenizer.ggml.add_bos_token", is_spm),
            add_eos: flag("tokenizer.ggml.add_eos_token", false),
            tokens,
            types,
            token_to_id,
            specials,
            bos,
            eos,
            unk,
            model_name,
            pre,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(|s| s.as_str())
    }

    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.token_to_id.get(text).copied()
    }

    pub fn is_control(&self, id: u32) -> bool {
        matches!(self.types.get(id as usize), Some(TokenType::Control))
    }

    /// The texts that [`Tokenizer::encode`] turns into special tokens (control,
    /// user-defined, unknown), longest first.
    pub fn special_texts(&self) -> impl Iterator<Item = &str> {
        self.specials.iter().map(|&id| self.tokens[id as usize].as_str())
    }

    /// Tokenizes like llama.cpp's `llama_tokenize(text, add_special, parse_special)`.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_special && self.add_bos {
            out.extend(self.bos);
        }
        let mut prev_special = true;
        for frag in self.partition(text, parse_special) {
            match frag {
                Fragment::Token(id) => {
                    out.push(id);
                    prev_special = true;
                }
                Fragment::Text(t) => {
                    self.encode_text(t, prev_special, &mut out);
                    prev_special = false;
                }
            }
        }
        if add_special && self.add_eos {
            out.extend(self.eos);
        }
        out
    }

    /// Tokenizes text that continues earlier output: no specials and no
    /// SentencePiece space prefix, so a grammar-forced continuation is split the
    /// way the model itself would write it.
    pub fn encode_continuation(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        self.encode_text(text, false, &mut out);
        out
    }

    fn encode_text(&self, t: &str, prev_special: bool, out: &mut Vec<u32>) {
        match &self.kind {
            Kind::Spm { scores, byte_tokens, add_space_prefix } => {
                let mut s = String::with_capacity(t.len() + 3);
                if *add_space_prefix && prev_special {
                    s.push('\u{2581}');
                }
                for c in t.chars() {
                    s.push(if c == ' ' { '\u{2581}' } else { c });
                }
                spm::Spm { token_to_id: &self.token_to_id, scores, byte_tokens, unk: self.unk }.encode(&s, out);
            }
            Kind::Bpe { tk, .. } => {
                // Infallible for a BPE model without normalizer or post-processor; an
                // error here would mean a vocabulary hole, which maps to `unk`.
                match tk.encode_fast(t, false) {
                    Ok(enc) => out.extend_from_slice(enc.get_ids()),
                    Err(_) => out.push(self.unk),
                }
            }
        }
    }

    /// Splits text around special tokens (llama.cpp `tokenizer_st_partition`).
    fn partition<'t>(&self, text: &'t str, parse_special: bool) -> Vec<Fragment<'t>> {
        let mut frags = if text.is_empty() { vec![] } else { vec![Fragment::Text(text)] };
        for &id in &self.specials {
            let ty = self.types[id as usize];
            if !parse_special && matches!(ty, TokenType::Control | TokenType::Unknown) {
                continue;
            }
            let pat = self.tokens[id as usize].as_str();
            let mut next = Vec::with_capacity(frags.len());
            for f in frags {
                match f {
                    Fragment::Text(mut t) => {
                        while let Some(at) = t.find(pat) {
                            if at > 0 {
                                next.push(Fragment::Text(&t[..at]));
                            }
                            next.push(Fragment::Token(id));
                            t = &t[at + pat.len()..];
                        }
                        if !t.is_empty() {
                            next.push(Fragment::Text(t));
                        }
                    }
                    tok => next.push(tok),
                }
            }
            frags = next;
        }
        frags
    }

    /// The bytes a token stands for in generated text (llama.cpp `token_to_piece`
    /// without specials): control tokens render as nothing.
    pub fn token_bytes(&self, id: u32) -> Vec<u8> {
        let Some(text) = self.tokens.get(id as usize) else { return vec![] };
        match self.types[id as usize] {
            TokenType::Control | TokenType::Unused => vec![],
            TokenType::UserDefined | TokenType::Unknown => text.as_bytes().to_vec(),
            TokenType::Byte if matches!(self.kind, Kind::Spm { .. }) => {
                u8::from_str_radix(text.trim_start_matches("<0x").trim_end_matches('>'), 16).map(|b| vec![b]).unwrap_or_default()
            }
            _ => match &self.kind {
                Kind::Spm { .. } => text.replace('\u{2581}', " ").into_bytes(),
                Kind::Bpe { byte_of_char, .. } => text.chars().filter_map(|c| byte_of_char.get(&c).copied()).collect(),
            },
        }
    }

    /// Decodes ids to text, replacing invalid UTF-8.
    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids.iter().flat_map(|&i| self.token_bytes(i)).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Splits a token stream's bytes into text without ever emitting half a character.
#[derive(Default)]
pub struct StreamDecoder {
    pending: Vec<u8>,
}

impl StreamDecoder {
    /// Adds a token's bytes; returns the text that is now complete.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let good = e.valid_up_to();
                    out.push_str(std::str::from_utf8(&self.pending[..good]).unwrap());
                    match e.error_len() {
                        // Incomplete sequence at the end: wait for the next token.
                        None => {
                            self.pending.drain(..good);
                            return out;
                        }
                        Some(bad) => {
                            out.push('\u{FFFD}');
                            self.pending.drain(..good + bad);
                        }
                    }
                }
            }
        }
    }
    /// Flushes what is left at the end of generation.
    pub fn finish(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        s
    }
}

/// GPT-2's byte-to-unicode table inverted: printable Latin-1 bytes map to themselves,
/// the other 68 bytes to U+0100.. in byte order.
fn byte_level_decoder() -> HashMap<char, u8> {
    let printable = |b: u32| (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
    let mut map = HashMap::with_capacity(256);
    let mut extra = 0u32;
    for b in 0..256u32 {
        let c = if printable(b) {
            b
        } else {
            extra += 1;
            255 + extra
        };
        map.insert(char::from_u32(c).unwrap(), b as u8);
    }
    map
}

/// Byte-level BPE with llama.cpp's pre-tokenizer for `tokenizer.ggml.pre`.
fn build_bpe(vocab: &HashMap<String, u32>, merges: Vec<(String, String)>, pre: &str) -> Result<tokenizers::Tokenizer, TokenizerError> {
    use tokenizers::pre_tokenizers::{byte_level::ByteLevel, digits::Digits, sequence::Sequence, split::{Split, SplitPattern}};
    use tokenizers::{models::bpe::BPE, PreTokenizerWrapper, SplitDelimiterBehavior};
    let bpe = BPE::builder()
        .vocab_and_merges(vocab.iter().map(|(k, v)| (k.clone(), *v)).collect::<tokenizers::models::bpe::Vocab>(), merges)
        .build()
        .map_err(|e| TokenizerError::Bpe(e.to_string()))?;
    let byte_level = ByteLevel::new(false, false, true);
    let split = |re: &str| -> Result<PreTokenizerWrapper, TokenizerError> {
        Ok(Split::new(SplitPattern::Regex(re.into()), SplitDelimiterBehavior::Isolated, false).map_err(|e| TokenizerError::Bpe(e.to_string()))?.into())
    };
    let seq: Vec<PreTokenizerWrapper> = match pre {
        // llama.cpp isolates every digit before the GPT-2 split for these vocabularies.
        "smollm" | "starcoder" | "refact" | "codeshell" | "exaone" | "minerva-7b" => {
            vec![Digits::new(true).into(), byte_level.into()]
        }
        // llama.cpp's LLAMA_VOCAB_PRE_TYPE_LLAMA3 split (tiktoken's cl100k): numbers in
        // runs of up to three digits.
        "llama3" | "llama-bpe" => {
            let re = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
            vec![split(re)?, ByteLevel::new(false, false, false).into()]
        }
        // LLAMA_VOCAB_PRE_TYPE_QWEN2: the same rule with every digit on its own.
        "qwen2" => {
            let re = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
            vec![split(re)?, ByteLevel::new(false, false, false).into()]
        }
        // LLAMA_VOCAB_PRE_TYPE_TEKKEN (Mistral's Tekken: Ministral 3, Mistral Nemo): words
        // split at a case change (a run of capitals then lower case), no contractions, every
        // digit alone. llama.cpp (src/llama-vocab.cpp) writes the capital/lower-case classes
        // out as lookaheads for its own regex engine; they are Unicode's here.
        "tekken" => {
            let re = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}|[^\r\n\p{L}\p{N}]?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
            vec![split(re)?, ByteLevel::new(false, false, false).into()]
        }
        _ => vec![byte_level.into()],
    };
    let mut tk = tokenizers::Tokenizer::new(bpe);
    tk.with_pre_tokenizer(Some(Sequence::new(seq)));
    Ok(tk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_decoder_holds_partial_characters() {
        let mut d = StreamDecoder::default();
        let crab = "🦀".as_bytes();
        assert_eq!(d.push(&crab[..2]), "");
        assert_eq!(d.push(&crab[2..]), "🦀");
        assert_eq!(d.push(b"a\xFFb"), "a\u{FFFD}b");
        assert_eq!(d.push(&"é".as_bytes()[..1]), "");
        assert_eq!(d.finish(), "\u{FFFD}");
    }

    /// The pieces `pre`'s split makes of `text` (byte-level, so a space reads `Ġ`).
    fn pieces(pre: &str, text: &str) -> Vec<String> {
        use tokenizers::{PreTokenizedString, PreTokenizer, OffsetReferential, OffsetType};
        let vocab: HashMap<String, u32> = byte_level_decoder().keys().enumerate().map(|(i, c)| (c.to_string(), i as u32)).collect();
        let tk = build_bpe(&vocab, vec![], pre).unwrap();
        let mut s = PreTokenizedString::from(text);
        tk.get_pre_tokenizer().unwrap().pre_tokenize(&mut s).unwrap();
        s.get_splits(OffsetReferential::Original, OffsetType::Byte).into_iter().map(|(p, _, _)| p.to_string()).collect()
    }

    #[test]
    fn tekken_splits_at_case_changes_and_every_digit() {
        assert_eq!(pieces("tekken", "HelloWorld it's 2024 ÉtéOK"), ["Hello", "World", "Ġit", "'s", "Ġ", "2", "0", "2", "4", "ĠÃītÃ©", "OK"]);
        // The llama3 rule keeps the word whole, the contraction as one piece and digits in threes.
        assert_eq!(pieces("llama-bpe", "HelloWorld it's 2024"), ["HelloWorld", "Ġit", "'s", "Ġ", "202", "4"]);
    }

    #[test]
    fn byte_level_table_is_a_bijection() {
        let m = byte_level_decoder();
        assert_eq!(m.len(), 256);
        assert_eq!(m[&'Ġ'], b' ');
        assert_eq!(m[&'!'], b'!');
        assert_eq!(m[&'Ċ'], b'\n');
    }
}
