// Where this page and its model worker may connect: this site, plus the hosts of
// model URLs the user typed (kept in localStorage). The static policy in
// index.html (and serve.py's header) has `connect-src 'self' https:`; policies
// only ever narrow each other (CSP3 §"Enforcing multiple policies"), so the one
// written here, from the stored origins, is what holds. It must run before any
// other script, hence a classic script at the top of <head>: a <meta> CSP takes
// effect when inserted there (HTML §4.2.5.3, the Content-Security-Policy state).
// The model worker is started from a blob: URL (precis.js) because only a local
// scheme inherits the page's policy; a worker loaded by URL would get only its
// response's headers, which static hosts do not send.
// A new origin cannot be added to a policy in force: the page stores it and
// reloads (app.js), keeping the transcript and the pending load.
(function () {
  "use strict";
  const KEY = "precis.connect";
  // Model hubs whose file URLs answer with a redirect to a CDN on other hosts;
  // CSP checks every hop of a redirect, so allowing the hub means its CDN too.
  const REDIRECTS = {
    "https://huggingface.co": ["https://*.huggingface.co", "https://*.hf.co"],
    "https://hf.co": ["https://huggingface.co", "https://*.huggingface.co", "https://*.hf.co"],
  };

  // A stored origin goes into a policy string: only scheme://host[:port] of
  // https (anything else was refused by the page before it was stored).
  function origin(url) {
    try {
      const u = new URL(url, location.href);
      return u.protocol === "https:" && /^[a-z0-9.\-\[\]:]+$/i.test(u.host) ? u.origin : null;
    } catch {
      return null;
    }
  }

  function stored() {
    try {
      const list = JSON.parse(localStorage.getItem(KEY) || "[]");
      return Array.isArray(list) ? list.map(origin).filter(Boolean) : [];
    } catch {
      return []; // unreadable storage: this site only
    }
  }

  const origins = [...new Set(stored())];
  const sources = ["'self'", ...new Set(origins.flatMap((o) => [o, ...(REDIRECTS[o] || [])]))];
  const meta = document.createElement("meta");
  meta.httpEquiv = "Content-Security-Policy";
  meta.content = `connect-src ${sources.join(" ")}`;
  document.head.appendChild(meta);

  window.PrecisConnect = Object.freeze({
    // The sources in force for this page load.
    sources: Object.freeze(sources),
    // Whether `url` can be fetched under the policy in force.
    allows(url) {
      const u = new URL(url, location.href);
      return u.origin === location.origin || origins.includes(u.origin);
    },
    // Stores `url`'s origin for the next page load; false when it cannot be stored.
    remember(url) {
      const o = origin(url);
      if (!o) return false;
      try {
        localStorage.setItem(KEY, JSON.stringify([...new Set([...stored(), o])]));
        return true;
      } catch {
        return false;
      }
    },
  });
})();
