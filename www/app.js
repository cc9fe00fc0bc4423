// The page: model loading, transcript input, summary runs and their rendering.
// All model work happens in the worker (precis.js → worker.js); model output is
// only ever inserted as text, never parsed as HTML.
import { PrecisWorker, DEFAULT_MODEL, abortFlag, wantedBackend, cachedModels, deleteCachedModel, partialDownloads, deletePartialDownload } from "./precis.js";
import { RunProgress } from "./progress.js";
import { renderNotes } from "./notes.js";
import { markdown } from "./markdown.js";

const $ = (id) => document.getElementById(id);
const state = {
  model: null, // {source, info, origin, backend}
  modelSource: null, // what to reload after a worker restart
  plan: null,
  running: false,
  loading: false,
  abort: null,
  result: null, // {format, length, text, stats, map_notes, source (the transcript)}
  planned: null, // {text, plan}: the last exact count, kept while a run holds the worker
};
const worker = new PrecisWorker();
window.precis = { state, worker }; // for the browser tests and the curious

// ---- storage: IndexedDB, because a transcript can be megabytes (localStorage
// holds about five).
const db = new Promise((resolve, reject) => {
  const req = indexedDB.open("precis", 1);
  req.onupgradeneeded = () => req.result.createObjectStore("kv");
  req.onsuccess = () => resolve(req.result);
  req.onerror = () => reject(req.error);
});
async function kvGet(key) {
  const d = await db;
  return new Promise((resolve, reject) => {
    const r = d.transaction("kv").objectStore("kv").get(key);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}
async function kvSet(key, value) {
  const d = await db;
  return new Promise((resolve, reject) => {
    const t = d.transaction("kv", "readwrite");
    t.objectStore("kv").put(value, key);
    t.oncomplete = () => resolve();
    t.onerror = () => reject(t.error);
  });
}
const save = (key, value) => kvSet(key, value).catch((e) => showError("run-error", `Could not save ${key} in this browser: ${e.message}`));

// ---- small helpers
function show(id, text) {
  const el = $(id);
  el.textContent = text || "";
  el.hidden = !text;
}
const showError = show;
const mib = (n) => `${(n / 1048576).toFixed(1)} MiB`;
function duration(s) {
  if (!isFinite(s)) return "—";
  return s < 60 ? `${Math.round(s)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}
function debounce(fn, ms) {
  let t;
  return (...a) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...a), ms);
  };
}

// ---- backend badge
// The worker picks WebGPU when the browser offers a hardware adapter (never a
// software fallback unless asked); `?backend=cpu|webgpu` in the address asks
// for one, and a page without navigator.gpu gets the CPU engine.
const WANTED = wantedBackend();
async function initBackend() {
  try {
    const r = await worker.request({ type: "init", backend: WANTED.backend, asked: WANTED.asked });
    setBadge(r.backend, r.gpu, r.why, r.build);
  } catch (e) {
    $("backend-badge").textContent = "engine failed";
    showError("model-error", `The engine could not start: ${e.message}`);
  }
}
// `build`: the CPU engine's {build: "threaded"|"single", threads, why} (www/threads.js).
function setBadge(backend, gpu, why, build) {
  const b = $("backend-badge");
  const threads = build ? `, ${build.threads} thread${build.threads === 1 ? "" : "s"}` : "";
  const name = backend === "webgpu" ? "WebGPU" : `CPU (WebAssembly${threads})`;
  b.replaceChildren(name);
  if (build) {
    b.dataset.build = build.build;
    b.dataset.threads = String(build.threads);
    b.dataset.threadsWhy = build.why || "";
  }
  if (why) b.append(el("span", "why", ` — ${why}`));
  b.dataset.backend = backend;
  b.dataset.why = why || "";
  $("footer-backend").textContent = backend === "webgpu" ? "on this device's GPU through WebGPU" : "on this device's CPU with WebAssembly";
  const feats = gpu && gpu.available ? ` (adapter: ${[gpu.vendor, gpu.architecture, gpu.description].filter(Boolean).join(" ") || "unnamed"}; shader-f16 ${gpu.f16 ? "yes" : "no"}, subgroups ${gpu.subgroups ? "yes" : "no"})` : "";
  if (backend === "webgpu") b.title = `Running on the GPU through WebGPU${feats}.`;
  else if (gpu && gpu.available) b.title = `Running on the CPU (WebAssembly); WebGPU is available${feats} but was not used.`;
  else b.title = `Running on the CPU (WebAssembly)${gpu && gpu.reason ? `: ${gpu.reason}` : ""}.`;
  if (build && backend !== "webgpu") b.title += build.build === "threaded" ? ` ${build.threads} thread${build.threads === 1 ? "" : "s"} (${build.why}).` : ` One thread: ${build.why || "the single-threaded build"}.`;
  if (gpu) {
    b.dataset.f16 = String(!!gpu.f16);
    b.dataset.subgroups = String(!!gpu.subgroups);
  }
}

// ---- model loading
// models/manifest.json names suggested models with their size and sha256: a
// download of one of them is checked against both before it is kept.
// The same list is the model catalog shown under "Suggested models".
const catalog = fetch("models/manifest.json")
  .then((r) => (r.ok ? r.json() : { models: [] }))
  .then((m) => {
    const base = new URL("models/manifest.json", location.href);
    return (m.models || []).filter((e) => e.url).map((e) => ({ ...e, url: new URL(e.url, base).href }));
  })
  .catch(() => []); // offline or not deployed: downloads are checked against the server's size only
const manifest = catalog.then((models) => new Map(models.map((e) => [e.url, { size: e.size || null, sha256: e.sha256 || null }])));

async function storageEstimate() {
  try {
    return navigator.storage?.estimate ? await navigator.storage.estimate() : null;
  } catch {
    return null;
  }
}

const PHASE = { download: "Downloading", verify: "Checking sha256 of", load: "Loading" };

async function loadModel(source, label) {
  showError("model-error", "");
  show("model-note", "");
  $("model-status").textContent = `Loading ${label}…`;
  $("model-progress-wrap").hidden = false;
  $("model-progress").value = 0;
  $("model-progress-text").textContent = "";
  setModelButtons(false);
  let last = null, speed = 0, phase = null;
  try {
    if (source.kind === "url" && !source.offline) source = { ...(await manifest).get(source.url), ...source };
    // The worker checks the quota against the page's estimate: both share the
    // origin's storage, and the page's is the one the user sees in the list.
    const storage = await storageEstimate();
    // The worker picks the engine; it reports what it actually runs on.
    const r = await worker.request({ type: "load", source, backend: WANTED.backend, asked: WANTED.asked, storage }, {
      onProgress: (p) => {
        if (p.phase !== phase) {
          // A resumed download starts at the bytes already kept, and loading
          // starts again from zero: the speed counts only what moves now.
          phase = p.phase;
          last = { t: p.elapsed, done: p.done };
          speed = 0;
          $("model-status").textContent = `${PHASE[phase] || "Loading"} ${label}…`;
        }
        const dt = p.elapsed - last.t;
        if (dt > 0.25) {
          const inst = (p.done - last.done) / dt;
          speed = speed ? 0.7 * speed + 0.3 * inst : inst;
          last = { t: p.elapsed, done: p.done };
        }
        $("model-progress").value = p.total ? p.done / p.total : 0;
        const pct = p.total ? ((100 * p.done) / p.total).toFixed(0) : "?";
        const left = speed > 0 ? duration((p.total - p.done) / speed) : "—";
        $("model-progress-text").textContent = `${mib(p.done)} of ${mib(p.total)} (${pct}%) · ${mib(speed)}/s · ${left} left`;
        $("model-progress-wrap").dataset.phase = phase;
      },
    });
    state.model = r;
    state.modelSource = source;
    const from = r.origin === "cache" ? "from this browser's cache" : r.origin === "file" ? "from disk" : r.resumedFrom ? `downloaded (resumed at ${mib(r.resumedFrom)})` : "downloaded";
    $("model-status").textContent = `Loaded ${r.name} (${r.info.arch}${r.info.quant ? ` · ${r.info.quant}` : ""}, ${r.info.n_layer} layers, context ${r.info.n_ctx_train}) ${from} in ${r.seconds.toFixed(1)} s.`;
    $("model-status").dataset.loaded = "true";
    $("model-status").dataset.origin = r.origin;
    $("model-status").dataset.heap = String(r.heap);
    $("model-status").dataset.heapPeak = String(r.heapPeak);
    if (r.heapStreamPeak) $("model-status").dataset.heapStreamPeak = String(r.heapStreamPeak);
    $("model-status").dataset.heapBefore = String(r.heapBefore);
    $("model-status").dataset.backend = r.backend;
    $("model-status").dataset.resumedFrom = String(r.resumedFrom || 0);
    $("model-status").dataset.ranged = String(r.ranged ?? "");
    show("model-note", r.note);
    setBadge(r.backend, r.gpu, r.why, r.build);
    const remembered = source.kind === "file" ? { kind: "url", url: new URL(`local-models/${encodeURIComponent(r.name)}`, location.href).href, name: r.name } : { kind: "url", url: source.url, name: r.name };
    localStorage.setItem("precis.model", JSON.stringify(remembered));
    $("model-progress-wrap").hidden = true;
    refreshCached();
    updatePlan();
    probeSpeed();
  } catch (e) {
    $("model-status").textContent = state.model ? `Still using ${state.model.name}.` : "No model loaded.";
    $("model-progress-wrap").hidden = true;
    showError("model-error", `Could not load ${label}: ${e.message}`);
    if (!state.model) delete $("model-status").dataset.loaded;
    refreshCached(); // an interrupted download is listed, ready to resume
  } finally {
    setModelButtons(true);
  }
}

// The cached list's and the catalog's buttons follow the other model buttons.
const setListButtons = (on) => {
  for (const b of document.querySelectorAll("#cached-models button, #catalog button")) b.disabled = !on;
};
function setModelButtons(on) {
  for (const id of ["load-default", "load-url", "model-file"]) $(id).disabled = !on;
  setListButtons(on);
  state.loading = !on;
  syncSummarize();
}

// Summarize is enabled only when it can run; when it cannot, its title and the
// hint beside it say why (a disabled button gets no click to explain itself).
function syncSummarize() {
  const why = state.running ? "A summary is being written: Stop it to start another." : state.loading ? "Wait for the model to finish loading." : !state.model ? "Load a model first (step 1)." : "";
  const b = $("summarize");
  b.disabled = !!why;
  b.title = why || "Summarize the transcript with the loaded model";
  show("summarize-hint", state.running ? "" : why);
}

$("load-default").addEventListener("click", () => loadModel({ kind: "url", url: DEFAULT_MODEL }, "the default model"));
$("model-file").addEventListener("change", (e) => {
  const f = e.target.files[0];
  if (f) loadModel({ kind: "file", file: f, keep: true }, f.name);
  e.target.value = "";
});
$("url-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const url = $("model-url").value.trim();
  if (!url) return showError("model-error", "Type the address of a .gguf file first.");
  let u;
  try {
    u = new URL(url, location.href);
  } catch {
    return showError("model-error", `"${url}" is not a valid URL.`);
  }
  if (u.protocol !== "https:" && u.origin !== location.origin) return showError("model-error", "Only https:// addresses (or this site) can be downloaded.");
  loadUrl(u.href, u.pathname.split("/").pop() || u.href);
});

// The page and its worker reach only this site and the model URLs the user
// typed (www/csp.js). A new URL is stored and the page reloads under a policy
// that includes it, then starts the same load. The transcript is written out
// first; options and the last result already are.
const PENDING = "precis.pendingLoad";
async function loadUrl(url, label) {
  const connect = window.PrecisConnect;
  if (!connect || connect.allows(url)) return loadModel({ kind: "url", url }, label);
  // The reload would end the run and lose its partial output.
  if (state.running) return showError("model-error", `Could not load ${label} yet: a new address reloads the page, which would end the summary under way. Wait for it, or Stop it, then load again.`);
  const refused = connect.remember(url);
  if (refused) return showError("model-error", `Could not load ${label}: ${refused}`);
  setModelButtons(false);
  $("model-status").textContent = `Allowing this page to download ${url}; it reloads, then starts…`;
  try {
    await kvSet("transcript", transcript.value);
  } catch (e) {
    setModelButtons(true);
    return showError("model-error", `Not reloading: the transcript could not be saved first (${e.message}).`);
  }
  sessionStorage.setItem(PENDING, JSON.stringify({ url, label }));
  location.reload();
}

// A worker restart (Stop without shared memory, or an engine crash) loses the
// model; load it again from wherever it came from (usually the cache now).
worker.onCrash = () => {
  const src = state.modelSource;
  state.model = null;
  syncSummarize();
  if (src) loadModel(src.kind === "file" ? { ...src, keep: false } : src, "the model again");
  initBackend();
};

// "Suggested models": each catalog entry with its family, quant, size and when to
// use it; whether it is already in this browser, and whether it was tested here
// (the larger models' files are not reachable from the machines that test Precis).
async function renderCatalog(kept) {
  const list = $("catalog");
  const models = await catalog;
  list.replaceChildren();
  if (!models.length) list.append(Object.assign(document.createElement("li"), { textContent: "The model list (models/manifest.json) could not be read." }));
  for (const e of models) {
    const li = document.createElement("li");
    const here = kept.has(e.url);
    const facts = [e.family, e.quant, e.size ? mib(e.size) : "size not pinned", here ? "in this browser" : null, e.tested ? null : "untested here"].filter(Boolean);
    li.append(Object.assign(document.createElement("strong"), { textContent: e.name }), ` — ${facts.join(" · ")}. ${e.use || ""} `);
    const go = Object.assign(document.createElement("button"), { type: "button", textContent: here ? "Load" : "Download" });
    go.setAttribute("aria-label", `${here ? "Load" : "Download"} ${e.name}`);
    go.addEventListener("click", () => (here ? loadModel({ kind: "url", url: e.url, name: e.file, offline: true }, e.name) : loadUrl(e.url, e.name)));
    li.append(go);
    list.append(li);
  }
  setListButtons(!$("load-url").disabled);
}

async function refreshCached() {
  const list = $("cached-models");
  list.replaceChildren();
  let models = [];
  try {
    models = await cachedModels();
  } catch (e) {
    list.append(Object.assign(document.createElement("li"), { textContent: `The model cache cannot be read: ${e.message}` }));
  }
  let partial = [];
  try {
    partial = await partialDownloads();
  } catch {} // an unreadable parts cache only hides the unfinished downloads
  if (!models.length && !partial.length) list.append(Object.assign(document.createElement("li"), { textContent: "None yet." }));
  // Unfinished downloads take room too: they can be resumed or deleted.
  for (const d of partial) {
    const name = decodeURIComponent(d.url.split("/").pop().split("?")[0]) || d.url;
    const li = document.createElement("li");
    li.className = "partial";
    li.append(Object.assign(document.createElement("span"), { textContent: `${name} — ${mib(d.size)} of ${mib(d.total)} downloaded ` }));
    const resume = Object.assign(document.createElement("button"), { type: "button", textContent: "Resume" });
    resume.setAttribute("aria-label", `Resume downloading ${name}`);
    resume.addEventListener("click", () => loadUrl(d.url, name));
    const del = Object.assign(document.createElement("button"), { type: "button", textContent: "Delete" });
    del.setAttribute("aria-label", `Delete the downloaded part of ${name}`);
    del.addEventListener("click", async () => {
      await deletePartialDownload(d.url);
      refreshCached();
    });
    li.append(resume, " ", del);
    list.append(li);
  }
  for (const m of models) {
    const li = document.createElement("li");
    li.append(Object.assign(document.createElement("span"), { textContent: `${m.name} — ${mib(m.size)} ` }));
    const load = Object.assign(document.createElement("button"), { type: "button", textContent: "Load" });
    load.addEventListener("click", () => loadModel({ kind: "url", url: m.url, name: m.name, offline: true }, m.name));
    const del = Object.assign(document.createElement("button"), { type: "button", textContent: "Delete" });
    del.setAttribute("aria-label", `Delete ${m.name} from this browser`);
    del.addEventListener("click", async () => {
      await deleteCachedModel(m.url);
      refreshCached();
    });
    li.append(load, " ", del);
    list.append(li);
  }
  setListButtons(!$("load-url").disabled); // a list rebuilt while a model loads
  await renderCatalog(new Set(models.map((m) => m.url)));
  if (navigator.storage?.estimate) {
    const { usage = 0, quota = 0 } = await navigator.storage.estimate();
    $("storage-estimate").textContent = `This site uses ${mib(usage)} of ${mib(quota)} the browser allows.`;
  }
}

// ---- transcript
const transcript = $("transcript");
const persistTranscript = debounce(() => save("transcript", transcript.value), 300);
transcript.addEventListener("input", () => {
  persistTranscript();
  updatePlan();
  markStale();
});
$("clear-transcript").addEventListener("click", () => {
  transcript.value = "";
  save("transcript", "");
  updatePlan();
  markStale();
});

// A summary shown beside a transcript it is not of says so. Results saved
// before they carried their transcript count as stale once the text is edited.
function markStale(edited = true) {
  const r = state.result;
  const stale = !!r && (r.source !== undefined ? r.source !== transcript.value : edited);
  $("result").classList.toggle("stale", stale);
  show("result-stale", stale ? "This summary is of an earlier transcript: press Summarize for the one above." : "");
}

async function readTranscriptFile(file) {
  if (!/\.(txt|srt|vtt)$/i.test(file.name) && !/^text\//.test(file.type)) {
    return showError("transcript-error", `${file.name} is not a transcript: open a .txt, .srt or .vtt file.`);
  }
  if (file.size > 5 * 1024 * 1024) {
    return showError("transcript-error", `${file.name} is ${mib(file.size)}; transcripts up to 5 MiB are accepted.`);
  }
  transcript.value = await file.text();
  save("transcript", transcript.value);
  updatePlan();
  markStale();
}
$("transcript-file").addEventListener("change", (e) => {
  if (e.target.files[0]) readTranscriptFile(e.target.files[0]);
  e.target.value = "";
});
for (const [el, handler] of [
  [$("drop-zone"), (f) => readTranscriptFile(f)],
  [$("model-panel"), (f) => loadModel({ kind: "file", file: f, keep: true }, f.name)],
]) {
  // Both must be cancelled for the element to accept a drop.
  for (const type of ["dragenter", "dragover"]) {
    el.addEventListener(type, (e) => {
      e.preventDefault();
      el.classList.add("dragging");
    });
  }
  el.addEventListener("dragleave", () => el.classList.remove("dragging"));
  el.addEventListener("drop", (e) => {
    e.preventDefault();
    el.classList.remove("dragging");
    const f = e.dataTransfer.files[0];
    if (f) handler(f);
  });
}

function options() {
  return { format: $("format").value, length: $("length").value, ...(window.precisTestOptions || {}) };
}

// This device's speed with the loaded model on its backend, from its last summary
// (tokens/s read and written), kept per model so the estimate below means this device.
const speedKey = () => state.model && `precis.speed.${state.model.name}.${state.model.backend || "cpu"}`;
function rememberSpeed(stats, probe = false) {
  // Tokens from the prefix cache were not read: the speed counts the rest.
  const prefill = (stats.prompt_tokens - (stats.cached_tokens || 0)) / stats.prefill_s, decode = stats.generated_tokens / stats.decode_s;
  if (speedKey() && isFinite(prefill) && isFinite(decode) && prefill > 0 && decode > 0) localStorage.setItem(speedKey(), JSON.stringify({ prefill, decode, probe }));
}
function knownSpeed() {
  try {
    return JSON.parse(localStorage.getItem(speedKey()) || "null");
  } catch {
    return null;
  }
}

// The first visit with a model has no summary to time: a short run of the
// engine (32 tokens read, 3 written) gives its speeds here, so the estimate
// exists before the first Summarize. A real summary's speeds replace it.
const PROBE_TEXT = "Today we look at how a cache decides what to keep. When memory is full, something has to go, and the choice matters: a good policy keeps the pages that will be asked for again soon. ".repeat(4);
async function probeSpeed() {
  if (!state.model || knownSpeed()) return;
  try {
    const r = await worker.request({ type: "bench", text: PROBE_TEXT, promptTokens: 32, genTokens: 3 });
    if (!knownSpeed()) rememberSpeed({ prompt_tokens: r.prompt_tokens, generated_tokens: r.generated_tokens, prefill_s: r.prefill_s, decode_s: r.decode_s }, true);
    updatePlan();
  } catch (e) {
    console.warn(`the speed probe failed (${e.message}); the estimate waits for a first summary`);
  }
}

// "about N model passes, ~M min on this device" before the run, from the plan and
// the last run's speed: a 5 MB transcript is hours of passes, and the user should
// know that before pressing Summarize.
function estimate(p) {
  const passes = Math.max(1, p.passes);
  const what = passes === 1 ? "1 model pass" : `${passes.toLocaleString()} model passes`;
  const speed = knownSpeed();
  if (!speed) return `about ${what} (timing this device…)`;
  const seconds = p.prompt_tokens / speed.prefill + (passes * p.answer_tokens) / speed.decode;
  return `about ${what}, ~${duration(seconds)} on this device${speed.probe ? " (from a short speed test)" : ""}`;
}

// Character and token counts, and whether the transcript will be cut into
// chunks: the model's own tokenizer when a model is loaded, chars/4 before.
const updatePlan = debounce(async () => {
  const text = transcript.value;
  // During a run the worker answers no plan: an exact count of this very text
  // stays as it is rather than turning into an estimate.
  if (state.running && state.planned?.text === text) return;
  showError("transcript-error", "");
  show("transcript-warning", "");
  state.plan = null;
  if (!text.trim()) {
    $("transcript-stats").textContent = "";
    return;
  }
  const chars = text.length;
  if (!state.model || state.running) {
    $("transcript-stats").textContent = `${chars.toLocaleString()} characters · ≈${Math.round(chars / 4).toLocaleString()} tokens (estimate)`;
    if (new Blob([text]).size > 5 * 1024 * 1024) showError("transcript-error", `The transcript is ${mib(new Blob([text]).size)}; the limit is 5 MiB. Shorten it.`);
    return;
  }
  try {
    const p = await worker.request({ type: "plan", text, options: options() });
    if (text !== transcript.value) return;
    state.plan = p;
    state.planned = { text, plan: p };
    $("transcript-stats").textContent = `${chars.toLocaleString()} characters · ${p.tokens.toLocaleString()} tokens · ${p.format}${p.duration ? ` · ${duration(p.duration)}` : ""} · ${estimate(p)}`;
    if (!p.one_pass) {
      show("transcript-warning", `This transcript (${p.tokens.toLocaleString()} tokens) does not fit the model's ${p.context}-token context with its answer: it will be summarized in chunks (map-reduce), which takes several passes and longer.`);
    }
  } catch (e) {
    if (text === transcript.value) showError("transcript-error", `Transcript problem: ${e.message}`);
  }
}, 400);

