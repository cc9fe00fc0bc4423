// Browser tests of the web app (www/dist, built by `make web`): the system
// Chromium driven by playwright-core against `www/serve.py` on a free port.
// Prints "browser: N passed, M failed" and exits non-zero on any failure.
//
// The summaries run on 2-core CI machines on the CPU wasm engine, so they use
// a ~1500-character excerpt, length short and no worked examples (max_shots 0,
// set through the page's `precisTestOptions` hook). The WebGPU tests run on
// Chromium's SwiftShader adapter (a GPU emulated on the CPU, seconds per token),
// so on the default model they summarize a four-sentence transcript as a headline;
// the structured summary on WebGPU runs on tiny-smollm2 (random weights, SmolLM2's
// tokenizer and template).
//
// BROWSER_ONLY=<regex> runs only the tests whose names match (e.g. WebGPU).
import { chromium } from "playwright-core";
import Ajv2020 from "ajv/dist/2020.js";
import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startModelServer } from "./model_server.mjs";
import { ARGS, CHROMIUM, NO_GPU } from "./chromium.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const dist = path.join(root, "www/dist");
const modelPath = path.join(root, "models/SmolLM2-135M-Instruct.Q4_1.gguf");
const tinyModelPath = path.join(root, "tests/fixtures/tiny-smollm2.gguf");
const corpus = path.resolve(root, "../shared/corpus");
const outDir = path.join(root, "target/browser");
fs.mkdirSync(outDir, { recursive: true });
const T0 = Date.now();
const SUMMARY_TIMEOUT = 8 * 60_000;

const TEST_OPTIONS = "window.precisTestOptions = { max_shots: 0 };";

function excerpt(file, chars = 1500) {
  const text = fs.readFileSync(path.join(corpus, "transcripts", file), "utf8");
  const cut = text.slice(0, chars);
  return cut.slice(0, cut.lastIndexOf(" ")); // whole words only
}

async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

let passed = 0, failed = 0, skipped = 0;
const failures = [];
const ONLY = process.env.BROWSER_ONLY ? new RegExp(process.env.BROWSER_ONLY) : null;
// The tests that run the default model for minutes on SwiftShader or over a whole
// transcript are marked { models: true }: `make test` leaves them to `make
// test-models` (BROWSER_MODELS=1 runs them with the rest, =only runs only them).
const MODELS = process.env.BROWSER_MODELS || "";
let modelsSkipped = 0;
async function test(name, fn, { models = false } = {}) {
  if ((ONLY && !ONLY.test(name)) || (MODELS === "only" && !models)) {
    skipped++;
    return;
  }
  if (models && !MODELS) {
    modelsSkipped++;
    console.log(`skip ${name} (make test-models)`);
    return;
  }
  const t = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok   ${name} (${((Date.now() - t) / 1000).toFixed(1)} s)`);
  } catch (e) {
    failed++;
    failures.push(name);
    console.log(`FAIL ${name} (${((Date.now() - t) / 1000).toFixed(1)} s)\n     ${String(e.stack || e).split("\n").slice(0, 4).join("\n     ")}`);
  }
}
function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

// Console errors and uncaught exceptions fail the test that caused them.
function watch(page) {
  const errors = [];
  page.on("console", (m) => m.type() === "error" && errors.push(`console: ${m.text()}`));
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("worker", (w) => w.on("console", (m) => m.type() === "error" && errors.push(`worker console: ${m.text()}`)));
  return {
    errors,
    check(allow = []) {
      const bad = errors.filter((e) => !allow.some((a) => a.test(e)));
      errors.length = 0;
      assert(bad.length === 0, `console errors: ${bad.join(" | ")}`);
    },
  };
}

async function setTranscript(page, text) {
  await page.evaluate((t) => {
    const ta = document.getElementById("transcript");
    ta.value = t;
    ta.dispatchEvent(new Event("input", { bubbles: true }));
  }, text);
}

async function waitModel(page, timeout = 120_000) {
  await page.waitForFunction(() => {
    const s = document.getElementById("model-status");
    return s.dataset.loaded === "true" && !/Loading/.test(s.textContent) || !document.getElementById("model-error").hidden;
  }, null, { timeout });
  const err = await page.textContent("#model-error");
  assert(await page.isHidden("#model-error"), `model failed to load: ${err}`);
  return page.evaluate(() => ({ ...document.getElementById("model-status").dataset, text: document.getElementById("model-status").textContent }));
}

async function summarize(page) {
  await page.click("#summarize");
  return runResult(page);
}

// Waits for the run under way to end; its result, or the page's error.
async function runResult(page, timeout = SUMMARY_TIMEOUT) {
  await page.waitForFunction(() => !window.precis.state.running && document.getElementById("stop").disabled, null, { timeout, polling: 500 });
  const err = await page.evaluate(() => (document.getElementById("run-error").hidden ? "" : document.getElementById("run-error").textContent));
  assert(!err, `summary failed: ${err}`);
  return page.evaluate(() => window.precis.state.result);
}

const schema = JSON.parse(fs.readFileSync(path.join(corpus, "summary.schema.json"), "utf8"));
const validate = new Ajv2020({ allErrors: true, strict: false }).compile(schema);

// www/serve.py on `dir` at a free port; resolves to the process and its base URL once it listens.
async function serve(dir) {
  const port = await freePort();
  const proc = spawn("python3", [path.join(root, "www/serve.py"), dir, String(port), "-q"], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise((resolve, reject) => {
    proc.stdout.once("data", resolve);
    proc.once("exit", (c) => reject(new Error(`server exited with ${c}`)));
  });
  return { proc, base: `http://127.0.0.1:${port}/` };
}
const { proc: server, base } = await serve(dist);

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
const modelSize = fs.statSync(modelPath).size;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "precis-browser-"));
const report = {};

