// `make bench`'s browser rows: prefill and decode tokens/s of Precis in headless
// Chromium on both backends (WebGPU — SwiftShader here — and the CPU wasm
// engine), next to llama.cpp's wasm build (npm @wllama/wllama, pinned in
// package.json here) on the same model, the same prompt tokens and the same
// browser, with the ratios. Not a test: it asserts nothing about speed.
//
//   node bench/browser/run.mjs [--prompt-tokens 512] [--gen-tokens 128]
//        [--gpu-prompt-tokens 32] [--gpu-gen-tokens 4] [--prompt-file FILE] [--no-gpu]
//        [--runs 3]
//
// The prompt is the first N tokens of the file, tokenized raw by Precis (as
// `precis generate --raw`); wllama is given the text of those tokens (its API
// takes text, not ids; this 3.13 build fails on an id array) and tokenizes it
// itself — the table shows the prompt length each engine saw. Both generate
// greedily with end-of-generation ignored; decode tok/s counts the tokens after
// the first (which prefill yields) for both. Each engine does one short untimed
// warm-up run after loading, then `--runs` timed runs on the same loaded model; a
// row shows the median prefill and the median decode of its runs (the JSON line
// lists every run): on this 2-core VM one run's decode drifts by 10-15% from the
// next, enough to turn a ratio of two rows by as much. The CPU rows run at 1, 2, 4, … threads up to the
// machine's cores, both engines on a cross-origin-isolated page (COOP/COEP:
// SharedArrayBuffer, so Precis's threaded build pkg-mt/ and wllama's pthread build
// can run), each reporting what it used; then both on a plain page, where each
// falls back to its single-threaded build. SwiftShader takes
// seconds per token, so the WebGPU row is a short run (32-token prompt, 4
// tokens by default) compared with wllama on the same short run.
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ARGS, CHROMIUM } from "../../tests/browser/chromium.mjs";
import { arg, serveStatic } from "./serve.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const dist = path.join(root, "www/dist");
const wllamaDir = path.join(here, "node_modules/@wllama/wllama/esm");
const nPrompt = Number(arg("prompt-tokens", 512));
const nGen = Number(arg("gen-tokens", 128));
const gpuPrompt = Number(arg("gpu-prompt-tokens", 32));
const gpuGen = Number(arg("gpu-gen-tokens", 4));
const runs = Number(arg("runs", 3));
const promptFile = path.resolve(arg("prompt-file", [path.join(root, "../shared/corpus/transcripts/dpo.txt"), path.join(root, "README.md")].find((f) => fs.existsSync(f))));
const withGpu = !process.argv.includes("--no-gpu");
for (const [k, v] of Object.entries({ nPrompt, nGen, gpuPrompt, gpuGen })) if (!(v >= 2)) throw new Error(`${k} must be at least 2 (got ${v})`);
if (!(Number.isInteger(runs) && runs >= 1)) throw new Error(`--runs must be a whole number of at least 1 (got ${arg("runs", 3)})`);
if (!fs.existsSync(path.join(dist, "pkg/precis_bg.wasm"))) throw new Error("www/dist is not built: run `make web` first");
if (!fs.existsSync(path.join(wllamaDir, "wasm/wllama.wasm"))) throw new Error("wllama is not installed: run `npm ci` in bench/browser first");
const wllamaVersion = JSON.parse(fs.readFileSync(path.join(wllamaDir, "../package.json"), "utf8")).version;
let text = fs.readFileSync(promptFile, "utf8");
while (text.length < nPrompt * 8) text += "\n" + text; // a short file repeated until it has enough tokens