// ---- running
$("summarize").addEventListener("click", run);
$("stop").addEventListener("click", stop);
for (const id of ["format", "length"]) {
  $(id).addEventListener("change", () => {
    localStorage.setItem(`precis.${id}`, $(id).value);
    updatePlan();
  });
}

async function run() {
  const text = transcript.value;
  showError("run-error", "");
  show("run-note", "");
  if (!text.trim()) return showError("run-error", "The transcript is empty: paste or open one first.");
  if (!state.model) return showError("run-error", "Load a model first.");
  const opts = options();
  state.running = true;
  state.abort = abortFlag();
  syncSummarize();
  $("stop").disabled = false;
  $("run-progress-wrap").hidden = false;
  $("run-progress").value = 0;
  const live = $("live");
  live.textContent = "";
  live.hidden = true; // shown with the first text: reading the prompt writes none
  show("live-label", "");
  // The text streamed so far is kept as it grows, at most a second behind: a
  // reload (or a crash) in the middle of a run, or after a Stop, must not lose
  // it. A throttle, not a debounce: tokens arrive faster than any quiet period.
  // A token held back by the throttle is saved a second later all the same: the
  // next pass's prompt can take seconds before any more text comes.
  let savedAt = -Infinity;
  let trailing = null;
  const savePartialNow = () => {
    trailing = null;
    savedAt = performance.now();
    save("partial", live.textContent);
  };
  const persistPartial = () => {
    const since = performance.now() - savedAt;
    if (since >= 1000) savePartialNow();
    else trailing ??= setTimeout(savePartialNow, 1000 - since);
  };
  const progress = new RunProgress({ answerTokens: state.plan?.answer_tokens || 256, speed: knownSpeed(), format: opts.format });
  state.progress = progress;
  const status = () => {
    $("run-status").textContent = progress.text();
    $("run-status").dataset.phase = progress.phase;
    $("run-progress").value = progress.fraction();
  };
  status();
  const t0 = performance.now();
  try {
    const result = await worker.request(
      { type: "summarize", text, options: opts, abort: state.abort },
      {
        onEvent: (ev) => {
          if (progress.phase === "stopping") return;
          // Speeds from the worker's timestamps (only their differences count:
          // its clock has another origin than the page's).
          progress.event(ev, ev.at);
          if (ev.type === "start") {
            if (ev.pass.kind === "chunk" || progress.passes > 1) live.append(`\n— ${progress.label} —\n`);
          } else if (ev.type === "text") {
            live.hidden = false;
            live.append(ev.piece);
            live.scrollTop = live.scrollHeight;
            persistPartial();
          } else if (ev.type === "fallback") {
            // The GPU failed mid-run: the worker runs the same request again on
            // the CPU. What was streamed so far stays above the marker.
            live.append(`\n— WebGPU failed (${ev.reason}); starting again on the CPU —\n`);
            live.hidden = false;
            setBadge("cpu", state.model && state.model.gpu, "WebGPU failed during a summary");
            if (state.model) state.model.backend = "cpu";
            $("model-status").dataset.backend = "cpu";
            show("model-note", `WebGPU failed during a summary (${ev.reason}); the model now runs on the CPU.`);
          }
          status();
        },
      },
    );
    rememberSpeed(result.stats);
    state.result = { ...result, length: opts.length, source: text, seconds: (performance.now() - t0) / 1000, at: new Date().toISOString() };
    save("result", state.result);
    save("partial", "");
    render(state.result);
    markStale(false);
    live.hidden = true;
    $("run-status").textContent = `Done in ${duration(state.result.seconds)}: ${result.stats.generated_tokens} tokens generated in ${result.stats.passes} pass${result.stats.passes > 1 ? "es" : ""} (${(result.stats.generated_tokens / Math.max(result.stats.decode_s, 1e-3)).toFixed(1)} tok/s writing${result.stats.cached_tokens ? `, ${result.stats.cached_tokens.toLocaleString("en-US")} prompt tokens from the prefix cache` : ""}) on ${result.backend === "webgpu" ? "WebGPU" : "the CPU"}${result.fallback ? " after WebGPU failed" : ""}.`;
    $("run-status").dataset.phase = "done";
    $("run-progress").value = 1;
  } catch (e) {
    const stopped = progress.phase === "stopping" || /stopped/.test(e.message);
    save("partial", live.textContent);
    if (stopped) {
      progress.stopped();
      status();
      // A Stop is what the user asked for: a note, not an error.
      const kept = [live.textContent.trim() ? "The partial text stays below." : "", state.result ? "The previous summary is kept." : ""].filter(Boolean).join(" ");
      show("run-note", kept);
      if (live.textContent.trim()) show("live-label", "Partial text: the run was stopped before it finished.");
      else live.hidden = true;
    } else {
      showError("run-error", `The summary failed: ${e.message}`);
    }
    if (state.result) render(state.result);
  } finally {
    // The run's end saved the partial text (or cleared it): no late save after that.
    clearTimeout(trailing);
    state.running = false;
    state.abort = null;
    $("stop").disabled = true;
    syncSummarize();
    updatePlan();
  }
}

