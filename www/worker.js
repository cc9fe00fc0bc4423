// The Web Worker that owns the wasm engine: the page never runs the model itself,
// so a long summary never blocks scrolling, typing or the Stop button.
//
// Protocol (page → worker): {id, type: "load"|"plan"|"summarize"|"parse", ...};
// worker → page: {id, type: "progress"|"event"|"done"|"error", ...}.
import init, { WasmLoader, WasmSummarizer, parseTranscript, loadGpu } from "./pkg/precis.js";

const MODEL_CACHE = "precis-models-v1";
// Chunk size for reads from a File/Blob: big enough to be quick, small enough that
// the page's JS heap never holds more than one tensor plus one chunk.
const CHUNK = 8 << 20;

let wasm = null;
let summarizer = null;
let modelInfo = null;
// The backend actually running: "webgpu" when navigator.gpu gives an adapter
// (unless the request asked for "cpu"), else "cpu". A GPU failure while loading
// or mid-run falls back to the CPU engine and says so.
let backend = "cpu";
let gpuProbe = null;
// What the loaded model was read from (a File or a cached Blob), so a GPU failure
// can load the CPU engine from it without downloading again.
let modelBlob = null;
let modelName = null;

// Whether WebGPU is usable here, with the adapter's optional features (the
// engine asks for shader-f16 and subgroups when offered).
async function probeGpu() {
  if (gpuProbe) return gpuProbe;
  if (typeof navigator === "undefined" || !navigator.gpu) return (gpuProbe = { available: false, reason: "this browser has no WebGPU (navigator.gpu)" });
  try {
    const a = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
    if (!a) return (gpuProbe = { available: false, reason: "WebGPU offers no adapter on this machine" });
    const info = a.info || {};
    gpuProbe = {
      available: true,
      f16: a.features.has("shader-f16"),
      subgroups: a.features.has("subgroups"),
      vendor: info.vendor || "",
      architecture: info.architecture || "",
      description: info.description || "",
      fallbackAdapter: !!(info.isFallbackAdapter ?? a.isFallbackAdapter),
    };
  } catch (e) {
    gpuProbe = { available: false, reason: `requesting a WebGPU adapter failed: ${e.message}` };
  }
  return gpuProbe;
}

async function pickBackend(wanted) {
  if (wanted && !["webgpu", "cpu", "auto"].includes(wanted)) throw new Error(`unknown backend "${wanted}"; expected webgpu, cpu or auto`);
  if (wanted === "cpu") return { backend: "cpu", note: null };
  const g = await probeGpu();
  if (g.available) return { backend: "webgpu", note: null };
  return { backend: "cpu", note: wanted === "webgpu" ? `WebGPU is not available (${g.reason}); running on the CPU.` : null };
}

// Errors that mean the GPU (not the model file or the request) failed: the
// engine's GpuError messages all name the GPU or WebGPU.
const isGpuFailure = (e) => !(e instanceof WebAssembly.RuntimeError) && /GPU|WebGPU|adapter/.test(errorText(e)) && !/stopped/.test(errorText(e));

const post = (msg, transfer) => self.postMessage(msg, transfer || []);
const heapBytes = () => (wasm ? wasm.memory.buffer.byteLength : 0);

async function ready() {
  if (!wasm) wasm = await init();
  return wasm;
}

// Sequential reader over a network stream: keeps only the bytes from the lowest
// offset still wanted, so a 100 MB download never sits whole in JS memory.
class StreamBytes {
  constructor(stream, size, onBytes) {
    this.reader = stream.getReader();
    this.size = size;
    this.chunks = []; // [{at, bytes}]
    this.end = 0;
    this.onBytes = onBytes;
  }
  async fill(to) {
    while (this.end < to) {
      const { done, value } = await this.reader.read();
      if (done) {
        throw new Error(`the download ended at byte ${this.end} of ${this.size}: the file is truncated or the connection dropped`);
      }
      this.chunks.push({ at: this.end, bytes: value });
      this.end += value.length;
      this.onBytes(this.end);
    }
  }
  async read(start, end) {
    await this.fill(end);
    const out = new Uint8Array(end - start);
    for (const c of this.chunks) {
      const cs = c.at, ce = c.at + c.bytes.length;
      if (ce <= start || cs >= end) continue;
      const from = Math.max(start, cs), to = Math.min(end, ce);
      out.set(c.bytes.subarray(from - cs, to - cs), from - start);
    }
    return out;
  }
  discardBefore(offset) {
    this.chunks = this.chunks.filter((c) => c.at + c.bytes.length > offset);
  }
  cancel() {
    this.reader.cancel().catch(() => {});
  }
}

