"""`fal:APP` (e.g. fal:fal-ai/flux/dev) through `fal-client`'s queue API (imported when used).

Key: FAL_KEY (or FAL_KEY_ID + FAL_KEY_SECRET). Hosts: fal-client reads FAL_RUN_HOST / FAL_QUEUE_RUN_HOST
when it is imported; the scheme is always https.
Apps, their price and the parameters each takes: evalsuite/data/services/fal.yaml; only parameters an
app takes are sent, recorded and keyed (FLUX1.1 [pro] takes no guidance and no steps; the ultra app takes
an aspect ratio, chosen from the run's size, and raw, instead of a size).
Options: steps, guidance, size=WxH, raw=true|false (ultra), sync_mode=true|false (data: URIs instead of CDN
URLs), safety_tolerance=1..6 (pro apps), enable_safety_checker=true|false (default true),
output_format=png|jpeg, plus the shared remote options. Set for evaluation: num_images=1,
enhance_prompt=false, png output.
Moderation is `filtered`: a 422 whose detail holds type content_policy_violation, or a completed image
with has_nsfw_concepts=true (the image dropped).
Retries: fal-client retries 408/409/429/5xx itself (10 tries, 0.1 s base, ignoring Retry-After); here its
httpx client runs through remote.ServiceTransport, which turns those answers into evalsuite's own bounded,
Retry-After-honouring, counted retries, and applies timeout= to every request (status polls included).
"""

from __future__ import annotations

import re
import time
from typing import Any

from ..errors import EvalsuiteError
from . import BackendSpec, GenRequest, GenResult, take_options
from . import remote
from .base import RemoteService
from .services import model_info, nearest_ratio, refuse_shut_down

SCHEMA: dict[str, Any] = {**remote.COMMON_SCHEMA, "steps": int, "guidance": float, "size": "size",
                          "sync_mode": bool, "safety_tolerance": int, "enable_safety_checker": bool,
                          "output_format": ("png", "jpeg"), "raw": bool}
POLICY_TYPES = ("content_policy_violation",)


def _key() -> str | None:
    import os

    if os.environ.get("FAL_KEY", "").strip():
        return os.environ["FAL_KEY"].strip()
    if os.environ.get("FAL_KEY_ID", "").strip() and os.environ.get("FAL_KEY_SECRET", "").strip():
        return f"{os.environ['FAL_KEY_ID'].strip()}:{os.environ['FAL_KEY_SECRET'].strip()}"
    return None


