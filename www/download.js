// Resumable model downloads. A model URL is fetched with HTTP Range requests
// in pieces; each piece is kept in the Cache API as soon as it has arrived (a
// piece cut short by a dropped connection keeps the bytes that did arrive), so a
// download interrupted by the network, a closed tab or a reload continues from
// the last stored byte on the next attempt instead of starting again. A server
// that ignores Range (200 instead of 206) is read in one GET. The finished file
// is checked against the size the server announced (and the manifest's size and
// sha256 when it has them) before the caller may keep it as complete.
import { Sha256 } from "./sha256.js";

// Big enough that the per-request cost is small, small enough that a lost piece
// costs little and one piece in JS memory is harmless.
export const PIECE = 16 << 20;
export const PARTS_CACHE = "precis-parts-v1";
// Reads of a finished file for hashing.
const HASH_SLICE = 8 << 20;

const mib = (n) => `${(n / 1048576).toFixed(1)} MiB`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Pieces kept in the Cache API under synthetic same-origin keys
// ("<origin>/precis-parts/<url>/<start>"), plus one "meta" entry with the file's
// size and validator, so that a resumed download can tell it is the same file.
class CacheParts {
  static async open(url) {
    if (typeof caches === "undefined") return null;
    const p = new CacheParts(url);
    p.cache = await caches.open(PARTS_CACHE);
    return p;
  }
  constructor(url) {
    this.prefix = new URL(`precis-parts/${encodeURIComponent(url)}/`, self.location.origin + "/").href;
    this.persistent = true;
  }
  async meta() {
    const r = await this.cache.match(this.prefix + "meta");
    return r ? r.json() : null;
  }
  async setMeta(m) {
    await this.cache.put(this.prefix + "meta", new Response(JSON.stringify(m), { headers: { "content-type": "application/json" } }));
  }
  async list() {
    const out = [];
    for (const req of await this.cache.keys()) {
      if (!req.url.startsWith(this.prefix)) continue;
      const start = Number(req.url.slice(this.prefix.length));
      if (Number.isInteger(start)) out.push({ start, key: req.url });
    }
    return out.sort((a, b) => a.start - b.start);
  }
  // Bytes stored contiguously from the start, and the pieces that hold them.
  async prefixRun() {
    let end = 0;
    const run = [];
    for (const p of await this.list()) {
      if (p.start !== end) break;
      const r = await this.cache.match(p.key);
      const size = r ? Number(r.headers.get("content-length")) : 0;
      if (!size) break;
      run.push({ ...p, size });
      end += size;
    }
    return { end, run };
  }
  async put(start, blob) {
    await this.cache.put(this.prefix + start, new Response(blob, { headers: { "content-length": String(blob.size) } }));
  }
  async blobs() {
    const { run } = await this.prefixRun();
    return Promise.all(run.map(async (p) => (await this.cache.match(p.key)).blob()));
  }
  async clear() {
    for (const req of await this.cache.keys()) if (req.url.startsWith(this.prefix)) await this.cache.delete(req);
  }
}

// The same for a visit without room to keep the model: the pieces live as
// Blobs (which the browser pages to disk when large), resumable within the visit.
class MemoryParts {
  constructor() {
    this.pieces = [];
    this.m = null;
    this.persistent = false;
  }
  async meta() { return this.m; }
  async setMeta(m) { this.m = m; }
  async prefixRun() { return { end: this.pieces.reduce((n, b) => n + b.size, 0), run: this.pieces }; }
  async put(start, blob) { this.pieces.push(blob); }
  async blobs() { return this.pieces; }
  async clear() { this.pieces = []; this.m = null; }
}

// "bytes 0-99/1234" → {start, end (exclusive), total}, or null.
function contentRange(h) {
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec((h || "").trim());
  return m ? { start: Number(m[1]), end: Number(m[2]) + 1, total: Number(m[3]) } : null;
}

// What identifies this version of the file: the ETag or Last-Modified when the
// server exposes them (CORS hides them unless it says otherwise).
const validator = (resp) => resp.headers.get("etag") || resp.headers.get("last-modified") || null;

