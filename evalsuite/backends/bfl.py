"""`bfl:ENDPOINT` (flux-pro-1.1, flux-dev, flux-pro, flux-pro-1.1-ultra): the Black Forest Labs API over httpx.

Key: BFL_API_KEY (header x-key). Base URL: option base_url=, else BFL_BASE_URL, else https://api.bfl.ai.
Endpoints, price and the parameters each takes: evalsuite/data/services/bfl.yaml; only those are sent,
recorded and keyed. Sizes: width/height snapped to multiples of 32 in 256..1440, except flux-pro-1.1-ultra,
which takes aspect_ratio (chosen from the run's size: the nearest of 21:9..9:21) and raw instead (about
4 MP delivered; the size delivered is recorded, the size asked for as requested_size).
Options: steps, guidance (flux-dev, flux-pro), size=WxH, raw=true|false (ultra), safety_tolerance=0..6,
output_format=png|jpeg, plus the shared remote options. Set for evaluation: prompt_upsampling=false.
The key is sent only to the base URL's host and to *.bfl.ai polling URLs.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any
from urllib.parse import urlsplit

from ..errors import EvalsuiteError
from . import BackendSpec, GenRequest, GenResult, take_options
from . import remote
from .base import RemoteService
from .services import model_info, nearest_ratio, refuse_shut_down

DEFAULT_BASE = "https://api.bfl.ai"
ENDPOINTS = ("flux-pro-1.1", "flux-dev", "flux-pro", "flux-pro-1.1-ultra")
SCHEMA: dict[str, Any] = {**remote.COMMON_SCHEMA, "steps": int, "guidance": float, "size": "size",
                          "safety_tolerance": int, "output_format": ("png", "jpeg"), "base_url": str, "raw": bool}
MODERATED = ("Request Moderated", "Content Moderated")
FAILED = ("Error", "Task not found", "Failed")


def snap(v: int) -> int:
    return max(256, min(1440, int(round(v / 32)) * 32))


class BflBackend(RemoteService):
    service = "bfl"
    key_env = ("BFL_API_KEY",)
    package = "httpx"

    def __init__(self, spec: BackendSpec):
        self.take_spec(spec)
        ep = (spec.ref or "").strip("/")
        if ep.startswith("v1/"):
            ep = ep[3:]
        if not re.fullmatch(r"[a-z0-9.-]+", ep):
            raise EvalsuiteError(f"backend '{spec.raw}': expected bfl:ENDPOINT (e.g. {', '.join(ENDPOINTS)})")
        self.endpoint = ep
        self.info = model_info("bfl", ep)
        refuse_shut_down(self.info, spec.raw)
        dev = ep == "flux-dev"
        rules = self.info.rules
        opts = take_options(spec, SCHEMA, {
            **remote.COMMON_DEFAULTS, "steps": rules.get("default_steps", 28 if dev else None),
            "guidance": rules.get("default_guidance", 3.0 if dev else None),
            "size": (1024, 1024), "safety_tolerance": 2, "output_format": "png", "base_url": None, "raw": False,
        })
        remote.common_options(opts, spec.raw)
        self.ratios = rules.get("aspect_ratios") if self.info.applies("aspect_ratio", default=False) else None
        for k in ("steps", "guidance", "raw"):
            if k in spec.options and not self.info.applies(k, default=k != "raw"):
                raise EvalsuiteError(f"backend '{spec.raw}': option '{k}' is not taken by bfl:{ep} "
                                     "(see evalsuite/data/services/bfl.yaml)")
            if not self.info.applies(k, default=k != "raw"):
                opts[k] = None
        if opts["safety_tolerance"] > 6:
            raise EvalsuiteError(f"backend '{spec.raw}': option 'safety_tolerance' is 0..6")
        self.opts = opts
        self.default_size = tuple(opts["size"])
        self.concurrency = opts["concurrency"]
        self.price_key = f"bfl:{ep}"
        self.price_per_image = remote.price_per_image(self.price_key, opts["price"])
        self.base_url = (opts["base_url"] or os.environ.get("BFL_BASE_URL") or DEFAULT_BASE).rstrip("/")
        self.http = None

    def body(self, req: GenRequest) -> dict[str, Any]:
        b: dict[str, Any] = {"prompt": req.prompt.prompt, "seed": req.seed}
        if self.ratios:
            b["aspect_ratio"] = nearest_ratio(req.width, req.height, self.ratios)
        else:
            b.update(width=snap(req.width), height=snap(req.height))
        b.update(self._applied())
        return b

    def _applied(self) -> dict[str, Any]:
        """The model parameters this endpoint applies (bfl.yaml `takes`), as sent, recorded and keyed."""
        o = self.opts
        out: dict[str, Any] = {k: o[k] for k in ("steps", "guidance", "raw") if o[k] is not None}
        out.update(safety_tolerance=o["safety_tolerance"], output_format=o["output_format"], prompt_upsampling=False)
        return out

    def config(self) -> dict[str, Any]:
        return {"service": "bfl", "endpoint": self.endpoint, "base_url": self.base_url, **self._applied(),
                "aspect_ratios": self.ratios, "lifecycle": self.info.lifecycle(), "size": list(self.default_size),
                **remote.common_config(self.opts, self.price_per_image)}

    def key(self) -> dict[str, Any]:
        return {"service": "bfl", "endpoint": self.endpoint,
                **{k: v for k, v in self._applied().items() if k != "prompt_upsampling"}}

    def prepare(self) -> None:
        remote.require_env(self.key_env, self.label, "a Black Forest Labs API key")
        remote.check_base_url(self.base_url, self.spec)

    def load(self) -> None:
        if self.http is None:
            import httpx

            key = remote.require_env(self.key_env, self.label, "a Black Forest Labs API key")
            self._headers = {"x-key": key, "accept": "application/json"}
            self.http = httpx.Client(timeout=httpx.Timeout(self.opts["timeout"], connect=15.0), follow_redirects=False)
            self.policy = remote.policy_from(self.opts)

    def close(self) -> None:
        if self.http is not None:
            self.http.close()

    def _key_ok(self, url: str) -> bool:
        host = urlsplit(url).hostname or ""
        return host == urlsplit(self.base_url).hostname or host == "bfl.ai" or host.endswith(".bfl.ai")

    def _call(self, method: str, url: str, **kw) -> dict[str, Any]:
        r = self.http.request(method, url, headers=self._headers, **kw)
        if r.status_code >= 400:
            msg = remote.response_message(r)
            if r.status_code == 402:
                raise remote.RemoteFailure(f"bfl: HTTP 402: no credits left ({msg})")
            raise remote.http_failure(r.status_code, f"bfl: {msg}", r.headers)
        return r.json()

    def _one(self, req: GenRequest, stats: dict[str, Any]) -> GenResult:
        body = self.body(req)
        task = remote.with_retry(lambda: self._call("POST", f"{self.base_url}/v1/{self.endpoint}", json=body),
                                 self.policy, remote.classify_any, "create", stats)
        tid = task.get("id")
        poll = task.get("polling_url") or f"{self.base_url}/v1/get_result?id={tid}"
        if not self._key_ok(poll):
            raise remote.RemoteFailure(f"bfl: polling URL host '{urlsplit(poll).hostname}' is not a BFL host; "
                                       "not sending the key there")
        applied: dict[str, Any] = {"service": "bfl", "endpoint": self.endpoint, "task_id": tid, **self._applied(),
                                   "requested_size": f"{req.width}x{req.height}"}
        if "aspect_ratio" in body:
            applied["aspect_ratio"] = body["aspect_ratio"]
        else:
            applied.update(width=body["width"], height=body["height"])
        deadline = time.monotonic() + self.opts["timeout"]
        t_submit = time.perf_counter()
        while True:
            st = remote.with_retry(lambda: self._call("GET", poll), self.policy, remote.classify_any, "poll", stats)
            status = st.get("status")
            if status == "Ready":
                break
            if status in MODERATED:
                return GenResult(status="filtered", error=f"bfl: {status}", applied=applied, seed=req.seed)
            if status in FAILED:
                detail = st.get("details") or st.get("result") or ""
                return GenResult(status="failed", error=f"bfl: {status} {detail}".strip(), applied=applied,
                                 seed=req.seed)
            if time.monotonic() > deadline:
                raise remote.RemoteFailure(f"bfl task {tid} not ready after {self.opts['timeout']} s (status {status})")
            time.sleep(self.opts["poll_interval"])
        applied["generation_s"] = round(time.perf_counter() - t_submit, 4)
        result = st.get("result") or {}
        sample = result.get("sample")
        if not sample:
            raise remote.RemoteFailure("bfl: Ready without result.sample")
        img, facts = remote.fetch_image(sample, self.http, max_bytes=int(self.opts["max_download_mb"] * 2**20),
                                        policy=self.policy, stats=stats)
        applied.update(facts)
        applied.update(width=img.width, height=img.height)
        if result.get("prompt") and result["prompt"] != req.prompt.prompt:
            applied["revised_prompt"] = result["prompt"]
        seed = result.get("seed", req.seed)
        return GenResult(image=img, applied=applied, seed=seed)


def bfl(spec: BackendSpec) -> BflBackend:
    return BflBackend(spec)
