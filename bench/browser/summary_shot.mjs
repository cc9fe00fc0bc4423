// A summary as a user gets it in the web app, for looking at (issue 16: "a screenshot of
// the web app's rendered summary of a corpus transcript with the 1.5B model on the CPU
// path"): the app on a cross-origin-isolated page (the threaded CPU build), a catalog
// model loaded through its Download/Load button (the resumable download path), a corpus
// transcript pasted, Summarize, then a full-page screenshot and the result's JSON.
// Not a test: it asserts only that the run finished; minutes to an hour for a 1.5B model.
//
//   node bench/browser/summary_shot.mjs [--model qwen2.5-coder-1.5b-instruct-q4_k_m]
//     [--transcript consistent-hashing] [--format structured] [--length medium]
//     [--threads 2] [--out target/browser]
import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ARGS, CHROMIUM, NO_GPU } from "../../tests/browser/chromium.mjs";
import { arg, serveStatic } from "./serve.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const dist = path.join(root, "www/dist");
const id = arg("model", "qwen2.5-coder-1.5b-instruct-q4_k_m");
const name = arg("transcript", "consistent-hashing");
const format = arg("format", "structured");
const length = arg("length", "medium");
const threads = arg("threads", "2");
const out = path.resolve(root, arg("out", "target/browser"));
const manifest = JSON.parse(fs.readFileSync(path.join(root, "models/manifest.json"), "utf8"));
const index = manifest.models.findIndex((m) => m.id === id);
if (index < 0) throw new Error(`no model ${id} in models/manifest.json`);
if (!fs.existsSync(path.join(dist, "models", manifest.models[index].file))) throw new Error(`${manifest.models[index].file} is not in www/dist/models: run \`make models web\``);
const text = fs.readFileSync(path.resolve(root, `../shared/corpus/transcripts/${name}.txt`), "utf8");
fs.mkdirSync(out, { recursive: true });

const isolation = { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" };
const { server, base } = await serveStatic({ root: dist, headers: isolation });
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
const t0 = Date.now();
const since = () => `${((Date.now() - t0) / 1000).toFixed(0)} s`;
try {
  const c = await browser.newContext({ serviceWorkers: "block", viewport: { width: 1100, height: 900 } });
  await c.addInitScript(NO_GPU);
  const p = await c.newPage();
  p.on("console", (m) => m.type() === "error" && console.log(`console: ${m.text()}`));
  await p.goto(`${base}?threads=${threads}`);
  await p.click("#catalog-wrap summary");
  await p.waitForFunction((n) => document.querySelectorAll("#catalog li").length === n, manifest.models.length);
  await p.click(`#catalog li:nth-child(${index + 1}) button`);
  await p.waitForFunction(() => {
    const s = document.getElementById("model-status");
    return (s.dataset.loaded === "true" && !/Loading/.test(s.textContent)) || !document.getElementById("model-error").hidden;
  }, null, { timeout: 1_800_000, polling: 1000 });
  const err = await p.textContent("#model-error");
  if (await p.isVisible("#model-error")) throw new Error(`the model did not load: ${err}`);
  console.log(`${since()}: loaded: ${await p.textContent("#model-status")} · ${await p.textContent("#backend-badge")}`);
  await p.evaluate((t) => {
    const ta = document.getElementById("transcript");
    ta.value = t;
    ta.dispatchEvent(new Event("input", { bubbles: true }));
  }, text);
  await p.selectOption("#format", format);
  await p.selectOption("#length", length);
  await p.click("#summarize");
  let last = "";
  const timer = setInterval(async () => {
    const s = await p.textContent("#run-status").catch(() => "");
    if (s && s !== last) console.log(`${since()}: ${(last = s)}`);
  }, 30_000);
  await p.waitForFunction(() => !window.precis.state.running && document.getElementById("stop").disabled, null, { timeout: 0, polling: 2000 });
  clearInterval(timer);
  if (await p.isVisible("#run-error")) throw new Error(`the summary failed: ${await p.textContent("#run-error")}`);
  const r = await p.evaluate(() => window.precis.state.result);
  console.log(`${since()}: ${await p.textContent("#run-status")}`);
  const shot = path.join(out, `summary-${id}-${name}-${format}.png`);
  await p.screenshot({ path: shot, fullPage: true });
  fs.writeFileSync(path.join(out, `summary-${id}-${name}-${format}.txt`), r.text);
  console.log(`screenshot ${path.relative(root, shot)}`);
  await c.close();
} finally {
  await browser.close();
  server.close();
}