// The bench page: Precis through its worker protocol, wllama through its API.
const PAGE = `<!doctype html><meta charset="utf-8"><title>bench</title><script type="module">
import { PrecisWorker } from "./precis.js";
import { Wllama } from "./wllama/index.js";
const MODEL = new URL("models/SmolLM2-135M-Instruct.Q4_1.gguf", location.href).href;
// The first run with the median prefill and the median decode of all runs (each on
// its own: the run with one need not have the other; the lower of the middle two for
// an even count), and every run's.
const median = (xs) => [...xs].sort((a, b) => a - b)[(xs.length - 1) >> 1];
const summed = (all) => ({
  ...all[0], prefill_tok_s: median(all.map((r) => r.prefill_tok_s)), decode_tok_s: median(all.map((r) => r.decode_tok_s)),
  prefill_runs: all.map((r) => +r.prefill_tok_s.toFixed(1)), decode_runs: all.map((r) => +r.decode_tok_s.toFixed(2)),
});
window.precisRun = async ({ backend, text, promptTokens, genTokens, threads, runs }) => {
  const w = new PrecisWorker({ threads });
  try {
    const loaded = await w.request({ type: "load", source: { kind: "url", url: MODEL }, backend });
    await w.request({ type: "bench", text, promptTokens: Math.min(8, promptTokens), genTokens: 2 });
    const all = [];
    for (let i = 0; i < runs; i++) all.push(await w.request({ type: "bench", text, promptTokens, genTokens }));
    const r = summed(all);
    return { ...r, prompt_ids: Array.from(r.prompt_ids), backend: loaded.backend, threads: loaded.build.threads, build: loaded.build.build, heap_mib: loaded.heap / 1048576, isolated: crossOriginIsolated };
  } finally {
    w.terminate();
  }
};
window.wllamaRun = async ({ prompt, promptTokens, genTokens, threads, runs }) => {
  const wl = new Wllama({ default: new URL("wllama/wasm/wllama.wasm", location.href).href }, { suppressNativeLog: true });
  const blob = await (await fetch(MODEL)).blob();
  await wl.loadModel([blob], { n_ctx: promptTokens + genTokens + 64, n_batch: promptTokens + 16, n_ubatch: promptTokens + 16, n_threads: threads, n_gpu_layers: 0 });
  const run = (prompt, n) => wl.createCompletion({ prompt, max_tokens: n, temperature: 0, ignore_eos: true, cache_prompt: false });
  await run(prompt.slice(0, 40), 2);
  const all = [];
  for (let i = 0; i < runs; i++) {
    const t = (await run(prompt, genTokens)).timings;
    all.push({
      prompt_tokens: t.prompt_n, generated_tokens: t.predicted_n, prefill_s: t.prompt_ms / 1000, decode_s: t.predicted_ms / 1000,
      prefill_tok_s: t.prompt_n / (t.prompt_ms / 1000), decode_tok_s: (t.predicted_n - 1) / (t.predicted_ms / 1000),
    });
  }
  const out = { ...summed(all), multithread: wl.isMultithread(), threads: wl.getNumThreads(), isolated: crossOriginIsolated };
  await wl.exit();
  return out;
};
window.ready = true;
</script>`;