// Random-access reader over a File or a cached Blob (both stay on disk until sliced).
class BlobBytes {
  constructor(blob, onBytes) {
    this.blob = blob;
    this.size = blob.size;
    this.done = 0;
    this.onBytes = onBytes;
  }
  async read(start, end) {
    if (end > this.blob.size) {
      throw new Error(`the file is truncated: ${this.blob.size} bytes, but its header describes data up to byte ${end}`);
    }
    const out = new Uint8Array(end - start);
    for (let at = start; at < end; at += CHUNK) {
      const to = Math.min(end, at + CHUNK);
      out.set(new Uint8Array(await this.blob.slice(at, to).arrayBuffer()), at - start);
      this.done += to - at;
      this.onBytes(this.done);
    }
    return out;
  }
  discardBefore() {}
  cancel() {}
}

// Header first (growing prefix until it parses), then every tensor's bytes in
// file order, each moved into wasm memory as soon as it is complete.
async function loadFrom(bytes, name) {
  const loader = new WasmLoader(name, bytes.size, undefined);
  try {
    if (bytes.size < 8) throw new Error(`${name}: not a GGUF file (only ${bytes.size} bytes)`);
    let want = Math.min(bytes.size, 1 << 20);
    for (;;) {
      const need = loader.header(await bytes.read(0, want));
      if (need === 0) break;
      if (need <= want) throw new Error(`${name}: the header does not parse from its first ${want} bytes`);
      want = Math.min(bytes.size, need);
    }
    const r = loader.ranges();
    const ranges = [];
    for (let i = 0; i < r.length; i += 2) ranges.push([r[i], r[i + 1]]);
    ranges.sort((a, b) => a[0] - b[0]);
    for (const [s, e] of ranges) {
      loader.add(s, await bytes.read(s, e));
      bytes.discardBefore(e);
    }
    return loader.finish();
  } catch (e) {
    bytes.cancel();
    try { loader.free(); } catch {}
    throw e;
  }
}

function throttle(fn, ms) {
  let last = 0;
  return (...a) => {
    const now = performance.now();
    if (now - last >= ms) { last = now; fn(...a); }
  };
}

async function openCache() {
  return typeof caches === "undefined" ? null : caches.open(MODEL_CACHE);
}

// Free space check before a download: the Cache API write would fail halfway
// otherwise, after the user waited for most of the file.
async function quotaNote(size) {
  if (!navigator.storage || !navigator.storage.estimate) return null;
  const { quota = 0, usage = 0 } = await navigator.storage.estimate();
  const free = quota - usage;
  if (size && free < size) {
    return `Not enough browser storage to keep this model offline: it needs ${mib(size)}, ${mib(Math.max(0, free))} is free. It will load for this visit only; delete cached models to make room.`;
  }
  return null;
}

const mib = (n) => `${(n / 1048576).toFixed(1)} MiB`;

async function load(msg) {
  await ready();
  const heapBefore = heapBytes();
  const r = await exclusive(() => loadAny(msg));
  return { ...r, heapBefore };
}

async function loadAny(msg) {
  const choice = await pickBackend(msg.backend);
  if (choice.backend === "webgpu") return loadWebGpu(msg);
  return loadCpu(msg, choice.note);
}

// The CPU path: the model's tensors are moved into wasm memory.
// Keeping a picked file offline: only once it has loaded (a broken file must not be
// offered again). A Response over a File streams from disk, so the copy costs no memory.
async function keepFile(file) {
  const cache = await openCache();
  const cacheNote = await quotaNote(file.size);
  const keepAfter = cache && !cacheNote
    ? () => cache.put(localKey(file.name), new Response(file, { headers: { "content-length": String(file.size), "x-precis-name": file.name } }))
    : null;
  return { cacheNote, keepAfter };
}

