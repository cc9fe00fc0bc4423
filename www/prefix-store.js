// The prompt prefix kept across reloads (issue 21). A summary's fixed opening
// (the structured format's instruction and two worked examples: ~2,000 tokens,
// ~15 s of reading on one wasm thread) is the same for every transcript, so the
// engine keeps its KV state after one run; here that state goes to the Cache API
// so that a returning user's first summary starts at the transcript.
//
// One entry per model and format (the engine keeps one prefix at a time, and each
// format opens differently). The engine checks the saved bytes itself: the key
// (the model's identity) must match, the shape must be this model's, and the
// prefix is only used by a prompt that opens with exactly its tokens — so a stale
// or foreign entry costs nothing but its read, and a damaged one is deleted.
// CPU engines only: WebGPU reads the same prefix in a fraction of a second.

const CACHE = "precis-prefix-v1";

function entryUrl(modelId, format) {
  return `https://precis.invalid/prefix/${encodeURIComponent(modelId)}/${encodeURIComponent(format)}`;
}

async function open() {
  try {
    return typeof caches === "undefined" ? null : await caches.open(CACHE);
  } catch {
    return null; // storage blocked (private mode, an opaque origin): the prefix is recomputed
  }
}

// Loads the stored prefix of `format` into `summarizer`: its length in tokens, or
// 0 when none is stored; a refused entry is deleted and its reason returned.
export async function restorePrefix(summarizer, modelId, format) {
  const cache = await open();
  const hit = cache && (await cache.match(entryUrl(modelId, format)));
  if (!hit) return { tokens: 0, note: null };
  const bytes = new Uint8Array(await hit.arrayBuffer());
  try {
    return { tokens: summarizer.loadPrefix(bytes, modelId), note: null };
  } catch (e) {
    await cache.delete(entryUrl(modelId, format));
    return { tokens: 0, note: `the stored prompt prefix was not used: ${e.message}` };
  }
}

// Stores the engine's kept prefix as `format`'s, when the browser's quota has
// room for it twice over (the model's own copy must never be pushed out).
export async function keepPrefix(summarizer, modelId, format) {
  const cache = await open();
  if (!cache || summarizer.keptPrefix() === 0) return { stored: 0, note: null };
  let bytes;
  try {
    bytes = summarizer.savePrefix(modelId);
  } catch (e) {
    return { stored: 0, note: e.message };
  }
  try {
    const est = navigator.storage && navigator.storage.estimate ? await navigator.storage.estimate() : null;
    if (est && est.quota - est.usage < 2 * bytes.length) return { stored: 0, note: `not kept across reloads: the storage quota has ${Math.round((est.quota - est.usage) / 1e6)} MB free, the prefix needs ${Math.round(bytes.length / 1e6)} MB` };
    await cache.put(entryUrl(modelId, format), new Response(bytes, { headers: { "content-type": "application/octet-stream", "content-length": String(bytes.length) } }));
    return { stored: bytes.length, note: null };
  } catch (e) {
    return { stored: 0, note: `not kept across reloads: ${e.name === "QuotaExceededError" ? "the storage quota is full" : e.message}` };
  }
}
