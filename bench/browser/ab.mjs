// Two builds of the web app, A and B, interleaved: Precis's CPU engine at 1 and 2
// threads on a cross-origin-isolated page, the order of A and B swapped every round,
// each page loading the model, one untimed warm-up, then two timed runs of 512 + 128
// tokens. Prints every run and, per build, the median decode at 1 and 2 threads and
// their ratio. On this VM one run's decode drifts by 10-20% from the next, and more
// over an hour: two builds compare only within one interleaved run of this script,
// never across two bench runs. Not a test: it asserts nothing.
//
//   cp -r www/dist /tmp/dist-a   # the build before the change
//   (make the change; make web)
//   node bench/browser/ab.mjs --a /tmp/dist-a --b www/dist [--rounds 3]
import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ARGS, CHROMIUM } from "../../tests/browser/chromium.mjs";
import { arg, serveStatic } from "./serve.mjs";
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const [A, B] = [path.resolve(arg("a", "")), path.resolve(arg("b", path.join(root, "www/dist")))];
for (const d of [A, B]) if (!fs.existsSync(path.join(d, "pkg-mt/precis_bg.wasm"))) throw new Error(`${d} holds no built web app (pkg-mt/precis_bg.wasm): give --a and --b`);
const rounds = Number(arg("rounds", 3));
const text = fs.readFileSync(path.join(root, "../shared/corpus/transcripts/dpo.txt"), "utf8");
const PAGE = `<!doctype html><meta charset="utf-8"><script type="module">
import { PrecisWorker } from "./precis.js";
const MODEL = new URL("models/SmolLM2-135M-Instruct.Q4_1.gguf", location.href).href;
window.precisRun = async ({ text, promptTokens, genTokens, threads, runs }) => {
  const w = new PrecisWorker({ threads });
  try {
    const loaded = await w.request({ type: "load", source: { kind: "url", url: MODEL }, backend: "cpu" });
    await w.request({ type: "bench", text, promptTokens: 8, genTokens: 2 });
    const all = [];
    for (let i = 0; i < runs; i++) all.push(await w.request({ type: "bench", text, promptTokens, genTokens }));
    return { threads: loaded.build.threads, dec: all.map((r) => +r.decode_tok_s.toFixed(2)), pre: all.map((r) => +r.prefill_tok_s.toFixed(1)) };
  } finally { w.terminate(); }
};
window.ready = true;
</script>`;
const H = { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" };
const sites = { A: serveStatic({ root: A, pages: { "/ab.html": PAGE }, headers: H }), B: serveStatic({ root: B, pages: { "/ab.html": PAGE }, headers: H }) };
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
const res = { A: { 1: [], 2: [] }, B: { 1: [], 2: [] } };
try {
  for (let r = 0; r < rounds; r++) for (const t of [1, 2]) for (const k of r % 2 ? ["B", "A"] : ["A", "B"]) {
    const ctx = await browser.newContext({ serviceWorkers: "block" });
    const page = await ctx.newPage(); page.setDefaultTimeout(600000);
    await page.goto(`${(await sites[k]).base}ab.html`);
    await page.waitForFunction(() => window.ready === true);
    const x = await page.evaluate((a) => window.precisRun(a), { text, promptTokens: 512, genTokens: 128, threads: t, runs: 2 });
    res[k][t].push(...x.dec);
    console.log(k, "threads", x.threads, "decode", x.dec.join(" "), "prefill", x.pre.join(" "));
    await ctx.close();
  }
} finally { await browser.close(); }
const med = (xs) => [...xs].sort((a, b) => a - b)[(xs.length - 1) >> 1];
for (const k of ["A", "B"]) console.log(k, "median decode 1t", med(res[k][1]), "2t", med(res[k][2]), "ratio", (med(res[k][2]) / med(res[k][1])).toFixed(3));
process.exit(0);