// A model URL made absolute, and the name shown for it.
function urlSource(source, name) {
  const url = new URL(source.url, self.location.href).href;
  return { url, name: name || decodeURIComponent(url.split("/").pop().split("?")[0]) || "model.gguf" };
}

// Starts a model download; every failure is an error that says what to check.
async function download(url) {
  let resp;
  try {
    resp = await fetch(url);
  } catch (e) {
    throw new Error(`cannot download ${url}: ${e.message} (offline, blocked by the Content-Security-Policy, or the server sends no CORS headers)`);
  }
  if (!resp.ok) throw new Error(`cannot download ${url}: HTTP ${resp.status} ${resp.statusText}`);
  const size = Number(resp.headers.get("content-length"));
  if (!size) throw new Error(`cannot download ${url}: the server does not say how large the file is (no Content-Length)`);
  return { resp, size };
}

async function loadCpu(msg, backendNote) {
  const { id, source } = msg;
  const t0 = performance.now();
  let origin = source.kind, bytes, name = source.name, cacheNote = null, cachePut = null, keepAfter = null, cachedUrl = null;
  const progress = throttle((done, total) => post({ id, type: "progress", done, total, elapsed: (performance.now() - t0) / 1000 }), 100);

  if (source.kind === "file") {
    const file = source.file;
    name = file.name;
    bytes = new BlobBytes(file, (d) => progress(d, file.size));
    if (source.keep) ({ cacheNote, keepAfter } = await keepFile(file));
  } else {
    let url;
    ({ url, name } = urlSource(source, name));
    const cache = await openCache();
    const hit = cache && (await cache.match(url));
    if (hit) {
      origin = "cache";
      const blob = await hit.blob();
      bytes = new BlobBytes(blob, (d) => progress(d, blob.size));
    } else {
      if (source.offline) throw new Error(`${name} is not in the browser's model cache`);
      const { resp, size } = await download(url);
      cacheNote = await quotaNote(size);
      let body = resp.body;
      if (cache && !cacheNote) {
        const [a, b] = body.tee();
        body = a;
        const headers = { "content-length": String(size), "content-type": "application/octet-stream", "x-precis-name": name };
        cachePut = cache.put(url, new Response(b, { headers }));
        cachePut.catch(() => {});
        cachedUrl = url;
      }
      bytes = new StreamBytes(body, size, (d) => progress(d, size));
    }
  }

  let engine;
  try {
    engine = await loadFrom(bytes, name);
  } catch (e) {
    // A download that is not a usable model must not stay in the cache.
    if (cachedUrl) {
      await cachePut.catch(() => {});
      await (await openCache()).delete(cachedUrl);
    }
    throw e;
  }
  if (keepAfter) cachePut = keepAfter();
  if (summarizer) summarizer.free();
  summarizer = new WasmSummarizer(engine);
  modelInfo = summarizer.info();
  backend = "cpu";
  modelBlob = bytes instanceof BlobBytes ? bytes.blob : null;
  modelName = name;
  if (cachePut) {
    try {
      await cachePut;
    } catch (e) {
      cacheNote = `The model loaded but could not be kept offline: ${e.name === "QuotaExceededError" ? "the browser's storage quota is full" : e.message}.`;
    }
  }
  return {
    info: modelInfo,
    origin,
    name,
    backend,
    seconds: (performance.now() - t0) / 1000,
    heap: heapBytes(),
    heapPeak: heapBytes(), // wasm memory never shrinks: its size now is its peak
    gpu: gpuProbe,
    note: [backendNote, cacheNote].filter(Boolean).join(" ") || null,
  };
}

