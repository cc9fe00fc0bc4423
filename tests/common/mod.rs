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

/// Qwen2.5-Coder-0.5B-Instruct Q4_K_M (qwen2), fetched on demand by
/// `models/fetch-parts.sh qwen2.5-coder-0.5b-instruct-q4_k_m` (`make model-qwen2`);
/// `None`, with a line saying how to get it, where it is absent.
pub fn qwen2_model() -> Option<String> {
    let p = format!("{}/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", env!("CARGO_MANIFEST_DIR"));
    if std::path::Path::new(&p).exists() {
        Some(p)
    } else {
        eprintln!("SKIPPED: {p} is absent; `make model-qwen2` fetches it (491 MB, sha256-checked)");
        None
    }
}

/// Gemma 3 270M (base) Q4_K_M, where `make model-gemma3` has fetched it; `None` (saying
/// SKIPPED) otherwise: CI does not fetch it.
pub fn gemma3_model() -> Option<String> {
    let p = format!("{}/models/gemma-3-270m-q4_k_m.gguf", env!("CARGO_MANIFEST_DIR"));
    if std::path::Path::new(&p).exists() {
        Some(p)
    } else {
        eprintln!("SKIPPED: {p} is absent; `make model-gemma3` fetches it (253 MB, sha256-checked)");
        None
    }
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

/// Records every logit row a generation samples from (a [`LogitsProcessor`] that
/// restricts nothing), so two runs can be compared bit for bit.
#[derive(Default)]
pub struct Recorder(pub Vec<Vec<f32>>);

impl precis::engine::LogitsProcessor for Recorder {
    fn process(&mut self, logits: &mut [f32]) -> bool {
        self.0.push(logits.to_vec());
        true
    }
    fn accept(&mut self, _token: u32) -> Vec<u32> {
        vec![]
    }
}

/// What one generation reported: its result, the logits it sampled from and the
/// prefill events' (done, total, cached), with the index of the first text event.
pub struct Run {
    pub gen: precis::Generation,
    pub logits: Vec<Vec<f32>>,
    pub prefill: Vec<(usize, usize, usize)>,
    pub first_text_after: Option<usize>,
}

pub fn run_events(e: &precis::Engine, prompt: &[u32], opts: &precis::GenerateOptions) -> Run {
    use precis::engine::Event;
    let mut rec = Recorder::default();
    let mut prefill = vec![];
    let mut first_text_after = None;
    let gen = precis::gpu::block_on(e.generate_async(prompt, opts, Some(&mut rec), &mut |ev| {
        match ev {
            Event::Prefill { done, total, cached } => prefill.push((done, total, cached)),
            Event::Text(_) => {
                first_text_after.get_or_insert(prefill.len());
            }
            Event::Busy => {}
        }
        true
    }))
    .expect("generates");
    Run { gen, logits: rec.0, prefill, first_text_after }
}

/// Seeded token ids below `vocab`.
pub fn seeded_tokens(n: usize, vocab: usize, seed: u64) -> Vec<u32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 33) % vocab as u64) as u32
        })
        .collect()
}

/// Two seeded prompts that open with the same `keep` tokens (B `tail + 3` tokens
/// past them, A `tail`), and options that keep that prefix.
fn prefix_prompts(vocab: usize, keep: usize, tail: usize, chunk: usize) -> (Vec<u32>, Vec<u32>, precis::GenerateOptions) {
    let prefix = seeded_tokens(keep, vocab, 1);
    let a: Vec<u32> = prefix.iter().copied().chain(seeded_tokens(tail, vocab, 2)).collect();
    let b: Vec<u32> = prefix.iter().copied().chain(seeded_tokens(tail + 3, vocab, 3)).collect();
    (a, b, precis::GenerateOptions { max_tokens: 12, chunk, keep_prefix: keep, ignore_eos: true, n_ctx: 64, ..Default::default() })
}

