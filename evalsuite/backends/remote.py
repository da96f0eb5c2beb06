"""Shared machinery of the remote backends (Replicate, fal, BFL, OpenAI Images, ComfyUI): functions, no base class.

- retry: `with_retry(fn, policy, classify)` retries transient failures (429 honouring Retry-After, 408,
  409, 5xx, connection errors, timeouts) with exponential backoff and jitter, a bounded number of times.
  Anything else is final for the item: `RemoteFailure(status='failed'|'filtered', message)`.
- downloads: `fetch_image(src, ...)` accepts https URLs and data: URIs (plain http only to loopback and
  only when EVALSUITE_ALLOW_LOOPBACK_HTTP=1, for the fake servers of the tests), caps the size, checks
  the content type, verifies and decodes with PIL, and returns the image plus the original bytes' hash.
- secrets: keys come only from environment variables; `redact(text)` removes them, anything that looks
  like an Authorization value, the password of a URL (`http://user:PASS@host`) and credential-like query
  parameters (`?token=`, `key=`, `sig=`, ...) from every text that may reach a record, run.json, a log or
  the screen; it runs before any cut to length, so no fragment of a key survives a truncation.
  `redact_obj(obj)` does the same for every string inside a config dict or list.
- prices: a dated table of USD per image, overridable per backend with `price=`.
- the options every remote backend takes (same names everywhere): concurrency, retries, retry_base,
  timeout, poll_interval, price, max_download_mb.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import ipaddress
import os
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar
from urllib.parse import urlsplit

from PIL import Image

from ..errors import BackendError
from .keys import secret_env_names, secret_values

T = TypeVar("T")

# ---- prices: the dated per-service tables in evalsuite/data/services/*.yaml (see services.py) ----
PRICES_AS_OF = "2026-12-01"            # the date the service tables were checked; each price carries its own date
PER_MEGAPIXEL = ("fal:",)

LOOPBACK_ENV = "EVALSUITE_ALLOW_LOOPBACK_HTTP"

COMMON_SCHEMA: dict[str, Any] = {
    "concurrency": int, "retries": int, "retry_base": float, "timeout": float, "poll_interval": float,
    "price": float, "max_download_mb": float,
}
COMMON_DEFAULTS: dict[str, Any] = {
    "concurrency": 4, "retries": 4, "retry_base": 1.0, "timeout": 120.0, "poll_interval": 1.0,
    "price": None, "max_download_mb": 40.0,
}


def __getattr__(name: str):
    # SECRET_ENV: the secret variables every service class declares (backends/keys.py), so a new service's
    # key is redacted without a second list to keep in step.
    if name == "SECRET_ENV":
        return secret_env_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def price_per_image(price_key: str, override: float | None) -> float | None:
    """USD per image (fal: per started megapixel) for 'service:model', from the service's table; None = unknown."""
    if override is not None:
        return override
    from .services import model_info

    service, _, model = price_key.partition(":")
    return model_info(service, model or "workflow").price


