// `make bench`'s browser time-to-first-text rows (issue 21): per format, headless
// Chromium, the default model, Precis's worker as the page and the Summarizer API
// use it. Three runs per format, each of a 14,500-character corpus transcript:
//   cold    — a fresh profile, the whole prompt read;
//   cached  — another transcript next, in the same worker (the prompt prefix kept
//             in memory by the first run);
//   stored  — after a reload (a new worker), the prefix loaded from the Cache API.
// Not a test: it asserts nothing about speed, and SwiftShader/this machine's load
// say nothing about a user's laptop. Prints a table and one JSON line.
//
// The page is cross-origin isolated as `make run` serves it (the threaded CPU build,
// at --threads, default all cores); --plain serves it without COOP/COEP (the
// single-threaded build).
//
//   node bench/browser/ttft.mjs [--formats tldr,structured] [--backend cpu|webgpu]
//     [--threads N] [--plain]
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ARGS, CHROMIUM, NO_GPU } from "../../tests/browser/chromium.mjs";
import { arg, serveStatic } from "./serve.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const dist = path.join(root, "www/dist");
const corpus = path.resolve(root, "../shared/corpus/transcripts");
const formats = arg("formats", "tldr,structured").split(",");
const backend = arg("backend", "cpu");
const plain = process.argv.includes("--plain");
const threads = Number(arg("threads", String(os.cpus().length)));
if (!fs.existsSync(path.join(dist, "pkg/precis_bg.wasm"))) throw new Error("www/dist is not built: run `make web` first");
if (!fs.existsSync(path.join(corpus, "dpo.txt"))) {
  console.log(`ttft (browser): needs ${corpus} (skipped)`);
  process.exit(0);
}
const first = fs.readFileSync(path.join(corpus, "dpo.txt"), "utf8");
const second = fs.readFileSync(path.join(corpus, "sql-backend.txt"), "utf8");

// The bench page: one worker, one run, first-text and total time from its events.
const PAGE = `<!doctype html><meta charset="utf-8"><title>ttft</title><script type="module">
import { PrecisWorker } from "./precis.js";
const MODEL = new URL("models/SmolLM2-135M-Instruct.Q4_1.gguf", location.href).href;
let w = null, build = null;
window.ttft = async ({ backend, text, format }) => {
  if (!w) {
    w = new PrecisWorker({ threads: ${threads} });
    build = (await w.request({ type: "load", source: { kind: "url", url: MODEL }, backend })).build || null;
  }
  const t0 = performance.now();
  let firstText = null;
  const r = await w.request({ type: "summarize", text, options: { format, length: "medium" } }, {
    onEvent: (ev) => { if (ev.type === "text" && firstText === null) firstText = (performance.now() - t0) / 1000; },
  });
  return { first_text_s: firstText, total_s: (performance.now() - t0) / 1000, prompt_tokens: r.stats.prompt_tokens, cached_tokens: r.stats.cached_tokens, generated_tokens: r.stats.generated_tokens, backend: r.backend, prefix: r.prefix || null, cpu: build };
};
window.ready = true;
</script>`;

const headers = plain ? {} : { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" };
const { server, base: site } = await serveStatic({ root: dist, pages: { "/ttft.html": PAGE }, headers });
const base = `${site}ttft.html`;

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
const chromiumVersion = browser.version();
const rows = [];
try {
  for (const format of formats) {
    const ctx = await browser.newContext({ serviceWorkers: "block" });
    if (backend === "cpu") await ctx.addInitScript(NO_GPU);
    const page = await ctx.newPage();
    const run = async (label, text) => {
      await page.waitForFunction(() => window.ready === true);
      const r = await page.evaluate((a) => window.ttft(a), { backend, text, format });
      rows.push({ format, run: label, ...r });
      console.log(`${format.padEnd(11)} ${label.padEnd(7)} first text ${r.first_text_s.toFixed(1).padStart(6)} s   total ${r.total_s.toFixed(1).padStart(6)} s   prompt ${r.prompt_tokens} (${r.cached_tokens} cached)   ${r.generated_tokens} generated on ${r.backend}${r.cpu ? ` (${r.cpu.build}, ${r.cpu.threads} thread${r.cpu.threads > 1 ? "s" : ""})` : ""}`);
    };
    await page.goto(base);
    await run("cold", first);
    await run("cached", second);
    await page.reload();
    await run("stored", second);
    await ctx.close();
  }
} finally {
  await browser.close();
  server.close();
}
console.log(JSON.stringify({ bench: "ttft-browser", chromium: chromiumVersion, backend, rows }));