function serve(isolated) {
  const headers = isolated ? { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" } : {};
  return serveStatic({ root: dist, pages: { "/bench.html": PAGE }, trees: { wllama: wllamaDir }, headers });
}

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
const chromiumVersion = browser.version();
const iso = await serve(true), plain = await serve(false);
const rows = [];
async function onPage(site, fn, arg, timeout) {
  const ctx = await browser.newContext({ serviceWorkers: "block" });
  const page = await ctx.newPage();
  page.setDefaultTimeout(timeout);
  try {
    await page.goto(`${site.base}bench.html`);
    await page.waitForFunction(() => window.ready === true);
    const t = Date.now();
    const r = await page.evaluate(([f, a]) => window[f](a), [fn, arg]);
    log(`  ${fn} (${arg.backend || ""} ${arg.threads} threads asked, ${site === iso ? "isolated" : "not isolated"}): ${r.prompt_tokens} + ${r.generated_tokens} tokens, ${r.prefill_tok_s.toFixed(1)} / ${r.decode_tok_s.toFixed(2)} tok/s (median of prefill ${r.prefill_runs.join(", ")}, decode ${r.decode_runs.join(", ")}; ${((Date.now() - t) / 1000).toFixed(0)} s with loading)`);
    return r;
  } finally {
    await ctx.close();
  }
}
const log = (s) => process.stderr.write(`${s}\n`);
try {
  const threads = os.availableParallelism();
  log(`browser bench: Chromium ${chromiumVersion}, ${path.basename(promptFile)}; CPU rows ${nPrompt}+${nGen} tokens, WebGPU rows ${gpuPrompt}+${gpuGen}; load average ${os.loadavg().map((x) => x.toFixed(1)).join(" ")} on ${threads} cores`);
  const counts = [1, 2, 4, 8, 16].filter((n) => n <= Math.max(2, threads));
  const wl = (prompt, promptTokens, genTokens, n) => ({ prompt, promptTokens, genTokens, threads: n, runs });
  let cpu = null;
  for (const n of counts) {
    const r = await onPage(iso, "precisRun", { backend: "cpu", text, promptTokens: nPrompt, genTokens: nGen, threads: n, runs }, 900_000);
    cpu = cpu || r;
    rows.push({ engine: `Precis CPU (${r.build})`, ...r });
    rows.push({ engine: "wllama, isolated", ...(await onPage(iso, "wllamaRun", wl(cpu.prompt_text, nPrompt, nGen, n), 900_000)) });
  }
  const single = await onPage(plain, "precisRun", { backend: "cpu", text, promptTokens: nPrompt, genTokens: nGen, threads, runs }, 900_000);
  rows.push({ engine: `Precis CPU (${single.build}), plain`, ...single });
  rows.push({ engine: "wllama, not isolated", ...(await onPage(plain, "wllamaRun", wl(cpu.prompt_text, nPrompt, nGen, threads), 900_000)) });
  if (withGpu) {
    const gpu = await onPage(iso, "precisRun", { backend: "webgpu", text, promptTokens: gpuPrompt, genTokens: gpuGen, runs: 1 }, 1_800_000);
    rows.push({ engine: `Precis ${gpu.backend === "webgpu" ? "WebGPU" : "CPU (no WebGPU!)"}`, ...gpu, threads: "gpu" });
    rows.push({ engine: "wllama, isolated", ...(await onPage(iso, "wllamaRun", wl(gpu.prompt_text, gpuPrompt, gpuGen, threads), 900_000)) });
  }
} finally {
  await browser.close();
  iso.server.close();
  plain.server.close();
}

const loadAfter = os.loadavg().map((x) => x.toFixed(1)).join(" ");
const f = (x, w, d = 1) => (typeof x === "number" ? x.toFixed(d) : String(x)).padStart(w);
console.log(`\nbrowser (headless Chromium ${chromiumVersion}, WebGPU on SwiftShader; wllama ${wllamaVersion} = llama.cpp's wasm build):`);
console.log(`${"engine".padEnd(24)}${"threads".padStart(8)}${"prompt".padStart(8)}${"gen".padStart(6)}${"prefill tok/s".padStart(15)}${"decode tok/s".padStart(14)}`);
for (const r of rows) console.log(`${r.engine.padEnd(24)}${f(r.threads, 8, 0)}${f(r.prompt_tokens, 8, 0)}${f(r.generated_tokens, 6, 0)}${f(r.prefill_tok_s, 15)}${f(r.decode_tok_s, 14, 2)}`);
const ratio = (a, b, label) => console.log(`${`ratio ${label}`.padEnd(46)}${f(a.prefill_tok_s / b.prefill_tok_s, 15, 2)}${f(a.decode_tok_s / b.decode_tok_s, 14, 2)}`);
const cpuRows = rows.filter((r) => r.engine.startsWith("Precis CPU (threaded)"));
for (const r of cpuRows) {
  const them = rows.find((x) => x.engine === "wllama, isolated" && x.threads === r.threads && x.prompt_tokens > gpuPrompt);
  if (them) ratio(r, them, `Precis ${r.threads} / wllama ${them.threads} threads`);
}
const one = cpuRows.find((r) => r.threads === 1);
for (const r of cpuRows.filter((r) => r.threads > 1)) ratio(r, one, `Precis ${r.threads} threads / Precis 1 thread`);
const gpuRow = rows.find((r) => r.threads === "gpu");
if (gpuRow) ratio(gpuRow, rows[rows.indexOf(gpuRow) + 1], "Precis WebGPU / wllama isolated (short)");
const sizes = Object.fromEntries(["pkg", "pkg-mt"].map((d) => [d, fs.statSync(path.join(dist, d, "precis_bg.wasm")).size]));
console.log(`module sizes: single-threaded pkg/precis_bg.wasm ${(sizes.pkg / 1048576).toFixed(2)} MiB, threaded pkg-mt/precis_bg.wasm ${(sizes["pkg-mt"] / 1048576).toFixed(2)} MiB; wasm heap after loading: ${rows.filter((r) => r.heap_mib).map((r) => `${r.build} ${r.threads}: ${r.heap_mib.toFixed(0)} MiB`).join(", ")}`);
console.log(`load average at the end: ${loadAfter} (other work on the machine slows every row, threads most)`);
console.log(JSON.stringify({ chromium: chromiumVersion, loadAfter, wllama: wllamaVersion, module_bytes: sizes, rows: rows.map(({ prompt_ids, prompt_text, ...r }) => r) }));