def estimate_cost(price: float | None, price_key: str, n: int, size: tuple[int, int]) -> float | None:
    """Estimated USD for n images at size; None when the price is unknown."""
    if price is None:
        return None
    if price_key.startswith(PER_MEGAPIXEL):
        mp = max(1, -(-size[0] * size[1] // (1024 * 1024)))   # billed per started megapixel
        return round(n * price * mp, 6)
    return round(n * price, 6)


# ---- secrets ----

def require_env(names: tuple[str, ...], backend: str, how: str) -> str:
    """The first set environment variable of names, or a one-line BackendError saying what to set."""
    for n in names:
        v = os.environ.get(n, "").strip()
        if v:
            return v
    raise BackendError(f"{backend}: set the environment variable {' or '.join(names)} ({how}); "
                       "keys are read from the environment only")


_AUTH_PATTERNS = [
    re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(bearer|key|token)?\s*[^\s\"',}]+"),
    re.compile(r"(?i)\b(bearer|key)\s+[A-Za-z0-9_\-.:]{8,}"),
    re.compile(r"(?i)(x-key[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"),
    re.compile(r"\b(r8_[A-Za-z0-9]{8,}|sk-[A-Za-z0-9_\-]{8,}|hf_[A-Za-z0-9]{8,})"),
]


# URL userinfo (user:password@) and query parameters that carry credentials
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s:@?#]*):([^/\s@?#]*)@")
_URL_USER_ONLY = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s:@?#]+)@")
CREDENTIAL_PARAMS = ("token", "access_token", "api_key", "apikey", "key", "secret", "password", "passwd", "pwd",
                     "auth", "authorization", "sig", "signature", "x-amz-signature", "x-amz-credential",
                     "x-amz-security-token", "credential", "session", "client_secret", "code")
_QUERY_CRED = re.compile(r"(?i)([?&;](?:[a-z0-9_.-]*[_-])?(?:" + "|".join(re.escape(p) for p in CREDENTIAL_PARAMS)
                         + r")=)[^&#\s\"',}]*")


def redact(text: str | None, extra: tuple[str, ...] = ()) -> str | None:
    """Remove secret values (of every service's secret_env, see backends/keys.py, and extra), Authorization-like values, URL passwords and
    credential-like query parameters from text. Run it on the whole text, before any truncation."""
    if text is None:
        return None
    text = str(text)
    secrets = secret_values() + list(extra)
    for s in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(s, "***")
    text = _AUTH_PATTERNS[0].sub(lambda m: m.group(1) + "***", text)
    text = _AUTH_PATTERNS[1].sub(lambda m: m.group(1) + " ***", text)
    text = _AUTH_PATTERNS[2].sub(lambda m: m.group(1) + "***", text)
    text = _AUTH_PATTERNS[3].sub("***", text)
    text = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{m.group(2)}:***@", text)
    text = _URL_USER_ONLY.sub(lambda m: f"{m.group(1)}***@", text)
    text = _QUERY_CRED.sub(lambda m: m.group(1) + "***", text)
    return text


def redact_obj(obj: Any) -> Any:
    """redact() applied to every string (keys and values) inside dicts, lists and tuples."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {redact_obj(k): redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact_obj(v) for v in obj)
    return obj


def one_line(text: str, limit: int = 500) -> str:
    """Redacted first, then whitespace folded and cut to `limit` characters."""
    text = " ".join(redact(str(text)).split())
    return text[:limit]


# ---- failures and retries ----

class RemoteFailure(Exception):
    """A failed step of one item. transient: worth retrying; else final with status failed|filtered."""

    def __init__(self, message: str, *, status: str = "failed", transient: bool = False,
                 retry_after: float | None = None):
        super().__init__(one_line(message))
        self.message = one_line(message)
        self.status = status
        self.transient = transient
        self.retry_after = retry_after


def transient_status(code: int) -> bool:
    return code in (408, 409, 425, 429) or 500 <= code <= 599


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        dt = parsedate_to_datetime(value)
        return max(0.0, dt.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def http_failure(code: int, message: str, headers: Any = None, filtered: bool = False) -> RemoteFailure:
    ra = parse_retry_after(headers.get("retry-after")) if headers is not None else None
    if filtered:
        return RemoteFailure(message, status="filtered")
    return RemoteFailure(f"HTTP {code}: {message}", transient=transient_status(code), retry_after=ra)


def classify_httpx(exc: BaseException) -> RemoteFailure | None:
    """httpx exceptions -> RemoteFailure; None when exc is not an httpx error."""
    import httpx

    if isinstance(exc, httpx.HTTPStatusError):
        r = exc.response
        return http_failure(r.status_code, _response_message(r), r.headers)
    if isinstance(exc, httpx.TimeoutException):
        return RemoteFailure(f"timeout: {type(exc).__name__}", transient=True)
    if isinstance(exc, httpx.TransportError):
        return RemoteFailure(f"connection error: {type(exc).__name__}: {exc}", transient=True)
    return None


def _response_message(r) -> str:
    try:
        body = r.json()
    except Exception:
        return redact(r.text or r.reason_phrase or "")[:300]
    if isinstance(body, dict):
        for k in ("detail", "error", "message", "title"):
            v = body.get(k)
            if isinstance(v, dict):
                v = v.get("message") or v.get("detail") or str(v)
            if v:
                return redact(str(v))
    return redact(str(body))[:300]


@dataclass
class RetryPolicy:
    attempts: int = 5                 # total tries of one step (1 = no retry)
    base: float = 1.0                 # first backoff in seconds, doubled each time
    max_delay: float = 60.0           # cap of one wait (also caps Retry-After)
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = min(self.max_delay, self.base * 2 ** (attempt - 1)) * self.rng.uniform(0.5, 1.0)
        if retry_after is not None:
            return min(self.max_delay, retry_after + self.rng.uniform(0, 0.1 * self.base))
        return backoff


def with_retry(fn: Callable[[], T], policy: RetryPolicy, classify: Callable[[BaseException], RemoteFailure],
               what: str, stats: dict[str, Any] | None = None) -> T:
    """Call fn; retry transient failures per policy; raise a final RemoteFailure otherwise."""
    attempt = 0
    while True:
        attempt += 1
        if stats is not None:
            stats["attempts"] = stats.get("attempts", 0) + 1      # every request sent, first tries included
        try:
            return fn()
        except RemoteFailure as e:
            failure = e
        except Exception as e:  # noqa: BLE001 - classified below, never swallowed silently
            failure = classify(e)
        if stats is not None:
            stats["retries"] = stats.get("retries", 0) + (1 if failure.transient and attempt < policy.attempts else 0)
            stats.setdefault("errors", []).append(one_line(f"{what}: {failure.message}", 200))
        if not failure.transient:
            raise failure
        if attempt >= policy.attempts:
            raise RemoteFailure(f"{what}: gave up after {attempt} attempts: {failure.message}")
        policy.sleep(policy.delay(attempt, failure.retry_after))


def policy_from(opts: dict[str, Any]) -> RetryPolicy:
    return RetryPolicy(attempts=opts["retries"] + 1, base=opts["retry_base"])


class ServiceTransport:
    """An httpx transport around a client library's own (fal-client, replicate, huggingface_hub): every
    request gets this backend's `timeout=`, and a transient answer (408, 409, 425, 429, 5xx) or a connection
    error becomes a RemoteFailure at once, with the service's message and Retry-After. The library's hidden
    retry loop never sees a retryable response (it catches only httpx errors), so `with_retry` is the one
    place that retries: it honours Retry-After, is bounded by `retries`, and counts every attempt."""

    def __init__(self, service: str, timeout: float, inner=None):
        import httpx

        self.service = service
        self.timeout_s = timeout
        self.timeout = httpx.Timeout(timeout, connect=min(timeout, 15.0))
        self.inner = inner if inner is not None else httpx.HTTPTransport()

    def handle_request(self, request):
        import httpx

        t = self.timeout
        request.extensions["timeout"] = {"connect": t.connect, "read": t.read, "write": t.write, "pool": t.pool}
        try:
            response = self.inner.handle_request(request)
        except httpx.TimeoutException as e:
            raise RemoteFailure(f"{self.service}: no answer within timeout={self.timeout_s:g} s "
                                f"({type(e).__name__})", transient=True) from None
        except httpx.TransportError as e:
            raise RemoteFailure(f"{self.service}: connection error: {type(e).__name__}: {e}", transient=True) from None
        if transient_status(response.status_code):
            response.read()
            msg = _response_message(response)
            response.close()
            raise http_failure(response.status_code, f"{self.service}: {msg}", response.headers)
        return response

    def close(self) -> None:
        self.inner.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---- downloads ----

def check_base_url(base_url: str, spec: str) -> None:
    """A service's base URL must be https (plain http only to loopback under EVALSUITE_ALLOW_LOOPBACK_HTTP=1)."""
    parts = urlsplit(base_url)
    if parts.scheme != "https" and not (parts.scheme == "http" and os.environ.get(LOOPBACK_ENV) == "1"
                                        and _loopback(parts.hostname)):
        from ..errors import EvalsuiteError

        raise EvalsuiteError(f"backend '{spec}': base_url must be https, got '{base_url}'")


def response_message(r) -> str:
    """The readable message of an error answer (JSON detail/message/error fields, else the text), redacted."""
    return _response_message(r)


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and _loopback(parts.hostname) and os.environ.get(LOOPBACK_ENV) == "1":
        return
    raise RemoteFailure(f"refusing to download image from '{safe_url(url)}': only https and data: URIs are accepted")


def safe_url(url: str) -> str:
    """A URL without its query (signed URLs carry credentials there), for messages."""
    if url.startswith("data:"):
        return url[:30] + "..."
    p = urlsplit(url)
    return f"{p.scheme}://{p.netloc}{p.path}"


def decode_image(data: bytes, content_type: str | None, source: str) -> tuple[Image.Image, dict[str, Any]]:
    """Verify bytes as an image with PIL; returns the RGB image and facts about the original bytes."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype and not ctype.startswith("image/"):
        raise RemoteFailure(f"{source}: content type '{ctype}' is not an image")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt = probe.format
            probe.verify()
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception as e:  # noqa: BLE001 - PIL raises many kinds
        detail = re.sub(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>", "", str(e)).strip(" :")   # no object addresses
        raise RemoteFailure(f"{source}: not a valid image ({type(e).__name__}" + (f": {detail})" if detail else ")")) \
            from None
    if img.mode != "RGB":
        img = img.convert("RGB")
    return img, {"source_sha256": hashlib.sha256(data).hexdigest(), "source_bytes": len(data),
                 "source_format": fmt, "source_content_type": ctype or None}


def fetch_image(src: str, client, *, max_bytes: int, policy: RetryPolicy,
                stats: dict[str, Any] | None = None) -> tuple[Image.Image, dict[str, Any]]:
    """An image from an https URL or a data: URI (see module doc). Expired URLs (403/404/410) are final."""
    if src.startswith("data:"):
        head, _, payload = src.partition(",")
        ctype = head[5:].split(";")[0] or None
        try:
            data = base64.b64decode(payload, validate=True) if ";base64" in head else payload.encode()
        except (binascii.Error, ValueError):
            raise RemoteFailure("data: URI is not valid base64") from None
        if len(data) > max_bytes:
            raise RemoteFailure(f"image of {len(data)} bytes exceeds the {max_bytes}-byte cap")
        return decode_image(data, ctype, "data: URI")
    check_url(src)

    def get() -> tuple[bytes, str | None]:
        with client.stream("GET", src) as r:
            if r.status_code in (401, 403, 404, 410):
                raise RemoteFailure(f"image URL expired or no longer accessible (HTTP {r.status_code}): "
                                    f"{safe_url(src)}; the service's files expire soon after generation, "
                                    "rerun with --retry-failed to generate again")
            if r.status_code >= 400:
                raise http_failure(r.status_code, f"image download from {safe_url(src)}", r.headers)
            length = r.headers.get("content-length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise RemoteFailure(f"image of {length} bytes exceeds the {max_bytes}-byte cap")
            buf = bytearray()
            for chunk in r.iter_bytes():
                buf += chunk
                if len(buf) > max_bytes:
                    raise RemoteFailure(f"image exceeds the {max_bytes}-byte cap")
            return bytes(buf), r.headers.get("content-type")

    data, ctype = with_retry(get, policy, classify_any, "download", stats)
    return decode_image(data, ctype, safe_url(src))


def classify_any(exc: BaseException) -> RemoteFailure:
    f = classify_httpx(exc)
    if f is not None:
        return f
    return RemoteFailure(f"{type(exc).__name__}: {exc}")


def http_client(timeout: float):
    import httpx

    return httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)), follow_redirects=True)


# ---- what every remote backend shares ----

def common_options(opts: dict[str, Any], raw: str) -> None:
    if opts["concurrency"] < 1:
        raise BackendError(f"backend '{raw}': option 'concurrency' must be >= 1")
    if opts["concurrency"] > 64:
        raise BackendError(f"backend '{raw}': option 'concurrency' is at most 64")


def common_config(opts: dict[str, Any], price: float | None) -> dict[str, Any]:
    return {"concurrency": opts["concurrency"], "retries": opts["retries"], "timeout": opts["timeout"],
            "price_per_image": price, "prices_as_of": PRICES_AS_OF}


def finish(result, t0: float, stats: dict[str, Any]):
    """Attach timing and retry facts to a GenResult."""
    result.applied.setdefault("wall_s", round(time.perf_counter() - t0, 4))
    result.applied["retries"] = stats.get("retries", 0)
    result.applied["attempts"] = stats.get("attempts", 0)
    if stats.get("errors"):
        result.applied["transient_errors"] = stats["errors"][-5:]
    if result.error:
        result.error = one_line(result.error)
    return result


def run_item(backend_name: str, fn: Callable[[dict[str, Any]], Any]):
    """Run one item's steps; a final RemoteFailure or an unexpected error becomes a failed/filtered GenResult."""
    from . import GenResult

    stats: dict[str, Any] = {}
    t0 = time.perf_counter()
    try:
        res = fn(stats)
    except RemoteFailure as e:
        res = GenResult(status=e.status, error=e.message)
    except Exception as e:  # noqa: BLE001 - one item fails, the run goes on
        res = GenResult(status="failed", error=f"{backend_name}: {type(e).__name__}: {e}")
    return finish(res, t0, stats)


class Budget:
    """The shared limits of a run's remote calls, across all its remote backends: --max-cost (submissions
    stop once the estimate reaches it) and --rate-limit (at most N submissions per second, paced evenly)."""

    def __init__(self, max_cost: float | None, rate_limit: float | None = None):
        self.max_cost = max_cost
        self.spent = 0.0
        self.interval = 1.0 / rate_limit if rate_limit else 0.0
        self.next_slot = 0.0
        self.lock = threading.Lock()

    def take(self, amount: float | None) -> bool:
        with self.lock:
            if self.max_cost is None:
                self.spent += amount or 0.0
                return True
            if self.spent + (amount or 0.0) > self.max_cost + 1e-12:
                return False
            self.spent += amount or 0.0
            return True

    def wait_turn(self) -> None:
        """Block until this submission's slot under --rate-limit (no wait without a limit)."""
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            slot = max(now, self.next_slot)
            self.next_slot = slot + self.interval
        if slot > now:
            time.sleep(slot - now)
