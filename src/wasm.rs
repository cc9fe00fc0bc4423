//! The wasm-bindgen boundary: the only place Rust errors become JS errors.

use crate::chat::Message;
use crate::sampling::SamplerConfig;
use crate::{Engine, GenerateOptions, Overrides};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
pub struct WasmEngine {
    engine: Engine,
}

/// Loads a model from byte ranges the page fetches itself (`File.slice`, HTTP range
/// requests): `header(prefix)` until it returns 0, then `ranges()`, `add()` each,
/// `finish()`.
#[wasm_bindgen]
pub struct WasmLoader {
    inner: Option<crate::generate::Loader>,
}

#[wasm_bindgen]
impl WasmLoader {
    #[wasm_bindgen(constructor)]
    pub fn new(name: &str, size: f64, window: Option<usize>) -> WasmLoader {
        WasmLoader { inner: Some(crate::generate::Loader::new(name, size as u64, Overrides { sliding_window: window })) }
    }

    /// 0 when the header is parsed; otherwise how many leading bytes to offer next.
    pub fn header(&mut self, prefix: &[u8]) -> Result<f64, JsError> {
        let l = self.inner.as_mut().ok_or_else(|| JsError::new("loader already finished"))?;
        Ok(l.header(prefix).map_err(|e| JsError::new(&e.to_string()))?.unwrap_or(0) as f64)
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
        Ok(WasmEngine { engine: l.finish().map_err(|e| JsError::new(&e.to_string()))? })
    }
}

#[wasm_bindgen]
impl WasmEngine {
    /// Loads a GGUF held in memory (the CPU path). `window` overrides the sliding window.
    #[wasm_bindgen(constructor)]
    pub fn new(bytes: &[u8], name: &str, window: Option<usize>) -> Result<WasmEngine, JsError> {
        let mut src: &[u8] = bytes;
        let engine = Engine::load(&mut src, name, &Overrides { sliding_window: window }).map_err(|e| JsError::new(&e.to_string()))?;
        Ok(WasmEngine { engine })
    }

    /// Generates a chat reply to `prompt` (`seed`: a JS number, not a BigInt);
    /// `on_text(piece)` receives text as it
    /// completes and may return `false` to stop. Returns `{text, prompt_tokens,
    /// generated_tokens, prefill_s, decode_s, stop}`.
    pub fn chat(&self, prompt: &str, max_tokens: usize, temperature: f32, seed: f64, on_text: &js_sys::Function) -> Result<JsValue, JsError> {
        let ids = self.engine.chat_tokens(&[Message::new("user", prompt)]).map_err(|e| JsError::new(&e.to_string()))?;
        let opts = GenerateOptions { max_tokens, sampler: SamplerConfig { temperature, seed: seed as u64, ..Default::default() }, ..Default::default() };
        let g = self
            .engine
            .generate(&ids, &opts, &mut |s| on_text.call1(&JsValue::NULL, &JsValue::from_str(s)).map(|v| v.as_bool() != Some(false)).unwrap_or(false))
            .map_err(|e| JsError::new(&e.to_string()))?;
        let o = js_sys::Object::new();
        let set = |k: &str, v: JsValue| js_sys::Reflect::set(&o, &JsValue::from_str(k), &v).map(|_| ());
        set("text", g.text.into()).and(set("prompt_tokens", (g.stats.prompt_tokens as f64).into()))
            .and(set("generated_tokens", (g.stats.generated_tokens as f64).into()))
            .and(set("prefill_s", g.stats.prefill_s.into()))
            .and(set("decode_s", g.stats.decode_s.into()))
            .and(set("stop", format!("{:?}", g.stop).into()))
            .map_err(|_| JsError::new("cannot build the result object"))?;
        Ok(o.into())
    }

    /// Token ids for `text` (specials parsed, BOS per the model's flag).
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        self.engine.tokenizer.encode(text, true, true)
    }
}