// Reads a response body into Blobs of at most `piece` bytes, handing each
// complete one to `store`; returns the bytes read. A body that breaks off
// stores what arrived and rethrows with the count attached.
async function drain(resp, at, piece, store, onBytes) {
  const reader = resp.body.getReader();
  let chunks = [], inPiece = 0, total = 0;
  const flush = async () => {
    if (!inPiece) return;
    const blob = new Blob(chunks);
    chunks = [];
    const start = at + total - inPiece;
    inPiece = 0;
    await store(start, blob);
  };
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      let v = value;
      while (v.length) {
        const take = Math.min(v.length, piece - inPiece);
        chunks.push(v.subarray(0, take));
        inPiece += take;
        total += take;
        v = v.subarray(take);
        onBytes(at + total);
        if (inPiece === piece) await flush();
      }
    }
    await flush();
    return total;
  } catch (e) {
    await flush().catch(() => {});
    e.bytesRead = total;
    throw e;
  }
}

async function sha256Of(blob, onBytes) {
  const h = new Sha256();
  for (let at = 0; at < blob.size; at += HASH_SLICE) {
    const end = Math.min(blob.size, at + HASH_SLICE);
    h.update(new Uint8Array(await blob.slice(at, end).arrayBuffer()));
    onBytes(end);
  }
  return h.hex();
}

/**
 * Downloads `url`, resuming from pieces stored by an earlier attempt.
 *   expect: {size, sha256} from the manifest, either may be null
 *   canKeep(size): async, whether the file may be stored (room in the quota);
 *     false keeps the pieces in memory for this visit only
 *   onProgress(done, total, phase): phase "download" or "verify"
 *   retries: attempts in a row that may fail without a byte arriving
 * Resolves to {blob, size, resumedFrom, ranged, parts}; `parts` (with
 * `persistent` and `clear()`) is for the caller to clear once it has kept the
 * file elsewhere. Rejects with a message that says what went wrong and that the
 * bytes so far are kept.
 */
