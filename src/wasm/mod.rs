//! The wasm-bindgen boundary: the only place Rust errors become JS errors.
//!
//! The browser worker (`www/worker.js`) drives it: a [`WasmLoader`] is fed the
//! GGUF's byte ranges as they arrive (each tensor's bytes are moved, not copied,
//! into the model, so the weights never sit in wasm memory twice), the finished
//! [`WasmEngine`] becomes a [`WasmSummarizer`], and `summarize` reports plan,
//! pass and text events to a JS callback that can stop it by returning `false`.
//!
//! The WebGPU path: [`load_gpu`] (`loadGpu` in JS) creates the device and streams
//! every tensor into GPU buffers through a synchronous JS `read(offset, length)`
//! (the worker's `FileReaderSync` over a `Blob`), so the model is never whole in
//! wasm memory; `summarizeAsync` then returns a Promise, because the GPU's
//! readbacks must be awaited in the browser.

mod threads;

use crate::text::chat::Message;
use crate::model::sampling::SamplerConfig;
use crate::summarize::{Format, Length, Pass, Progress, SummarizeOptions, Summarizer};
use crate::transcript::{parse_transcript, Transcript, TranscriptFormat};
use crate::{Engine, GenerateOptions, Overrides};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
#[cfg(feature = "gpu")]
use wasm_bindgen::JsCast;

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// A plain JS object from key/value pairs (setting a property on a fresh object
/// cannot fail, so errors are ignored).
fn obj(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = js_sys::Object::new();
    for (k, v) in pairs {
        let _ = js_sys::Reflect::set(&o, &JsValue::from_str(k), v);
    }
    o.into()
}

fn num(x: impl Into<f64>) -> JsValue {
    JsValue::from_f64(x.into())
}

#[wasm_bindgen]
pub struct WasmEngine {
    engine: Engine,
}

/// Loads a model from byte ranges the page fetches itself (`File.slice`, HTTP range
/// requests): `header(prefix)` until it returns 0, then `ranges()`, `add()` each,
/// `finish()`.
#[wasm_bindgen]
pub struct WasmLoader {
    inner: Option<crate::engine::Loader>,
}

#[wasm_bindgen]
impl WasmLoader {
    #[wasm_bindgen(constructor)]
    pub fn new(name: &str, size: f64, window: Option<usize>) -> WasmLoader {
        WasmLoader { inner: Some(crate::engine::Loader::new(name, size as u64, Overrides { sliding_window: window, ..Default::default() })) }
    }

    /// 0 when the header is parsed; otherwise how many leading bytes to offer next.
    pub fn header(&mut self, prefix: &[u8]) -> Result<f64, JsError> {
        let l = self.inner.as_mut().ok_or_else(|| JsError::new("loader already finished"))?;
        Ok(l.header(prefix).map_err(js_err)?.unwrap_or(0) as f64)
    }

    /// Flattened `[start, end, start, end, …]` byte ranges to fetch.
    pub fn ranges(&self) -> Vec<f64> {
        self.inner.as_ref().map(|l| l.ranges().iter().flat_map(|r| [r.start as f64, r.end as f64]).collect()).unwrap_or_default()
    }

    pub fn add(&mut self, offset: f64, bytes: Vec<u8>) -> Result<(), JsError> {
        self.inner.as_mut().ok_or_else(|| JsError::new("loader already finished"))?.add(offset as u64, bytes);
        Ok(())
    }

    pub fn finish(&mut self) -> Result<WasmEngine, JsError> {
        let l = self.inner.take().ok_or_else(|| JsError::new("loader already finished"))?;
        Ok(WasmEngine { engine: l.finish().map_err(js_err)? })
    }
}

#[wasm_bindgen]
impl WasmEngine {
    /// Loads a GGUF held in memory (the CPU path). `window` overrides the sliding window.
    #[wasm_bindgen(constructor)]
    pub fn new(bytes: &[u8], name: &str, window: Option<usize>) -> Result<WasmEngine, JsError> {
        let mut src: &[u8] = bytes;
        let engine = Engine::load(&mut src, name, &Overrides { sliding_window: window, ..Default::default() }).map_err(js_err)?;
        Ok(WasmEngine { engine })
    }

