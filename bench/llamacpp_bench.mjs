// llama.cpp's CPU speed on a GGUF, as the reference for `make bench`, through
// node-llama-cpp 3.22.1's prebuilt linux-x64 CPU build (`npm install` in bench/ first).
//
//   node bench/llamacpp_bench.mjs --model FILE [--prompt-tokens 512] [--gen-tokens 128]
//        [--threads N] [--prompt-file FILE] [--repeat R]
//
// Prefill: exactly --prompt-tokens tokens (the start of --prompt-file's tokens, no BOS,
// no special-token parsing) evaluated as one batch (n_batch = n_ubatch = prompt length),
// timed up to and including the first greedy token. Decode: --gen-tokens more tokens, each
// one a single-token forward followed by a greedy pick (end-of-generation tokens do not
// stop it), through node-llama-cpp's sequence.evaluate generator. With --repeat R the whole measurement runs R times on a cleared context after
// one untimed warm-up, and the best (highest) rates are reported. Prints one JSON line on
// stdout. The CPU backend is forced (gpu: false, and only the prebuilt CPU binary may be
// used), and the thread count is pinned (getLlama maxThreads and the context's threads);
// threads_used is what llama.cpp reports, and cpu_util is process CPU time / wall time
// during each phase (about N when N threads are busy).
import {getLlama} from "node-llama-cpp";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {fileURLToPath} from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
};
const defaultPrompt = [path.join(root, "../shared/corpus/transcripts/dpo.txt"), path.join(root, "README.md")].find((f) => fs.existsSync(f));
const modelPath = path.resolve(arg("model", path.join(root, "models/SmolLM2-135M-Instruct.Q4_1.gguf")));
const nPrompt = Number(arg("prompt-tokens", 512));
const nGen = Number(arg("gen-tokens", 128));
const threads = Number(arg("threads", os.availableParallelism()));
const promptFile = path.resolve(arg("prompt-file", defaultPrompt));
const repeat = Math.max(1, Number(arg("repeat", 1)));
if (!(nPrompt > 0 && nGen > 0 && threads > 0)) throw new Error("--prompt-tokens, --gen-tokens and --threads must be positive");

const log = [];
const llama = await getLlama({
  gpu: false, build: "never", maxThreads: threads, logLevel: "info",
  logger: (level, message) => {
    log.push(message);
    if (level === "error" || level === "fatal") process.stderr.write(`[llama.cpp ${level}] ${message}\n`);
  },
});
if (llama.gpu !== false || llama.buildType !== "prebuilt") throw new Error(`not the prebuilt CPU build: gpu=${llama.gpu} buildType=${llama.buildType}`);
const model = await llama.loadModel({modelPath, gpuLayers: 0});

let text = fs.readFileSync(promptFile, "utf8");
let ids = Array.from(model.tokenize(text, false));
while (ids.length < nPrompt) {
  text += "\n" + text; // a short file is repeated until it has enough tokens
  ids = Array.from(model.tokenize(text, false));
}
ids = ids.slice(0, nPrompt);

const ctx = await model.createContext({contextSize: nPrompt + nGen + 16, batchSize: nPrompt, threads, sequences: 1});
const seq = ctx.getSequence();
const next = {generateNext: {token: true, options: {temperature: 0}}};

async function run(nP, nG) {
  await seq.clearHistory();
  const c0 = process.cpuUsage(), t0 = performance.now();
  const out = await seq.controlledEvaluate(ids.slice(0, nP).map((t, i) => (i === nP - 1 ? [t, next] : t)));
  const t1 = performance.now(), c1 = process.cpuUsage();
  // Each step of the generator decodes the previous token and picks the next greedily
  // (temperature 0: llama.cpp's greedy sampler alone), reusing one sampler throughout.
  let n = 0;
  for await (const _ of seq.evaluate([out[nP - 1].next.token], {temperature: 0, yieldEogToken: true})) {
    if (++n >= nG) break;
  }
  const t2 = performance.now(), c2 = process.cpuUsage();
  const cpu = (a, b) => (b.user - a.user + b.system - a.system) / 1000;
  return {prefill_s: (t1 - t0) / 1000, decode_s: (t2 - t1) / 1000,
    prefill_cpu_util: cpu(c0, c1) / (t1 - t0), decode_cpu_util: cpu(c1, c2) / (t2 - t1)};
}

await run(Math.min(nPrompt, 32), 4); // warm-up: pages the weights in, builds the graphs
const runs = [];
for (let r = 0; r < repeat; r++) runs.push(await run(nPrompt, nGen));
const best = {
  prefill: runs.reduce((a, b) => (b.prefill_s < a.prefill_s ? b : a)),
  decode: runs.reduce((a, b) => (b.decode_s < a.decode_s ? b : a)),
};
const lastLog = (re) => log.map((l) => l.match(re)).filter(Boolean).pop() ?? null;
console.log(JSON.stringify({
  engine: "llama.cpp",
  prefill_tok_s: +(nPrompt / best.prefill.prefill_s).toFixed(2),
  decode_tok_s: +(nGen / best.decode.decode_s).toFixed(2),
  threads,
  threads_used: ctx.currentThreads,
  backend: "cpu",
  model: path.basename(modelPath),
  prompt_file: path.relative(root, promptFile),
  prompt_tokens: ids.length,
  generated_tokens: nGen,
  n_batch: ctx.batchSize,
  repeat,
  prefill_s: +best.prefill.prefill_s.toFixed(4),
  decode_s: +best.decode.decode_s.toFixed(4),
  prefill_cpu_util: +best.prefill.prefill_cpu_util.toFixed(2),
  decode_cpu_util: +best.decode.decode_cpu_util.toFixed(2),
  flash_attention: lastLog(/Flash Attention (enabled|disabled)/)?.[1] ?? null,
  weight_buffers: [...new Set(log.map((l) => l.match(/load_tensors:\s+(\S+) model buffer size/)?.[1]).filter(Boolean))],
  llama_cpp: `node-llama-cpp ${JSON.parse(fs.readFileSync(path.join(root, "bench/node_modules/node-llama-cpp/package.json"), "utf8")).version}, ` +
    `llama.cpp ${llama.llamaCppRelease.repo} ${llama.llamaCppRelease.release}`,
}));
await ctx.dispose();
await model.dispose();
