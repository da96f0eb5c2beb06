"""`fal:APP` (e.g. fal:fal-ai/flux/dev) through `fal-client`'s queue API (imported when used).

Key: FAL_KEY (or FAL_KEY_ID + FAL_KEY_SECRET). Hosts: fal-client reads FAL_RUN_HOST / FAL_QUEUE_RUN_HOST
when it is imported; the scheme is always https.
Options: steps, guidance, size=WxH, sync_mode=true|false (data: URIs instead of CDN URLs),
safety_tolerance=1..6 (pro apps), enable_safety_checker=true|false (default true), output_format=png|jpeg,
plus the shared remote options. Set for evaluation: num_images=1, enhance_prompt=false, png output.
A flagged image still completes at fal: has_nsfw_concepts=true is stored as `filtered`, the image dropped.
"""

from __future__ import annotations

import re
import time
from typing import Any

from ..errors import EvalsuiteError
from . import BackendSpec, GenRequest, GenResult, label_for, take_options
from . import remote

SCHEMA: dict[str, Any] = {**remote.COMMON_SCHEMA, "steps": int, "guidance": float, "size": "size",
                          "sync_mode": bool, "safety_tolerance": int, "enable_safety_checker": bool,
                          "output_format": ("png", "jpeg")}


def _key() -> str | None:
    import os

    if os.environ.get("FAL_KEY", "").strip():
        return os.environ["FAL_KEY"].strip()
    if os.environ.get("FAL_KEY_ID", "").strip() and os.environ.get("FAL_KEY_SECRET", "").strip():
        return f"{os.environ['FAL_KEY_ID'].strip()}:{os.environ['FAL_KEY_SECRET'].strip()}"
    return None


class FalBackend:
    remote = True
    max_batch_size = 1
    labelled_noise = False

    def __init__(self, spec: BackendSpec):
        self.spec = spec.raw
        self.name = spec.name
        self.label = label_for(spec.raw)
        if spec.quant:
            raise EvalsuiteError(f"backend '{spec.raw}': remote models take no quantization")
        app = spec.ref or ""
        if not re.fullmatch(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+", app):
            raise EvalsuiteError(f"backend '{spec.raw}': expected fal:OWNER/APP[/PATH], got '{app}'")
        self.app = app
        self.pro = "pro" in app
        fam_steps = 4 if "schnell" in app else 28
        opts = take_options(spec, SCHEMA, {
            **remote.COMMON_DEFAULTS, "steps": None if self.pro else fam_steps,
            "guidance": None if ("schnell" in app) else 3.5, "size": (1024, 1024), "sync_mode": False,
            "safety_tolerance": 2, "enable_safety_checker": True, "output_format": "png",
        })
        remote.common_options(opts, spec.raw)
        self.opts = opts
        self.default_size = tuple(opts["size"])
        self.concurrency = opts["concurrency"]
        self.price_key = f"fal:{app}"
        self.price_per_image = remote.price_per_image(self.price_key, opts["price"])
        self.client = None

    def arguments(self, req: GenRequest) -> dict[str, Any]:
        o = self.opts
        args: dict[str, Any] = {"prompt": req.prompt.prompt, "seed": req.seed, "num_images": 1,
                                "image_size": {"width": req.width, "height": req.height},
                                "output_format": o["output_format"], "sync_mode": o["sync_mode"]}
        if self.pro:
            args.update(safety_tolerance=str(o["safety_tolerance"]), enhance_prompt=False)
        else:
            args["enable_safety_checker"] = o["enable_safety_checker"]
        if o["steps"] is not None:
            args["num_inference_steps"] = o["steps"]
        if o["guidance"] is not None:
            args["guidance_scale"] = o["guidance"]
        return args

    def config(self) -> dict[str, Any]:
        return {"service": "fal", "app": self.app, **{k: self.opts[k] for k in (
            "steps", "guidance", "sync_mode", "safety_tolerance", "enable_safety_checker", "output_format")},
                "enhance_prompt": False, "size": list(self.default_size),
                **remote.common_config(self.opts, self.price_per_image)}

    def key(self) -> dict[str, Any]:
        return {"service": "fal", "app": self.app, **{k: self.opts[k] for k in (
            "steps", "guidance", "safety_tolerance", "enable_safety_checker", "output_format")}}

    def accepts(self, prompt) -> bool:
        return True

    def item_extra(self, prompt, seed):
        return None

    def estimate_cost(self, n: int, size: tuple[int, int]) -> float | None:
        return remote.estimate_cost(self.price_per_image, self.price_key, n, size)

    def prepare(self) -> None:
        if _key() is None:
            remote.require_env(("FAL_KEY",), self.label, "a fal API key, or FAL_KEY_ID and FAL_KEY_SECRET")
        from ..extras import require

        require("fal_client", f"{self.label}")

    def load(self) -> None:
        import fal_client

        if self.client is None:
            self.client = fal_client.SyncClient(key=_key(), default_timeout=self.opts["timeout"])
            self.http = remote.http_client(self.opts["timeout"])
            self.policy = remote.policy_from(self.opts)

    def close(self) -> None:
        if self.client is not None:
            self.http.close()

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        return [self.generate_one(r) for r in requests]

    def generate_one(self, req: GenRequest) -> GenResult:
        self.load()
        return remote.run_item(self.label, lambda stats: self._one(req, stats))

    def _one(self, req: GenRequest, stats: dict[str, Any]) -> GenResult:
        import fal_client

        args = self.arguments(req)
        handle = remote.with_retry(lambda: self.client.submit(self.app, args), self.policy, classify, "submit", stats)
        deadline = time.monotonic() + self.opts["timeout"]
        while True:
            st = remote.with_retry(handle.status, self.policy, classify, "status", stats)
            if isinstance(st, fal_client.Completed):
                if st.error:
                    msg = f"fal: {st.error}"
                    filtered = "nsfw" in (st.error_type or "").lower() or "safety" in st.error.lower()
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
                                   "steps": args.get("num_inference_steps"), "guidance": args.get("guidance_scale")}
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


def classify(exc: BaseException) -> remote.RemoteFailure:
    try:
        from fal_client.client import FalClientHTTPError, FalClientTimeoutError
    except ImportError:  # pragma: no cover
        return remote.classify_any(exc)
    if isinstance(exc, FalClientHTTPError):
        code = exc.status_code
        msg = f"fal: HTTP {code}: {exc.message}"
        if code == 422 and "nsfw" in (exc.error_type or "").lower():
            return remote.RemoteFailure(msg, status="filtered")
        return remote.RemoteFailure(msg, transient=remote.transient_status(code),
                                    retry_after=remote.parse_retry_after(
                                        {k.lower(): v for k, v in exc.response_headers.items()}.get("retry-after")))
    if isinstance(exc, FalClientTimeoutError):
        return remote.RemoteFailure(f"fal: {exc}", transient=True)
    return remote.classify_any(exc)


def fal(spec: BackendSpec) -> FalBackend:
    return FalBackend(spec)
