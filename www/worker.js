// The Web Worker that owns the wasm engine: the page never runs the model itself,
// so a long summary never blocks scrolling, typing or the Stop button.
//
// Protocol (page → worker): {id, type: "load"|"plan"|"summarize"|"parse", ...};
// worker → page: {id, type: "progress"|"event"|"done"|"error", ...}.
import init, { WasmLoader, WasmSummarizer, parseTranscript } from "./pkg/precis.js";

const MODEL_CACHE = "precis-models-v1";
// Chunk size for reads from a File/Blob: big enough to be quick, small enough that
// the page's JS heap never holds more than one tensor plus one chunk.
const CHUNK = 8 << 20;

let wasm = null;
let summarizer = null;
let modelInfo = null;
// The backend actually running. A request may ask for "webgpu" or "cpu"; the
// WebGPU engine is being built separately, so until it lands every request
// runs on the CPU and says so.
const BACKENDS = ["cpu"];
let backend = "cpu";
function pickBackend(wanted) {
  if (wanted && !["webgpu", "cpu"].includes(wanted)) throw new Error(`unknown backend "${wanted}"; expected webgpu or cpu`);
  backend = BACKENDS.includes(wanted) ? wanted : "cpu";
  return wanted && wanted !== backend ? `The ${wanted} engine is not available in this build; running on the ${backend}.` : null;
}

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
  const { id, source } = msg;
  const backendNote = pickBackend(msg.backend);
  const t0 = performance.now();
  let origin = source.kind, bytes, name = source.name, cacheNote = null, cachePut = null, keepAfter = null, cachedUrl = null;
  const progress = throttle((done, total) => post({ id, type: "progress", done, total, elapsed: (performance.now() - t0) / 1000 }), 100);

  if (source.kind === "file") {
    const file = source.file;
    name = file.name;
    bytes = new BlobBytes(file, (d) => progress(d, file.size));
    if (source.keep) {
      const cache = await openCache();
      cacheNote = await quotaNote(file.size);
      // Kept only once it has loaded: a broken file must not be offered again.
      // A Response over a File streams from disk, so the copy costs no memory.
      if (cache && !cacheNote) {
        keepAfter = () => cache.put(localKey(file.name), new Response(file, { headers: { "content-length": String(file.size), "x-precis-name": file.name } }));
      }
    }
  } else {
    const url = new URL(source.url, self.location.href).href;
    name = name || decodeURIComponent(url.split("/").pop().split("?")[0]) || "model.gguf";
    const cache = await openCache();
    const hit = cache && (await cache.match(url));
    if (hit) {
      origin = "cache";
      const blob = await hit.blob();
      bytes = new BlobBytes(blob, (d) => progress(d, blob.size));
    } else {
      if (source.offline) throw new Error(`${name} is not in the browser's model cache`);
      let resp;
      try {
        resp = await fetch(url);
      } catch (e) {
        throw new Error(`cannot download ${url}: ${e.message} (offline, blocked by the Content-Security-Policy, or the server sends no CORS headers)`);
      }
      if (!resp.ok) throw new Error(`cannot download ${url}: HTTP ${resp.status} ${resp.statusText}`);
      const size = Number(resp.headers.get("content-length"));
      if (!size) throw new Error(`cannot download ${url}: the server does not say how large the file is (no Content-Length)`);
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
    note: [backendNote, cacheNote].filter(Boolean).join(" ") || null,
  };
}

const localKey = (name) => new URL(`local-models/${encodeURIComponent(name)}`, self.location.href).href;

function need() {
  if (!summarizer) throw new Error("no model is loaded yet");
  return summarizer;
}

const enc = new TextEncoder();

function summarize(msg) {
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
  const result = s.summarize(enc.encode(msg.text), JSON.stringify(msg.options || {}), (ev) => {
    pending.push(ev);
    if (ev.type !== "text" || performance.now() - lastFlush > 50) flush();
    return !(flag && Atomics.load(flag, 0) !== 0);
  });
  flush();
  return result;
}

self.onmessage = async ({ data: msg }) => {
  try {
    let value;
    switch (msg.type) {
      case "init":
        await ready();
        value = { backend, heap: heapBytes(), isolated: self.crossOriginIsolated === true };
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
        value = summarize(msg);
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