function stop() {
  if (!state.running) return;
  $("stop").disabled = true;
  // The status turns at once: the engine stops at its next check (between two
  // layers while it reads, between tokens while it writes).
  state.progress?.stopping();
  $("run-status").textContent = "stopping…";
  if (state.abort) Atomics.store(new Int32Array(state.abort), 0, 1);
  else worker.restart("summarizing was stopped");
}

// ---- rendering (textContent only)
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function render(result) {
  $("result").hidden = false;
  const cards = $("cards");
  cards.replaceChildren();
  const raw = $("raw");
  $("result-meta").textContent = `${result.format}, ${result.length} · ${result.at ? new Date(result.at).toLocaleString() : ""}`;
  let data = null;
  if (result.format === "structured") {
    try {
      data = JSON.parse(result.text);
    } catch (e) {
      cards.append(el("p", "error", `The model's JSON does not parse (${e.message}); showing it raw.`));
    }
  }
  raw.textContent = data ? JSON.stringify(data, null, 2) : result.text;
  $("toggle-raw").hidden = !data;
  $("download-json").hidden = false;
  if (!data) {
    // Notes are Markdown of one small grammar, drawn as headings and lists
    // (notes.js); the other formats are plain text.
    cards.append(result.format === "notes" ? renderNotes(result.text) : el("div", "card text-output", result.text));
    raw.hidden = true;
    return;
  }
  const intro = el("article", "card intro");
  intro.append(el("h3", null, "Introduction"), el("p", null, data.introduction));
  cards.append(intro);
  for (const s of data.sections || []) {
    const c = el("article", "card section");
    c.append(el("h3", null, s.title));
    const ul = el("ul");
    for (const b of s.content || []) ul.append(el("li", null, b));
    c.append(ul, chips(s.topics || []));
    cards.append(c);
  }
  const topics = el("article", "card topics");
  topics.append(el("h3", null, "Topics"), chips(data.topics || []));
  cards.append(topics);
  const general = el("article", "card general");
  general.append(el("h3", null, "General topics"));
  for (const g of data.generalTopics || []) {
    const row = el("div", "complexity");
    const pct = Math.round(Math.max(0, Math.min(1, Number(g.complexity) || 0)) * 100);
    const bar = el("div", "bar");
    bar.setAttribute("role", "meter");
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "1");
    bar.setAttribute("aria-valuenow", String(g.complexity));
    bar.setAttribute("aria-label", `Complexity of ${g.name}`);
    const fill = el("div", "fill");
    fill.style.width = `${pct}%`;
    bar.append(fill);
    row.append(el("span", "name", g.name), bar, el("span", "value", Number(g.complexity).toFixed(2)));
    general.append(row);
  }
  cards.append(general);
  setRaw($("toggle-raw").getAttribute("aria-pressed") === "true");
}

