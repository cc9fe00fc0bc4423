// The threaded wasm build (target/wasm-web-mt, `make wasm-web-mt`) under Node: its
// pool's threads are worker_threads instantiating the same module on the same shared
// memory, as the browser's Web Workers do (www/threads.js). The same greedy text at 1,
// 2 and 4 threads, and the same as the single-threaded build (target/wasm-node), on
// a prompt long enough that prefill takes the tiled path at every thread count.
// Each thread count runs in its own process: the engine's pool is set once per instance.
//   node tests/wasm/threads.mjs            — the test (prints `wasm: N passed, 0 failed`)
//   node tests/wasm/threads.mjs --run N    — one run at N threads (threaded build), JSON out
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { execFileSync } from "node:child_process";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const glue = pathToFileURL(path.join(root, "target/wasm-web-mt/precis.js")).href;
const modelPath = path.join(root, "models/SmolLM2-135M-Instruct.Q4_1.gguf");
// ~150 tokens: over the kernels' prefill tile (see src/cpu/kernels) times 4 threads.
const prompt = "Summarize this part of a lecture in two sentences. " +
  "today we look at how a hash table keeps its buckets when servers join and leave the cluster. " +
  "with plain modulo hashing almost every key moves when the number of servers changes, so caches go cold at once. " +
  "consistent hashing puts servers and keys on a ring and each key belongs to the next server clockwise, " +
  "so only the keys between the new server and its neighbour move. virtual nodes spread each server over many points " +
  "of the ring, which evens out the load when servers differ in size or when one of them fails.";
const TOKENS = 40;

if (!isMainThread) {
  // A pool thread: join and compute until the process exits.
  const P = await import(workerData.glue);
  await P.default({ module_or_path: workerData.module, memory: workerData.memory });
  parentPort.postMessage("joining");
  P.poolWorker();
} else if (process.argv[2] === "--run") {
  const threads = Number(process.argv[3]);
  const P = await import(glue);
  const module = await WebAssembly.compile(fs.readFileSync(path.join(root, "target/wasm-web-mt/precis_bg.wasm")));
  const wasm = await P.default({ module_or_path: module });
  assert.equal(P.threadsBuilt(), true, "target/wasm-web-mt is the threaded build");
  const spawn = P.startPool(threads);
  for (let i = 0; i < spawn; i++) new Worker(fileURLToPath(import.meta.url), { workerData: { glue, module, memory: wasm.memory } });
  const t0 = Date.now();
  while (P.poolJoined() < spawn) {
    if (Date.now() - t0 > 30000) throw new Error(`only ${P.poolJoined()} of ${spawn} threads joined in 30 s`);
    await new Promise((r) => setTimeout(r, 5));
  }
  const engine = new P.WasmEngine(fs.readFileSync(modelPath), "SmolLM2-135M-Instruct.Q4_1.gguf", undefined);
  const r = engine.chat(prompt, TOKENS, 0, 0, () => true);
  console.log(JSON.stringify({ threads: P.poolThreads(), joined: P.poolJoined(), text: r.text, prompt_tokens: r.prompt_tokens, prefill_s: r.prefill_s, decode_s: r.decode_s }));
  process.exit(0);
} else {
  const require = createRequire(import.meta.url);
  const { WasmEngine } = require(path.join(root, "target/wasm-node/precis.js"));
  const single = new WasmEngine(fs.readFileSync(modelPath), "SmolLM2-135M-Instruct.Q4_1.gguf", undefined).chat(prompt, TOKENS, 0, 0, () => true);
  assert.ok(single.prompt_tokens >= 128, `the prompt is ${single.prompt_tokens} tokens, meant to be over 128`);
  assert.ok(single.text.length > 20, `single-threaded text: ${JSON.stringify(single.text)}`);
  let passed = 0;
  for (const n of [1, 2, 4]) {
    const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), "--run", String(n)], { stdio: ["ignore", "pipe", "inherit"] }).toString();
    const r = JSON.parse(out.trim().split("\n").pop());
    assert.equal(r.threads, n, `the engine runs ${r.threads} threads, ${n} asked`);
    assert.equal(r.joined, n - 1, `${r.joined} pool threads joined, ${n - 1} started`);
    assert.equal(r.text, single.text, `${n} threads write the single-threaded build's text`);
    console.log(`wasm threads ${n}: same ${r.generated_tokens ?? TOKENS}-token text as the single-threaded build (prefill ${r.prompt_tokens} tokens in ${r.prefill_s.toFixed(2)} s, decode ${r.decode_s.toFixed(2)} s)`);
    passed++;
  }
  console.log(`single-threaded: ${JSON.stringify(single.text)}`);
  console.log(`wasm: ${passed} passed, 0 failed`);
}
