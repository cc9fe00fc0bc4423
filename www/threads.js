// Which build of the engine this worker runs, and its threads.
//
// Two builds sit in www/dist: pkg/ (single-threaded) and pkg-mt/ (threaded:
// shared wasm memory and atomics, `make wasm-mt`). Shared memory needs a
// cross-origin-isolated page (COOP + COEP headers, as www/serve.py sends); where
// the page is not isolated, or the browser cannot make shared wasm memory, the
// single-threaded build loads instead. The threaded build's pool workers are Web
// Workers started here (www/pool-worker.js), each instantiating the same module on
// the same memory and then never returning (src/wasm/threads.rs): the engine's
// own worker is the pool's caller, so neither it nor the page ever waits on them.

// More threads than this stop helping on the machines we measured: decode is
// memory-bound and the page and the browser need a core too.
export const MAX_THREADS = 8;

// The default: every core but one (the page's), at least 1, at most MAX_THREADS.
export function defaultThreads() {
  const cores = (typeof navigator !== "undefined" && navigator.hardwareConcurrency) || 1;
  return Math.max(1, Math.min(MAX_THREADS, cores - 1));
}

// Whether the threaded build can run here, and if not, why (for the model panel).
export function threadSupport() {
  if (!self.crossOriginIsolated) return { ok: false, why: "the page is not cross-origin isolated (no COOP/COEP headers), so it cannot share memory between threads" };
  if (typeof SharedArrayBuffer !== "function") return { ok: false, why: "this browser has no SharedArrayBuffer" };
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  } catch {
    return { ok: false, why: "this browser cannot make shared WebAssembly memory" };
  }
  return { ok: true, why: null };
}

async function compile(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return WebAssembly.compileStreaming
    ? WebAssembly.compileStreaming(res).catch(async () => WebAssembly.compile(await (await fetch(url)).arrayBuffer()))
    : WebAssembly.compile(await res.arrayBuffer());
}

// Starts `n` pool workers on `module` and `memory`; resolves once every one has
// joined the pool (it joins inside poolWorker(), which never returns, so the pool's
// own count is polled), or rejects with the first worker's error, or after 30 s.
// Each worker is pushed onto `workers` as it starts, so a caller can end them on failure.
async function startWorkers(P, module, memory, glue, n, workers) {
  let failed = null;
  for (let i = 0; i < n; i++) {
    const w = new Worker(new URL("pool-worker.js", import.meta.url), { type: "module", name: `precis-thread-${i + 1}` });
    w.onmessage = ({ data }) => {
      if (data.type === "error") failed = failed || new Error(`engine thread ${i + 1}: ${data.message}`);
    };
    w.onerror = (e) => {
      failed = failed || new Error(`engine thread ${i + 1} failed to start: ${e.message || "script error"}`);
    };
    w.postMessage({ glue, module, memory });
    workers.push(w);
  }
  const t0 = performance.now();
  while (P.poolJoined() < n) {
    if (failed) throw failed;
    if (performance.now() - t0 > 30000) throw new Error(`only ${P.poolJoined()} of ${n} engine threads started within 30 s`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return workers;
}

// Loads the engine's module: the threaded build with `threads` threads where it can
// run (all cores but one by default), else the single-threaded one. Returns the glue's
// exports `P`, the instance's exports `wasm`, and what was chosen, for the model panel.
//
// A threaded build that fails to start (its module does not compile or
// instantiate, a pool worker's script fails, or the threads do not join within
// 30 s) is dropped, its workers ended, and the single-threaded build loads in its
// place: the user gets a slower engine and the reason, never no engine.
export async function loadBuild(threads) {
  const support = threadSupport();
  const wanted = Math.max(1, Math.min(64, Math.floor(threads || defaultThreads())));
  if (!support.ok) return loadSingle(support.why);
  const workers = []; // filled by startWorkers as they start, so a failure can end them
  try {
    const glue = new URL("pkg-mt/precis.js", import.meta.url).href;
    const [P, module] = await Promise.all([import(glue), compile(new URL("pkg-mt/precis_bg.wasm", import.meta.url).href)]);
    const wasm = await P.default({ module_or_path: module });
    const spawn = P.startPool(wanted);
    await startWorkers(P, module, wasm.memory, glue, spawn, workers);
    return { P, wasm, build: "threaded", threads: P.poolThreads(), workers, why: threads ? "asked for" : `all ${navigator.hardwareConcurrency || 1} cores but one (at most ${MAX_THREADS})` };
  } catch (e) {
    for (const w of workers) w.terminate();
    return loadSingle(`the threaded build failed to start (${e && e.message ? e.message : e}), so the single-threaded one runs`);
  }
}

async function loadSingle(why) {
  const P = await import("./pkg/precis.js");
  const wasm = await P.default();
  return { P, wasm, build: "single", threads: 1, why };
}