    /// Generates a chat reply to `prompt` (`seed`: a JS number, not a BigInt);
    /// `on_text(piece)` receives text as it
    /// completes and may return `false` to stop. Returns `{text, prompt_tokens,
    /// generated_tokens, prefill_s, decode_s, stop}`.
    pub fn chat(&self, prompt: &str, max_tokens: usize, temperature: f32, seed: f64, on_text: &js_sys::Function) -> Result<JsValue, JsError> {
        let ids = self.engine.chat_tokens(&[Message::new("user", prompt)]).map_err(js_err)?;
        let opts = GenerateOptions { max_tokens, sampler: SamplerConfig { temperature, seed: seed as u64, ..Default::default() }, ..Default::default() };
        let g = self
            .engine
            .generate(&ids, &opts, &mut |s| on_text.call1(&JsValue::NULL, &JsValue::from_str(s)).map(|v| v.as_bool() != Some(false)).unwrap_or(false))
            .map_err(js_err)?;
        Ok(obj(&[
            ("text", g.text.into()),
            ("prompt_tokens", num(g.stats.prompt_tokens as f64)),
            ("generated_tokens", num(g.stats.generated_tokens as f64)),
            ("prefill_s", num(g.stats.prefill_s)),
            ("decode_s", num(g.stats.decode_s)),
            ("stop", format!("{:?}", g.stop).into()),
        ]))
    }

    /// Token ids for `text` (specials parsed, BOS per the model's flag).
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        self.engine.tokenizer.encode(text, true, true)
    }
}

/// Options from the page, as JSON: `{format, length, context_tokens, max_shots,
/// temperature, seed, repeat_penalty}`, every field optional.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct JsOptions {
    format: Option<String>,
    length: Option<String>,
    context_tokens: Option<usize>,
    max_shots: Option<usize>,
    temperature: Option<f32>,
    seed: Option<f64>,
    repeat_penalty: Option<f32>,
}

fn options(json: &str) -> Result<SummarizeOptions, JsError> {
    let o: JsOptions = if json.trim().is_empty() { JsOptions::default() } else { serde_json::from_str(json).map_err(|e| JsError::new(&format!("bad summarize options: {e}")))? };
    let mut s = SummarizeOptions::default();
    if let Some(f) = o.format {
        s.format = f.parse::<Format>().map_err(js_err)?;
    }
    if let Some(l) = o.length {
        s.length = l.parse::<Length>().map_err(js_err)?;
    }
    s.context_tokens = o.context_tokens;
    if let Some(n) = o.max_shots {
        s.max_shots = n;
    }
    if let Some(t) = o.temperature {
        s.sampler.temperature = t;
    }
    if let Some(seed) = o.seed {
        s.sampler.seed = seed as u64;
    }
    if let Some(p) = o.repeat_penalty {
        s.repeat_penalty = p;
    }
    Ok(s)
}

fn format_name(f: TranscriptFormat) -> &'static str {
    match f {
        TranscriptFormat::Plain => "plain",
        TranscriptFormat::InlineTimestamps => "timestamped",
        TranscriptFormat::Srt => "srt",
        TranscriptFormat::WebVtt => "vtt",
        TranscriptFormat::YouTube => "youtube",
    }
}

fn transcript_info(t: &Transcript) -> Vec<(&'static str, JsValue)> {
    vec![
        ("format", format_name(t.format).into()),
        ("segments", num(t.segments.len() as f64)),
        ("chars", num(t.text().chars().count() as f64)),
        ("has_timestamps", t.has_timestamps().into()),
        ("duration", t.duration().map_or(JsValue::NULL, JsValue::from_f64)),
    ]
}

/// Reads a transcript (plain text, SRT, WebVTT, YouTube copy, inline stamps) and
/// describes it: `{format, segments, chars, has_timestamps, duration}`. Throws a
/// message naming the problem (empty, too large, not UTF-8, binary).
#[wasm_bindgen(js_name = parseTranscript)]
pub fn parse_transcript_js(bytes: &[u8]) -> Result<JsValue, JsError> {
    let t = parse_transcript(bytes).map_err(js_err)?;
    Ok(obj(&transcript_info(&t)))
}

