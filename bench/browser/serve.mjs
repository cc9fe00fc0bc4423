// The browser benches' shared pieces: `--name value` arguments, and a static server
// for www/dist (and other folders under a path prefix) that answers Range requests,
// because the page's model download asks for pieces. Not the app's server
// (www/serve.py): a bench also serves its own page and, for wllama, another tree.
import fs from "node:fs";
import http from "node:http";
import path from "node:path";

export const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
};

const TYPES = { ".html": "text/html", ".css": "text/css", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json", ".gguf": "application/octet-stream" };

// Serves `pages` ({"/path.html": html}) and files: `/prefix/...` from `trees[prefix]`,
// everything else from `root`; `headers` on every answer (COOP/COEP for an isolated page).
// Resolves to {server, base}.
export function serveStatic({ root, pages = {}, trees = {}, headers = {} }) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    if (pages[url.pathname] !== undefined) {
      res.writeHead(200, { ...headers, "Content-Type": "text/html" });
      return res.end(pages[url.pathname]);
    }
    const prefix = Object.keys(trees).find((p) => url.pathname.startsWith(`/${p}/`));
    const base = prefix ? trees[prefix] : root;
    // A folder's address answers with its index.html, as the app's own server does.
    const name = url.pathname.endsWith("/") ? `${url.pathname}index.html` : url.pathname;
    const rel = prefix ? name.slice(prefix.length + 2) : name.slice(1);
    const file = path.resolve(base, decodeURIComponent(rel));
    if (!file.startsWith(base + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404, headers);
      return res.end("not found");
    }
    const size = fs.statSync(file).size;
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range || "");
    const type = TYPES[path.extname(file)] || "application/octet-stream";
    if (m) {
      const start = Number(m[1]), end = m[2] ? Math.min(size - 1, Number(m[2])) : size - 1;
      res.writeHead(206, { ...headers, "Content-Type": type, "Content-Length": String(end - start + 1), "Content-Range": `bytes ${start}-${end}/${size}` });
      return fs.createReadStream(file, { start, end }).pipe(res);
    }
    res.writeHead(200, { ...headers, "Content-Type": type, "Content-Length": String(size) });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, base: `http://127.0.0.1:${server.address().port}/` })));
}
