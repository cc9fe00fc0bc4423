// The Web Worker that owns the wasm engine: the page never runs the model itself,
// so a long summary never blocks scrolling, typing or the Stop button.
//
// Protocol (page → worker): {id, type: "load"|"plan"|"summarize"|"parse"|"count"|"bench", ...};
// worker → page: {id, type: "progress"|"event"|"done"|"error", ...}.
import { loadBuild } from "./threads.js";
import { download } from "./download.js";
import { restorePrefix, keepPrefix } from "./prefix-store.js";

const MODEL_CACHE = "precis-models-v1";
// Chunk size for reads from a File/Blob: big enough to be quick, small enough that
// the page's JS heap never holds more than one tensor plus one chunk.
const CHUNK = 8 << 20;

let wasm = null;
// The engine's JS glue (pkg/ or pkg-mt/, threads.js picks) and what was picked:
// {build: "threaded"|"single", threads, why}.
let P = null;
let build = null;
let summarizer = null;
let modelInfo = null;
// The backend actually running: "webgpu" when navigator.gpu gives an adapter
// (unless the request asked for "cpu"), else "cpu". A GPU failure while loading
// or mid-run falls back to the CPU engine and says so.
let backend = "cpu";
let backendWhy = null; // pickBackend's reason for it, shown in the page's badge
let gpuProbe = null;
// What the loaded model was read from (a File or a cached Blob), so a GPU failure
// can load the CPU engine from it without downloading again.
let modelBlob = null;
let modelName = null;
// The loaded model's identity for the stored prompt prefix (prefix-store.js): its
// URL and size, or a picked file's name, size and date.
let modelId = null;
// The format whose prompt prefix the engine holds now (null: none or unknown).
let keptFormat = null;

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

// The engine for a request, and why, in words for the badge. `wanted` is
// "webgpu", "cpu" or "auto"; `asked` says who asked for it (e.g. "?backend=cpu
// in the address"), or is the reason the page already knows (no navigator.gpu).
// A fallback adapter (SwiftShader: a GPU emulated on the CPU) runs this model
// 20-40x slower than the wasm CPU engine, so "auto" never takes it; only an
// explicit "webgpu" does.
async function pickBackend(wanted = "auto", asked = null) {
  if (!["webgpu", "cpu", "auto"].includes(wanted)) throw new Error(`unknown backend "${wanted}"; expected webgpu, cpu or auto`);
  if (wanted === "cpu") return { backend: "cpu", why: asked || "asked for", note: null };
  const g = await probeGpu();
  if (wanted === "webgpu") {
    if (!g.available) return { backend: "cpu", why: `WebGPU was asked for but is not available (${g.reason})`, note: `WebGPU is not available (${g.reason}); running on the CPU.` };
    const slow = g.fallbackAdapter ? "; its adapter is a software fallback, slower than the CPU engine" : "";
    return { backend: "webgpu", why: `${asked || "asked for"}${slow}`, note: null };
  }
  if (!g.available) return { backend: "cpu", why: g.reason, note: null };
  if (g.fallbackAdapter) return { backend: "cpu", why: "the only WebGPU adapter is a software fallback", note: null };
  return { backend: "webgpu", why: "a hardware WebGPU adapter is available", note: null };
}

// Errors that mean the GPU (not the model file or the request) failed: the
// engine's GpuError messages all name the GPU or WebGPU.
const isGpuFailure = (e) => !(e instanceof WebAssembly.RuntimeError) && /GPU|WebGPU|adapter/.test(errorText(e)) && !/stopped/.test(errorText(e));

const post = (msg, transfer) => self.postMessage(msg, transfer || []);
const heapBytes = () => (wasm ? wasm.memory.buffer.byteLength : 0);

// The first request's `threads` (the page's ?threads=, else all cores but one)
// decides the build and its threads for the worker's life.
let starting = null;
async function ready(threads) {
  if (!starting) {
    starting = loadBuild(threads).then((b) => {
      ({ P, wasm } = b);
      build = { build: b.build, threads: b.threads, why: b.why };
      return wasm;
    });
  }
  return starting;
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
}