fn pass_obj(p: Pass) -> JsValue {
    match p {
        Pass::Chunk { round, index, of } => obj(&[("kind", "chunk".into()), ("round", num(round as f64)), ("index", num(index as f64)), ("of", num(of as f64))]),
        Pass::Section { index, of } => obj(&[("kind", "section".into()), ("index", num(index as f64)), ("of", num(of as f64))]),
        Pass::Final => obj(&[("kind", "final".into())]),
    }
}

/// A loaded model ready to summarize; build once, summarize many times.
#[wasm_bindgen]
pub struct WasmSummarizer {
    /// Shared with a running `summarizeAsync` (its future must own what it uses).
    inner: Rc<Summarizer>,
}

#[wasm_bindgen]
impl WasmSummarizer {
    /// Takes over the engine (the JS `WasmEngine` is consumed).
    #[wasm_bindgen(constructor)]
    pub fn new(engine: WasmEngine) -> Result<WasmSummarizer, JsError> {
        Ok(WasmSummarizer { inner: Rc::new(Summarizer::new(engine.engine).map_err(js_err)?) })
    }

    /// `{file, arch, n_layer, n_embd, n_vocab, n_ctx_train, sliding_window}`.
    pub fn info(&self) -> JsValue {
        let e = &self.inner.engine;
        let hp = &e.hp;
        obj(&[
            ("file", e.file.clone().into()),
            ("arch", hp.arch.clone().into()),
            ("quant", e.quant_mix.short().into()),
            ("n_layer", num(hp.n_layer as f64)),
            ("n_embd", num(hp.n_embd as f64)),
            ("n_vocab", num(hp.n_vocab as f64)),
            ("n_ctx_train", num(hp.n_ctx_train as f64)),
            ("sliding_window", hp.sliding_window.map_or(JsValue::NULL, |w| num(w as f64))),
        ])
    }

    /// Tokens in `text` as the model sees it (no specials, no BOS).
    #[wasm_bindgen(js_name = countTokens)]
    pub fn count_tokens(&self, text: &str) -> f64 {
        self.inner.engine.tokenizer.encode(text, false, false).len() as f64
    }

    /// The transcript described (as `parseTranscript`) plus the model's view of it:
    /// `{tokens, prompt_tokens, answer_tokens, context, one_pass, passes}`; `one_pass`
    /// false means map-reduce, in `passes` model passes (the plan's count).
    pub fn plan(&self, bytes: &[u8], options_json: &str) -> Result<JsValue, JsError> {
        let t = parse_transcript(bytes).map_err(js_err)?;
        let p = self.inner.plan(&t, &options(options_json)?);
        let mut pairs = transcript_info(&t);
        pairs.extend([
            ("tokens", num(p.transcript_tokens as f64)),
            ("prompt_tokens", num(p.prompt_tokens as f64)),
            ("answer_tokens", num(p.answer_tokens as f64)),
            ("context", num(p.context as f64)),
            ("one_pass", p.one_pass.into()),
            ("passes", num(p.passes as f64)),
        ]);
        Ok(obj(&pairs))
    }

    /// Summarizes the transcript in `bytes` with the options (JSON, see
    /// `JsOptions`). `on_event(e)` gets `{type: "plan", chunks, passes, prompt_tokens,
    /// context}`, `{type: "start", pass}`, `{type: "prefill", pass, done, total,
    /// cached, seconds}` (before the first chunk of a pass's prompt and after each),
    /// `{type: "busy"}` (between layers of a CPU chunk: only its answer matters),
    /// `{type: "text", pass, piece}` and
    /// `{type: "finish", pass, tokens, seconds}`; returning `false` stops the
    /// work with the error "summarizing was stopped". Returns `{format, text,
    /// map_notes, stats: {passes, chunks, shots, prompt_tokens,
    /// cached_tokens, generated_tokens, prefill_s, decode_s}, quotes: {kept, repaired, dropped}}`.
    pub fn summarize(&self, bytes: &[u8], options_json: &str, on_event: &js_sys::Function) -> Result<JsValue, JsError> {
        let t = parse_transcript(bytes).map_err(js_err)?;
        let opts = options(options_json)?;
        let mut events = Events { on_event: on_event.clone(), thrown: None };
        let result = self.inner.summarize_until(&t, &opts, &mut |p| events.progress(p));
        events.finish(result)
    }