function chips(list) {
  const ul = el("ul", "chips");
  for (const t of list) ul.append(el("li", "chip", t));
  return ul;
}

function setRaw(on) {
  $("toggle-raw").setAttribute("aria-pressed", String(on));
  $("toggle-raw").textContent = on ? "Show cards" : "Show raw JSON";
  $("raw").hidden = !on;
  $("cards").hidden = on;
}
$("toggle-raw").addEventListener("click", () => setRaw($("toggle-raw").getAttribute("aria-pressed") !== "true"));

function download(name, type, text) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}
$("copy").addEventListener("click", async () => {
  const r = state.result;
  if (!r) return;
  try {
    await navigator.clipboard.writeText(r.format === "structured" ? $("raw").textContent : r.text);
    $("copy").textContent = "Copied";
    setTimeout(() => ($("copy").textContent = "Copy"), 1500);
  } catch (e) {
    showError("run-error", `Copy failed (${e.message}); use Download instead.`);
  }
});
$("download-json").addEventListener("click", () => {
  const r = state.result;
  if (!r) return;
  const body = r.format === "structured" ? JSON.parse(r.text) : { format: r.format, length: r.length, text: r.text };
  download(`summary-${r.format}.json`, "application/json", JSON.stringify(body, null, 2) + "\n");
});
$("download-md").addEventListener("click", () => state.result && download(`summary-${state.result.format}.md`, "text/markdown", markdown(state.result)));