try {
  // ---- Main flow on the CPU path. Service workers are blocked here so that
  // page.route sees (and can refuse) every request, workers' included.
  const ctx = await browser.newContext({ serviceWorkers: "block", viewport: { width: 1100, height: 900 } });
  await ctx.addInitScript(NO_GPU);
  await ctx.addInitScript(TEST_OPTIONS);
  const page = await ctx.newPage();
  const w = watch(page);
  await page.goto(base);

  await test("status: Summarize while disabled says why (load a model first)", async () => {
    assert(await page.isDisabled("#summarize"), "Summarize enabled without a model");
    const title = await page.getAttribute("#summarize", "title");
    assert(/load a model first/i.test(title || ""), `title ${JSON.stringify(title)}`);
    assert(await page.isVisible("#summarize-hint"), "no hint beside the button");
    assert(/load a model first/i.test(await page.textContent("#summarize-hint")), await page.textContent("#summarize-hint"));
  });

  await test("backend badge says CPU when WebGPU is absent, and why", async () => {
    await page.waitForFunction(() => document.getElementById("backend-badge").dataset.backend);
    assert((await page.getAttribute("#backend-badge", "data-backend")) === "cpu", "badge backend");
    const badge = await page.textContent("#backend-badge");
    assert(/^CPU \(WebAssembly, \d+ threads?\) — this browser has no WebGPU/.test(badge), `badge text: ${badge}`);
  });

  await test("status: the footer names the backend in use", async () => {
    const footer = await page.textContent("footer");
    assert(/on this device's CPU with WebAssembly/.test(footer), footer);
  });

  await test("status: tok/s is the speed of the last seconds, reading shows tokens, speed, time left and the prefix cache", async () => {
    // progress.js on a fixed timeline: 100 s reading, then 2 tok/s for 30 s and
    // 10 tok/s for the last 10 s. The average since the click would be ~1.5 tok/s.
    const r = await page.evaluate(async () => {
      const { RunProgress } = await import("./progress.js");
      const p = new RunProgress({ answerTokens: 400, format: "key-points" });
      const pass = { kind: "final", index: 0, of: 1, round: 1 };
      p.event({ type: "plan", chunks: 0, prompt_tokens: 5800, context: 8192 }, 0);
      p.event({ type: "start", pass }, 0);
      p.event({ type: "prefill", pass, done: 512, total: 5800, cached: 512, seconds: 0 }, 0);
      p.event({ type: "prefill", pass, done: 1024, total: 5800, cached: 512, seconds: 8.5 }, 8.5);
      const reading = { text: p.text(), fraction: p.fraction() };
      p.event({ type: "prefill", pass, done: 5800, total: 5800, cached: 512, seconds: 100 }, 100);
      let t = 100;
      for (let i = 0; i < 60; i++) p.event({ type: "text", pass, piece: "x" }, (t += 0.5));
      for (let i = 0; i < 100; i++) p.event({ type: "text", pass, piece: "x" }, (t += 0.1));
      const writing = { text: p.text(), fraction: p.fraction() };
      p.stopped();
      return { reading, writing, stopped: p.text() };
    });
    assert(r.reading.text === "reading 1,024 / 5,800 tokens · 60 tok/s · about 1 min left · 512 from the prefix cache", r.reading.text);
    assert(r.reading.fraction > 0 && r.reading.fraction < 0.5, `bar while reading: ${r.reading.fraction}`);
    const rate = Number(/· ([\d.]+) tok\/s · /.exec(r.writing.text)?.[1]);
    assert(rate > 9 && rate <= 10.5, `writing speed ${rate} from ${r.writing.text}`);
    // 240 tokens of the 400-token budget left at ~10 tok/s.
    assert(/^writing the summary · 160 tokens · [\d.]+ tok\/s · at most about 24 s left$/.test(r.writing.text), r.writing.text);
    assert(r.writing.fraction > r.reading.fraction && r.writing.fraction < 1, `bar while writing: ${r.writing.fraction}`);
    assert(/^stopped while writing/.test(r.stopped), r.stopped);
  });

  await test("default model loads; wasm heap stays below twice the file", async () => {
    await page.click("#load-default");
    const m = await waitModel(page);
    assert(m.origin === "url", `origin ${m.origin}`);
    // serve.py answers Range requests, so even the bundled model came in pieces.
    assert(m.ranged === "true", `downloaded with Range requests: ${m.ranged}`);
    // The panel names the family and the quant mix (SmolLM2's layers in Q4_1, its tied
    // embedding in Q8_0: 63.3 and 28.7 MiB).
    assert(/\(llama · Q4_1 69% · Q8_0 31%, 30 layers, context 8192\)/.test(m.text), m.text);
    const heap = Number(m.heap);
    report.heapDefaultMiB = heap / 1048576;
    report.modelMiB = modelSize / 1048576;
    console.log(`     wasm heap after loading: ${report.heapDefaultMiB.toFixed(1)} MiB for a ${report.modelMiB.toFixed(1)} MiB model`);
    // The heap holds the tensors (~file size), the tied output head's copy of
    // token_embd, the tokenizer and the grammar's token trie; a whole second
    // copy of the file on top of that would pass 2x.
    assert(heap < 2 * modelSize, `heap ${heap} vs model ${modelSize}`);
    w.check();
  });

  const text = excerpt("consistent-hashing.txt");
  await test("transcript counts characters and tokens; no map-reduce warning for an excerpt", async () => {
    await setTranscript(page, text);
    await page.waitForFunction(() => / tokens · /.test(document.getElementById("transcript-stats").textContent));
    const stats = await page.textContent("#transcript-stats");
    assert(stats.includes(`${text.length.toLocaleString("en-US")} characters`), stats);
    assert(await page.isHidden("#transcript-warning"), "unexpected map-reduce warning");
    // The first visit: a short speed test after loading gives the time before any summary.
    await page.waitForFunction(() => /model pass(es)?, ~.+ on this device \(from a short speed test\)/.test(document.getElementById("transcript-stats").textContent), null, { timeout: 60_000 });
    console.log(`     ${await page.textContent("#transcript-stats")}`);
  });

  await test("structured summary passes summary.schema.json and renders as cards", async () => {
    await page.selectOption("#format", "structured");
    await page.selectOption("#length", "short");
    const t = Date.now();
    const r = await summarize(page);
    report.structuredSeconds = (Date.now() - t) / 1000;
    report.structuredTokens = r.stats.generated_tokens;
    console.log(`     ${r.stats.generated_tokens} tokens in ${report.structuredSeconds.toFixed(1)} s; prompt ${r.stats.prompt_tokens} tokens`);
    const data = JSON.parse(r.text);
    const ok = validate(data);
    fs.writeFileSync(path.join(outDir, "structured.json"), JSON.stringify(data, null, 2));
    assert(ok, `schema: ${JSON.stringify(validate.errors).slice(0, 500)}`);
    assert((await page.locator("#cards .card.section").count()) === 5, "five section cards");
    assert((await page.locator("#cards .card.section li:not(.chip)").count()) === 20, "four bullets per section");
    assert((await page.locator("#cards .complexity").count()) === 3, "three complexity bars");
    assert((await page.textContent("#cards .card.intro p")) === data.introduction, "introduction as text");
    await page.screenshot({ path: path.join(outDir, "structured.png"), fullPage: true });
    w.check();
  });

  await test("after a summary the estimate gives this device's time before the next", async () => {
    await page.selectOption("#length", "medium");
    await page.waitForFunction(() => /model pass(es)?, ~.+ on this device$/.test(document.getElementById("transcript-stats").textContent), null, { timeout: 30_000 });
    await page.selectOption("#length", "short");
  });

  await test("status: a new transcript marks the summary as stale; the summarized one clears it", async () => {
    assert(await page.isHidden("#result-stale"), "stale before any edit");
    await setTranscript(page, text + " And one more sentence.");
    assert(await page.isVisible("#result-stale"), "no stale marker after an edit");
    assert(/earlier transcript/.test(await page.textContent("#result-stale")), await page.textContent("#result-stale"));
    assert(await page.evaluate(() => document.getElementById("result").classList.contains("stale")), "result not styled stale");
    await setTranscript(page, text);
    assert(await page.isHidden("#result-stale"), "still stale on the summarized transcript");
    await page.waitForFunction(() => / tokens · /.test(document.getElementById("transcript-stats").textContent));
  });

  await test("raw JSON toggle and JSON/Markdown downloads", async () => {
    await page.click("#toggle-raw");
    assert(await page.isVisible("#raw"), "raw visible");
    const raw = JSON.parse(await page.textContent("#raw"));
    assert(raw.sections.length === 5, "raw JSON parses");
    await page.click("#toggle-raw");
    assert(await page.isVisible("#cards"), "cards back");
    const [dl] = await Promise.all([page.waitForEvent("download"), page.click("#download-json")]);
    const json = JSON.parse(fs.readFileSync(await dl.path(), "utf8"));
    assert(validate(json), "downloaded JSON passes the schema");
    const [md] = await Promise.all([page.waitForEvent("download"), page.click("#download-md")]);
    const mdText = fs.readFileSync(await md.path(), "utf8");
    assert(mdText.startsWith("# Summary") && (mdText.match(/^## Section \d/gm) || []).length === 5, "markdown has five sections");
  });

  await test("Stop ends a run mid-generation; transcript and last summary are kept", async () => {
    const before = await page.evaluate(() => window.precis.state.result.text);
    await page.selectOption("#format", "key-points");
    await page.click("#summarize");
    await page.waitForFunction(() => document.getElementById("live").textContent.length > 5, null, { timeout: 120_000 });
    await page.click("#stop");
    await page.waitForFunction(() => !window.precis.state.running, null, { timeout: 60_000 });
    // A Stop is no error: the status says stopped, a note says what is kept.
    const status = await page.textContent("#run-status");
    assert(/^stopped while writing/.test(status), `status after Stop: ${status}`);
    assert(await page.isHidden("#run-error"), `an error after Stop: ${await page.textContent("#run-error")}`);
    const note = await page.textContent("#run-note");
    assert(/previous summary is kept/.test(note) && (await page.getAttribute("#run-note", "class")) === "note", `note ${JSON.stringify(note)}`);
    assert(/^Partial text/.test(await page.textContent("#live-label")) && (await page.isVisible("#live-label")), "the stopped text is not labelled partial");
    assert((await page.inputValue("#transcript")) === text, "transcript kept");
    assert((await page.evaluate(() => window.precis.state.result.text)) === before, "last result kept");
    assert((await page.locator("#cards .card.section").count()) === 5, "cards still shown");
    await page.selectOption("#format", "structured");
    w.check();
  });

  await test("reload restores transcript, summary and a run's streamed text; cached model loads with the network for models refused", async () => {
    let modelRequests = 0;
    await ctx.route("**/*.gguf", (route) => {
      modelRequests++;
      return route.abort();
    });
    // A run under way when the page reloads: the text it had streamed more than a
    // second before comes back (it is saved as it grows, not only at the end, and
    // at most a second behind even when the text pauses). What was saved after
    // `streamed` was read may be longer: one of the two starts with the other.
    await page.click("#summarize");
    await page.waitForFunction(() => document.getElementById("live").textContent.length > 0, null, { timeout: 120_000 });
    await page.waitForTimeout(1000);
    const early = await page.textContent("#live");
    await page.waitForTimeout(1500);
    const streamed = await page.textContent("#live");
    await page.reload();
    const m = await waitModel(page);
    assert(m.origin === "cache", `model came from ${m.origin}`);
    const kept = await page.textContent("#live");
    const show = (t) => JSON.stringify(t.length > 80 ? `…${t.slice(-80)}` : t);
    assert(kept.startsWith(early) && (streamed.startsWith(kept) || kept.startsWith(streamed)) && (await page.isVisible("#live")), `the interrupted run's text: kept ${kept.length} chars ending ${show(kept)}; 1.5 s before the reload ${early.length} ending ${show(early)}; at the reload ${streamed.length} ending ${show(streamed)}`);
    const label = await page.textContent("#live-label");
    assert((await page.isVisible("#live-label")) && /^Partial text/.test(label) && /not a complete summary/.test(label), `restored text labelled ${JSON.stringify(label)}`);
    assert(modelRequests === 0, `${modelRequests} model requests went out`);
    assert((await page.inputValue("#transcript")) === text, "transcript restored");
    assert((await page.locator("#cards .card.section").count()) === 5, "summary cards restored");
    assert((await page.inputValue("#format")) === "structured", "format restored");
    assert(/SmolLM2/.test(await page.textContent("#cached-models")), "cached model listed");
    report.heapCacheMiB = Number(m.heap) / 1048576;
    await ctx.unroute("**/*.gguf");
    w.check();
  });

  await test("local GGUF file loads through the file input", async () => {
    await page.setInputFiles("#model-file", modelPath);
    const m = await waitModel(page);
    assert(m.origin === "file", `origin ${m.origin}`);
    assert(/from disk/.test(m.text), m.text);
    w.check();
  });

  await test("non-GGUF file: clear message, previous model kept", async () => {
    const bad = path.join(tmp, "notes.gguf");
    fs.writeFileSync(bad, "these are not model weights\n".repeat(100));
    await page.setInputFiles("#model-file", bad);
    await page.waitForSelector("#model-error:not([hidden])");
    const msg = await page.textContent("#model-error");
    assert(/not a GGUF file/.test(msg), msg);
    assert(/Still using/.test(await page.textContent("#model-status")), "previous model kept");
    assert(await page.isEnabled("#summarize"), "still usable");
    w.check();
  });

  await test("truncated GGUF: clear message", async () => {
    const cut = path.join(tmp, "cut.gguf");
    const fd = fs.openSync(modelPath, "r");
    const buf = Buffer.alloc(20 << 20);
    fs.readSync(fd, buf, 0, buf.length, 0);
    fs.closeSync(fd);
    fs.writeFileSync(cut, buf);
    await page.setInputFiles("#model-file", cut);
    await page.waitForFunction(() => /cut\.gguf/.test(document.getElementById("model-error").textContent));
    const msg = await page.textContent("#model-error");
    assert(/truncat|beyond|past|end of|exceed/i.test(msg), msg);
    w.check();
  });

  await test("empty transcript: clear message, no run", async () => {
    await setTranscript(page, "   \n ");
    await page.click("#summarize");
    const msg = await page.textContent("#run-error");
    assert(/empty/i.test(msg), msg);
    w.check();
  });

  await test("transcript over 5 MiB: clear message, page still usable", async () => {
    const big = "word ".repeat(Math.ceil((5 * 1024 * 1024 + 1000) / 5));
    await setTranscript(page, big);
    await page.waitForSelector("#transcript-error:not([hidden])", { timeout: 60_000 });
    const msg = await page.textContent("#transcript-error");
    assert(/too large|limit/i.test(msg), msg);
    await setTranscript(page, text);
    await page.waitForFunction(() => / tokens · /.test(document.getElementById("transcript-stats").textContent) && document.getElementById("transcript-error").hidden, null, { timeout: 60_000 });
    w.check();
  });

  await test("long transcript gets the map-reduce warning", async () => {
    // A TL;DR reads the whole talk at once; a structured summary reads a fifth per
    // pass, so four times dpo.txt (~13k tokens) still fits SmolLM2's 8k context there.
    const before = await page.inputValue("#format");
    await page.selectOption("#format", "tldr");
    const long = fs.readFileSync(path.join(corpus, "transcripts/dpo.txt"), "utf8").repeat(4);
    await setTranscript(page, long);
    await page.waitForSelector("#transcript-warning:not([hidden])", { timeout: 60_000 });
    assert(/map-reduce/.test(await page.textContent("#transcript-warning")), "warning text");
    await page.selectOption("#format", before);
    await setTranscript(page, text);
    w.check();
  });

  await test("notes from the default model render as sections: h3, numbered points, quotes (no Markdown shown)", async () => {
    // A timestamped talk, so the headers carry time ranges.
    const talk = excerpt("intro-to-llms-timestamped.txt");
    await setTranscript(page, talk);
    await page.waitForFunction(() => / tokens · /.test(document.getElementById("transcript-stats").textContent), null, { timeout: 60_000 });
    await page.selectOption("#format", "notes");
    await page.selectOption("#length", "short");
    const r = await summarize(page);
    fs.writeFileSync(path.join(outDir, "notes.md"), r.text);
    console.log(`     ${r.stats.generated_tokens} tokens; ${r.text.split("\n")[0]}`);
    const lines = r.text.split("\n");
    const headers = lines.filter((l) => l.startsWith("### "));
    const dom = await page.evaluate(() => {
      const cards = document.getElementById("cards");
      return {
        text: cards.textContent,
        h3: [...cards.querySelectorAll("article.notes-section > h3")].map((h) => ({ text: h.textContent, range: h.querySelector(".range")?.textContent ?? null })),
        points: [...cards.querySelectorAll("ol.points > li")].map((li) => ({ n: li.value, text: li.textContent })),
        quotes: [...cards.querySelectorAll("ol.quotes > li > blockquote")].map((b) => b.textContent),
        plain: [...cards.querySelectorAll(".plain")].map((p) => p.textContent),
        raw: document.getElementById("raw").textContent,
      };
    });
    assert(headers.length >= 1 && dom.h3.length === headers.length, `${dom.h3.length} headings for ${headers.length} headers in ${JSON.stringify(r.text)}`);
    assert(!dom.text.includes("###") && !dom.text.includes("Quotes:"), `Markdown shown as text: ${dom.text.slice(0, 300)}`);
    assert(dom.plain.length === 0, `lines outside the notes grammar: ${JSON.stringify(dom.plain)}`);
    headers.forEach((hd, i) => {
      const m = /^### (.*) \((.+)\)$/.exec(hd);
      assert(m && dom.h3[i].range === m[2] && dom.h3[i].text === `${m[1].trim()} ${m[2]}`, `heading ${i}: ${JSON.stringify(dom.h3[i])} for ${JSON.stringify(hd)}`);
    });
    // Every point and quote line of the Markdown is one list item, in order.
    const pointLines = lines.filter((l) => /^\d+\. [^"]/.test(l));
    const quoteLines = lines.filter((l) => /^\d+\. "/.test(l));
    assert(pointLines.length >= 2 * headers.length, `${pointLines.length} points for ${headers.length} sections`);
    assert(JSON.stringify(dom.points.map((p) => `${p.n}. ${p.text}`)) === JSON.stringify(pointLines), `points ${JSON.stringify(dom.points)} vs ${JSON.stringify(pointLines)}`);
    assert(JSON.stringify(dom.quotes.map((q) => `"${q}"`)) === JSON.stringify(quoteLines.map((l) => l.replace(/^\d+\. /, ""))), `quotes ${JSON.stringify(dom.quotes)} vs ${JSON.stringify(quoteLines)}`);
    assert(dom.raw === r.text, "the Markdown kept for Copy");
    await page.locator("#result").screenshot({ path: path.join(outDir, "notes.png") });
    const [md] = await Promise.all([page.waitForEvent("download"), page.click("#download-md")]);
    const mdText = fs.readFileSync(await md.path(), "utf8");
    assert(mdText.split("\n").filter((l) => l.startsWith("### ")).length === headers.length, `the download keeps the Markdown: ${mdText.slice(0, 200)}`);
    await setTranscript(page, text);
    w.check();
  });

  await test("phone-sized layout: no horizontal scrolling", async () => {
    await page.setViewportSize({ width: 375, height: 800 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    await page.screenshot({ path: path.join(outDir, "phone.png"), fullPage: false });
    assert(overflow <= 0, `page is ${overflow}px wider than the screen`);
    await page.setViewportSize({ width: 1100, height: 900 });
  });
  await ctx.close();

  // ---- The JS module API from a page of its own (same origin, no app UI).
  await test("Summarizer API from a separate page: summarize and summarizeStreaming agree", async () => {
    const c = await browser.newContext({ serviceWorkers: "block" });
    await c.addInitScript(NO_GPU);
    const p = await c.newPage();
    const w2 = watch(p);
    await c.route(`${base}api-test.html`, (route) => route.fulfill({
      contentType: "text/html",
      body: `<!doctype html><meta charset="utf-8"><title>api</title><script type="module">
        import { Summarizer } from "./precis.js";
        window.run = async (text) => {
          const progress = [];
          const s = await Summarizer.create({ type: "headline", length: "short", extra: { max_shots: 0 },
            monitor(m) { m.addEventListener("downloadprogress", (e) => progress.push(e.loaded)); } });
          const whole = await s.summarize(text);
          const pieces = [];
          for await (const piece of s.summarizeStreaming(text)) pieces.push(piece);
          const tokens = await s.measureInputUsage(text);
          // This page is not cross-origin isolated, so abort restarts the worker;
          // the summarizer must reload its model and keep working.
          const ac = new AbortController();
          let aborted = "";
          try {
            for await (const piece of s.summarizeStreaming(text, { signal: ac.signal })) ac.abort();
          } catch (e) { aborted = e.name; }
          const again = await s.summarize(text);
          const out = { whole, pieces, progress, tokens, backend: s.backend, quota: s.inputQuota, aborted, again, isolated: crossOriginIsolated };
          s.destroy();
          return out;
        };
      </script>`,
    }));
    await p.goto(`${base}api-test.html`);
    await p.waitForFunction(() => typeof window.run === "function");
    const r = await p.evaluate((t) => window.run(t), text.slice(0, 800));
    console.log(`     headline: ${JSON.stringify(r.whole)}`);
    assert(r.whole.trim().length > 0, "empty headline");
    assert(r.whole.trim().split(/\s+/).length <= 12, "a short headline has at most 12 words");
    assert(r.pieces.length > 1 && r.pieces.join("") === r.whole, "stream pieces add up to the same (greedy) headline");
    assert(r.progress.at(-1) === 1, "download progress reaches 1");
    assert(r.tokens > 50 && r.backend === "cpu" && r.quota > 0, JSON.stringify({ tokens: r.tokens, backend: r.backend, quota: r.quota }));
    assert(!r.isolated && r.aborted === "AbortError", `abort without shared memory rejected with ${r.aborted}`);
    assert(r.again === r.whole, "after the restart the same headline again");
    w2.check();
    await c.close();
  });

  // ---- A long prompt on the CPU (dpo.txt, ~3,600 tokens read before the first
  // word): reading progress, Stop while reading, the prefix cache, and the same
  // through the Summarizer API. A fresh context: no summary exists yet.
  {
    const c = await browser.newContext({ serviceWorkers: "block", viewport: { width: 1100, height: 900 } });
    await c.addInitScript(NO_GPU);
    await c.addInitScript(TEST_OPTIONS);
    const p = await c.newPage();
    const wr = watch(p);
    const long = fs.readFileSync(path.join(corpus, "transcripts/dpo.txt"), "utf8");
    await p.goto(base);
    // Reading, and the time since Summarize when it was at `done` tokens.
    const reading = () => p.evaluate(() => {
      const s = document.getElementById("run-status").textContent;
      const m = /^reading ([\d,]+) \/ ([\d,]+) tokens/.exec(s);
      return m ? { status: s, done: Number(m[1].replace(/,/g, "")), total: Number(m[2].replace(/,/g, "")), bar: document.getElementById("run-progress").value } : null;
    });

    await test("Stop while reading: the bar moves, the status counts tokens read; Stop ends the run within 10 s and says stopped", async () => {
      await p.click("#load-default");
      await waitModel(p);
      await setTranscript(p, long);
      await p.waitForFunction(() => / tokens · .* on this device/.test(document.getElementById("transcript-stats").textContent), null, { timeout: 60_000 });
      await p.selectOption("#format", "key-points");
      await p.selectOption("#length", "short");
      await p.click("#summarize");
      assert(await p.isEnabled("#stop"), "Stop disabled while reading");
      // Past the first chunk (the instruction, kept as the prefix) and into the transcript.
      await p.waitForFunction(() => {
        const m = /^reading ([\d,]+) \/ ([\d,]+) tokens · \d+ tok\/s · about \d+ (s|min) left/.exec(document.getElementById("run-status").textContent);
        return m && Number(m[1].replace(/,/g, "")) > 0;
      }, null, { timeout: 120_000, polling: 100 });
      const r = await reading();
      console.log(`     ${r.status}; bar ${r.bar.toFixed(3)}`);
      assert(r.done < r.total && r.total > 3000, `reading ${r.done} of ${r.total}`);
      assert(r.bar > 0 && r.bar < 1, `the bar while reading: ${r.bar}`);
      assert(await p.isHidden("#live"), "an empty text box while the prompt is read");
      await p.locator("#run-panel").screenshot({ path: path.join(outDir, "reading.png") });
      const t = Date.now();
      await p.click("#stop");
      await p.waitForFunction(() => !window.precis.state.running, null, { timeout: 10_000, polling: 100 });
      console.log(`     stopped ${((Date.now() - t) / 1000).toFixed(1)} s after the click`);
      const status = await p.textContent("#run-status");
      assert(/^stopped while reading: [\d,]+ of [\d,]+ tokens read$/.test(status), `status after Stop: ${status}`);
      assert(await p.isHidden("#run-error"), `an error after Stop: ${await p.textContent("#run-error")}`);
      assert(!/previous summary/.test(await p.textContent("#run-note")), `a previous summary claimed: ${await p.textContent("#run-note")}`);
      assert(await p.isEnabled("#summarize"), "Summarize not enabled after Stop");
      wr.check();
    });

    await test("status: the next run reads the prefix from the cache and says so; the token count stays exact while it runs", async () => {
      const before = await p.textContent("#transcript-stats");
      assert(/ [\d,]+ tokens · /.test(before) && !before.includes("≈"), `count before: ${before}`);
      await p.click("#summarize");
      await p.waitForFunction(() => / from the prefix cache/.test(document.getElementById("run-status").textContent), null, { timeout: 120_000, polling: 100 });
      console.log(`     ${await p.textContent("#run-status")}`);
      // A change of length while the worker is busy must not turn the count into an estimate.
      await p.selectOption("#length", "medium");
      await p.waitForTimeout(1000); // past the plan's 400 ms debounce
      const during = await p.textContent("#transcript-stats");
      assert(during === before, `count during the run: ${during} (was ${before})`);
      await p.click("#stop");
      await p.waitForFunction(() => !window.precis.state.running, null, { timeout: 10_000, polling: 100 });
      await p.selectOption("#length", "short");
      wr.check();
    });

    await test("Summarizer API: abort while reading rejects with an AbortError well before the run's end; the monitor reports reading", async () => {
      // Cross-origin isolated like the app, so the abort goes through the shared flag.
      await c.route(`${base}api-abort.html`, (route) => route.fulfill({
        contentType: "text/html",
        headers: { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" },
        body: `<!doctype html><meta charset="utf-8"><title>api abort</title><script type="module">
          import { Summarizer } from "./precis.js";
          window.run = async (text) => {
            const reads = [];
            const s = await Summarizer.create({ type: "key-points", length: "short", extra: { max_shots: 0 },
              monitor(m) { m.addEventListener("readprogress", (e) => reads.push({ done: e.done, total: e.total, loaded: e.loaded, tps: e.tokensPerSecond })); } });
            const ac = new AbortController();
            const started = performance.now();
            const p = s.summarize(text, { signal: ac.signal });
            // Aborted once the reading is under way (past its first chunk).
            await new Promise((resolve) => {
              const t = setInterval(() => { if (reads.some((r) => r.done > 0 && r.done < r.total)) { clearInterval(t); resolve(); } }, 50);
            });
            const abortAt = performance.now();
            ac.abort();
            let name = null, isDom = false;
            try { await p; } catch (e) { name = e.name; isDom = e instanceof DOMException; }
            const rejectedAfter = (performance.now() - abortAt) / 1000;
            const last = reads.at(-1);
            s.destroy();
            return { name, isDom, rejectedAfter, sinceStart: (abortAt - started) / 1000, reads: reads.length, last, isolated: crossOriginIsolated, backend: s.backend };
          };
        </script>`,
      }));
      const ap = await c.newPage();
      const wa = watch(ap);
      await ap.goto(`${base}api-abort.html`);
      await ap.waitForFunction(() => typeof window.run === "function");
      const r = await ap.evaluate((t) => window.run(t), long);
      console.log(`     ${JSON.stringify(r)}`);
      assert(r.isolated && r.backend === "cpu", `isolated ${r.isolated}, backend ${r.backend}`);
      assert(r.name === "AbortError" && r.isDom, `rejected with ${r.name} (DOMException: ${r.isDom})`);
      // The whole reading is thousands of tokens; the rejection comes at the abort.
      assert(r.rejectedAfter < 10, `rejected ${r.rejectedAfter} s after the abort`);
      assert(r.last.done < r.last.total && r.last.loaded > 0 && r.last.loaded < 1 && r.last.tps > 0, `the last reading event: ${JSON.stringify(r.last)}`);
      wa.check();
      await ap.close();
    });

    await test("status: while writing the status gives the current tok/s; Stop says stopped, not writing", async () => {
      await setTranscript(p, excerpt("consistent-hashing.txt", 600));
      await p.waitForFunction(() => / tokens · /.test(document.getElementById("transcript-stats").textContent), null, { timeout: 60_000 });
      await p.click("#summarize");
      await p.waitForFunction(() => /^writing the summary · \d+ tokens · [\d.]+ tok\/s · at most about \d+ (s|min) left$/.test(document.getElementById("run-status").textContent), null, { timeout: 120_000, polling: 100 });
      console.log(`     ${await p.textContent("#run-status")}`);
      await p.locator("#run-panel").screenshot({ path: path.join(outDir, "writing.png") });
      await p.click("#stop");
      await p.waitForFunction(() => !window.precis.state.running, null, { timeout: 10_000, polling: 100 });
      const status = await p.textContent("#run-status");
      assert(/^stopped while writing: \d+ tokens written$/.test(status), `status after Stop: ${status}`);
      assert(!/writing the summary/.test(status), status);
      wr.check();
    });
    await c.close();
  }

  // ---- Backend choice on a browser whose only WebGPU adapter is SwiftShader.
  await test("backend: auto on a software fallback adapter picks the CPU and the badge says why", async () => {
    const c = await browser.newContext({ serviceWorkers: "block" });
    const p = await c.newPage();
    const wb = watch(p);
    await p.goto(base);
    await p.waitForFunction(() => document.getElementById("backend-badge").dataset.backend, null, { timeout: 60_000 });
    assert(await p.evaluate(() => !!navigator.gpu), "navigator.gpu present");
    const badge = await p.textContent("#backend-badge");
    assert((await p.getAttribute("#backend-badge", "data-backend")) === "cpu", `badge: ${badge}`);
    assert(/^CPU \(WebAssembly, \d+ threads?\) — the only WebGPU adapter is a software fallback$/.test(badge), `badge text: ${badge}`);
    await p.click("#load-default");
    const m = await waitModel(p);
    assert(m.backend === "cpu", `the model loaded on ${m.backend}`);
    assert(/on this device's CPU/.test(await p.textContent("footer")), await p.textContent("footer"));
    await p.screenshot({ path: path.join(outDir, "backend-fallback.png") });
    wb.check();
    await c.close();
  });

  await test("backend: the Summarizer API on a ?backend=cpu page picks the CPU", async () => {
    const c = await browser.newContext({ serviceWorkers: "block" });
    await c.route(`${base}api-backend.html?backend=cpu`, (route) => route.fulfill({
      contentType: "text/html",
      body: `<!doctype html><meta charset="utf-8"><title>api backend</title><script type="module">
        import { Summarizer } from "./precis.js";
        window.run = async () => {
          const s = await Summarizer.create({ type: "headline" });
          const out = { backend: s.backend, why: s.backendReason };
          s.destroy();
          return out;
        };
      </script>`,
    }));
    const p = await c.newPage();
    const wb = watch(p);
    await p.goto(`${base}api-backend.html?backend=cpu`);
    await p.waitForFunction(() => typeof window.run === "function");
    assert(await p.evaluate(() => !!navigator.gpu), "navigator.gpu present");
    const r = await p.evaluate(() => window.run());
    assert(r.backend === "cpu" && /\?backend=cpu/.test(r.why), JSON.stringify(r));
    wb.check();
    await c.close();
  });

  // ---- Offline: with the service worker, a second visit needs no network.
  await test("offline after the first visit (service worker + model cache)", async () => {
    const c = await browser.newContext();
    await c.addInitScript(NO_GPU);
    const p = await c.newPage();
    const w3 = watch(p);
    await p.goto(base);
    await p.click("#load-default");
    await waitModel(p);
    await p.evaluate(() => navigator.serviceWorker.ready);
    await c.setOffline(true);
    await p.reload();
    const m = await waitModel(p);
    assert(m.origin === "cache", `origin ${m.origin}`);
    assert(await p.isVisible("#summarize"), "page rendered offline");
    w3.check();
    await c.close();
  });

  await test("WebGPU present but ?backend=cpu: badge says CPU", async () => {
    const c = await browser.newContext({ serviceWorkers: "block" });
    const p = await c.newPage();
    await p.goto(`${base}?backend=cpu`);
    await p.waitForFunction(() => document.getElementById("backend-badge").dataset.backend, null, { timeout: 60_000 });
    assert(await p.evaluate(() => !!navigator.gpu), "navigator.gpu present");
    assert((await p.getAttribute("#backend-badge", "data-backend")) === "cpu", "badge backend");
    const badge = await p.textContent("#backend-badge");
    assert(/^CPU \(WebAssembly, \d+ threads?\) — asked for with \?backend=cpu/.test(badge), `badge text: ${badge}`);
    await c.close();
  });

  // ---- Model output under control: a result saved in IndexedDB is what the
  // page shows after a reload, so any text can stand in for the model's.
  await test("notes Markdown renders as h3/ol/blockquote; model HTML stays text; Markdown downloads escape it", async () => {
    const c = await browser.newContext({ serviceWorkers: "block" });
    await c.addInitScript(NO_GPU);
    const p = await c.newPage();
    const w4 = watch(p);
    await p.goto(base);
    const show = async (result) => {
      await p.evaluate((r) => new Promise((resolve, reject) => {
        const open = indexedDB.open("precis", 1);
        open.onupgradeneeded = () => open.result.createObjectStore("kv");
        open.onsuccess = () => {
          const t = open.result.transaction("kv", "readwrite");
          t.objectStore("kv").put(r, "result");
          t.oncomplete = () => (open.result.close(), resolve());
          t.onerror = () => reject(t.error);
        };
        open.onerror = () => reject(open.error);
      }), { length: "short", at: new Date(0).toISOString(), ...result });
      await p.reload();
      await p.waitForSelector("#result:not([hidden])");
    };
    const mdOf = async () => {
      const [dl] = await Promise.all([p.waitForEvent("download"), p.click("#download-md")]);
      return fs.readFileSync(await dl.path(), "utf8");
    };
    const notes = [
      "### Hashing <b>x</b> (0:00 - 1:05)",
      "1. Keys map to a ring of <img src=x onerror=\"window.pwned=1\"> servers.",
      "2. Adding a node (see `ring`) moves only Q&A &amp; keys.",
      "3. A <b>bold</b> claim<br />on one line.",
      "Quotes:",
      "1. \"data does not fit on a single <b>server</b>\"",
      "2. \"this is called horizontal scaling\"",
      "",
      "### Virtual nodes  (1:05 - 1:02:03)",
      "1. Each server gets many points.",
      "2. Load evens out.",
      "A stray line <script>window.pwned=2</script> outside the grammar.",
    ].join("\n");
    await show({ format: "notes", text: notes });
    const dom = await p.evaluate(() => {
      const cards = document.getElementById("cards");
      return {
        text: cards.textContent,
        h3: [...cards.querySelectorAll("article.notes-section > h3")].map((h) => [h.textContent, h.querySelector(".range")?.textContent]),
        points: [...cards.querySelectorAll("article.notes-section > ol.points > li")].map((li) => [li.value, li.textContent]),
        quotes: [...cards.querySelectorAll("article.notes-section > ol.quotes > li > blockquote")].map((b) => b.textContent),
        plain: [...cards.querySelectorAll("p.plain")].map((e) => e.textContent),
        injected: cards.querySelectorAll("b, img, br, script").length,
        pwned: window.pwned,
      };
    });
    assert(JSON.stringify(dom.h3) === JSON.stringify([["Hashing <b>x</b> 0:00 - 1:05", "0:00 - 1:05"], ["Virtual nodes 1:05 - 1:02:03", "1:05 - 1:02:03"]]), `headings ${JSON.stringify(dom.h3)}`);
    assert(JSON.stringify(dom.points) === JSON.stringify([
      [1, "Keys map to a ring of <img src=x onerror=\"window.pwned=1\"> servers."],
      [2, "Adding a node (see `ring`) moves only Q&A &amp; keys."],
      [3, "A <b>bold</b> claim<br />on one line."],
      [1, "Each server gets many points."],
      [2, "Load evens out."],
    ]), `points ${JSON.stringify(dom.points)}`);
    assert(JSON.stringify(dom.quotes) === JSON.stringify(["data does not fit on a single <b>server</b>", "this is called horizontal scaling"]), `quotes ${JSON.stringify(dom.quotes)}`);
    assert(JSON.stringify(dom.plain) === JSON.stringify(["A stray line <script>window.pwned=2</script> outside the grammar."]), `plain ${JSON.stringify(dom.plain)}`);
    assert(dom.injected === 0 && dom.pwned === undefined, `model text became HTML: ${dom.injected} elements, pwned ${dom.pwned}`);
    assert(!dom.text.includes("###") && !dom.text.includes("Quotes:"), `Markdown shown as text: ${dom.text}`);
    await p.locator("#result").screenshot({ path: path.join(outDir, "notes-fixture.png") });

    // The download keeps the Markdown, with what a viewer would take as HTML escaped.
    const md = await mdOf();
    assert(md === [
      "### Hashing &lt;b&gt;x&lt;/b&gt; (0:00 - 1:05)",
      "1. Keys map to a ring of &lt;img src=x onerror=\"window.pwned=1\"&gt; servers.",
      "2. Adding a node (see \\`ring\\`) moves only Q&A &amp;amp; keys.",
      "3. A &lt;b&gt;bold&lt;/b&gt; claim&lt;br /&gt;on one line.",
      "Quotes:",
      "1. \"data does not fit on a single &lt;b&gt;server&lt;/b&gt;\"",
      "2. \"this is called horizontal scaling\"",
      "",
      "### Virtual nodes  (1:05 - 1:02:03)",
      "1. Each server gets many points.",
      "2. Load evens out.",
      "A stray line &lt;script&gt;window.pwned=2&lt;/script&gt; outside the grammar.",
    ].join("\n"), `notes Markdown: ${md}`);

    // The renderer on its own: text outside the grammar is plain text only.
    const loose = await p.evaluate(async () => {
      const { renderNotes } = await import("./notes.js");
      const box = document.createElement("div");
      box.append(renderNotes("1. A point before any header.\nQuotes:\n### \n#### Four <i>hashes</i>\n### T\n1. p.\nQuotes:\n1. \"unclosed quote\n2. \"fine\""));
      return { html: box.innerHTML, plain: [...box.querySelectorAll("p.plain")].map((e) => e.textContent), quotes: [...box.querySelectorAll("blockquote")].map((b) => b.textContent), h3: [...box.querySelectorAll("h3")].map((h) => h.textContent) };
    });
    assert(JSON.stringify(loose.plain) === JSON.stringify(["1. A point before any header.", "Quotes:", "### ", "#### Four <i>hashes</i>", "1. \"unclosed quote"]), `plain ${JSON.stringify(loose)}`);
    assert(JSON.stringify(loose.h3) === JSON.stringify(["T"]) && JSON.stringify(loose.quotes) === JSON.stringify(["fine"]), JSON.stringify(loose));
    assert(!/<i>/.test(loose.html), loose.html);

    // The other formats' downloads are escaped too.
    await show({ format: "key-points", text: "- Use <br /> and <b>bold</b> tags.\n- Then stop." });
    assert((await p.textContent("#cards .text-output")) === "- Use <br /> and <b>bold</b> tags.\n- Then stop.", "key points as text");
    const kp = await mdOf();
    assert(kp === "- Use &lt;br /&gt; and &lt;b&gt;bold&lt;/b&gt; tags.\n- Then stop.", `key-points Markdown: ${kp}`);
    const data = {
      introduction: "A talk on <b>hashing</b>.",
      sections: [{ title: "Rings <br />", content: ["Keys <i>move</i>.", "Nodes join."], topics: ["<hash>", "ring"] }],
      topics: ["a<b>", "c"],
      generalTopics: [{ name: "<sys>", complexity: 0.5 }],
    };
    await show({ format: "structured", text: JSON.stringify(data) });
    assert((await p.textContent("#cards .card.section h3")) === "Rings <br />", "structured title as text");
    const st = await mdOf();
    assert(st === [
      "# Summary", "", "A talk on &lt;b&gt;hashing&lt;/b&gt;.", "",
      "## Rings &lt;br /&gt;", "", "- Keys &lt;i&gt;move&lt;/i&gt;.", "- Nodes join.", "", "Topics: &lt;hash&gt;, ring", "",
      "## Topics", "", "- a&lt;b&gt;\n- c", "", "## General topics", "", "- &lt;sys&gt;: 0.50",
    ].join("\n") + "\n", `structured Markdown: ${st}`);
    w4.check();
    await c.close();
  });

  // ---- Downloads from another origin (the model host in model_server.mjs:
  // https on its own port, CORS headers), resumable with Range requests.
  {
    const host = await startModelServer({ file: modelPath, tmpDir: tmp });
    const modelSha = crypto.createHash("sha256").update(fs.readFileSync(modelPath)).digest("hex");
    const PIECE = 16 << 20;
    // The page lists the test host's URL in the manifest with the file's size and
    // sha256, as it lists the suggested models, so the download is checked.
    const withManifest = async (c, entries) => c.route("**/models/manifest.json", (route) => route.fulfill({ contentType: "application/json", body: JSON.stringify({ models: entries }) }));
    // A fresh context on the app, its model worker ready (the badge is set), with
    // `manifest` entries served in place of models/manifest.json when given.
    const openApp = async (manifest) => {
      const c = await newCtx();
      if (manifest) await withManifest(c, manifest);
      const p = await c.newPage();
      const wd = watch(p);
      await p.goto(base);
      await p.waitForFunction(() => document.getElementById("backend-badge").dataset.backend);
      return { c, p, wd };
    };
    const newCtx = async () => {
      const c = await browser.newContext({ serviceWorkers: "block", ignoreHTTPSErrors: true });
      await c.addInitScript(NO_GPU);
      return c;
    };
    // What the page has kept: pieces of unfinished downloads, whole models.
    const stored = (p, url) => p.evaluate(async (u) => {
      const parts = await caches.open("precis-parts-v1");
      let bytes = 0, pieces = 0;
      for (const req of await parts.keys()) {
        if (!req.url.includes(encodeURIComponent(u)) || req.url.endsWith("/meta")) continue;
        pieces++;
        bytes += Number((await parts.match(req)).headers.get("content-length"));
      }
      const whole = await (await caches.open("precis-models-v1")).match(u);
      return { bytes, pieces, whole: whole ? Number(whole.headers.get("content-length")) : 0 };
    }, url);
    const download = async (p, url) => {
      await p.fill("#model-url", url);
      if (await p.evaluate((u) => window.PrecisConnect.allows(u), url)) return p.click("#load-url");
      // A URL the page may not reach yet: it stores the URL and reloads under a
      // policy that includes it (www/csp.js), then starts the download.
      await Promise.all([p.waitForEvent("load"), p.click("#load-url")]);
      await p.waitForFunction(() => document.getElementById("backend-badge").dataset.backend);
    };
    // The model worker of the page as it is now (a reload replaces it).
    const modelWorker = async (p) => {
      for (let i = 0; i < 100; i++) {
        const w = p.workers().filter((x) => x.url().startsWith("blob:")).pop();
        if (w) return w;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`no model worker among ${p.workers().map((x) => x.url()).join(", ") || "none"}`);
    };
    // What a fetch of `u` from the page and from its model worker comes to.
    const probe = async (p, u) => {
      const f = async (url) => {
        try {
          const r = await fetch(url, { headers: { Range: "bytes=0-3" } });
          return `ok ${r.status}`;
        } catch (e) {
          return `refused (${e.message})`;
        }
      };
      return { page: await p.evaluate(f, u), worker: await (await modelWorker(p)).evaluate(f, u) };
    };
    // Every progress line the page shows, for the checks on its format.
    const recordProgress = (p) => p.evaluate(() => {
      window.progressLines = [];
      new MutationObserver(() => window.progressLines.push(`${document.getElementById("model-progress-wrap").dataset.phase}|${document.getElementById("model-progress-text").textContent}`))
        .observe(document.getElementById("model-progress-text"), { childList: true, characterData: true, subtree: true });
    });
    const NET_ERRORS = [/net::ERR_|Failed to fetch|Failed to load resource/];

    await test("URL download: interrupted, kept across a reload, resumed from the stored byte with a Range request", async () => {
      const url = `${host.origin}/ranged/resume.gguf`;
      const { c, p, wd } = await openApp([{ url, size: modelSize, sha256: modelSha }]);
      // The connection drops 40 MiB + 12345 bytes in (inside the third piece) and
      // the host stays down, so the page's own retries fail too.
      const cut = 40 * 1048576 + 12345;
      host.clearLog();
      host.cutAfter(cut, () => (host.down = true));
      await download(p, url);
      await p.waitForSelector("#model-error:not([hidden])", { timeout: 60_000 });
      const msg = await p.textContent("#model-error");
      assert(/stopped at byte \d+ of \d+/.test(msg) && /kept: load it again to continue/.test(msg), msg);
      const kept = await stored(p, url);
      console.log(`     first attempt: ${kept.bytes} bytes kept in ${kept.pieces} pieces (connection cut at ${cut}); "${msg.slice(0, 120)}…"`);
      // Two whole pieces plus the part of the third that arrived before the drop.
      assert(kept.bytes > 2 * PIECE && kept.bytes <= cut && kept.pieces === 3 && kept.whole === 0, JSON.stringify(kept));
      const firstTry = host.log.filter((e) => e.path.endsWith("resume.gguf"));
      assert(firstTry[0].range === `bytes=0-${PIECE - 1}` && firstTry[1].range === `bytes=${PIECE}-${2 * PIECE - 1}`, JSON.stringify(firstTry.slice(0, 3)));

      // The tab is reloaded (as after closing it); the host is back.
      host.down = false;
      host.clearLog();
      await p.reload();
      await p.waitForFunction(() => document.getElementById("backend-badge").dataset.backend);
      // The model list shows the unfinished download; its Resume button continues it.
      const row = p.locator("#cached-models li.partial", { hasText: "resume.gguf" });
      await row.waitFor({ state: "attached" });
      const rowText = await row.textContent();
      assert(rowText.includes(`${(kept.bytes / 1048576).toFixed(1)} MiB of ${(modelSize / 1048576).toFixed(1)} MiB downloaded`), rowText);
      await recordProgress(p);
      await p.click("#cached-wrap summary");
      await row.locator("button", { hasText: "Resume" }).click();
      const m = await waitModel(p);
      const second = host.log.filter((e) => e.path.endsWith("resume.gguf"));
      console.log(`     after the reload: ${second.map((e) => `${e.range} → ${e.status}`).join(", ")}`);
      assert(second[0].range === `bytes=${kept.bytes}-${kept.bytes + PIECE - 1}`, `resumed with ${second[0].range}, ${kept.bytes} bytes were kept`);
      assert(second.every((e) => e.status === 206 && !/^bytes=0-/.test(e.range)), "no request started again from byte 0");
      assert(m.origin === "url" && Number(m.resumedFrom) === kept.bytes && /resumed at/.test(m.text), JSON.stringify(m));
      const after = await stored(p, url);
      assert(after.pieces === 0 && after.whole === modelSize, `after completion: ${JSON.stringify(after)}`);
      const lines = await p.evaluate(() => window.progressLines);
      const dl = lines.filter((l) => l.startsWith("download|")).map((l) => l.slice(9));
      assert(dl.length > 0 && dl.every((l) => /^[\d.]+ MiB of [\d.]+ MiB \(\d+%\) · [\d.]+ MiB\/s · .+ left$/.test(l)), `progress lines: ${dl.slice(0, 3).join(" / ")}`);
      const firstPct = Number(/\((\d+)%\)/.exec(dl[0])[1]);
      assert(firstPct >= Math.floor((100 * kept.bytes) / modelSize), `progress restarted from ${firstPct}%`);
      assert(lines.some((l) => l.startsWith("verify|")), "the sha256 check showed progress");
      wd.check(NET_ERRORS);
      await c.close();
    });

    await test("URL download: a dropped connection is retried at once from the last byte that arrived", async () => {
      const url = `${host.origin}/ranged/retry.gguf`;
      const { c, p, wd } = await openApp();
      host.clearLog();
      host.cutAfter(20 * 1048576 + 777);
      await download(p, url);
      const m = await waitModel(p);
      const reqs = host.log.filter((e) => e.path.endsWith("retry.gguf"));
      console.log(`     ${reqs.map((e) => `${e.range} → ${e.status}`).join(", ")}`);
      // The request after the cut one starts inside the cut piece, where the
      // bytes that arrived end (the piece's start would mean they were thrown away).
      const cutAt = reqs.findIndex((e) => /cut/.test(e.status));
      const next = Number(/^bytes=(\d+)-/.exec(reqs[cutAt + 1]?.range || "")?.[1]);
      assert(cutAt === 1 && next > PIECE && next <= 20 * 1048576 + 777, `the retry after the cut: ${JSON.stringify(reqs.slice(0, 3))}`);
      assert(reqs.filter((e) => /^bytes=0-/.test(e.range)).length === 1, "byte 0 requested once");
      assert(m.origin === "url" && (await stored(p, url)).whole === modelSize, JSON.stringify(m));
      wd.check(NET_ERRORS);
      await c.close();
    });

    await test("URL download: a server without Range support is read in one GET", async () => {
      const url = `${host.origin}/plain/whole.gguf`;
      const { c, p, wd } = await openApp();
      host.clearLog();
      await download(p, url);
      const m = await waitModel(p);
      assert(m.ranged === "false", `ranged ${m.ranged}`);
      const reqs = host.log.filter((e) => e.path.endsWith("whole.gguf"));
      assert(reqs.length === 1 && reqs[0].status === 200, JSON.stringify(reqs));
      assert(m.origin === "url" && (await stored(p, url)).whole === modelSize, JSON.stringify(m));
      wd.check();
      await c.close();
    });

    await test("URL download: a sha256 that does not match the manifest is refused and discarded", async () => {
      const url = `${host.origin}/ranged/badsum.gguf`;
      const { c, p, wd } = await openApp([{ url, size: modelSize, sha256: "0".repeat(64) }]);
      await download(p, url);
      await p.waitForSelector("#model-error:not([hidden])", { timeout: 60_000 });
      const msg = await p.textContent("#model-error");
      assert(/does not match the manifest's sha256/.test(msg) && msg.includes(modelSha), msg);
      const s = await stored(p, url);
      assert(s.pieces === 0 && s.whole === 0, `nothing kept: ${JSON.stringify(s)}`);
      assert(/No model loaded/.test(await p.textContent("#model-status")), "no model");
      wd.check();
      await c.close();
    });

    await test("Content-Security-Policy: page and worker reach only this site and the model URLs typed", async () => {
      // Two hosts the static policy (`connect-src 'self' https:`) would both allow.
      const other = await startModelServer({ file: modelPath, tmpDir: tmp });
      try {
        // `;`, `,` and `[ ]` in the path: characters a CSP source must carry encoded.
        const url = `${host.origin}/ranged/csp;v=1,[x].gguf`;
        const sibling = `${host.origin}/ranged/csp-sibling.gguf`;
        const otherUrl = `${other.origin}/ranged/csp-other.gguf`;
        const { c, p, wd } = await openApp();
        host.clearLog();
        const before = await probe(p, url);
        assert(/^refused/.test(before.page) && /^refused/.test(before.worker), `before typing it: ${JSON.stringify(before)}`);
        assert(host.log.length === 0, `refused requests reached the host: ${JSON.stringify(host.log)}`);
        assert(await p.evaluate(() => [...document.querySelectorAll('meta[http-equiv="Content-Security-Policy"]')].some((m) => m.content === "connect-src 'self'")), "the page's narrowed policy");

        // A folder would be a prefix source (a whole directory): refused, no reload.
        let navigated = false;
        const onNav = () => (navigated = true);
        p.on("framenavigated", onNav);
        await p.fill("#model-url", `${other.origin}/ranged/`);
        await p.click("#load-url");
        assert(/names a folder, not a \.gguf file/.test(await p.textContent("#model-error")), await p.textContent("#model-error"));
        assert(!navigated, "no reload for a refused address");
        p.off("framenavigated", onNav);

        // Typing the URL reloads the page; the transcript is kept across it.
        const text = excerpt("consistent-hashing.txt", 600);
        await setTranscript(p, text);
        await download(p, url);
        const m = await waitModel(p);
        assert(m.origin === "url", JSON.stringify(m));
        assert((await p.inputValue("#transcript")) === text, "transcript kept across the reload");
        const typed = await probe(p, url);
        assert(typed.page === "ok 206" && typed.worker === "ok 206", `after typing it: ${JSON.stringify(typed)}`);
        // Another file on the same host, and a host never typed, stay refused.
        const near = await probe(p, sibling);
        const far = await probe(p, otherUrl);
        assert(/^refused/.test(near.page) && /^refused/.test(near.worker), `another file on the typed host: ${JSON.stringify(near)}`);
        assert(/^refused/.test(far.page) && /^refused/.test(far.worker), `a host never typed: ${JSON.stringify(far)}`);
        assert(!host.log.some((e) => e.path.endsWith("csp-sibling.gguf")) && other.log.length === 0, `refused requests reached a host: ${JSON.stringify([...host.log, ...other.log].filter((e) => !e.path.includes("csp;")))}`);
        const policy = await p.evaluate(() => window.PrecisConnect.sources.join(" "));
        assert(policy === `'self' ${host.origin}/ranged/csp%3Bv=1%2C%5Bx%5D.gguf`, policy);

        // A new URL while a summary runs is refused with a message: the reload
        // it needs would end the run. The run goes on; the page does not reload.
        await p.evaluate(TEST_OPTIONS);
        await p.selectOption("#format", "structured");
        await p.selectOption("#length", "long");
        await p.click("#summarize");
        await p.waitForFunction(() => document.getElementById("live").textContent.length > 0, null, { timeout: 120_000 });
        navigated = false;
        p.on("framenavigated", onNav);
        await p.fill("#model-url", otherUrl);
        await p.click("#load-url");
        const busy = await p.textContent("#model-error");
        assert(/would end the summary under way/.test(busy), busy);
        assert(await p.evaluate(() => window.precis.state.running), "the run went on");
        await p.click("#stop");
        await p.waitForFunction(() => !window.precis.state.running, null, { timeout: 60_000 });
        assert(!navigated && !(await p.evaluate(() => localStorage.getItem("precis.connect") || "")).includes("csp-other"), "no reload, nothing stored");
        p.off("framenavigated", onNav);
        const partial = await p.textContent("#live");

        // The refusals were the policy's: once stored, the other URL answers too.
        // The stopped run's partial text is still shown after this reload.
        await p.evaluate((u) => window.PrecisConnect.remember(u), otherUrl);
        await p.reload();
        await p.waitForFunction(() => document.getElementById("backend-badge").dataset.backend);
        const allowed = await probe(p, otherUrl);
        assert(allowed.worker === "ok 206" && allowed.page === "ok 206", `after storing it: ${JSON.stringify(allowed)}`);
        assert(partial.length > 0 && (await p.textContent("#live")) === partial && (await p.isVisible("#live")), "the partial text survives the reload");
        console.log(`     before: ${before.worker}; typed: ${typed.worker}; same host, other file: ${near.worker}; other host: ${far.worker}; policy now: ${await p.evaluate(() => window.PrecisConnect.sources.join(" "))}`);
        wd.check([/Content Security Policy/, /Failed to fetch/]);
        await c.close();
      } finally {
        await other.close();
      }
    });

    await test("sha256.js agrees with WebCrypto on every length around the block size and random splits", async () => {
      const c = await browser.newContext({ serviceWorkers: "block" });
      const p = await c.newPage();
      await p.goto(base);
      const bad = await p.evaluate(async () => {
        const { Sha256 } = await import("./sha256.js");
        const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");
        let seed = 12345;
        const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
        const lengths = [...Array(200).keys(), 1000, 4095, 4096, 65537, 1 << 20, 3_000_001];
        for (const n of lengths) {
          const data = new Uint8Array(n).map(() => (rnd() * 256) | 0);
          const want = hex(await crypto.subtle.digest("SHA-256", data));
          const h = new Sha256();
          // Fed in random-sized slices, as the downloader's reads arrive.
          for (let at = 0; at < n; ) {
            const step = 1 + ((rnd() * Math.min(n, 70000)) | 0);
            h.update(data.subarray(at, at + step));
            at += step;
          }
          const got = h.hex();
          if (got !== want) return { bad: `length ${n}: got ${got}, WebCrypto says ${want}` };
        }
        // Speed, for the README (not asserted): 32 MiB in the 8 MiB slices the downloader reads.
        const big = new Uint8Array(32 << 20).map((_, i) => i * 7);
        const t = performance.now();
        const h = new Sha256();
        for (let at = 0; at < big.length; at += 8 << 20) h.update(big.subarray(at, at + (8 << 20)));
        h.hex();
        return { bad: null, mibs: 32 / ((performance.now() - t) / 1000) };
      });
      assert(bad.bad === null, bad.bad);
      console.log(`     sha256.js: ${bad.mibs.toFixed(0)} MiB/s`);
      report.sha256MiBs = bad.mibs;
      await c.close();
    });
    await host.close();
  }

  // ---- Drag and drop: a DataTransfer built in the page, dispatched as the
  // browser does (dragenter, dragover, drop).
  await test("drag and drop: a GGUF on the model panel loads; .srt/.vtt/.txt on the transcript fill it", async () => {
    const c = await browser.newContext({ serviceWorkers: "block" });
    await c.addInitScript(NO_GPU);
    const p = await c.newPage();
    const wd = watch(p);
    await p.goto(base);
    await p.waitForFunction(() => document.getElementById("backend-badge").dataset.backend);
    const drop = (selector, name, content) => p.evaluate(async ({ selector, name, content }) => {
      const body = content ?? (await (await fetch("models/SmolLM2-135M-Instruct.Q4_1.gguf")).blob());
      const dt = new DataTransfer();
      dt.items.add(new File([body], name));
      const el = document.querySelector(selector);
      const accepted = [];
      for (const type of ["dragenter", "dragover", "drop"]) {
        const ev = new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt });
        el.dispatchEvent(ev);
        accepted.push(ev.defaultPrevented);
      }
      return accepted;
    }, { selector, name, content });
    const accepted = await drop("#model-panel", "dropped.gguf", null);
    assert(accepted.every(Boolean), `the model panel did not accept the drop: ${accepted}`);
    const m = await waitModel(p);
    assert(m.origin === "file" && /dropped\.gguf/.test(m.text), m.text);
    const srt = "1\n00:00:01,000 --> 00:00:04,000\nConsistent hashing places keys on a ring.\n\n2\n00:00:04,500 --> 00:00:09,000\nAdding a server moves only its neighbour's keys.\n";
    const vtt = "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\nVirtual nodes smooth the load.\n\n00:00:04.500 --> 00:00:08.000\nEach server owns many points on the ring.\n";
    const txt = "Plain notes about consistent hashing and virtual nodes, without any timestamps at all.";
    for (const [name, content, format] of [["talk.srt", srt, "srt"], ["talk.vtt", vtt, "vtt"], ["talk.txt", txt, "plain"]]) {
      const ok = await drop("#drop-zone", name, content);
      assert(ok.every(Boolean), `the transcript did not accept ${name}: ${ok}`);
      await p.waitForFunction((t) => document.getElementById("transcript").value === t, content);
      await p.waitForFunction((f) => document.getElementById("transcript-stats").textContent.includes(` · ${f}`), format, { timeout: 30_000 });
    }
    await drop("#drop-zone", "slides.pdf", "%PDF-1.4 not a transcript");
    await p.waitForSelector("#transcript-error:not([hidden])");
    assert(/not a transcript/.test(await p.textContent("#transcript-error")), await p.textContent("#transcript-error"));
    assert((await p.inputValue("#transcript")) === txt, "a refused file leaves the transcript as it was");
    wd.check();
    await c.close();
  });

  // ---- Storage quota too small to keep the model: the page says so and loads it anyway.
  await test("storage quota shortfall: the page says needed vs free and loads the model for this visit", async () => {
    const c = await browser.newContext({ serviceWorkers: "block" });
    await c.addInitScript(NO_GPU);
    await c.addInitScript(`StorageManager.prototype.estimate = async function () { return { quota: 60 * 1048576, usage: 20 * 1048576 }; };`);
    const p = await c.newPage();
    const wq = watch(p);
    await p.goto(base);
    await p.click("#load-default");
    const m = await waitModel(p);
    const note = await p.textContent("#model-note");
    console.log(`     ${note}`);
    assert(m.origin === "url", `origin ${m.origin}`);
    assert(note.includes(`needs ${(modelSize / 1048576).toFixed(1)} MiB, 40.0 MiB is free`) && /this visit only/.test(note), note);
    const kept = await p.evaluate(async () => ({
      models: (await (await caches.open("precis-models-v1")).keys()).length,
      parts: (await (await caches.open("precis-parts-v1")).keys()).length,
    }));
    assert(kept.models === 0 && kept.parts === 0, `nothing may be cached: ${JSON.stringify(kept)}`);
    await p.fill("#transcript", "Consistent hashing places keys and servers on a ring.");
    await p.waitForFunction(() => / tokens · /.test(document.getElementById("transcript-stats").textContent));
    wq.check();
    await c.close();
  });

  // ---- The CPU engine on every core (issue 17): a cross-origin-isolated page loads
  // the threaded build (pkg-mt/, shared memory) with the threads asked for; a page
  // without COOP/COEP loads the single-threaded build (pkg/). The greedy headline is
  // the same at every thread count and in both builds.
  await test("threads: the isolated page runs the threaded build at 1, 2 and 4 threads, the plain page one thread; the same greedy headline", async () => {
    const c = await browser.newContext({ serviceWorkers: "block" });
    await c.addInitScript(NO_GPU);
    const p = await c.newPage();
    const w2 = watch(p);
    const body = `<!doctype html><meta charset="utf-8"><title>threads</title><script type="module">
      import { Summarizer } from "./precis.js";
      window.run = async (text, threads) => {
        const s = await Summarizer.create({ type: "headline", length: "short", threads, extra: { max_shots: 0 } });
        const t = performance.now();
        const out = await s.summarize(text);
        const r = { out, seconds: (performance.now() - t) / 1000, build: s.engineBuild, backend: s.backend, isolated: crossOriginIsolated };
        s.destroy();
        return r;
      };</script>`;
    const isolation = { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" };
    await c.route(`${base}threads-isolated.html`, (route) => route.fulfill({ contentType: "text/html", headers: isolation, body }));
    await c.route(`${base}threads-plain.html`, (route) => route.fulfill({ contentType: "text/html", body }));
    const text = excerpt("consistent-hashing.txt");
    const runs = [];
    for (const [page, threads] of [["plain", 2], ["isolated", 1], ["isolated", 2], ["isolated", 4]]) {
      await p.goto(`${base}threads-${page}.html`);
      await p.waitForFunction(() => typeof window.run === "function");
      const r = await p.evaluate(([t, n]) => window.run(t, n), [text, threads]);
      runs.push({ page, asked: threads, ...r });
      console.log(`     ${page} page, ${threads} asked: ${r.build.build} build, ${r.build.threads} thread(s), ${r.seconds.toFixed(1)} s: ${JSON.stringify(r.out)}`);
    }
    const [plain, ...iso] = runs;
    assert(!plain.isolated && plain.build.build === "single" && plain.build.threads === 1 && /not cross-origin isolated/.test(plain.build.why), `plain page: ${JSON.stringify(plain.build)}`);
    for (const r of iso) {
      assert(r.isolated && r.backend === "cpu" && r.build.build === "threaded" && r.build.threads === r.asked, `isolated page, ${r.asked} asked: ${JSON.stringify(r.build)}`);
      assert(r.out === plain.out, `${r.asked} threads wrote ${JSON.stringify(r.out)}, the single-threaded build ${JSON.stringify(plain.out)}`);
    }
    assert(plain.out.trim().length > 3, `headline ${JSON.stringify(plain.out)}`);
    report.threads = runs.map((r) => ({ page: r.page, build: r.build.build, threads: r.build.threads, seconds: r.seconds }));
    w2.check();
    await c.close();
  });

  // ---- The app's model panel on an isolated page says how many threads the CPU engine runs.
  await test("threads: the app with ?threads=2 says 2 threads in the badge", async () => {
    const c = await browser.newContext({ serviceWorkers: "block" });
    await c.addInitScript(NO_GPU);
    const p = await c.newPage();
    await p.goto(`${base}?threads=2`);
    await p.waitForFunction(() => document.getElementById("backend-badge").dataset.threads);
    const b = await p.evaluate(() => ({ text: document.getElementById("backend-badge").textContent, ...document.getElementById("backend-badge").dataset }));
    assert(b.build === "threaded" && b.threads === "2" && /^CPU \(WebAssembly, 2 threads\)/.test(b.text), `badge ${JSON.stringify(b)}`);
    await c.close();
  });

  // ---- Stop at 2 threads: the engine's worker answers Stop between two tokens while
  // the pool's workers compute its products (issue 17); the transcript stays.
  await test("threads: at 2 threads Stop ends a run mid-generation and keeps the transcript", async () => {
    const c = await browser.newContext({ serviceWorkers: "block" });
    await c.addInitScript(NO_GPU);
    await c.addInitScript(TEST_OPTIONS);
    const p = await c.newPage();
    const ws = watch(p);
    await p.goto(`${base}?threads=2`);
    await p.click("#load-default");
    await waitModel(p);
    const b = await p.evaluate(() => ({ ...document.getElementById("backend-badge").dataset }));
    assert(b.build === "threaded" && b.threads === "2", `badge ${JSON.stringify(b)}`);
    const text = excerpt("consistent-hashing.txt");
    await setTranscript(p, text);
    await p.selectOption("#format", "key-points");
    await p.click("#summarize");
    await p.waitForFunction(() => document.getElementById("live").textContent.length > 5, null, { timeout: 120_000 });
    const t = Date.now();
    await p.click("#stop");
    await p.waitForFunction(() => !window.precis.state.running, null, { timeout: 60_000 });
    const status = await p.textContent("#run-status");
    console.log(`     stopped ${Date.now() - t} ms after the click: ${status}`);
    assert(/^stopped while writing/.test(status), `status after Stop: ${status}`);
    assert(Date.now() - t < 10_000, `Stop took ${Date.now() - t} ms`);
    assert((await p.inputValue("#transcript")) === text, "transcript kept");
    ws.check();
    await c.close();
  });

  // ---- A threaded build that cannot start (here its pool workers' script is missing,
  // after the engine asked for the threads) gives way to the single-threaded build; the
  // badge says why (the single build itself is tested on the plain page above).
  await test("threads: a threaded build whose threads fail to start falls back to the single-threaded build and says why", async () => {
    // Routes do not reach a worker's own workers, so a copy of the site (links to its
    // files) without pool-worker.js is served instead.
    const broken = path.join(tmp, "no-pool-worker");
    fs.mkdirSync(broken);
    for (const f of fs.readdirSync(dist)) if (f !== "pool-worker.js") fs.symlinkSync(path.join(dist, f), path.join(broken, f));
    const site = await serve(broken);
    const c = await browser.newContext({ serviceWorkers: "block" });
    try {
      await c.addInitScript(NO_GPU);
      const p = await c.newPage();
      await p.goto(`${site.base}?threads=2`);
      await p.waitForFunction(() => document.getElementById("backend-badge").dataset.threads);
      const b = await p.evaluate(() => ({ text: document.getElementById("backend-badge").textContent, title: document.getElementById("backend-badge").title, ...document.getElementById("backend-badge").dataset }));
      assert(b.build === "single" && b.threads === "1", `badge ${JSON.stringify(b)}`);
      assert(/threaded build failed to start \(engine thread 1/.test(b.threadsWhy) && /threaded build failed to start/.test(b.title), `why: ${JSON.stringify(b)}`);
    } finally {
      await c.close();
      site.proc.kill(); // also when an assertion fails: no server left behind
    }
  });

  // ---- The model catalog (issue 16): models/manifest.json names every model the page
  // suggests; the panel lists each with family, quant, size and when to use it, and
  // marks the ones already in this browser.
  await test("catalog: every manifest entry is complete, and the page lists each with size and whether it is in this browser", async () => {
    const m = JSON.parse(fs.readFileSync(path.join(root, "models/manifest.json"), "utf8"));
    const ids = m.models.map((e) => e.id);
    assert(new Set(ids).size === ids.length && ids.includes(m.default), `ids unique, default listed: ${ids}`);
    for (const e of m.models) {
      for (const k of ["id", "name", "file", "url", "family", "quant", "use", "context", "backend"]) assert(e[k] !== undefined && e[k] !== "", `${e.id}: no ${k}`);
      assert(["llama", "qwen2", "qwen3", "qwen3moe", "gemma3", "phi3", "mistral3", "smollm3"].includes(e.family), `${e.id}: family ${e.family} is not one Precis runs`);
      assert(typeof e.tested === "boolean", `${e.id}: tested must say true or false`);
      if (e.tested) assert(e.size > 0 && /^[0-9a-f]{64}$/.test(e.sha256), `${e.id}: a tested model pins its size and sha256`);
      else assert(/^https:\/\//.test(e.url) && e.note, `${e.id}: an untested model has a download URL and a note`);
    }
    const c = await browser.newContext({ serviceWorkers: "block" });
    await c.addInitScript(NO_GPU);
    const p = await c.newPage();
    const wc = watch(p);
    await p.goto(base);
    await p.click("#catalog-wrap summary");
    await p.waitForFunction((n) => document.querySelectorAll("#catalog li").length === n, m.models.length);
    const rows = async () => p.$$eval("#catalog li", (lis) => lis.map((li) => li.textContent));
    const before = await rows();
    m.models.forEach((e, i) => {
      assert(before[i].includes(e.name) && before[i].includes(e.use), `row ${i}: ${before[i]}`);
      assert(before[i].includes(e.size ? `${(e.size / 1048576).toFixed(1)} MiB` : "size not pinned"), `row ${i} gives the size: ${before[i]}`);
      assert(before[i].includes("untested here") === !e.tested, `row ${i} says whether it was tested: ${before[i]}`);
      assert(!before[i].includes("in this browser") && /Download$/.test(before[i]), `row ${i} before any download: ${before[i]}`);
    });
    // The default entry's Download goes through the resumable download path.
    const d = m.models.findIndex((e) => e.id === m.default);
    await p.click(`#catalog li:nth-child(${d + 1}) button`);
    await waitModel(p);
    await p.waitForFunction((i) => document.querySelectorAll("#catalog li")[i].textContent.includes("in this browser"), d);
    const after = await rows();
    assert(/Load$/.test(after[d]) && after.filter((r) => r.includes("in this browser")).length === 1, `only the default is in this browser now: ${after[d]}`);
    await p.screenshot({ path: path.join(outDir, "catalog.png"), fullPage: false });
    wc.check();
    await c.close();
  });

  // ---- The families people bring (issue 15): Qwen2.5-Coder-0.5B (qwen2) and Gemma 3
  // 270M (gemma3), where `make models` / `make model-gemma3` fetched them, picked from
  // the model panel's catalog as a user does (the resumable download path), on the CPU
  // path; the panel names the family and the quant mix, and a headline comes out through
  // the family's own chat template. Gemma also on WebGPU (SwiftShader). Minutes each.
  const manifestModels = JSON.parse(fs.readFileSync(path.join(root, "models/manifest.json"), "utf8")).models;
  for (const [id, family] of [["qwen2.5-coder-0.5b-instruct-q4_k_m", "qwen2"], ["gemma-3-270m-q4_k_m", "gemma3"]]) {
    const index = manifestModels.findIndex((m) => m.id === id);
    const here = index >= 0 && fs.existsSync(path.join(dist, "models", manifestModels[index].file));
    await test(`${family}: ${id} loads from the catalog on the CPU path, the panel names family and quant mix, a headline comes out`, async () => {
      if (!here) {
        console.log(`     SKIPPED: ${id} is not in www/dist/models (make models model-gemma3 web)`);
        return;
      }
      const c = await browser.newContext({ serviceWorkers: "block" });
      await c.addInitScript(NO_GPU);
      await c.addInitScript(TEST_OPTIONS);
      const p = await c.newPage();
      const we = watch(p);
      await p.goto(base);
      await p.click("#catalog-wrap summary");
      await p.waitForFunction((n) => document.querySelectorAll("#catalog li").length === n, manifestModels.length);
      await p.click(`#catalog li:nth-child(${index + 1}) button`);
      const m = await waitModel(p, 900_000);
      console.log(`     ${m.text}`);
      assert(m.backend === "cpu", `loaded on ${m.backend}`);
      assert(new RegExp(`\\(${family} · [A-Z0-9_]+ \\d+%( · [A-Z0-9_]+ \\d+%)*, \\d+ layers`).test(m.text), `the panel names family and quant mix: ${m.text}`);
      await setTranscript(p, excerpt("consistent-hashing.txt", 1200));
      await p.selectOption("#format", "headline");
      await p.selectOption("#length", "short");
      const r = await summarize(p);
      console.log(`     headline: ${JSON.stringify(r.text)}`);
      assert(r.text.trim().length > 0 && r.text.trim().split(/\s+/).length <= 12, `headline ${JSON.stringify(r.text)}`);
      we.check();
      await c.close();
    }, { models: true });
  }
  {
    const gemma = manifestModels.find((m) => m.id === "gemma-3-270m-q4_k_m");
    await test("gemma3: Gemma 3 270M writes a headline on WebGPU (SwiftShader) through the worker", async () => {
      if (!gemma || !fs.existsSync(path.join(dist, "models", gemma.file))) {
        console.log("     SKIPPED: gemma-3-270m-q4_k_m.gguf is not in www/dist/models (make model-gemma3 web)");
        return;
      }
      const c = await browser.newContext({ serviceWorkers: "block" });
      const p = await c.newPage();
      const we = watch(p);
      await p.goto(base);
      const r = await p.evaluate(async ({ file, text }) => {
        const { PrecisWorker } = await import("./precis.js");
        const w = new PrecisWorker();
        const loaded = await w.request({ type: "load", source: { kind: "url", url: new URL(`models/${file}`, location.href).href }, backend: "webgpu" });
        const s = await w.request({ type: "summarize", text, options: { format: "headline", length: "short", max_shots: 0 } });
        w.terminate();
        return { arch: loaded.info.arch, quant: loaded.info.quant, backend: s.backend, fallback: s.fallback || null, text: s.text };
      }, { file: gemma.file, text: excerpt("consistent-hashing.txt", 600) });
      console.log(`     ${r.arch} · ${r.quant} on ${r.backend}: ${JSON.stringify(r.text)}`);
      assert(r.arch === "gemma3" && /^Q8_0 \d+%/.test(r.quant), `${r.arch} · ${r.quant}`);
      assert(r.backend === "webgpu" && !r.fallback, `ran on ${r.backend} ${r.fallback || ""}`);
      assert(r.text.trim().length > 0, "empty headline");
      we.check();
      await c.close();
    }, { models: true });
  }

  // ---- No instruction echoes in the browser (issue 23 item 3): the default model's
  // teaser of this talk wrote "…how to make people want to watch it…" before the
  // decoder refused runs of six instruction words (src/summarize/echo.rs).
  await test("no echo: the default model's teaser and key points copy no six words in a row of their task", async () => {
    const prompt = fs.readFileSync(path.join(root, "src/summarize/prompt.rs"), "utf8");
    const task = (name) => {
      const m = new RegExp(`Format::${name} => format!\\("([^"]+)"`).exec(prompt);
      assert(m, `the ${name} task in src/summarize/prompt.rs`);
      return m[1];
    };
    const words = (t) => t.toLowerCase().split(/[^a-z0-9]+/).filter(Boolean);
    const runs = (t) => { const w = words(t); return new Set(w.slice(0, Math.max(0, w.length - 5)).map((_, i) => w.slice(i, i + 6).join(" "))); };
    const c = await browser.newContext({ serviceWorkers: "block" });
    await c.addInitScript(NO_GPU);
    const p = await c.newPage();
    const we = watch(p);
    await p.goto(base);
    const text = fs.readFileSync(path.join(corpus, "transcripts/intro-to-llms-timestamped.txt"), "utf8");
    const out = await p.evaluate(async (text) => {
      const { PrecisWorker } = await import("./precis.js");
      const w = new PrecisWorker();
      await w.request({ type: "load", source: { kind: "url", url: new URL("models/SmolLM2-135M-Instruct.Q4_1.gguf", location.href).href }, backend: "cpu" });
      const run = async (format) => (await w.request({ type: "summarize", text, options: { format, length: "short" } })).text;
      const r = { teaser: await run("teaser"), keyPoints: await run("key-points") };
      w.terminate();
      return r;
    }, text);
    for (const [name, fmt] of [["Teaser", out.teaser], ["KeyPoints", out.keyPoints]]) {
      const copied = [...runs(fmt)].filter((r) => runs(task(name)).has(r));
      console.log(`     ${name}: ${JSON.stringify(fmt.slice(0, 120))}`);
      assert(copied.length === 0, `${name} copies its task: ${copied.join(" | ")}\n${fmt}`);
    }
    we.check();
    await c.close();
  }, { models: true });

  // ---- Reading the prompt, as the worker reports it (issue 21): prefill events in
  // order up to the total before the first text; the next transcript starts from
  // the kept prefix (its first event at the cached tokens) and writes what a cold
  // run writes.
  await test("prefill events go up to the total before the first text; the next summary reuses the prefix and equals a cold run", async () => {
    const c = await browser.newContext({ serviceWorkers: "block" });
    await c.addInitScript(NO_GPU);
    const p = await c.newPage();
    const wp = watch(p);
    await p.goto(base);
    const runs = await p.evaluate(async ({ a, b }) => {
      const { PrecisWorker } = await import("./precis.js");
      const model = new URL("models/SmolLM2-135M-Instruct.Q4_1.gguf", location.href).href;
      const open = async () => {
        const w = new PrecisWorker();
        await w.request({ type: "load", source: { kind: "url", url: model }, backend: "cpu" });
        return w;
      };
      const run = async (w, text) => {
        const events = [];
        const r = await w.request({ type: "summarize", text, options: { format: "tldr", length: "short" } }, {
          onEvent: (e) => (e.type === "prefill" || e.type === "text") && events.push(e.type === "prefill" ? { done: e.done, total: e.total, cached: e.cached } : "text"),
        });
        return { text: r.text, stats: r.stats, events };
      };
      const w = await open();
      const first = await run(w, a), next = await run(w, b);
      w.terminate();
      // A cold run: no prefix in memory, none stored.
      await caches.delete("precis-prefix-v1");
      const w2 = await open();
      const cold = await run(w2, b);
      w2.terminate();
      return { first, next, cold };
    }, { a: excerpt("dpo.txt", 1200), b: excerpt("sql-backend.txt", 1200) });
    for (const [name, r] of Object.entries(runs)) {
      const reads = r.events.filter((e) => e !== "text");
      const firstText = r.events.indexOf("text");
      assert(reads.length >= 2 && firstText === reads.length, `${name}: every prefill event comes before the first text: ${JSON.stringify(r.events.slice(0, 8))}`);
      assert(reads.every((e, i) => i === 0 || e.done > reads[i - 1].done), `${name}: prefill progress goes up: ${JSON.stringify(reads)}`);
      assert(reads.at(-1).done === reads.at(-1).total && reads.at(-1).total === r.stats.prompt_tokens, `${name}: the last event is at the total (${r.stats.prompt_tokens}): ${JSON.stringify(reads.at(-1))}`);
      assert(reads[0].done === r.stats.cached_tokens, `${name}: the first event is at the cached tokens: ${JSON.stringify(reads[0])}`);
    }
    console.log(`     the second transcript read ${runs.next.stats.prompt_tokens - runs.next.stats.cached_tokens} of ${runs.next.stats.prompt_tokens} prompt tokens (${runs.next.stats.cached_tokens} from the kept prefix)`);
    assert(runs.first.stats.cached_tokens === 0 && runs.cold.stats.cached_tokens === 0, "the first and the cold run read the whole prompt");
    assert(runs.next.stats.cached_tokens > 0, "the next summary starts from the kept prefix");
    assert(runs.next.text === runs.cold.text, `same TL;DR as a cold run:\n${runs.next.text}\n---\n${runs.cold.text}`);
    wp.check();
    await c.close();
  });

  // ---- The prompt prefix kept across reloads (issue 21): a returning user's first
  // summary of a format starts from the stored KV state of its fixed opening and
  // writes what a fresh profile writes.
  await test("prompt prefix kept across reloads: after a reload the TL;DR starts from the stored prefix and equals a cold run", async () => {
    const a = excerpt("dpo.txt", 900), b = excerpt("hashing.txt", 900);
    const open = async () => {
      const c = await browser.newContext({ serviceWorkers: "block" });
      await c.addInitScript(NO_GPU);
      await c.addInitScript(TEST_OPTIONS);
      const p = await c.newPage();
      await p.goto(base);
      await p.click("#load-default");
      await waitModel(p);
      return { c, p };
    };
    const tldr = async (p, text) => {
      await setTranscript(p, text);
      await p.selectOption("#format", "tldr");
      await p.selectOption("#length", "short");
      return summarize(p);
    };
    // A fresh profile: B first, nothing stored.
    const fresh = await open();
    const cold = await tldr(fresh.p, b);
    assert(cold.stats.cached_tokens === 0 && cold.prefix && cold.prefix.restored === 0, `cold run: ${JSON.stringify(cold.stats)} ${JSON.stringify(cold.prefix)}`);
    await fresh.c.close();
    // A returning user: A, a reload, then B.
    const { c, p } = await open();
    const wr = watch(p);
    const first = await tldr(p, a);
    assert(first.stats.cached_tokens === 0 && first.prefix.stored > 0, `the first run stores its prefix: ${JSON.stringify(first.prefix)}`);
    const entries = await p.evaluate(async () => (await (await caches.open("precis-prefix-v1")).keys()).map((r) => r.url));
    assert(entries.length === 1 && /tldr$/.test(entries[0]), `one stored prefix, for tldr: ${entries}`);
    await p.reload(); // the page loads the last model again by itself
    await waitModel(p);
    const back = await tldr(p, b);
    console.log(`     stored ${first.prefix.stored} bytes; after the reload ${back.stats.cached_tokens} of ${back.stats.prompt_tokens} prompt tokens came from it`);
    assert(back.prefix.restored > 0 && back.stats.cached_tokens === back.prefix.restored, `the run after the reload starts from the stored prefix: ${JSON.stringify(back.prefix)} ${JSON.stringify(back.stats)}`);
    assert(back.text === cold.text, `same TL;DR as a cold run:\n${back.text}\n---\n${cold.text}`);
    // A damaged entry is refused by name, deleted, and the run computes the prefix.
    await p.evaluate(async () => {
      const cache = await caches.open("precis-prefix-v1");
      const [req] = await cache.keys();
      await cache.put(req, new Response(new Uint8Array([80, 82, 69, 67, 73, 83, 75, 86, 1, 0])));
    });
    await p.reload(); // the page loads the last model again by itself
    await waitModel(p);
    const damaged = await tldr(p, b);
    assert(damaged.prefix.restored === 0 && /prompt-prefix file ends at byte 10/.test(damaged.prefix.note || ""), `a damaged entry is named: ${JSON.stringify(damaged.prefix)}`);
    assert(damaged.text === cold.text && damaged.stats.cached_tokens === 0, "a damaged entry changes nothing but the work");
    assert(damaged.prefix.stored > 0, "the recomputed prefix is stored again");
    wr.check();
    await c.close();
  });

  // ---- WebGPU structured summary on tiny-smollm2 (tests/fixtures/gen_tiny_smollm2.py:
  // SmolLM2's tokenizer and chat template, 2 random layers), picked as a local file. What
  // it proves (the grammar-constrained JSON streams from the WebGPU engine, validates and
  // renders) does not depend on the weights, and SwiftShader takes about a second per
  // token of the real model (this test took 32 minutes on it). It runs before the
  // default model's WebGPU tests: after their device-lost test, Chromium took ~90 s to
  // give the next page a device.
  {
    const c = await browser.newContext({ serviceWorkers: "block", viewport: { width: 1100, height: 900 } });
    await c.addInitScript(TEST_OPTIONS);
    const p = await c.newPage();
    const wg = watch(p);
    // SwiftShader is a fallback adapter, which "auto" never picks: asked for.
    await p.goto(`${base}?backend=webgpu`);
    await test("WebGPU: structured summary (tiny-smollm2 from a local file) passes summary.schema.json and renders as cards", async () => {
      const t0 = Date.now();
      await p.setInputFiles("#model-file", tinyModelPath);
      const m = await waitModel(p, 300_000);
      console.log(`     tiny-smollm2 loaded in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      assert(m.origin === "file" && m.backend === "webgpu", `loaded from ${m.origin} on ${m.backend}: ${await p.textContent("#model-note")}`);
      await setTranscript(p, excerpt("consistent-hashing.txt"));
      await p.selectOption("#format", "structured");
      await p.selectOption("#length", "short");
      const t = Date.now();
      await p.click("#summarize");
      const r = await runResult(p, 15 * 60_000);
      console.log(`     run ended after ${((Date.now() - t) / 1000).toFixed(1)} s`);
      report.webgpuStructuredSeconds = (Date.now() - t) / 1000;
      report.webgpuStructuredTokens = r.stats.generated_tokens;
      console.log(`     ${r.stats.prompt_tokens} prompt tokens in ${r.stats.prefill_s.toFixed(1)} s, ${r.stats.generated_tokens} tokens in ${r.stats.decode_s.toFixed(1)} s`);
      assert(r.backend === "webgpu" && !r.fallback, `ran on ${r.backend} ${r.fallback || ""}`);
      const data = JSON.parse(r.text);
      fs.writeFileSync(path.join(outDir, "webgpu-structured.json"), JSON.stringify(data, null, 2));
      assert(validate(data), `schema: ${JSON.stringify(validate.errors).slice(0, 500)}`);
      assert((await p.locator("#cards .card.section").count()) === 5, "five section cards");
      assert((await p.locator("#cards .card.section li:not(.chip)").count()) === 20, "four bullets per section");
      assert((await p.locator("#cards .complexity").count()) === data.generalTopics.length, "a complexity bar per general topic");
      assert((await p.textContent("#cards .card.intro p")) === data.introduction, "introduction as text");
      assert(/on WebGPU/.test(await p.textContent("#run-status")), await p.textContent("#run-status"));
      assert((await p.textContent("#backend-badge")).startsWith("WebGPU"), "badge after the run");
      await p.screenshot({ path: path.join(outDir, "webgpu-structured.png"), fullPage: true });
      wg.check();
    });
    await c.close();
  }

  // ---- WebGPU (SwiftShader): the model streams into GPU buffers and runs there.
  {
    const c = await browser.newContext({ serviceWorkers: "block", viewport: { width: 1100, height: 900 } });
    await c.addInitScript(TEST_OPTIONS);
    const p = await c.newPage();
    const wg = watch(p);
    const short = "Today we talk about consistent hashing. When you add a server to a cluster, a naive modulo hash moves almost every key. " +
      "Consistent hashing places servers and keys on a ring, so adding a server moves only the keys between it and its neighbour. Virtual nodes smooth out the load.";
    let gpuHeadline = null;
    // Two CPU threads: the fallback after a lost device lands on the threaded build's
    // pool at 2 threads (issue 17), not at this 2-core machine's default of 1.
    await p.goto(`${base}?backend=webgpu&threads=2`);

    await test("WebGPU: ?backend=webgpu gets WebGPU even on a fallback adapter; badge and footer say so", async () => {
      await p.waitForFunction(() => document.getElementById("backend-badge").dataset.backend);
      const title = await p.getAttribute("#backend-badge", "title");
      assert((await p.getAttribute("#backend-badge", "data-backend")) === "webgpu", `badge backend: ${title}`);
      const badge = await p.textContent("#backend-badge");
      assert(/^WebGPU — asked for with \?backend=webgpu in the address; its adapter is a software fallback/.test(badge), `badge text: ${badge}`);
      assert(/on this device's GPU through WebGPU/.test(await p.textContent("footer")), await p.textContent("footer"));
      console.log(`     ${title}`);
    });

    await test("WebGPU: model streams into GPU buffers; wasm heap peak stays small", async () => {
      await p.click("#load-default");
      const m = await waitModel(p, 300_000);
      assert(m.backend === "webgpu", `loaded on ${m.backend}: ${await p.textContent("#model-note")}`);
      assert((await p.textContent("#backend-badge")).startsWith("WebGPU"), "badge after loading");
      const peak = Number(m.heapPeak), heap = Number(m.heap);
      report.webgpuHeapBeforeMiB = Number(m.heapBefore) / 1048576;
      report.webgpuHeapPeakMiB = peak / 1048576;
      report.webgpuHeapMiB = heap / 1048576;
      report.webgpuHeapStreamPeakMiB = Number(m.heapStreamPeak) / 1048576;
      console.log(`     wasm heap: ${report.webgpuHeapBeforeMiB.toFixed(1)} MiB before, ${report.webgpuHeapStreamPeakMiB.toFixed(1)} MiB while the tensors streamed, peak ${report.webgpuHeapPeakMiB.toFixed(1)} MiB, ${report.webgpuHeapMiB.toFixed(1)} MiB after, for a ${(modelSize / 1048576).toFixed(1)} MiB model`);
      // The GPU loader holds one 16 MiB upload slice at a time, plus the
      // tokenizer and the grammar's token trie: not a copy of the model.
      assert(peak > 0 && peak <= (64 + 8) * 1048576, `heap peak ${peak}`);
      assert(peak < 0.75 * modelSize, `heap peak ${peak} vs model ${modelSize}`);
      wg.check();
    });

    // 2 minutes on SwiftShader (0.6 s per prompt token): `make test-models`. The
    // tiny-smollm2 test above runs the same WebGPU engine end to end in `make test`.
    await test("WebGPU: headline summary on the default model runs on the GPU end to end", async () => {
      if ((await p.getAttribute("#model-status", "data-loaded")) !== "true") {
        await p.click("#load-default");
        await waitModel(p, 300_000);
      }
      await setTranscript(p, short);
      await p.selectOption("#format", "headline");
      await p.selectOption("#length", "short");
      const t = Date.now();
      const r = await summarize(p);
      report.webgpuHeadlineSeconds = (Date.now() - t) / 1000;
      console.log(`     ${JSON.stringify(r.text)}: ${r.stats.prompt_tokens} prompt tokens in ${r.stats.prefill_s.toFixed(1)} s, ${r.stats.generated_tokens} tokens in ${r.stats.decode_s.toFixed(1)} s`);
      assert(r.backend === "webgpu" && !r.fallback, `ran on ${r.backend} ${r.fallback || ""}`);
      assert(r.stats.generated_tokens > 0 && r.text.trim().length > 0, "empty headline");
      assert(r.text.trim().split(/\s+/).length <= 12, "a short headline has at most 12 words");
      assert(/on WebGPU/.test(await p.textContent("#run-status")), await p.textContent("#run-status"));
      assert((await p.textContent("#cards")).includes(r.text.trim()), "headline rendered");
      assert((await p.textContent("#backend-badge")).startsWith("WebGPU"), "badge after the run");
      gpuHeadline = r.text;
      await p.screenshot({ path: path.join(outDir, "webgpu.png"), fullPage: true });
      wg.check();
    }, { models: true });

    await test("WebGPU: device lost mid-run falls back to the CPU and finishes the same request", async () => {
      if ((await p.inputValue("#transcript")) !== short) {
        await setTranscript(p, short);
        await p.selectOption("#format", "headline");
        await p.selectOption("#length", "short");
      }
      await p.click("#summarize");
      await p.waitForFunction(() => window.precis.state.running);
      await p.waitForTimeout(1500); // the GPU is in the prompt's prefill by now
      assert(await p.evaluate(() => window.precis.worker.request({ type: "lose-gpu" })), "the device was not destroyed");
      const r = await runResult(p);
      console.log(`     fell back: ${r.fallback}`);
      assert(r.backend === "cpu" && /GPU/.test(r.fallback || ""), `backend ${r.backend}, fallback ${r.fallback}`);
      assert(/WebGPU failed/.test(await p.textContent("#model-note")), "the page says it fell back");
      assert((await p.getAttribute("#backend-badge", "data-backend")) === "cpu" && /CPU/.test(await p.textContent("#backend-badge")), "badge says CPU after the fallback");
      const b = await p.evaluate(() => ({ ...document.getElementById("backend-badge").dataset }));
      assert(b.build === "threaded" && b.threads === "2", `the CPU engine after the fallback: ${JSON.stringify(b)}`);
      assert((await p.inputValue("#transcript")) === short, "transcript kept");
      assert(/after WebGPU failed/.test(await p.textContent("#run-status")), await p.textContent("#run-status"));
      // The CPU engine rounds differently (it quantizes activations to 8 bits), so
      // greedy decoding may pick another headline: compared only in the log.
      assert(r.text.trim().length > 0 && r.text.trim().split(/\s+/).length <= 12, `CPU headline ${JSON.stringify(r.text)}`);
      console.log(`     CPU headline ${JSON.stringify(r.text)}; WebGPU's was ${JSON.stringify(gpuHeadline)}`);
      wg.check([/destroyed|lost|Device/i]);
    });
    await c.close();
  }

} finally {
  await browser.close();
  server.kill();
  fs.rmSync(tmp, { recursive: true, force: true });
}

const secs = (Date.now() - T0) / 1000;
fs.writeFileSync(path.join(outDir, "report.json"), JSON.stringify({ ...report, seconds: secs, passed, failed, failures }, null, 2));
console.log(`browser suite: ${secs.toFixed(0)} s; report in target/browser/report.json`);
console.log(`browser: ${passed} passed, ${failed} failed${skipped ? ` (${skipped} skipped by BROWSER_ONLY or BROWSER_MODELS)` : ""}${modelsSkipped ? ` (${modelsSkipped} left to make test-models)` : ""}`);
process.exit(failed ? 1 : 0);