    /// As `summarize`, as a Promise: the way to run a WebGPU engine (its readbacks
    /// are awaited; a CPU engine works too). Same events, same result; the
    /// transcript and options are checked before the Promise is made, so those
    /// errors throw at once.
    #[wasm_bindgen(js_name = summarizeAsync)]
    pub fn summarize_async(&self, bytes: &[u8], options_json: &str, on_event: &js_sys::Function) -> Result<js_sys::Promise, JsError> {
        let t = parse_transcript(bytes).map_err(js_err)?;
        let opts = options(options_json)?;
        let inner = self.inner.clone();
        let mut events = Events { on_event: on_event.clone(), thrown: None };
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            let result = inner.summarize_async(&t, &opts, &mut |p| events.progress(p)).await;
            events.finish(result).map_err(JsValue::from)
        }))
    }

    /// Speed measurement for `make bench` (bench/browser.mjs): the first
    /// `prompt_tokens` tokens of `text` (raw, as `precis generate --raw`) prefilled,
    /// then `gen_tokens` greedy tokens with end-of-generation ignored — the same
    /// measurement as the native bench, so the rows compare. A Promise on either
    /// backend. Resolves to `{prompt_tokens, generated_tokens, prefill_s, decode_s,
    /// prefill_tok_s, decode_tok_s, prompt_ids, prompt_text}` (decode over the tokens after the first, which
    /// prefill yields).
    #[wasm_bindgen(js_name = benchAsync)]
    pub fn bench_async(&self, text: &str, prompt_tokens: usize, gen_tokens: usize) -> Result<js_sys::Promise, JsError> {
        if prompt_tokens == 0 || gen_tokens < 2 {
            return Err(JsError::new(&format!("bench needs at least 1 prompt token and 2 generated tokens (got {prompt_tokens} and {gen_tokens})")));
        }
        let mut ids = self.inner.engine.tokenizer.encode(text, true, true);
        if ids.len() < prompt_tokens {
            return Err(JsError::new(&format!("the bench prompt has {} tokens, fewer than the {prompt_tokens} asked for", ids.len())));
        }
        ids.truncate(prompt_tokens);
        let inner = self.inner.clone();
        // The ids go back with the result so that the other engine in the bench
        // (llama.cpp's wasm build) can be given the same prompt.
        let prompt_ids = js_sys::Uint32Array::from(ids.as_slice());
        // Its text too, for an engine whose API takes only text (wllama).
        let prompt_text = self.inner.engine.tokenizer.decode(&ids);
        let opts = GenerateOptions { max_tokens: gen_tokens, ignore_eos: true, n_ctx: prompt_tokens + gen_tokens + 1, ..Default::default() };
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            let g = inner.engine.generate_async(&ids, &opts, None, &mut |_| true).await.map_err(|e| JsValue::from(js_err(e)))?;
            let s = &g.stats;
            Ok(obj(&[
                ("prompt_tokens", num(s.prompt_tokens as f64)),
                ("generated_tokens", num(s.generated_tokens as f64)),
                ("prefill_s", num(s.prefill_s)),
                ("decode_s", num(s.decode_s)),
                ("prefill_tok_s", num(s.prefill_tps())),
                ("decode_tok_s", num(s.decode_tps())),
                ("prompt_ids", prompt_ids.into()),
                ("prompt_text", prompt_text.into()),
            ]))
        }))
    }

    /// The kept prompt prefix's KV state as bytes under `key` (the model's
    /// identity), for the page to store across reloads; throws when none is kept
    /// or the engine runs on the GPU (see `engine::prefix_file`).
    #[wasm_bindgen(js_name = savePrefix)]
    pub fn save_prefix(&self, key: &str) -> Result<js_sys::Uint8Array, JsError> {
        let bytes = self.inner.engine.save_prefix(key).map_err(js_err)?;
        Ok(js_sys::Uint8Array::from(bytes.as_slice()))
    }

    /// Makes a prefix saved by `savePrefix` under the same `key` the kept one;
    /// returns its length in tokens. Throws, keeping nothing, on a file of
    /// another model, key or version, or a damaged one (the field is named).
    #[wasm_bindgen(js_name = loadPrefix)]
    pub fn load_prefix(&self, bytes: &[u8], key: &str) -> Result<f64, JsError> {
        Ok(self.inner.engine.load_prefix(bytes, key).map_err(js_err)? as f64)
    }

    /// Tokens of the kept prompt prefix (0: none).
    #[wasm_bindgen(js_name = keptPrefix)]
    pub fn kept_prefix(&self) -> f64 {
        self.inner.engine.prefixes.kept().0 as f64
    }

    /// "cpu" or "webgpu": where this engine's weights live.
    pub fn backend(&self) -> String {
        match self.inner.engine.backend_name() {
            "gpu" => "webgpu".into(),
            other => other.into(),
        }
    }

    /// `{adapter, f16, subgroups, weight_bytes}` for a WebGPU engine, else null.
    pub fn gpu(&self) -> JsValue {
        #[cfg(not(feature = "gpu"))]
        return JsValue::NULL;
        #[cfg(feature = "gpu")]
        match self.inner.engine.gpu() {
            Some(g) => obj(&[
                ("adapter", g.ctx.adapter_name.clone().into()),
                ("f16", g.ctx.has_f16.into()),
                ("subgroups", g.ctx.has_subgroups.into()),
                ("weight_bytes", num(g.weight_bytes as f64)),
            ]),
            None => JsValue::NULL,
        }
    }

    /// Destroys the GPU device, as a driver reset or a lost GPU would (the tests
    /// use it to exercise the CPU fallback mid-run). False for a CPU engine.
    #[wasm_bindgen(js_name = loseDevice)]
    pub fn lose_device(&self) -> bool {
        #[cfg(not(feature = "gpu"))]
        return false;
        #[cfg(feature = "gpu")]
        match self.inner.engine.gpu() {
            Some(g) => {
                g.ctx.device.destroy();
                true
            }
            None => false,
        }
    }
}

