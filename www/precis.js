// Precis as a JS module: a summarizer shaped like the W3C Summarizer API that
// runs a GGUF model in a Web Worker on this machine. Usable from any page that
// can load this file and its worker from the same origin:
//
//   import { Summarizer } from "./precis.js";
//   const s = await Summarizer.create({ type: "tldr", length: "short",
//     monitor(m) {
//       m.addEventListener("downloadprogress", (e) => console.log(e.loaded));
//       m.addEventListener("readprogress", (e) => console.log(`${e.done} / ${e.total} read`));
//     } });
//   console.log(await s.summarize(text, { signal }));  // AbortError on abort
//   for await (const piece of s.summarizeStreaming(text)) show(piece);
//
// `type` takes the W3C types (key-points, tldr, teaser, headline) plus Precis's
// own structured (JSON) and notes (Markdown); `format` is accepted as a synonym.
// The worker starts from a blob: URL (so that it inherits the page's CSP): a
// page with a Content-Security-Policy needs `worker-src blob:` in it, and its
// connect-src decides which model URLs the worker may download.

export const MODEL_CACHE = "precis-models-v1";
export const DEFAULT_MODEL = new URL("models/SmolLM2-135M-Instruct.Q4_1.gguf", import.meta.url).href;
export const TYPES = ["structured", "notes", "key-points", "tldr", "teaser", "headline"];
export const LENGTHS = ["short", "medium", "long"];

// One worker and its request/response plumbing. The page uses this directly for
// progress details the W3C shape has no room for.
export class PrecisWorker {
  constructor({ threads } = {}) {
    // The CPU engine's thread count: this option, else ?threads= in the page's
    // address, else the worker's default (all cores but one) where the page is
    // cross-origin isolated; a page that is not runs one thread.
    const param = typeof location === "undefined" ? null : Number(new URLSearchParams(location.search).get("threads")) || null;
    this.threads = threads || param;
    this.nextId = 1;
    this.pending = new Map();
    this.onCrash = null;
    this.start();
  }

  start() {
    // From a blob: URL that imports worker.js, so that the worker inherits this
    // page's Content-Security-Policy (www/csp.js); worker.js resolves its own
    // paths from import.meta.url, never from its blob: location.
    const entry = URL.createObjectURL(new Blob([`import ${JSON.stringify(new URL("worker.js", import.meta.url).href)};`], { type: "text/javascript" }));
    this.worker = new Worker(entry, { type: "module" });
    this.worker.onmessage = ({ data }) => {
      URL.revokeObjectURL(entry); // the worker runs: its entry is no longer needed
      this.dispatch(data);
    };
    this.worker.onerror = (e) => {
      e.preventDefault();
      this.failAll(`the worker failed: ${e.message || "it could not start (is the site served over http(s)?)"}`);
    };
  }

  dispatch(msg) {
    const p = this.pending.get(msg.id);
    if (!p) return;
    if (msg.type === "progress") p.onProgress?.(msg);
    else if (msg.type === "events") for (const ev of msg.events) p.onEvent?.(ev);
    else {
      this.pending.delete(msg.id);
      if (msg.type === "done") p.resolve(msg.value);
      else {
        const err = new Error(msg.message);
        if (/worker will restart/.test(msg.message)) this.restart();
        p.reject(err);
      }
    }
  }

  failAll(message) {
    for (const p of this.pending.values()) p.reject(new Error(message));
    this.pending.clear();
  }

  request(msg, { onProgress, onEvent, transfer } = {}) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress, onEvent });
      this.worker.postMessage({ threads: this.threads, ...msg, id }, transfer || []);
    });
  }

  // Stopping without shared memory means ending the worker: the wasm call it is
  // in cannot be interrupted any other way. The caller reloads the model.
  restart(reason = "stopped") {
    this.worker.terminate();
    this.failAll(reason);
    this.start();
    this.onCrash?.();
  }

  terminate() {
    this.worker.terminate();
    this.failAll("the summarizer was destroyed");
  }
}

// A Stop that works mid-generation: the worker polls this flag from its token
// callback. Needs SharedArrayBuffer, i.e. a cross-origin-isolated page
// (COOP/COEP headers); without it `stop()` falls back to restarting the worker.
export function abortFlag() {
  if (typeof SharedArrayBuffer === "undefined" || !globalThis.crossOriginIsolated) return null;
  return new SharedArrayBuffer(4);
}

