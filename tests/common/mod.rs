//! Test helpers: a minimal GGUF writer for hand-made corrupt files, fixture paths, and
//! what is wrong with the quotes of notes ([`quote_problems`]).
#![allow(dead_code)]

pub fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub fn shared(path: &str) -> String {
    format!("{}/../shared/{path}", env!("CARGO_MANIFEST_DIR"))
}

pub fn default_model() -> String {
    format!("{}/models/SmolLM2-135M-Instruct.Q4_1.gguf", env!("CARGO_MANIFEST_DIR"))
}

/// Double quotation marks, straight and typographic.
pub const DOUBLE_QUOTES: &[char] = &['"', '\u{201C}', '\u{201D}', '\u{201E}', '\u{201F}', '\u{00AB}', '\u{00BB}'];

/// Lowercase words of letters and digits, everything else a separator: the
/// loosest reading of "in the transcript" (the check itself is stricter).
pub fn loose(s: &str) -> String {
    let spaced: String = s.chars().flat_map(char::to_lowercase).map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect();
    format!(" {} ", spaced.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// What is wrong with the quotes of `notes` against the transcript text `full`:
/// a quote line must be exactly `N. "…"` (numbered from 1 in its block), its
/// text found by `find_verbatim` and, independently, as words in `loose(full)`;
/// no other line may hold a double quotation mark. Returns the problems and the
/// number of quotes.
pub fn quote_problems(notes: &str, full: &str) -> (Vec<String>, usize) {
    let loose_full = loose(full);
    let mut problems = vec![];
    let mut quotes = 0;
    let mut block: Option<usize> = None;
    for line in notes.lines() {
        if line == "Quotes:" {
            block = Some(0);
            continue;
        }
        if line.is_empty() || line.starts_with("### ") {
            block = None;
        }
        let Some(n) = block.as_mut() else {
            if line.contains(DOUBLE_QUOTES) {
                problems.push(format!("a double quotation mark outside the quotes: {line:?}"));
            }
            continue;
        };
        *n += 1;
        quotes += 1;
        let q = line.strip_prefix(&format!("{n}. \"")).and_then(|r| r.strip_suffix('"')).filter(|q| !q.is_empty() && !q.contains(DOUBLE_QUOTES));
        let Some(q) = q else {
            problems.push(format!("not a quote line `{n}. \"…\"`: {line:?}"));
            continue;
        };
        if precis::transcript::find_verbatim(full, q).is_none() {
            problems.push(format!("quote is not verbatim in the transcript: {q:?}"));
        }
        if !loose_full.contains(&loose(q)) {
            problems.push(format!("quote's words are not in the transcript: {q:?}"));
        }
    }
    (problems, quotes)
}

pub enum Kv {
    U32(u32),
    U64(u64),
    /// An array of `n` bytes (GGUF type u8).
    U8Arr(usize),
    /// Arrays nested `depth` deep around one u32.
    Nested(usize),
    F32(f32),
    Str(String),
    StrArr(Vec<String>),
    F32Arr(Vec<f32>),
    I32Arr(Vec<i32>),
}

/// Writes GGUF v3 bytes: metadata, tensor infos (name, dims, ggml type) and zeroed data.
pub struct GgufWriter {
    pub kv: Vec<(String, Kv)>,
    pub tensors: Vec<(String, Vec<u64>, u32, u64)>, // name, dims, type, byte size
}

impl GgufWriter {
    pub fn new() -> Self {
        GgufWriter { kv: vec![], tensors: vec![] }
    }
    pub fn kv(mut self, k: &str, v: Kv) -> Self {
        self.kv.push((k.into(), v));
        self
    }
    pub fn tensor(mut self, name: &str, dims: &[u64], ty: u32, bytes: u64) -> Self {
        self.tensors.push((name.into(), dims.to_vec(), ty, bytes));
        self
    }
    pub fn bytes(&self) -> Vec<u8> {
        let (mut b, data) = self.header();
        b.resize(b.len() + data as usize, 0);
        b
    }

    /// The header (metadata, tensor infos, padding) and the length of the data that
    /// follows it, for files too large to build in memory (written sparse).
    pub fn header(&self) -> (Vec<u8>, u64) {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend((self.tensors.len() as u64).to_le_bytes());
        b.extend((self.kv.len() as u64).to_le_bytes());
        let s = |b: &mut Vec<u8>, s: &str| {
            b.extend((s.len() as u64).to_le_bytes());
            b.extend(s.as_bytes());
        };
        for (k, v) in &self.kv {
            s(&mut b, k);
            match v {
                Kv::U32(x) => {
                    b.extend(4u32.to_le_bytes());
                    b.extend(x.to_le_bytes());
                }
                Kv::U64(x) => {
                    b.extend(10u32.to_le_bytes());
                    b.extend(x.to_le_bytes());
                }
                Kv::U8Arr(n) => {
                    b.extend(9u32.to_le_bytes());
                    b.extend(0u32.to_le_bytes());
                    b.extend((*n as u64).to_le_bytes());
                    b.resize(b.len() + n, 7);
                }
                Kv::Nested(depth) => {
                    b.extend(9u32.to_le_bytes());
                    for _ in 1..*depth {
                        b.extend(9u32.to_le_bytes());
                        b.extend(1u64.to_le_bytes());
                    }
                    b.extend(4u32.to_le_bytes());
                    b.extend(1u64.to_le_bytes());
                    b.extend(5u32.to_le_bytes());
                }
                Kv::F32(x) => {
                    b.extend(6u32.to_le_bytes());
                    b.extend(x.to_le_bytes());
                }
                Kv::Str(x) => {
                    b.extend(8u32.to_le_bytes());
                    s(&mut b, x);
                }
                Kv::F32Arr(xs) => {
                    b.extend(9u32.to_le_bytes());
                    b.extend(6u32.to_le_bytes());
                    b.extend((xs.len() as u64).to_le_bytes());
                    xs.iter().for_each(|x| b.extend(x.to_le_bytes()));
                }
                Kv::I32Arr(xs) => {
                    b.extend(9u32.to_le_bytes());
                    b.extend(5u32.to_le_bytes());
                    b.extend((xs.len() as u64).to_le_bytes());
                    xs.iter().for_each(|x| b.extend(x.to_le_bytes()));
                }
                Kv::StrArr(xs) => {
                    b.extend(9u32.to_le_bytes());
                    b.extend(8u32.to_le_bytes());
                    b.extend((xs.len() as u64).to_le_bytes());
                    for x in xs {
                        s(&mut b, x);
                    }
                }
            }
        }
        let mut off = 0u64;
        for (name, dims, ty, size) in &self.tensors {
            s(&mut b, name);
            b.extend((dims.len() as u32).to_le_bytes());
            for d in dims {
                b.extend(d.to_le_bytes());
            }
            b.extend(ty.to_le_bytes());
            b.extend(off.to_le_bytes());
            off += size.div_ceil(32) * 32;
        }
        while b.len() % 32 != 0 {
            b.push(0);
        }
        (b, off)
    }
}