/// The page's `on_event` callback as the pipeline's progress function.
struct Events {
    on_event: js_sys::Function,
    /// A throwing callback stops the work too; its exception is reported instead.
    thrown: Option<JsValue>,
}

impl Events {
    fn emit(&mut self, e: JsValue) -> bool {
        match self.on_event.call1(&JsValue::NULL, &e) {
            Ok(v) => v.as_bool() != Some(false),
            Err(x) => {
                self.thrown = Some(x);
                false
            }
        }
    }

    fn progress(&mut self, p: &Progress) -> bool {
        match p {
            Progress::Plan { chunks, passes, prompt_tokens, context } => self.emit(obj(&[
                ("type", "plan".into()),
                ("chunks", num(*chunks as f64)),
                ("passes", num(*passes as f64)),
                ("prompt_tokens", num(*prompt_tokens as f64)),
                ("context", num(*context as f64)),
            ])),
            Progress::Started { pass } => self.emit(obj(&[("type", "start".into()), ("pass", pass_obj(*pass))])),
            Progress::Prefill { pass, done, total, cached, seconds } => self.emit(obj(&[
                ("type", "prefill".into()),
                ("pass", pass_obj(*pass)),
                ("done", num(*done as f64)),
                ("total", num(*total as f64)),
                ("cached", num(*cached as f64)),
                ("seconds", num(*seconds)),
            ])),
            // Not for the page: the worker answers it from the Stop flag alone.
            Progress::Busy => self.emit(obj(&[("type", "busy".into())])),
            Progress::Text { pass, piece } => self.emit(obj(&[("type", "text".into()), ("pass", pass_obj(*pass)), ("piece", piece.as_str().into())])),
            Progress::Finished { pass, tokens, seconds } => {
                self.emit(obj(&[("type", "finish".into()), ("pass", pass_obj(*pass)), ("tokens", num(*tokens as f64)), ("seconds", num(*seconds))]))
            }
        }
    }

