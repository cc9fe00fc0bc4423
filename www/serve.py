#!/usr/bin/env python3
"""Serves www/dist for `make run` and the browser tests.

Adds COOP/COEP (cross-origin isolation, so the Stop button can use shared memory;
the app also works without them) and the same Content-Security-Policy as the
built page's meta tag, which workers need as a header. Usage: serve.py DIR [PORT] [--no-isolation]
"""
import functools
import http.server
import os
import re
import sys

CSP = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; "
       "connect-src 'self' https:; img-src 'self' data: blob:; style-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'none'")


def page_csp(root):
    """The policy in the built page's meta tag (`make web CONNECT_SRC=...` may have
    narrowed it), so that the header the workers get never differs from it."""
    try:
        with open(os.path.join(root, "index.html"), encoding="utf-8") as f:
            m = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', f.read())
        return m.group(1) if m else CSP
    except OSError:
        return CSP


class Handler(http.server.SimpleHTTPRequestHandler):
    isolation = True
    csp = CSP
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".js": "text/javascript", ".mjs": "text/javascript",
                      ".wasm": "application/wasm", ".gguf": "application/octet-stream"}

    def end_headers(self):
        if self.isolation:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Content-Security-Policy", self.csp)
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, fmt, *args):
        if "-q" not in sys.argv:
            super().log_message(fmt, *args)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    root = args[0] if args else "www/dist"
    port = int(args[1]) if len(args) > 1 else 8080
    Handler.isolation = "--no-isolation" not in sys.argv
    Handler.csp = page_csp(root)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Handler, directory=root))
    print(f"Precis: http://127.0.0.1:{port}/  (serving {root}; Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