// Header first (growing prefix until it parses), then every tensor's bytes in
// file order, each moved into wasm memory as soon as it is complete.
async function loadFrom(bytes, name) {
  const loader = new P.WasmLoader(name, bytes.size, undefined);
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
    }
    return loader.finish();
  } catch (e) {
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
// otherwise, after the user waited for most of the file. The page sends its own
// estimate with the request (page and worker share the origin's storage).
async function quotaNote(size, pageEstimate) {
  const est = pageEstimate || (navigator.storage && navigator.storage.estimate ? await navigator.storage.estimate() : null);
  if (!est) return null;
  const { quota = 0, usage = 0 } = est;
  const free = quota - usage;
  if (size && free < size) {
    return `Not enough browser storage to keep this model offline: it needs ${mib(size)}, ${mib(Math.max(0, free))} is free. It will load for this visit only; delete cached models to make room.`;
  }
  return null;
}

const mib = (n) => `${(n / 1048576).toFixed(1)} MiB`;

async function load(msg) {
  await ready(msg.threads);
  const heapBefore = heapBytes();
  const r = await exclusive(() => loadAny(msg));
  backendWhy = r.why;
  return { ...r, heapBefore };
}

async function loadAny(msg) {
  const choice = await pickBackend(msg.backend, msg.asked);
  if (choice.backend === "webgpu") {
    const r = await loadWebGpu(msg);
    return { ...r, why: r.backend === "webgpu" ? choice.why : "WebGPU could not load the model" };
  }
  return { ...(await loadCpu(msg, choice.note)), why: choice.why };
}

// Keeping a picked file offline: only once it has loaded (a broken file must not be
// offered again). A Response over a File streams from disk, so the copy costs no memory.
async function keepFile(file, pageEstimate) {
  const cache = await openCache();
  const cacheNote = await quotaNote(file.size, pageEstimate);
  const keepAfter = cache && !cacheNote
    ? () => cache.put(localKey(file.name), new Response(file, { headers: { "content-length": String(file.size), "x-precis-name": file.name } }))
    : null;
  return { cacheNote, keepAfter };
}

// A model URL made absolute, and the name shown for it.
function urlSource(source, name) {
  const url = new URL(source.url, import.meta.url).href;
  return { url, name: name || decodeURIComponent(url.split("/").pop().split("?")[0]) || "model.gguf" };
}

// The model as a Blob — a File, a Cache API response, or a (resumable) download
// kept in the Cache API — which both engines read in slices: the file is never
// whole in wasm memory, nor in JS memory. `cachedUrl` names a cache entry made
// by this call, to delete if the file turns out not to be a usable model.
async function modelAsBlob(msg, progress) {
  const { source } = msg;
  if (source.kind === "file") {
    const file = source.file;
    const kept = source.keep ? await keepFile(file, msg.storage) : { cacheNote: null, keepAfter: null };
    return { blob: file, name: file.name, origin: "file", ...kept, cachedUrl: null };
  }
  const { url, name } = urlSource(source, source.name);
  const cache = await openCache();
  const hit = cache && (await cache.match(url));
  if (hit) return { blob: await hit.blob(), name, origin: "cache", cacheNote: null, keepAfter: null, cachedUrl: null };
  if (source.offline) throw new Error(`${name} is not in the browser's model cache`);
  let cacheNote = null;
  const got = await download(url, {
    expect: { size: source.size || null, sha256: source.sha256 || null },
    canKeep: async (size) => {
      cacheNote = await quotaNote(size, msg.storage);
      return !!cache && !cacheNote;
    },
    onProgress: (done, total, phase) => progress(done, total, phase),
  });
  const info = { name, origin: "url", keepAfter: null, resumedFrom: got.resumedFrom, ranged: got.ranged };
  if (cache && got.parts.persistent) {
    // Complete and checked: one cache entry for the whole file, then the pieces go.
    const headers = { "content-length": String(got.size), "content-type": "application/octet-stream", "x-precis-name": name };
    try {
      await cache.put(url, new Response(got.blob, { headers }));
      const kept = await cache.match(url);
      if (kept) {
        const blob = await kept.blob();
        await got.parts.clear();
        return { ...info, blob, cacheNote, cachedUrl: url };
      }
    } catch (e) {
      cacheNote = `The model loaded but could not be kept offline: ${e.name === "QuotaExceededError" ? "the browser's storage quota is full" : e.message}.`;
    }
  }
  return { ...info, blob: got.blob, cacheNote, cachedUrl: null };
}

// A picked file's copy is made once it has loaded; a failure to keep it is a note.
async function keepAfterLoad(src) {
  if (!src.keepAfter) return src.cacheNote;
  try {
    await src.keepAfter();
    return src.cacheNote;
  } catch (e) {
    return `The model loaded but could not be kept offline: ${e.name === "QuotaExceededError" ? "the browser's storage quota is full" : e.message}.`;
  }
}

// Progress to the page, at most every 100 ms, with the phase (download, verify, load).
function progressPoster(id, t0) {
  const send = throttle((done, total, phase) => post({ id, type: "progress", done, total, phase, elapsed: (performance.now() - t0) / 1000 }), 100);
  let phase = null;
  return (done, total, p = "load") => {
    if (p !== phase) {
      // A new phase always reports, so the page can reset its speed estimate.
      phase = p;
      post({ id, type: "progress", done, total, phase: p, elapsed: (performance.now() - t0) / 1000 });
      return;
    }
    send(done, total, p);
  };
}

// The CPU path: the model's tensors are moved into wasm memory.
async function loadCpu(msg, backendNote) {
  const t0 = performance.now();
  const progress = progressPoster(msg.id, t0);
  const src = await modelAsBlob(msg, progress);
  const { blob, name } = src;
  let engine;
  try {
    engine = await loadFrom(new BlobBytes(blob, (d) => progress(d, blob.size, "load")), name);
  } catch (e) {
    // A download that is not a usable model must not stay in the cache.
    if (src.cachedUrl) await (await openCache()).delete(src.cachedUrl);
    throw e;
  }
  if (summarizer) summarizer.free();
  summarizer = new P.WasmSummarizer(engine);
  modelInfo = summarizer.info();
  backend = "cpu";
  modelBlob = blob;
  modelName = name;
  modelId = identity(msg.source, blob, name);
  keptFormat = null;
  const cacheNote = await keepAfterLoad(src);
  return {
    info: modelInfo,
    origin: src.origin,
    name,
    backend,
    build,
    seconds: (performance.now() - t0) / 1000,
    heap: heapBytes(),
    heapPeak: heapBytes(), // wasm memory never shrinks: its size now is its peak
    gpu: gpuProbe,
    resumedFrom: src.resumedFrom || 0,
    ranged: src.ranged ?? null,
    note: [backendNote, cacheNote].filter(Boolean).join(" ") || null,
  };
}

// The WebGPU path: tensors go from the Blob to GPU buffers in slices through a
// synchronous read(offset, length) (FileReaderSync); the wasm heap's peak during
// loading is sampled at every read.
async function loadWebGpu(msg) {
  const t0 = performance.now();
  const progress = progressPoster(msg.id, t0);
  const src = await modelAsBlob(msg, progress);
  const { blob, name } = src;
  if (blob.size < 8) throw new Error(`${name}: not a GGUF file (only ${blob.size} bytes)`);
  const sync = new FileReaderSync();
  let done = 0, peak = heapBytes();
  const read = (offset, length) => {
    const bytes = new Uint8Array(sync.readAsArrayBuffer(blob.slice(offset, offset + length)));
    done = Math.min(blob.size, done + bytes.length);
    progress(done, blob.size, "load");
    peak = Math.max(peak, heapBytes());
    return bytes;
  };
  let engine, note = null;
  try {
    engine = await P.loadGpu(name, blob.size, read, undefined);
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
    return { ...r, origin: src.origin, resumedFrom: src.resumedFrom || 0, ranged: src.ranged ?? null, note: [note, src.cacheNote].filter(Boolean).join(" ") };
  }
  peak = Math.max(peak, heapBytes());
  if (summarizer) summarizer.free();
  summarizer = new P.WasmSummarizer(engine);
  modelInfo = summarizer.info();
  backend = "webgpu";
  modelBlob = blob;
  modelName = name;
  const cacheNote = await keepAfterLoad(src);
  return {
    info: modelInfo,
    origin: src.origin,
    name,
    backend,
    build,
    seconds: (performance.now() - t0) / 1000,
    heap: heapBytes(),
    // Peak while the tensors streamed in, and overall (the tokenizer's token
    // trie for constrained decoding is built after the weights).
    heapStreamPeak: peak,
    heapPeak: Math.max(peak, heapBytes()),
    gpu: { ...gpuProbe, ...summarizer.gpu() },
    resumedFrom: src.resumedFrom || 0,
    ranged: src.ranged ?? null,
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

function identity(source, blob, name) {
  // The same however the model was reached (downloaded, from the model cache, or
  // loaded again after a reload), which a sha256 is not: only the manifest gives one.
  if (source && source.kind === "url") return `${urlSource(source, name).url}|${blob.size}`;
  return `file:${name}|${blob.size}|${blob.lastModified || 0}`;
}

const localKey = (name) => new URL(`local-models/${encodeURIComponent(name)}`, import.meta.url).href;

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
    // Between two layers of a CPU chunk the engine only asks whether to go on.
    if (ev.type === "busy") return !(flag && Atomics.load(flag, 0) !== 0);
    // Stamped here, in seconds on the worker's clock: batched pieces reach the
    // page together, and a speed from their arrival times would be nonsense.
    ev.at = performance.now() / 1000;
    pending.push(ev);
    if (ev.type !== "text" || performance.now() - lastFlush > 50) flush();
    return !(flag && Atomics.load(flag, 0) !== 0);
  };
  const bytes = enc.encode(msg.text);
  const opts = JSON.stringify(msg.options || {});
  if (backend !== "webgpu") {
    // A returning user's first run of a format starts from its stored prefix.
    const format = (msg.options && msg.options.format) || "structured";
    const restored = keptFormat === format ? { tokens: 0, note: null } : await restorePrefix(s, modelId, format);
    keptFormat = format;
    const result = s.summarize(bytes, opts, onEvent);
    flush();
    const prefix = { restored: restored.tokens, stored: 0, note: restored.note };
    // A prefix computed by this run (none came from the cache) is stored for the next visit.
    if (result.stats.cached_tokens === 0) {
      const kept = await keepPrefix(s, modelId, format);
      prefix.stored = kept.stored;
      prefix.note = prefix.note || kept.note;
    }
    return { ...result, backend: "cpu", prefix };
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
    backendWhy = "WebGPU failed during a summary";
    post({ id: msg.id, type: "events", events: [{ type: "fallback", from: "webgpu", to: "cpu", reason, at: performance.now() / 1000 }] });
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
        await ready(msg.threads);
        // Before a model is loaded: the engine a load would pick, and why.
        const choice = summarizer ? { backend, why: backendWhy } : await pickBackend(msg.backend, msg.asked);
        value = { backend: choice.backend, why: choice.why, gpu: gpuProbe, heap: heapBytes(), isolated: self.crossOriginIsolated === true, build };
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
        await ready(msg.threads);
        value = P.parseTranscript(enc.encode(msg.text));
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
      case "bench":
        // `make bench` (bench/browser.mjs): raw prefill/decode speed.
        value = await exclusive(() => need().benchAsync(msg.text, msg.promptTokens, msg.genTokens));
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
