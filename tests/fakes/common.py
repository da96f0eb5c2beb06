"""A bounded, self-stopping HTTP(S) server on 127.0.0.1 for the fake services of the tests.

Each fake subclasses FakeService and implements handle(req) -> (status, headers, body). Shared here:
the request log, the auth check, fault injection (`fail(kind, status, ...)` queues answers for the next
requests of a kind), latency, deterministic PNG images and expired image URLs, and an echo mode
(`echo=401` or `echo=500`): every request is answered with that status and a body that repeats the
request's headers and URL after `echo_pad` filler characters (what a careless proxy or service does), to
prove that no key reaches a record, a log or the screen wherever it falls relative to a message's cut.
"""

from __future__ import annotations

import hashlib
import io
import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from PIL import Image, ImageDraw

MAX_REQUESTS = 2000          # a fake answers at most this many requests, then 503s
LIFETIME_S = 300             # and stops by itself after this long


@dataclass
class Req:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"{}")


def make_png(prompt: str, seed: int | None, width: int, height: int) -> bytes:
    """A deterministic image for (prompt, seed): two colours from their hash."""
    h = hashlib.sha256(f"{prompt}|{seed}".encode()).digest()
    img = Image.new("RGB", (width, height), tuple(h[:3]))
    ImageDraw.Draw(img).rectangle([width // 4, height // 4, 3 * width // 4, 3 * height // 4], fill=tuple(h[3:6]))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class FakeService:
    secret: str = "test-secret-0123456789"
    latency: float = 0.0                      # seconds until a job is done (or a sync call answers)
    stall: float = 0.0                        # seconds every answer is held back (client timeout tests)
    moderate: tuple[str, ...] = ()            # prompts containing one of these are moderated
    expire_images: bool = False               # image URLs answer 404
    faults: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    log: list[tuple[str, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    stamps: dict[str, list[float]] = field(default_factory=dict)   # time.monotonic() of each request of a kind
    files: dict[str, bytes] = field(default_factory=dict)
    base: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    echo: int = 0                             # answer every request with this status, echoing headers and URL
    echo_pad: int = 0                         # filler characters before the echoed part

    # -- fault injection --
    def fail(self, kind: str, status: int, times: int = 1, retry_after: str | None = None) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.faults.setdefault(kind, []).extend([(status, headers)] * times)

    def count(self, kind: str) -> int:
        return self.counts.get(kind, 0)

    def hit(self, kind: str) -> tuple[int, dict[str, str]] | None:
        """Count a request of kind; return an injected fault for it, if one is queued."""
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            self.stamps.setdefault(kind, []).append(time.monotonic())
            q = self.faults.get(kind)
            return q.pop(0) if q else None

    def moderated(self, prompt: str) -> bool:
        return any(w in prompt for w in self.moderate)

    def add_file(self, name: str, data: bytes) -> str:
        self.files[name] = data
        return f"{self.base}/files/{name}"

    def serve_file(self, req: Req):
        name = req.path.rsplit("/", 1)[-1]
        self.hit("download")
        if self.expire_images or name not in self.files:
            return 404, {"Content-Type": "application/xml"}, b"<Error><Code>NoSuchKey</Code></Error>"
        return 200, {"Content-Type": "image/png"}, self.files[name]

    def handle(self, req: Req):  # pragma: no cover - overridden
        raise NotImplementedError


def echo_answer(status: int, pad: int, method: str, url: str, headers: dict[str, str]):
    """An error answer whose message repeats the request: filler, the URL, every header value bare, then
    the headers as JSON."""
    text = "x" * pad + f" {method} {url} seen: {' '.join(headers.values())} headers={json.dumps(headers)}"
    return jsonr(status, {"detail": text, "title": "echo", "message": text, "error": {"message": text, "type": "echo"}})


def jsonr(status: int, obj: Any, headers: dict[str, str] | None = None, ctype: str = "application/json"):
    return status, {"Content-Type": ctype, **(headers or {})}, json.dumps(obj).encode()


class FakeServer:
    """Runs a FakeService on 127.0.0.1:0 (optionally TLS) in a daemon thread. Use as a context manager."""

    def __init__(self, service: FakeService, ssl_context: ssl.SSLContext | None = None):
        self.service = service
        svc = service
        state = {"n": 0}

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go out as two writes: with Nagle's algorithm the body waits for the client's
            # delayed ACK of the headers (~40 ms a request on Linux), which made every fake call slow
            disable_nagle_algorithm = True

            def log_message(self, *args):  # quiet
                pass

            def _do(self):
                state["n"] += 1
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                u = urlsplit(self.path)
                req = Req(self.command, u.path, parse_qs(u.query), {k.lower(): v for k, v in self.headers.items()}, body)
                svc.log.append((self.command, u.path))
                if svc.stall:
                    time.sleep(svc.stall)
                if state["n"] > MAX_REQUESTS:
                    status, headers, out = jsonr(503, {"detail": "fake server request budget exhausted"})
                elif svc.echo:
                    status, headers, out = echo_answer(svc.echo, svc.echo_pad, self.command, self.path,
                                                       dict(self.headers.items()))
                elif u.path.startswith("/files/"):
                    status, headers, out = svc.serve_file(req)
                else:
                    status, headers, out = svc.handle(req)
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):   # the client gave up (timeouts)
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = _do

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        scheme = "http"
        if ssl_context is not None:
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.port = self.httpd.server_address[1]
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        service.base = self.url
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.timer = threading.Timer(LIFETIME_S, self.stop)
        self.timer.daemon = True

    def start(self) -> "FakeServer":
        self.thread.start()
        self.timer.start()
        return self

    def stop(self) -> None:
        self.timer.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "FakeServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_done(created: float, latency: float) -> bool:
    return time.monotonic() >= created + latency