// The W3C API rejects an aborted call with the signal's reason: by default a
// DOMException named "AbortError".
const abortReason = (signal) => signal.reason ?? new DOMException("the summary was aborted", "AbortError");

// The engine a Summarizer asks for, and who asked, in words for `s.backendReason`:
// the `backend` option first, then `?backend=` in the calling page's address
// (so a page opened with ?backend=cpu runs its API summaries on the CPU too),
// else "auto" (the worker never picks a software fallback adapter for it).
export function wantedBackend(option) {
  if (option) return { backend: option, asked: `asked for with backend: "${option}"` };
  const param = typeof location === "undefined" ? null : new URLSearchParams(location.search).get("backend");
  if (param) return { backend: param, asked: `asked for with ?backend=${param} in the address` };
  // A page without navigator.gpu (its worker may still have one).
  if (typeof navigator !== "undefined" && !navigator.gpu) return { backend: "cpu", asked: "this browser has no WebGPU (navigator.gpu)" };
  return { backend: "auto", asked: null };
}

// The model reading the prompt (prefill), on the Summarizer's monitor: `loaded`
// is the fraction of the pass's prompt read, `done`/`total` its tokens, `cached`
// those taken from the prefix cache, `pass` which model pass ({kind, index, of,
// round}), `seconds` since the pass began and `tokensPerSecond` the reading speed.
class ReadProgressEvent extends Event {
  constructor(ev) {
    super("readprogress");
    this.loaded = ev.total ? ev.done / ev.total : 0;
    this.done = ev.done;
    this.total = ev.total;
    this.cached = ev.cached;
    this.pass = ev.pass;
    this.seconds = ev.seconds;
    this.tokensPerSecond = ev.seconds > 0 ? (ev.done - ev.cached) / ev.seconds : 0;
  }
}

class DownloadProgressEvent extends Event {
  constructor(loaded, total) {
    super("downloadprogress");
    this.loaded = total ? loaded / total : 0;
    this.bytes = loaded;
    this.total = total;
  }
}

function modelSource(model) {
  if (model === undefined || model === null) return { kind: "url", url: DEFAULT_MODEL };
  if (typeof model === "string" || model instanceof URL) return { kind: "url", url: new URL(model, location.href).href };
  if (typeof Blob !== "undefined" && model instanceof Blob) {
    const file = model instanceof File ? model : new File([model], "model.gguf");
    return { kind: "file", file };
  }
  throw new TypeError("model must be a URL, a File or a Blob");
}

export class Summarizer {
  static async availability() {
    return typeof Worker === "undefined" || typeof WebAssembly === "undefined" ? "unavailable" : "downloadable";
  }

  static async create(options = {}) {
    const type = options.type ?? options.format ?? "key-points";
    const length = options.length ?? "short";
    if (!TYPES.includes(type)) throw new TypeError(`unknown type "${type}"; expected one of ${TYPES.join(", ")}`);
    if (!LENGTHS.includes(length)) throw new TypeError(`unknown length "${length}"; expected one of ${LENGTHS.join(", ")}`);
    const monitor = new EventTarget();
    options.monitor?.(monitor);
    const w = new PrecisWorker({ threads: options.threads });
    const { backend, asked } = wantedBackend(options.backend);
    const request = { type: "load", source: modelSource(options.model), backend, asked };
    try {
      // A download is followed by a check and a load, each from zero: the
      // monitor sees one rising fraction (the W3C event has no phases).
      let high = 0;
      const onProgress = (p) => {
        const f = p.total ? p.done / p.total : 0;
        if (f <= high) return;
        high = f;
        monitor.dispatchEvent(new DownloadProgressEvent(p.done, p.total));
      };
      const loaded = await w.request(request, { onProgress });
      monitor.dispatchEvent(new DownloadProgressEvent(1, 1));
      const s = new Summarizer(w, { ...options, type, length }, loaded, monitor);
      // A Stop without shared memory restarts the worker; load the model again
      // (from the browser cache by then) before the next request.
      w.onCrash = () => {
        s.ready = w.request(request);
        s.ready.catch(() => {});
      };
      return s;
    } catch (e) {
      w.terminate();
      throw e;
    }
  }