    fn finish(self, result: Result<crate::summarize::Summary, crate::summarize::SummarizeError>) -> Result<JsValue, JsError> {
        if let Some(x) = self.thrown {
            return Err(JsError::new(&format!("progress callback failed: {}", js_message(&x, "the progress callback threw"))));
        }
        let s = result.map_err(js_err)?;
        let st = &s.stats;
        Ok(obj(&[
            ("format", s.format.name().into()),
            ("text", s.text.into()),
            ("map_notes", s.map_notes.map_or(JsValue::NULL, JsValue::from)),
            (
                "stats",
                obj(&[
                    ("passes", num(st.passes as f64)),
                    ("chunks", num(st.chunks as f64)),
                    ("shots", num(st.shots as f64)),
                    ("prompt_tokens", num(st.prompt_tokens as f64)),
                    ("cached_tokens", num(st.cached_tokens as f64)),
                    ("generated_tokens", num(st.generated_tokens as f64)),
                    ("prefill_s", num(st.prefill_s)),
                    ("decode_s", num(st.decode_s)),
                ]),
            ),
            ("quotes", obj(&[("kept", num(s.quotes.kept as f64)), ("repaired", num(s.quotes.repaired as f64)), ("dropped", num(s.quotes.dropped as f64))])),
        ]))
    }
}

/// A thrown JS value's message (a string, or an Error's `message`).
fn js_message(x: &JsValue, fallback: &str) -> String {
    x.as_string().or_else(|| js_sys::Reflect::get(x, &"message".into()).ok().and_then(|m| m.as_string())).unwrap_or_else(|| fallback.into())
}

/// The model file as a synchronous JS function `read(offset, length) ->
/// Uint8Array` (in a worker: `FileReaderSync` over `blob.slice`), so the GPU
/// loader pulls one upload slice at a time and the file is never whole in wasm memory.
#[cfg(feature = "gpu")]
struct JsBytes {
    read: js_sys::Function,
    size: u64,
}

#[cfg(feature = "gpu")]
impl crate::format::source::ByteSource for JsBytes {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_range(&mut self, r: std::ops::Range<u64>) -> std::io::Result<Vec<u8>> {
        let want = r.end.saturating_sub(r.start);
        if r.end > self.size {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, format!("the file is truncated: {} bytes, but its header describes data up to byte {}", self.size, r.end)));
        }
        let v = self.read.call2(&JsValue::NULL, &num(r.start as f64), &num(want as f64)).map_err(|e| std::io::Error::other(format!("reading bytes {}..{} failed: {}", r.start, r.end, js_message(&e, "read() threw"))))?;
        let a: js_sys::Uint8Array = v.dyn_into().map_err(|_| std::io::Error::other("read(offset, length) must return a Uint8Array"))?;
        if a.length() as u64 != want {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, format!("reading bytes {}..{} gave {} bytes: the file is truncated", r.start, r.end, a.length())));
        }
        Ok(a.to_vec())
    }
}

/// Loads a GGUF onto WebGPU: requests the adapter and device, then streams every
/// tensor through `read(offset, length)` (synchronous, returning a Uint8Array)
/// into GPU buffers. `size` is the file's length; `window` overrides the sliding
/// window. Rejects with a message naming the problem (no adapter, a missing
/// limit, out of GPU memory, not a GGUF, truncated).
#[cfg(feature = "gpu")]
#[wasm_bindgen(js_name = loadGpu)]
pub async fn load_gpu(name: String, size: f64, read: js_sys::Function, window: Option<usize>) -> Result<WasmEngine, JsError> {
    let ctx = crate::gpu::GpuContext::new(&crate::gpu::Requirements::default()).await.map_err(|e| JsError::new(&format!("WebGPU is not usable: {e}")))?;
    let mut src = JsBytes { read, size: size as u64 };
    let engine = Engine::load_gpu(ctx, &mut src, &name, &Overrides { sliding_window: window, ..Default::default() }).await.map_err(js_err)?;
    Ok(WasmEngine { engine })
}
