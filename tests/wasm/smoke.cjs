// The wasm32 build generating text on the CPU under Node: load the default model
// from bytes and through the range loader, chat greedily, and compare with the
// native binary on its portable (scalar) kernels, which wasm32 runs too.
// Run by `make test` after wasm-bindgen --target nodejs into target/wasm-node.
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { execFileSync } = require("node:child_process");
const { WasmEngine, WasmLoader } = require("../../target/wasm-node/precis.js");

const root = path.resolve(__dirname, "../..");
const modelPath = path.join(root, "models/SmolLM2-135M-Instruct.Q4_1.gguf");
const prompt = "Summarize in one sentence: the quick brown fox jumps over the lazy dog while the farmer sleeps.";
const bytes = fs.readFileSync(modelPath);
let passed = 0;

// 1. Whole file in memory.
const engine = new WasmEngine(bytes, "SmolLM2-135M-Instruct.Q4_1.gguf", undefined);
let streamed = "";
const result = engine.chat(prompt, 32, 0, 0, (piece) => { streamed += piece; return true; });
assert.ok(result.text.length > 10, `generated text: ${JSON.stringify(result.text)}`);
assert.equal(streamed, result.text, "streamed pieces add up to the result");
console.log(`wasm chat: ${JSON.stringify(result.text)} (${result.generated_tokens} tokens, stop ${result.stop})`);
passed++;

// 2. Same greedy text as the native binary on the portable kernels.
// PRECIS_BIN: the CLI `make test` built (its `ci` profile), else the release build.
const native = execFileSync(path.resolve(root, process.env.PRECIS_BIN || "target/release/precis"), [
  "generate", "--model", modelPath, "--prompt", prompt, "--max-tokens", "32", "--threads", "1",
], { env: { ...process.env, PRECIS_SIMD: "none" }, stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
assert.equal(result.text.trim(), native, "wasm32 and native (scalar kernels) agree");
passed++;

// 3. Loading from byte ranges, as the browser does with File.slice.
const loader = new WasmLoader("ranges.gguf", bytes.length, undefined);
let want = 4096;
for (;;) {
  const need = loader.header(bytes.subarray(0, Math.min(want, bytes.length)));
  if (need === 0) break;
  want = need;
}
const ranges = loader.ranges();
for (let i = ranges.length - 2; i >= 0; i -= 2) {
  loader.add(ranges[i], bytes.subarray(ranges[i], ranges[i + 1]));
}
const ranged = loader.finish();
assert.deepEqual(Array.from(ranged.tokenize("Hello world")), Array.from(engine.tokenize("Hello world")));
assert.equal(ranged.chat(prompt, 8, 0, 0, () => true).text, engine.chat(prompt, 8, 0, 0, () => true).text);
passed++;

// 4. Bad input is a JS error with the Rust message, not a crash.
assert.throws(() => new WasmEngine(new Uint8Array(64), "empty.gguf", undefined), /empty\.gguf: not a GGUF file/);
passed++;

console.log(`wasm: ${passed} passed, 0 failed`);
