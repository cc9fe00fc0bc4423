// Where this page and its model worker may connect: this site, plus the model
// URLs the user typed (kept in localStorage), each as a source expression with
// its path, so that a typed URL opens that one file and not its whole host. The
// static policy in index.html (and serve.py's header) has `connect-src 'self'
// https:`; policies only ever narrow each other (CSP3, "The effect of multiple
// policies"), so the one written here is what holds. It must run before any
// other script, hence a classic script at the top of <head>: a <meta> CSP takes
// effect when inserted there (HTML, pragma directives: the CSP state).
// The model worker is started from a blob: URL (precis.js) because only a local
// scheme inherits the page's policy; a worker loaded by URL would get only its
// response's headers, which static hosts do not send.
// A new URL cannot be added to a policy in force: the page stores it and
// reloads (app.js), keeping the transcript and the pending load.
(function () {
  "use strict";
  const KEY = "precis.connect";
  // Model hubs whose file URLs answer with a redirect to a CDN on other hosts.
  // CSP checks every hop of a redirect, but after a redirect only the host
  // (CSP3, "Does url match expression in origin with redirect count?": the
  // path is compared only when the redirect count is 0), so hosts suffice.
  const REDIRECTS = {
    "https://huggingface.co": ["https://*.huggingface.co", "https://*.hf.co"],
    "https://hf.co": ["https://huggingface.co", "https://*.huggingface.co", "https://*.hf.co"],
  };

  // A URL as it is stored and matched: https only (the page refuses anything
  // else before storing it), without query or fragment, which CSP ignores.
  function key(url) {
    try {
      const u = new URL(url, location.href);
      return u.protocol === "https:" && /^[a-z0-9.\-\[\]:]+$/i.test(u.host) ? u.origin + u.pathname : null;
    } catch {
      return null;
    }
  }
  // As a source expression: `;` and `,` would end it, and CSP compares paths
  // percent-decoded, so they are written encoded.
  const source = (k) => k.replace(/;/g, "%3B").replace(/,/g, "%2C");

  function stored() {
    try {
      const list = JSON.parse(localStorage.getItem(KEY) || "[]");
      return Array.isArray(list) ? list.map(key).filter(Boolean) : [];
    } catch {
      return []; // unreadable storage: this site only
    }
  }

  const urls = [...new Set(stored())];
  const sources = ["'self'", ...new Set(urls.flatMap((k) => [source(k), ...(REDIRECTS[new URL(k).origin] || [])]))];
  const meta = document.createElement("meta");
  meta.httpEquiv = "Content-Security-Policy";
  meta.content = `connect-src ${sources.join(" ")}`;
  document.head.appendChild(meta);

  window.PrecisConnect = Object.freeze({
    // The sources in force for this page load.
    sources: Object.freeze(sources),
    // Whether `url` can be fetched under the policy in force.
    allows(url) {
      return new URL(url, location.href).origin === location.origin || urls.includes(key(url));
    },
    // Stores `url` for the next page load; false when it cannot be stored.
    remember(url) {
      const k = key(url);
      if (!k) return false;
      try {
        localStorage.setItem(KEY, JSON.stringify([...new Set([...stored(), k])]));
        return true;
      } catch {
        return false;
      }
    },
  });
})();