class FalBackend(RemoteService):
    service = "fal"
    key_env = ("FAL_KEY", "FAL_KEY_ID")
    secret_env = ("FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET")
    package = "fal_client"

    @classmethod
    def secret_values(cls) -> list[str]:
        return super().secret_values() + [_key() or ""]   # FAL_KEY_ID:FAL_KEY_SECRET is sent as one key

    def __init__(self, spec: BackendSpec):
        self.take_spec(spec)
        app = spec.ref or ""
        if not re.fullmatch(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+", app):
            raise EvalsuiteError(f"backend '{spec.raw}': expected fal:OWNER/APP[/PATH], got '{app}'")
        self.app = app
        self.info = model_info("fal", app)
        refuse_shut_down(self.info, spec.raw)
        self.pro = "pro" in app
        rules = self.info.rules
        known = self.info.takes is not None
        steps = rules.get("default_steps") if known else (None if self.pro else (4 if "schnell" in app else 28))
        guidance = rules.get("default_guidance") if known else (None if self.pro or "schnell" in app else 3.5)
        opts = take_options(spec, SCHEMA, {
            **remote.COMMON_DEFAULTS, "steps": steps, "guidance": guidance, "size": (1024, 1024), "sync_mode": False,
            "safety_tolerance": 2, "enable_safety_checker": True, "output_format": "png", "raw": False,
        })
        remote.common_options(opts, spec.raw)
        for k, param in (("steps", "steps"), ("guidance", "guidance"), ("raw", "raw")):
            if k in spec.options and not self.info.applies(param, default=k != "raw"):
                raise EvalsuiteError(f"backend '{spec.raw}': option '{k}' is not taken by fal app {app} "
                                     f"(see evalsuite/data/services/fal.yaml)")
        if not self.info.applies("steps", default=True):
            opts["steps"] = None
        if not self.info.applies("guidance", default=True):
            opts["guidance"] = None
        self.ratios = rules.get("aspect_ratios") if self.info.applies("aspect_ratio", default=False) else None
        self.opts = opts
        self.default_size = tuple(opts["size"])
        self.concurrency = opts["concurrency"]
        self.price_key = f"fal:{app}"
        self.price_per_image = remote.price_per_image(self.price_key, opts["price"])
        self.client = None

    def arguments(self, req: GenRequest) -> dict[str, Any]:
        o = self.opts
        args: dict[str, Any] = {"prompt": req.prompt.prompt, "seed": req.seed, "num_images": 1,
                                "output_format": o["output_format"], "sync_mode": o["sync_mode"]}
        if self.ratios:
            args.update(aspect_ratio=nearest_ratio(req.width, req.height, self.ratios), raw=o["raw"])
        else:
            args["image_size"] = {"width": req.width, "height": req.height}
        if self.info.applies("safety_tolerance", default=self.pro):
            args["safety_tolerance"] = str(o["safety_tolerance"])
        if self.info.applies("enhance_prompt", default=self.pro):
            args["enhance_prompt"] = False
        if self.info.applies("enable_safety_checker", default=not self.pro):
            args["enable_safety_checker"] = o["enable_safety_checker"]
        if o["steps"] is not None:
            args["num_inference_steps"] = o["steps"]
        if o["guidance"] is not None:
            args["guidance_scale"] = o["guidance"]
        return args

    def _applied(self) -> dict[str, Any]:
        """The model parameters this app applies (fal.yaml `takes`), as recorded and keyed."""
        o = self.opts
        out: dict[str, Any] = {"output_format": o["output_format"]}
        if o["steps"] is not None:
            out["steps"] = o["steps"]
        if o["guidance"] is not None:
            out["guidance"] = o["guidance"]
        if self.ratios:
            out["raw"] = o["raw"]
        if self.info.applies("safety_tolerance", default=self.pro):
            out["safety_tolerance"] = o["safety_tolerance"]
        if self.info.applies("enable_safety_checker", default=not self.pro):
            out["enable_safety_checker"] = o["enable_safety_checker"]
        return out

    def config(self) -> dict[str, Any]:
        return {"service": "fal", "app": self.app, **self._applied(), "sync_mode": self.opts["sync_mode"],
                "aspect_ratios": self.ratios, "lifecycle": self.info.lifecycle(), "size": list(self.default_size),
                **remote.common_config(self.opts, self.price_per_image)}

    def key(self) -> dict[str, Any]:
        return {"service": "fal", "app": self.app, **self._applied()}

    def prepare(self) -> None:
        if _key() is None:
            remote.require_env(("FAL_KEY",), self.label, "a fal API key, or FAL_KEY_ID and FAL_KEY_SECRET")
        from ..extras import require

        require("fal_client", f"{self.label}")

    def load(self) -> None:
        import fal_client

        if self.client is None:
            self.client = _client_class()(key=_key(), default_timeout=self.opts["timeout"])
            self.http = remote.http_client(self.opts["timeout"])
            self.policy = remote.policy_from(self.opts)

    def close(self) -> None:
        if self.client is not None:
            self.http.close()

    def _one(self, req: GenRequest, stats: dict[str, Any]) -> GenResult:
        import fal_client

        args = self.arguments(req)
        handle = remote.with_retry(lambda: self.client.submit(self.app, args), self.policy, classify, "submit", stats)
        deadline = time.monotonic() + self.opts["timeout"]
        while True:
            st = remote.with_retry(handle.status, self.policy, classify, "status", stats)
            if isinstance(st, fal_client.Completed):
                if st.error:
                    msg = f"fal: {st.error_type + ': ' if st.error_type else ''}{st.error}"
                    filtered = (st.error_type in POLICY_TYPES or "nsfw" in (st.error_type or "").lower()
                                or "safety" in st.error.lower())
                    return GenResult(status="filtered" if filtered else "failed", error=msg, seed=req.seed,
                                     applied={"service": "fal", "app": self.app, "request_id": handle.request_id})
                break
            if time.monotonic() > deadline:
                raise remote.RemoteFailure(f"fal request {handle.request_id} not finished after {self.opts['timeout']} s")
            time.sleep(self.opts["poll_interval"])
        result = remote.with_retry(lambda: _result(handle), self.policy, classify, "result", stats)
        images = result.get("images") or []
        applied: dict[str, Any] = {"service": "fal", "app": self.app, "request_id": handle.request_id,
                                   "timings": result.get("timings"), "returned_prompt": result.get("prompt"),
                                   **self._applied(), "requested_size": f"{req.width}x{req.height}"}
        if "aspect_ratio" in args:
            applied["aspect_ratio"] = args["aspect_ratio"]
        seed = result.get("seed", req.seed)
        nsfw = result.get("has_nsfw_concepts") or []
        if nsfw and nsfw[0]:
            return GenResult(status="filtered", error="fal: image flagged by the safety checker (has_nsfw_concepts)",
                             applied=applied, seed=seed)
        if not images or not images[0].get("url"):
            raise remote.RemoteFailure("fal: the result holds no image")
        img, facts = remote.fetch_image(images[0]["url"], self.http,
                                        max_bytes=int(self.opts["max_download_mb"] * 2**20),
                                        policy=self.policy, stats=stats)
        applied.update(facts)
        applied.update(width=img.width, height=img.height)
        return GenResult(image=img, applied=applied, seed=seed)


def _result(handle) -> dict[str, Any]:
    """GET response_url once (handle.get() would poll status again)."""
    from fal_client.client import _raise_for_status

    r = handle.client.get(handle.response_url)
    _raise_for_status(r)
    return r.json()


_CLIENT_CLASS = None


def _client_class():
    """fal_client.SyncClient whose httpx client runs through remote.ServiceTransport (see the module doc)."""
    global _CLIENT_CLASS
    if _CLIENT_CLASS is None:
        from functools import cached_property

        import fal_client
        import httpx
        from fal_client import client as fc

        class Client(fal_client.SyncClient):
            @cached_property
            def _client(self) -> httpx.Client:
                inner = fc.BackupDomainTransport() if hasattr(fc, "BackupDomainTransport") else None
                return httpx.Client(
                    transport=remote.ServiceTransport("fal", self.default_timeout, inner),
                    headers={"Authorization": self._auth.header_value, "User-Agent": fc.USER_AGENT},
                    timeout=self.default_timeout, follow_redirects=True)

        _CLIENT_CLASS = Client
    return _CLIENT_CLASS


def detail_text(detail: Any) -> tuple[str, bool]:
    """fal's error detail (a string, or a list of {loc, msg, type, ...}) as one line; True when it is a
    content-policy rejection (fal error reference: type content_policy_violation)."""
    if not isinstance(detail, list):
        return str(detail), False
    parts, policy = [], False
    for d in detail:
        if not isinstance(d, dict):
            parts.append(str(d))
            continue
        policy |= d.get("type") in POLICY_TYPES
        loc = ".".join(str(x) for x in d.get("loc") or [] if x != "body")
        cats = d.get("categories")
        parts.append(f"{d.get('type') or 'error'}: {d.get('msg') or ''}".strip()
                     + (f" ({loc})" if loc else "") + (f" [categories: {', '.join(map(str, cats))}]" if cats else ""))
    return "; ".join(parts), policy


def classify(exc: BaseException) -> remote.RemoteFailure:
    try:
        from fal_client.client import FalClientHTTPError, FalClientTimeoutError
    except ImportError:  # pragma: no cover
        return remote.classify_any(exc)
    if isinstance(exc, FalClientHTTPError):
        code = exc.status_code
        text, policy = detail_text(exc.message)
        msg = f"fal: HTTP {code}: {text}"
        if policy or exc.error_type in POLICY_TYPES or (code == 422 and "nsfw" in (exc.error_type or "").lower()):
            return remote.RemoteFailure(f"fal: {text}", status="filtered")
        return remote.RemoteFailure(msg, transient=remote.transient_status(code),
                                    retry_after=remote.parse_retry_after(
                                        {k.lower(): v for k, v in exc.response_headers.items()}.get("retry-after")))
    if isinstance(exc, FalClientTimeoutError):
        return remote.RemoteFailure(f"fal: {exc}", transient=True)
    return remote.classify_any(exc)


def fal(spec: BackendSpec) -> FalBackend:
    return FalBackend(spec)