  constructor(worker, options, loaded, monitor) {
    this.worker = worker;
    this.monitor = monitor;
    this.type = options.type;
    this.length = options.length;
    this.format = options.type === "structured" ? "json" : options.type === "tldr" || options.type === "teaser" || options.type === "headline" ? "plain-text" : "markdown";
    this.backend = loaded.backend;
    this.backendReason = loaded.why;
    // The CPU engine's build and threads: {build: "threaded"|"single", threads, why}.
    this.engineBuild = loaded.build;
    this.model = loaded.info;
    this.inputQuota = loaded.info.n_ctx_train;
    this.extra = options.extra ?? {};
    this.ready = Promise.resolve();
  }

  options() {
    return { format: this.type, length: this.length, ...this.extra };
  }

  async measureInputUsage(text) {
    await this.ready;
    return this.worker.request({ type: "count", text: String(text) });
  }

  // Resolves to the whole summary; rejects with the engine's message (bad
  // transcript, …). `signal` aborts like the Stop button, reading the prompt
  // included: the call rejects at once with the signal's reason (an
  // "AbortError" DOMException unless the caller gave another).
  async summarize(text, { signal } = {}) {
    let out = "";
    for await (const piece of this.summarizeStreaming(text, { signal })) out += piece;
    return out;
  }

  // A ReadableStream of text pieces of the final answer (map-reduce notes on
  // the way there are not part of it; use PrecisWorker for those).
  summarizeStreaming(text, { signal } = {}) {
    const flag = abortFlag();
    const w = this.worker;
    let finalPass = false;
    let streamed = "", replay = "", replaying = false;
    return new ReadableStream({
      start: async (controller) => {
        try {
          await this.ready;
        } catch (e) {
          return controller.error(signal?.aborted ? abortReason(signal) : e);
        }
        // After an abort nothing more reaches the stream: the caller has its
        // rejection at once, while the worker stops at its next check.
        let ended = false;
        const fail = (e) => {
          if (ended) return;
          ended = true;
          controller.error(e);
        };
        const abort = () => {
          fail(abortReason(signal));
          if (flag) Atomics.store(new Int32Array(flag), 0, 1);
          else w.restart("summarizing was stopped");
        };
        if (signal?.aborted) return fail(abortReason(signal));
        signal?.addEventListener("abort", abort, { once: true });
        w.request(
          { type: "summarize", text: String(text), options: this.options(), abort: flag },
          {
            onEvent: (ev) => {
              if (ended) return;
              if (ev.type === "prefill") return this.monitor.dispatchEvent(new ReadProgressEvent(ev));
              if (ev.type === "fallback") {
                // The GPU failed mid-run and the worker starts again on the CPU:
                // the text already streamed is not repeated.
                this.backend = "cpu";
                replay = "";
                replaying = true;
                return;
              }
              if (ev.type === "start") finalPass = ev.pass.kind === "final";
              if (ev.type !== "text" || !finalPass) return;
              if (!replaying) {
                streamed += ev.piece;
                return controller.enqueue(ev.piece);
              }
              replay += ev.piece;
              if (streamed.startsWith(replay)) return; // still within what was sent
              if (!replay.startsWith(streamed)) {
                return fail(new Error(`WebGPU failed mid-summary and the CPU's rerun wrote a different text from the part already streamed; summarize again`));
              }
              const rest = replay.slice(streamed.length);
              streamed = replay;
              replaying = false;
              controller.enqueue(rest);
            },
          },
        ).then(
          () => {
            if (ended) return;
            if (replaying && replay !== streamed) return fail(new Error("WebGPU failed mid-summary and the CPU's rerun ended before the text already streamed"));
            ended = true;
            controller.close();
          },
          (e) => fail(e),
        ).finally(() => signal?.removeEventListener("abort", abort));
      },
    });
  }

  destroy() {
    this.worker.terminate();
  }
}

export { partialDownloads, deletePartialDownload } from "./download.js";

// Cached models (Cache API), for the page's model list.
export async function cachedModels() {
  if (typeof caches === "undefined") return [];
  const cache = await caches.open(MODEL_CACHE);
  const out = [];
  for (const req of await cache.keys()) {
    const resp = await cache.match(req);
    out.push({
      url: req.url,
      name: resp?.headers.get("x-precis-name") || decodeURIComponent(req.url.split("/").pop()),
      size: Number(resp?.headers.get("content-length")) || 0,
    });
  }
  return out;
}

export async function deleteCachedModel(url) {
  if (typeof caches === "undefined") return false;
  return (await caches.open(MODEL_CACHE)).delete(url);
}