/// The prefix cache changes nothing but the work: a prompt B that opens with the
/// `keep` tokens a prompt A kept gives, after A, the same logits bit for bit as B on
/// a fresh engine, reports those tokens as cached, and its prefill events go up to
/// the total before the first text. `fresh` loads the engine anew each call.
pub fn check_prefix_reuse(what: &str, fresh: &dyn Fn() -> precis::Engine, keep: usize, tail: usize, chunk: usize) {
    let e = fresh();
    let vocab = e.hp.n_vocab;
    let (a, b, opts) = prefix_prompts(vocab, keep, tail, chunk);
    let cold = run_events(&fresh(), &b, &opts);
    assert_eq!(cold.gen.stats.cached_tokens, 0, "{what}: a fresh engine has nothing cached");
    let first = run_events(&e, &a, &opts);
    assert_eq!(first.gen.stats.cached_tokens, 0, "{what}: the first prompt computes its prefix");
    assert_eq!(e.prefixes.kept().0, keep, "{what}: the first prompt's {keep}-token prefix is kept");
    let warm = run_events(&e, &b, &opts);
    assert_eq!(warm.gen.stats.cached_tokens, keep, "{what}: the second prompt starts from the kept prefix");
    assert_same_run(what, &warm, &cold);
    for (r, label) in [(&cold, "cold"), (&warm, "warm")] {
        let dones: Vec<usize> = r.prefill.iter().map(|p| p.0).collect();
        assert!(dones.windows(2).all(|w| w[0] < w[1]), "{what} ({label}): prefill progress goes up: {dones:?}");
        assert_eq!(r.prefill.first().map(|p| p.0), Some(r.gen.stats.cached_tokens), "{what} ({label}): first event at the cached tokens");
        assert_eq!(r.prefill.last(), Some(&(b.len(), b.len(), r.gen.stats.cached_tokens)), "{what} ({label}): last event at the total");
        assert_eq!(r.first_text_after, Some(r.prefill.len()), "{what} ({label}): text only after the whole prompt is read");
    }
    // Other prefixes are kept beside it (a summary's passes open differently), and
    // each is found again by its exact tokens.
    let other: Vec<u32> = seeded_tokens(keep + tail, vocab, 9);
    run_events(&e, &other, &precis::GenerateOptions { keep_prefix: keep / 2, ..opts.clone() });
    assert_eq!(e.prefixes.kept().0, keep, "{what}: the longest kept prefix is still the first");
    assert_eq!(run_events(&e, &other, &opts).gen.stats.cached_tokens, 0, "{what}: another prefix is computed");
    assert_eq!(run_events(&e, &other, &precis::GenerateOptions { keep_prefix: keep / 2, ..opts.clone() }).gen.stats.cached_tokens, keep / 2, "{what}: the shorter one was kept too");
    assert_eq!(run_events(&e, &b, &opts).gen.stats.cached_tokens, keep, "{what}: ...and the first one still is");
}

/// `warm` (from a kept prefix) gave the same logits bit for bit and the same tokens as `cold`.
fn assert_same_run(what: &str, warm: &Run, cold: &Run) {
    assert_eq!(warm.logits.len(), cold.logits.len(), "{what}: steps");
    for (step, (w, c)) in warm.logits.iter().zip(&cold.logits).enumerate() {
        if let Some(i) = (0..w.len()).find(|&i| w[i].to_bits() != c[i].to_bits()) {
            panic!("{what}: step {step}: logit {i} is {} from the kept prefix, {} cold", w[i], c[i]);
        }
    }
    assert_eq!(warm.gen.tokens, cold.gen.tokens, "{what}: tokens");
}

/// A prefix saved as bytes ([`precis::Engine::save_prefix`]) and loaded into a
/// fresh engine (the web app's store across reloads) serves a prompt that opens
/// with it as if it had been computed there: same logits bit for bit as a cold
/// run, its tokens reported as cached. Returns the saved bytes.
pub fn check_saved_prefix(what: &str, fresh: &dyn Fn() -> precis::Engine, keep: usize, tail: usize, chunk: usize) -> Vec<u8> {
    let e = fresh();
    let vocab = e.hp.n_vocab;
    let (a, b, opts) = prefix_prompts(vocab, keep, tail, chunk);
    assert!(e.save_prefix("k").is_err(), "{what}: nothing to save before a run");
    run_events(&e, &a, &opts);
    let bytes = e.save_prefix("model sha256 + prompt").unwrap_or_else(|err| panic!("{what}: {err}"));
    let loaded = fresh();
    assert_eq!(loaded.load_prefix(&bytes, "model sha256 + prompt"), Ok(keep), "{what}: the saved prefix's length");
    assert_eq!(loaded.prefixes.kept().0, keep, "{what}: the loaded prefix is kept");
    let warm = run_events(&loaded, &b, &opts);
    assert_eq!(warm.gen.stats.cached_tokens, keep, "{what}: the prompt starts from the loaded prefix");
    assert_same_run(what, &warm, &run_events(&fresh(), &b, &opts));
    bytes
}

/// A Stop during the prefill (the callback's `false` at the `at`-th event of
/// `kind`) ends the generation at once with nothing generated, and leaves the engine
/// as it was: the next run equals a cold one.
pub fn check_stop_in_prefill(what: &str, e: &precis::Engine, busy: bool) {
    use precis::engine::Event;
    let vocab = e.hp.n_vocab;
    let prompt = seeded_tokens(40, vocab, 4);
    let opts = precis::GenerateOptions { max_tokens: 8, chunk: 8, keep_prefix: 20, ignore_eos: true, n_ctx: 64, ..Default::default() };
    let mut seen = 0;
    let g = precis::gpu::block_on(e.generate_async(&prompt, &opts, None, &mut |ev| {
        let hit = match ev {
            Event::Busy => busy,
            Event::Prefill { .. } => !busy,
            Event::Text(_) => panic!("{what}: text after a Stop in the prefill"),
        };
        seen += hit as usize;
        !(hit && seen == 2)
    }))
    .expect("a Stop is not an error");
    assert_eq!(g.stop, precis::StopReason::Aborted, "{what}");
    assert!(g.tokens.is_empty(), "{what}: nothing generated");
    assert_eq!(seen, 2, "{what}: stopped at the second event");
}