// ---- start
async function start() {
  for (const id of ["format", "length"]) {
    const v = localStorage.getItem(`precis.${id}`);
    if (v && [...$(id).options].some((o) => o.value === v)) $(id).value = v;
  }
  try {
    const [t, r, partial] = await Promise.all([kvGet("transcript"), kvGet("result"), kvGet("partial")]);
    if (t && !transcript.value) transcript.value = t;
    if (r) {
      state.result = r;
      render(r);
      markStale(false);
    }
    if (partial) {
      $("live").textContent = partial;
      $("live").hidden = false;
      show("live-label", "Partial text: the last run was stopped or the page was reloaded before it finished. It is not a complete summary.");
    }
  } catch (e) {
    showError("transcript-error", `Saved work could not be read: ${e.message}`);
  }
  updatePlan();
  await initBackend();
  refreshCached();
  // A load that asked for this reload (loadUrl) goes first; otherwise reopen the
  // last model when this browser has it cached: no network needed.
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  sessionStorage.removeItem(PENDING);
  const last = JSON.parse(localStorage.getItem("precis.model") || "null");
  if (pending?.url) {
    loadModel({ kind: "url", url: pending.url }, pending.label || pending.url);
  } else if (last && (await cachedModels()).some((m) => m.url === last.url)) {
    loadModel({ kind: "url", url: last.url, name: last.name, offline: true }, last.name || "the last model");
  }
  if ("serviceWorker" in navigator && location.protocol !== "file:" && !window.precisNoServiceWorker) {
    navigator.serviceWorker.register("sw.js").catch((e) => console.warn("offline support unavailable:", e.message));
  }
}
start();
