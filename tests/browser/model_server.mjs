// A model host for the download tests: another origin than the app (its own
// port, https with a self-signed certificate, loopback only), with CORS headers
// as a real model hub sends them. It serves one GGUF under two paths:
//   /ranged/<any>.gguf  honours `Range: bytes=a-b` (206 + Content-Range)
//   /plain/<any>.gguf   ignores Range and always sends the whole file (200)
// and can misbehave on demand: `cutAfter(n)` destroys the connection once the
// file's bytes served reach n (once), `down` destroys every request at once.
// Every request is logged as {path, range, status}.
import https from "node:https";
import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";

// A throwaway certificate for 127.0.0.1; the browser context ignores
// certificate errors (Playwright's ignoreHTTPSErrors), nothing else trusts it.
function selfSigned(dir) {
  const key = path.join(dir, "key.pem"), cert = path.join(dir, "cert.pem");
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert], { stdio: "ignore" });
  return { key: fs.readFileSync(key), cert: fs.readFileSync(cert) };
}

export async function startModelServer({ file, tmpDir }) {
  const size = fs.statSync(file).size;
  const etag = `"precis-test-${size}"`;
  const state = { log: [], down: false, cut: null, served: 0 };

  const cors = (req) => ({
    "Access-Control-Allow-Origin": req.headers.origin || "*",
    "Access-Control-Expose-Headers": "Content-Range, Content-Length, Accept-Ranges, ETag",
    "Access-Control-Allow-Headers": "Range",
    "Cross-Origin-Resource-Policy": "cross-origin",
    "Vary": "Origin",
  });

  const server = https.createServer(selfSigned(tmpDir), (req, res) => {
    const url = new URL(req.url, "https://127.0.0.1");
    const entry = { path: url.pathname, range: req.headers.range || null, status: null };
    state.log.push(entry);
    if (state.down) {
      entry.status = "dropped";
      return req.socket.destroy();
    }
    if (req.method === "OPTIONS") {
      entry.status = 204;
      res.writeHead(204, { ...cors(req), "Access-Control-Allow-Methods": "GET, HEAD" });
      return res.end();
    }
    const ranged = url.pathname.startsWith("/ranged/");
    if (!(ranged || url.pathname.startsWith("/plain/")) || !url.pathname.endsWith(".gguf")) {
      entry.status = 404;
      res.writeHead(404, cors(req));
      return res.end("not found");
    }
    let start = 0, end = size; // end exclusive
    const m = ranged && /^bytes=(\d+)-(\d*)$/.exec(req.headers.range || "");
    if (m) {
      start = Number(m[1]);
      end = m[2] ? Math.min(size, Number(m[2]) + 1) : size;
      if (start >= size || start >= end) {
        entry.status = 416;
        res.writeHead(416, { ...cors(req), "Content-Range": `bytes */${size}` });
        return res.end();
      }
      entry.status = 206;
      res.writeHead(206, { ...cors(req), "Content-Type": "application/octet-stream", "Content-Length": String(end - start),
        "Content-Range": `bytes ${start}-${end - 1}/${size}`, "Accept-Ranges": "bytes", "ETag": etag });
    } else {
      entry.status = 200;
      res.writeHead(200, { ...cors(req), "Content-Type": "application/octet-stream", "Content-Length": String(size),
        ...(ranged ? { "Accept-Ranges": "bytes", "ETag": etag } : {}) });
    }
    if (req.method === "HEAD") return res.end();
    const stream = fs.createReadStream(file, { start, end: end - 1, highWaterMark: 256 << 10 });
    stream.on("data", (chunk) => {
      if (state.cut !== null && state.served + chunk.length >= state.cut) {
        // Send up to the cut, then drop the connection mid-body, once.
        const keep = state.cut - state.served;
        state.served = state.cut;
        state.cut = null;
        entry.status = `${entry.status} cut after ${keep} bytes`;
        stream.destroy();
        res.write(chunk.subarray(0, keep), () => setTimeout(() => {
          req.socket.destroy();
          if (state.afterCut) state.afterCut();
        }, 50));
        return;
      }
      state.served += chunk.length;
      if (!res.write(chunk)) {
        stream.pause();
        res.once("drain", () => stream.resume());
      }
    });
    stream.on("end", () => res.end());
    req.on("close", () => stream.destroy());
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `https://127.0.0.1:${server.address().port}`;
  return {
    origin,
    size,
    state,
    get log() { return state.log; },
    set down(v) { state.down = v; },
    // Drops the connection once `n` more bytes of the file have been served;
    // `then` runs after the drop (e.g. to take the server down).
    cutAfter(n, then = null) {
      state.served = 0;
      state.cut = n;
      state.afterCut = then;
    },
    clearLog() { state.log.length = 0; },
    close() {
      server.closeAllConnections?.();
      return new Promise((r) => server.close(r));
    },
  };
}