// The model as a Blob (a File, a Cache API response, or a download kept in the
// Cache API first), which the GPU loader reads synchronously in slices: the
// file is never whole in wasm memory, nor in JS memory.
async function modelAsBlob(msg, progress) {
  const { source } = msg;
  if (source.kind === "file") {
    const file = source.file;
    const kept = source.keep ? await keepFile(file) : { cacheNote: null, keepAfter: null };
    return { blob: file, name: file.name, origin: "file", ...kept, cachedUrl: null };
  }
  const { url, name } = urlSource(source, source.name);
  const cache = await openCache();
  const hit = cache && (await cache.match(url));
  if (hit) return { blob: await hit.blob(), name, origin: "cache", cacheNote: null, keepAfter: null, cachedUrl: null };
  if (source.offline) throw new Error(`${name} is not in the browser's model cache`);
  const { resp, size } = await download(url);
  const cacheNote = await quotaNote(size);
  let got = 0;
  const counted = resp.body.pipeThrough(new TransformStream({
    transform(chunk, c) {
      got += chunk.length;
      progress(got, size);
      c.enqueue(chunk);
    },
  }));
  if (cache && !cacheNote) {
    const headers = { "content-length": String(size), "content-type": "application/octet-stream", "x-precis-name": name };
    await cache.put(url, new Response(counted, { headers }));
    const kept = await cache.match(url);
    if (kept) return { blob: await kept.blob(), name, origin: "url", cacheNote, keepAfter: null, cachedUrl: url };
  }
  // Not cacheable: the browser keeps a large Blob on disk, not in this heap.
  const blob = await new Response(counted).blob();
  if (blob.size !== size) throw new Error(`the download ended at byte ${blob.size} of ${size}: the file is truncated or the connection dropped`);
  return { blob, name, origin: "url", cacheNote, keepAfter: null, cachedUrl: null };
}

// The WebGPU path: tensors go from the Blob to GPU buffers in slices through a
// synchronous read(offset, length) (FileReaderSync); the wasm heap's peak during
// loading is sampled at every read.
async function loadWebGpu(msg) {
  const { id } = msg;
  const t0 = performance.now();
  const progress = throttle((done, total) => post({ id, type: "progress", done, total, elapsed: (performance.now() - t0) / 1000 }), 100);
  const src = await modelAsBlob(msg, progress);
  const { blob, name } = src;
  if (blob.size < 8) throw new Error(`${name}: not a GGUF file (only ${blob.size} bytes)`);
  const sync = new FileReaderSync();
  let done = 0, peak = heapBytes();
  const read = (offset, length) => {
    const bytes = new Uint8Array(sync.readAsArrayBuffer(blob.slice(offset, offset + length)));
    done = Math.min(blob.size, done + bytes.length);
    progress(done, blob.size);
    peak = Math.max(peak, heapBytes());
    return bytes;
  };
  let engine, note = null;
  try {
    engine = await loadGpu(name, blob.size, read, undefined);
  } catch (e) {
    if (!isGpuFailure(e)) {
      // A download that is not a usable model must not stay in the cache.
      if (src.cachedUrl) await (await openCache()).delete(src.cachedUrl);
      throw e;
    }
    // WebGPU cannot hold this model (no device, a missing limit, out of GPU
    // memory): the CPU engine loads it from the same Blob.
    note = `WebGPU could not load the model (${errorText(e)}); running on the CPU.`;
    const r = await loadCpu({ ...msg, source: { kind: "file", file: new File([blob], name), keep: false } }, null);
    return { ...r, origin: src.origin, note: [note, src.cacheNote].filter(Boolean).join(" ") };
  }
  peak = Math.max(peak, heapBytes());
  if (summarizer) summarizer.free();
  summarizer = new WasmSummarizer(engine);
  modelInfo = summarizer.info();
  backend = "webgpu";
  modelBlob = blob;
  modelName = name;
  let cacheNote = src.cacheNote;
  if (src.keepAfter) {
    try {
      await src.keepAfter();
    } catch (e) {
      cacheNote = `The model loaded but could not be kept offline: ${e.name === "QuotaExceededError" ? "the browser's storage quota is full" : e.message}.`;
    }
  }
  return {
    info: modelInfo,
    origin: src.origin,
    name,
    backend,
    seconds: (performance.now() - t0) / 1000,
    heap: heapBytes(),
    // Peak while the tensors streamed in, and overall (the tokenizer's token
    // trie for constrained decoding is built after the weights).
    heapStreamPeak: peak,
    heapPeak: Math.max(peak, heapBytes()),
    gpu: { ...gpuProbe, ...summarizer.gpu() },
    note: cacheNote || null,
  };
}

