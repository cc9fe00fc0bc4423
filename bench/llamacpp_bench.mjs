// llama.cpp's CPU speed on a GGUF, for make bench (node-llama-cpp's prebuilt build):
// prefill of exactly --prompt-tokens tokens in one evaluation, then --gen-tokens
// greedy tokens one at a time. Prints one JSON line.
import {getLlama} from "node-llama-cpp";
import fs from "node:fs";

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const modelPath = arg("model", "models/SmolLM2-135M-Instruct.Q4_1.gguf");
const nPrompt = Number(arg("prompt-tokens", 512));
const nGen = Number(arg("gen-tokens", 128));
const threads = Number(arg("threads", 2));
const text = fs.readFileSync(arg("prompt-file", "README.md"), "utf8");

const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath});
const ids = Array.from(model.tokenize(text, false)).slice(0, nPrompt);
if (ids.length < nPrompt) throw new Error(`prompt has only ${ids.length} tokens`);
const ctx = await model.createContext({contextSize: nPrompt + nGen + 16, threads, batchSize: nPrompt});
const seq = ctx.getSequence();

const t0 = performance.now();
await seq.evaluateWithoutGeneratingNewTokens(ids);
const t1 = performance.now();
// The first sampled token comes from the prefill logits; time the next nGen forwards.
let n = 0;
let t2 = 0;
for await (const _ of seq.evaluate([], {temperature: 0})) {
  if (n === 0) t2 = performance.now();
  if (++n > nGen) break;
}
const t3 = performance.now();
console.log(JSON.stringify({
  engine: "llama.cpp", backend: "cpu", threads, prompt_tokens: ids.length, generated_tokens: nGen,
  prefill_tok_s: ids.length / ((t1 - t0) / 1000), decode_tok_s: nGen / ((t3 - t2) / 1000),
}));
await ctx.dispose();
await model.dispose();