export async function download(url, { expect = {}, canKeep = async () => true, onProgress = () => {}, retries = 3, piece = PIECE, fetchImpl = fetch } = {}) {
  let parts = await CacheParts.open(url);
  let meta = parts && (await parts.meta());
  let have = 0;
  if (meta) {
    have = (await parts.prefixRun()).end;
    if (have > meta.size) {
      await parts.clear();
      meta = null;
      have = 0;
    }
  } else if (parts) {
    await parts.clear(); // pieces without their meta cannot be trusted
  }
  const resumedFrom = have;
  let size = meta ? meta.size : null;
  let ranged = true, fails = 0, lastError = null;
  const store = (start, blob) => parts.put(start, blob);
  const progress = (done) => onProgress(done, size || expect.size || 0, "download");

  while (size === null || have < size) {
    let resp;
    const wantEnd = size === null ? have + piece : Math.min(size, have + piece);
    try {
      resp = await fetchImpl(url, ranged ? { headers: { range: `bytes=${have}-${wantEnd - 1}` } } : {});
    } catch (e) {
      lastError = `${e.message} (offline, blocked by the Content-Security-Policy, or the server sends no CORS headers)`;
      if (++fails > retries) break;
      await sleep(400 * fails);
      continue;
    }
    if (resp.status === 416 && size !== null && have >= size) break;
    if (resp.status !== 206 && resp.status !== 200) {
      throw new Error(`cannot download ${url}: HTTP ${resp.status} ${resp.statusText}${have ? ` (${mib(have)} downloaded so far are kept)` : ""}`);
    }
    if (resp.status === 200) {
      // No Range support: the whole file in this one response. Pieces stored
      // before cannot be continued through it.
      ranged = false;
      const total = Number(resp.headers.get("content-length"));
      if (!total) throw new Error(`cannot download ${url}: the server does not say how large the file is (no Content-Length)`);
      if (expect.size && total !== expect.size) throw new Error(`cannot download ${url}: the server's file is ${total} bytes, the manifest says ${expect.size}`);
      if (have) await parts.clear();
      if (!parts || !parts.persistent || !(await canKeep(total))) parts = new MemoryParts();
      size = total;
      have = 0;
      await parts.setMeta({ url, size, validator: validator(resp), ranged: false });
      try {
        have = await drain(resp, 0, piece, store, progress);
      } catch (e) {
        // Without Range the next attempt must start from zero anyway.
        await parts.clear();
        throw new Error(`the download of ${url} broke off at byte ${e.bytesRead} of ${size} (${e.message}); this server does not support resuming, so it will start again`);
      }
      if (have !== size) {
        await parts.clear();
        throw new Error(`the download of ${url} ended at byte ${have} of ${size}: the file is truncated or the connection dropped`);
      }
      break;
    }
    const cr = contentRange(resp.headers.get("content-range"));
    if (!cr) throw new Error(`cannot download ${url}: a 206 answer without a readable Content-Range (a cross-origin server must list it in Access-Control-Expose-Headers)`);
    if (cr.start !== have) throw new Error(`cannot download ${url}: asked for bytes from ${have}, the server sent bytes from ${cr.start}`);
    if (expect.size && cr.total !== expect.size) throw new Error(`cannot download ${url}: the server's file is ${cr.total} bytes, the manifest says ${expect.size}`);
    const v = validator(resp);
    if (meta && (meta.size !== cr.total || (meta.validator && v && meta.validator !== v))) {
      // The file changed on the server since the stored pieces were fetched.
      await parts.clear();
      meta = null;
      size = null;
      have = 0;
      resp.body.cancel().catch(() => {});
      continue;
    }
    if (size === null) {
      size = cr.total;
      if (!parts || !(await canKeep(size))) parts = new MemoryParts();
      meta = { url, size, validator: v, ranged: true };
      await parts.setMeta(meta);
    }
    try {
      have += await drain(resp, have, piece, store, progress);
      fails = 0;
    } catch (e) {
      have += e.bytesRead || 0;
      lastError = e.message;
      // A retry that made progress starts the count again: a flaky network
      // gets as many tries as it keeps delivering bytes.
      fails = e.bytesRead ? 1 : fails + 1;
      if (fails > retries) break;
      await sleep(400 * fails);
    }
  }
  if (size === null || have < size) {
    const kept = parts && parts.persistent && have ? `; the ${mib(have)} downloaded so far are kept: load it again to continue` : "";
    throw new Error(`the download of ${url} stopped at byte ${have}${size ? ` of ${size}` : ""} (${lastError || "no answer"})${kept}`);
  }

  const blob = new Blob(await parts.blobs());
  if (blob.size !== size) {
    await parts.clear();
    throw new Error(`the download of ${url} has ${blob.size} bytes stored, the server announced ${size}; it was discarded, load it again`);
  }
  if (expect.sha256) {
    const got = await sha256Of(blob, (d) => onProgress(d, size, "verify"));
    if (got !== expect.sha256.toLowerCase()) {
      await parts.clear();
      throw new Error(`the download of ${url} does not match the manifest's sha256 (expected ${expect.sha256}, got ${got}); it was discarded`);
    }
  }
  return { blob, size, resumedFrom, ranged, parts };
}

// Unfinished downloads kept in the Cache API, for the page's model list:
// [{url, size (bytes kept), total}].
export async function partialDownloads() {
  if (typeof caches === "undefined") return [];
  const cache = await caches.open(PARTS_CACHE);
  const out = [];
  for (const req of await cache.keys()) {
    if (!req.url.endsWith("/meta")) continue;
    const meta = await (await cache.match(req))?.json().catch(() => null);
    if (!meta || !meta.url) continue;
    const parts = await CacheParts.open(meta.url);
    out.push({ url: meta.url, size: (await parts.prefixRun()).end, total: meta.size });
  }
  return out;
}

export async function deletePartialDownload(url) {
  const parts = await CacheParts.open(url);
  if (parts) await parts.clear();
}
