#!/usr/bin/env python3
"""Serves www/dist for `make run` and the browser tests.

Answers Range requests (206), adds COOP/COEP (cross-origin isolation, so the Stop
button can use shared memory; the app also works without them) and the same
Content-Security-Policy as the built page's meta tag, which workers need as a header. Usage: serve.py DIR [PORT] [--no-isolation]
"""
import functools
import http.server
import os
import re
import sys

CSP = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; "
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


class _Slice:
    """A file read only up to `left` bytes, for copyfile's read-to-EOF loop."""

    def __init__(self, f, left):
        self.f, self.left = f, left

    def read(self, n=-1):
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.f.read(n)
        self.left -= len(data)
        return data

    def close(self):
        self.f.close()


class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A browser that stops reading (a closed tab, a cancelled download) is
        # not an error worth a traceback.
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


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

    def send_head(self):
        # Range requests, as static hosts answer them: the page downloads a model
        # in pieces so that an interrupted download can resume.
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        path = self.translate_path(self.path)
        if not m or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        start = int(m.group(1))
        end = min(size - 1, int(m.group(2))) if m.group(2) else size - 1
        if start >= size or start > end:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        f = open(path, "rb")
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return _Slice(f, end - start + 1)

    def log_message(self, fmt, *args):
        if "-q" not in sys.argv:
            super().log_message(fmt, *args)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    root = args[0] if args else "www/dist"
    port = int(args[1]) if len(args) > 1 else 8080
    Handler.isolation = "--no-isolation" not in sys.argv
    Handler.csp = page_csp(root)
    server = Server(("127.0.0.1", port), functools.partial(Handler, directory=root))
    print(f"Precis: http://127.0.0.1:{port}/  (serving {root}; Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