// Loads and summarizes one at a time (a GPU run awaits readbacks, so messages
// arrive while it is under way).
let chain = Promise.resolve();
function exclusive(fn) {
  const r = chain.then(fn);
  chain = r.catch(() => {});
  return r;
}

// After a GPU failure: the CPU engine from the Blob the model came from.
async function fallBackToCpu(id) {
  if (!modelBlob) throw new Error("the model's file is no longer available to load it on the CPU; load it again");
  const file = modelBlob instanceof File ? modelBlob : new File([modelBlob], modelName);
  await loadCpu({ id, source: { kind: "file", file, keep: false } }, null);
}

const localKey = (name) => new URL(`local-models/${encodeURIComponent(name)}`, self.location.href).href;

function need() {
  if (!summarizer) throw new Error("no model is loaded yet");
  return summarizer;
}

const enc = new TextEncoder();

function summarize(msg) {
  return exclusive(() => summarizeNow(msg));
}

async function summarizeNow(msg) {
  const s = need();
  const flag = msg.abort ? new Int32Array(msg.abort) : null;
  // Pieces are batched per animation-frame-ish interval: one postMessage per
  // token would flood the page on fast machines.
  let pending = [];
  let lastFlush = performance.now();
  const flush = () => {
    if (pending.length) post({ id: msg.id, type: "events", events: pending });
    pending = [];
    lastFlush = performance.now();
  };
  const onEvent = (ev) => {
    pending.push(ev);
    if (ev.type !== "text" || performance.now() - lastFlush > 50) flush();
    return !(flag && Atomics.load(flag, 0) !== 0);
  };
  const bytes = enc.encode(msg.text);
  const opts = JSON.stringify(msg.options || {});
  if (backend !== "webgpu") {
    const result = s.summarize(bytes, opts, onEvent);
    flush();
    return { ...result, backend: "cpu" };
  }
  try {
    const result = await s.summarizeAsync(bytes, opts, onEvent);
    flush();
    return { ...result, backend: "webgpu" };
  } catch (e) {
    flush();
    if (!isGpuFailure(e)) throw e;
    // The GPU failed mid-run (device lost, out of memory, a validation error):
    // the same request again on the CPU engine. The page keeps the text streamed
    // so far and is told why the rest comes from the CPU.
    const reason = errorText(e);
    post({ id: msg.id, type: "events", events: [{ type: "fallback", from: "webgpu", to: "cpu", reason }] });
    await fallBackToCpu(msg.id);
    const result = need().summarize(bytes, opts, onEvent);
    flush();
    return { ...result, backend: "cpu", fallback: reason };
  }
}

self.onmessage = async ({ data: msg }) => {
  try {
    let value;
    switch (msg.type) {
      case "init": {
        await ready();
        // Before a model is loaded: the engine a load would pick.
        const b = summarizer ? backend : (await pickBackend(msg.backend)).backend;
        value = { backend: b, gpu: gpuProbe, heap: heapBytes(), isolated: self.crossOriginIsolated === true };
        break;
      }
      case "lose-gpu":
        // Test hook: destroys the GPU device, as a driver reset would.
        value = !!summarizer && summarizer.loseDevice();
        break;
      case "load":
        value = await load(msg);
        break;
      case "parse":
        await ready();
        value = parseTranscript(enc.encode(msg.text));
        break;
      case "plan":
        value = need().plan(enc.encode(msg.text), JSON.stringify(msg.options || {}));
        break;
      case "count":
        value = need().countTokens(msg.text);
        break;
      case "summarize":
        value = await summarize(msg);
        break;
      default:
        throw new Error(`unknown request ${msg.type}`);
    }
    post({ id: msg.id, type: "done", value, heap: heapBytes() });
  } catch (e) {
    post({ id: msg.id, type: "error", message: errorText(e), heap: heapBytes() });
  }
};

// wasm-bindgen's JsError arrives as an Error; a Rust panic as a RuntimeError,
// after which the instance is unusable, so the page is told to restart it.
function errorText(e) {
  if (e instanceof WebAssembly.RuntimeError) return `internal error in the engine (${e.message}); the worker will restart`;
  return e && e.message ? e.message : String(e);
}
