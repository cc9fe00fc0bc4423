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
    // hf.co redirects to the same path on huggingface.co, then to the CDN.
    "https://hf.co": ["https://huggingface.co", "https://*.huggingface.co", "https://*.hf.co"],
  };

  // A URL as it is stored and matched: origin + path, without query or fragment
  // (CSP ignores both); null and the reason when a CSP source cannot name it.
  function parse(url) {
    let u;
    try {
      u = new URL(url, location.href);
    } catch {
      return { key: null, reason: `"${url}" is not a valid URL.` };
    }
    if (u.protocol !== "https:") return { key: null, reason: "only https:// addresses can be allowed." };
    // CSP3's host-source grammar has DNS names only: letters, digits, hyphens.
    if (!/^[a-z0-9-]+(\.[a-z0-9-]+)*$/i.test(u.hostname)) {
      return { key: null, reason: `a Content-Security-Policy cannot name the host "${u.hostname}" (an IPv6 address or a name with other characters); use its DNS name.` };
    }
    // A path ending in "/" is a prefix in CSP: it would open a whole directory.
    if (u.pathname.endsWith("/")) return { key: null, reason: `${u.href} names a folder, not a .gguf file.` };
    if (source(u.pathname).length > 512) return { key: null, reason: "its path is too long for a Content-Security-Policy (512 characters at most)." };
    return { key: u.origin + u.pathname, reason: "" };
  }
  const key = (url) => parse(url).key;

  // As a source expression. CSP compares paths percent-decoded, so encoding is
  // free; `;` and `,` would end the source, and browsers drop a source whose path
  // has characters outside RFC 3986's pchar (Firefox does), so those are encoded,
  // and so is a `%` that starts no escape.
  const source = (path) => path.replace(/%(?![0-9a-f]{2})|[^A-Za-z0-9\-._~!$&'()*+=:@\/%]/gi, (c) =>
    Array.from(new TextEncoder().encode(c), (b) => `%${b.toString(16).toUpperCase().padStart(2, "0")}`).join(""));

  function stored() {
    try {
      const list = JSON.parse(localStorage.getItem(KEY) || "[]");
      return Array.isArray(list) ? list.map(key).filter(Boolean) : [];
    } catch {
      return []; // unreadable storage: this site only
    }
  }

  const urls = [...new Set(stored())];
  const sources = ["'self'", ...new Set(urls.flatMap((k) => {
    const u = new URL(k);
    return [u.origin + source(u.pathname), ...(REDIRECTS[u.origin] || []).map((o) => (o.includes("*") ? o : o + source(u.pathname)))];
  }))];
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
    // Stores `url` for the next page load: "" when stored, else why not.
    remember(url) {
      const { key: k, reason } = parse(url);
      if (!k) return reason;
      try {
        localStorage.setItem(KEY, JSON.stringify([...new Set([...stored(), k])]));
        return "";
      } catch (e) {
        return `this browser did not let the page store the address (${e.message}), so the download would be refused.`;
      }
    },
  });
})();
