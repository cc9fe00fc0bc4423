// Offline after the first visit: the app shell (HTML, JS, CSS, wasm, the model
// manifest) is kept in a cache named after the build, served cache-first. Models are not handled here:
// the worker keeps those in their own cache ("precis-models-v1").
const VERSION = "__PRECIS_BUILD__";
const SHELL = `precis-shell-${VERSION}`;
const FILES = ["./", "index.html", "csp.js", "app.js", "progress.js", "notes.js", "markdown.js", "precis.js", "worker.js", "download.js", "prefix-store.js", "threads.js", "pool-worker.js", "sha256.js", "style.css", "pkg/precis.js", "pkg/precis_bg.wasm", "pkg-mt/precis.js", "pkg-mt/precis_bg.wasm", "models/manifest.json"];

self.addEventListener("install", (e) => {
  e.waitUntil(caches.open(SHELL).then((c) => c.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (e) => {
  e.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith("precis-shell-") && k !== SHELL).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== "GET" || url.origin !== self.location.origin || url.pathname.endsWith(".gguf")) return;
  e.respondWith(
    caches.open(SHELL).then(async (c) => {
      const hit = await c.match(e.request, { ignoreSearch: true });
      return hit || fetch(e.request);
    }),
  );
});
