"""`replicate:OWNER/MODEL` through the `replicate` client (imported when used).

Token: REPLICATE_API_TOKEN. Base URL: option base_url=, else REPLICATE_BASE_URL, else api.replicate.com.
Models, price and the inputs each model's schema takes: evalsuite/data/services/replicate.yaml; only those
are sent, recorded and keyed. flux-1.1-pro-ultra takes an aspect_ratio from its list (chosen from the run's
size; no 'custom', no width/height) and raw; the size delivered is recorded.
Options: steps, guidance, size=WxH, version=ID (pin a version), output_format=png|webp|jpg,
safety_tolerance=1..6 (pro models), disable_safety_checker=true|false (schnell/dev; default false),
raw=true|false (ultra), plus the shared remote options (concurrency, retries, retry_base, timeout,
poll_interval, price, max_download_mb). Set for evaluation: go_fast=false (fp8 is non-deterministic),
prompt_upsampling=false, num_outputs=1, png output.
The client runs with timeout= (it would keep its own 30 s read timeout otherwise) and through
remote.ServiceTransport: its hidden GET retries (429/503/504, 10 tries) never see a retryable answer, so
evalsuite's bounded retry is the one that retries, creates included, honouring Retry-After and counting.
"""

from __future__ import annotations

import re
import time
from typing import Any

from ..errors import BackendError, EvalsuiteError
from . import BackendSpec, GenRequest, GenResult, take_options
from . import remote
from .base import RemoteService
from .services import model_info, nearest_ratio, refuse_shut_down

ASPECT_RATIOS = ("1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21")
MODERATION_WORDS = ("nsfw", "safety", "moderat", "flagged", "sensitive")

SCHEMA: dict[str, Any] = {**remote.COMMON_SCHEMA, "steps": int, "guidance": float, "size": "size", "version": str,
                          "output_format": ("png", "webp", "jpg"), "safety_tolerance": int,
                          "disable_safety_checker": bool, "base_url": str, "raw": bool}


def family(model: str) -> str:
    name = model.split("/")[-1]
    if "schnell" in name:
        return "schnell"
    if "pro" in name or "ultra" in name:
        return "pro"
    if "dev" in name:
        return "dev"
    return "other"


def aspect_ratio(w: int, h: int) -> str:
    def val(r: str) -> float:
        a, b = r.split(":")
        return int(a) / int(b)

    return min(ASPECT_RATIOS, key=lambda r: abs(val(r) - w / h))


def is_moderation(text: str | None) -> bool:
    t = (text or "").lower()
    return any(w in t for w in MODERATION_WORDS)


class ReplicateBackend(RemoteService):
    service = "replicate"
    key_env = ("REPLICATE_API_TOKEN",)
    package = "replicate"

    def __init__(self, spec: BackendSpec):
        self.take_spec(spec)
        model = spec.ref or ""
        if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", model):
            raise EvalsuiteError(f"backend '{spec.raw}': expected replicate:OWNER/MODEL, got '{model}'")
        self.model = model
        self.info = model_info("replicate", model)
        refuse_shut_down(self.info, spec.raw)
        self.family = family(model)
        fam = self.family
        info, rules = self.info, self.info.rules
        self.takes = {p: info.applies(p, default=d) for p, d in {
            "custom_size": fam == "pro", "raw": False, "prompt_upsampling": fam == "pro",
            "safety_tolerance": fam == "pro", "num_outputs": fam in ("schnell", "dev"),
            "steps": fam in ("schnell", "dev"), "guidance": fam == "dev"}.items()}
        self.ratios = tuple(rules.get("aspect_ratios") or ASPECT_RATIOS)
        opts = take_options(spec, SCHEMA, {
            **remote.COMMON_DEFAULTS, "steps": rules.get("default_steps", {"schnell": 4, "dev": 28}.get(fam)),
            "guidance": rules.get("default_guidance", 3.0 if fam == "dev" else None), "size": (1024, 1024),
            "version": None, "output_format": "png", "safety_tolerance": 2, "disable_safety_checker": False,
            "base_url": None, "raw": False,
        })
        remote.common_options(opts, spec.raw)
        for k in ("steps", "guidance", "raw", "safety_tolerance", "disable_safety_checker"):
            param = "num_outputs" if k == "disable_safety_checker" else k
            if k in spec.options and not self.takes[param]:
                raise EvalsuiteError(f"backend '{spec.raw}': option '{k}' is not taken by replicate:{model} "
                                     "(see evalsuite/data/services/replicate.yaml)")
        for k in ("steps", "guidance"):
            if not self.takes[k]:
                opts[k] = None
        formats = rules.get("output_formats")
        if formats and opts["output_format"] not in formats:
            raise EvalsuiteError(f"backend '{spec.raw}': option 'output_format' must be one of {', '.join(formats)} "
                                 f"for {model}")
        if fam == "schnell" and opts["steps"] is not None and not 1 <= opts["steps"] <= 4:
            raise EvalsuiteError(f"backend '{spec.raw}': option 'steps' is 1..4 for flux-schnell")
        if fam == "dev" and not 1 <= opts["steps"] <= 50:
            raise EvalsuiteError(f"backend '{spec.raw}': option 'steps' is 1..50 for flux-dev")
        if not 1 <= opts["safety_tolerance"] <= 6:
            raise EvalsuiteError(f"backend '{spec.raw}': option 'safety_tolerance' is 1..6")
        self.opts = opts
        self.default_size = tuple(opts["size"])
        self.concurrency = opts["concurrency"]
        self.price_key = f"replicate:{model}"
        self.price_per_image = remote.price_per_image(self.price_key, opts["price"])
        self.client = None

    # -- the contract --

    def inputs(self, req: GenRequest) -> dict[str, Any]:
        """The model input for one request: the common parameters mapped to this model's schema."""
        t = self.takes
        inp: dict[str, Any] = {"prompt": req.prompt.prompt, "seed": req.seed}
        if t["custom_size"]:
            inp.update(aspect_ratio="custom", width=_multiple(req.width, 32, 256, 1440),
                       height=_multiple(req.height, 32, 256, 1440))
        else:
            inp["aspect_ratio"] = nearest_ratio(req.width, req.height, self.ratios)
        if t["num_outputs"]:
            inp.update(num_outputs=1, go_fast=False, megapixels="1" if req.width * req.height > 512 * 512 else "0.25")
        inp.update(self._applied())
        return inp

    def _applied(self) -> dict[str, Any]:
        """The model parameters this model applies (replicate.yaml `takes`), as sent, recorded and keyed."""
        o, t = self.opts, self.takes
        out: dict[str, Any] = {"output_format": o["output_format"]}
        if t["steps"]:
            out["num_inference_steps"] = o["steps"]
        if t["guidance"]:
            out["guidance"] = o["guidance"]
        if t["raw"]:
            out["raw"] = o["raw"]
        if t["prompt_upsampling"]:
            out["prompt_upsampling"] = False
        if t["safety_tolerance"]:
            out["safety_tolerance"] = o["safety_tolerance"]
        if t["num_outputs"]:
            out["disable_safety_checker"] = o["disable_safety_checker"]
        return out

    def config(self) -> dict[str, Any]:
        o = self.opts
        return {"service": "replicate", "model": self.model, "version": o["version"], "family": self.family,
                **self._applied(), "go_fast": False if self.takes["num_outputs"] else None,
                "lifecycle": self.info.lifecycle(), "base_url": o["base_url"], "size": list(self.default_size),
                "steps": o["steps"], "guidance": o["guidance"], **remote.common_config(o, self.price_per_image)}

    def key(self) -> dict[str, Any]:
        return {"service": "replicate", "model": self.model, "version": self.opts["version"],
                **{k: v for k, v in self._applied().items() if k != "prompt_upsampling"}}

    def prepare(self) -> None:
        remote.require_env(self.key_env, self.label, "a Replicate API token")
        try:
            import replicate  # noqa: F401
        except ImportError:
            raise BackendError(f"{self.label}: the 'replicate' package is not installed (pip install replicate)") from None

    def load(self) -> None:
        import replicate

        if self.client is None:
            token = remote.require_env(self.key_env, self.label, "a Replicate API token")
            transport = remote.ServiceTransport("replicate", self.opts["timeout"])
            self.client = replicate.Client(api_token=token, base_url=self.opts["base_url"], timeout=transport.timeout,
                                           transport=transport)
            self.http = remote.http_client(self.opts["timeout"])
            self.policy = remote.policy_from(self.opts)

    def close(self) -> None:
        if self.client is not None:
            self.http.close()

    # -- one prediction --

    def _one(self, req: GenRequest, stats: dict[str, Any]) -> GenResult:
        inp = self.inputs(req)

        def create():
            if self.opts["version"]:
                return self.client.predictions.create(version=self.opts["version"], input=inp)
            return self.client.models.predictions.create(model=self.model, input=inp)

        pred = remote.with_retry(create, self.policy, classify, "create", stats)
        deadline = time.monotonic() + self.opts["timeout"]
        while pred.status not in ("succeeded", "failed", "canceled"):
            if time.monotonic() > deadline:
                raise remote.RemoteFailure(f"prediction {pred.id} not finished after {self.opts['timeout']} s "
                                           f"(status {pred.status})")
            time.sleep(self.opts["poll_interval"])
            pred = remote.with_retry(lambda: self.client.predictions.get(pred.id), self.policy, classify, "poll", stats)
        applied: dict[str, Any] = {"service": "replicate", "model": pred.model or self.model,
                                   "version": pred.version, "prediction_id": pred.id, "input": _public(inp),
                                   "predict_time_s": (pred.metrics or {}).get("predict_time")}
        if pred.status != "succeeded":
            msg = pred.error or f"prediction {pred.status}"
            status = "filtered" if is_moderation(str(msg)) else "failed"
            return GenResult(status=status, error=f"replicate: {msg}", applied=applied, seed=req.seed)
        out = pred.output
        if isinstance(out, list):
            out = [o for o in out if o]
            if not out:
                return GenResult(status="filtered", applied=applied, seed=req.seed,
                                 error="replicate: no image returned (all outputs flagged by the safety checker)")
            out = out[0]
        if not isinstance(out, str):
            raise remote.RemoteFailure(f"replicate: unexpected output {type(out).__name__}")
        img, facts = remote.fetch_image(out, self.http, max_bytes=int(self.opts["max_download_mb"] * 2**20),
                                        policy=self.policy, stats=stats)
        applied.update(facts)
        applied.update(width=img.width, height=img.height, requested_size=f"{req.width}x{req.height}")
        if self.takes["steps"]:
            applied["steps"] = inp["num_inference_steps"]
        if self.takes["guidance"]:
            applied["guidance"] = inp["guidance"]
        m = re.search(r"[Uu]sing seed:?\s*(\d+)", pred.logs or "")
        seed = int(m.group(1)) if m else req.seed
        return GenResult(image=img, applied=applied, seed=seed)


def _multiple(v: int, m: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, int(round(v / m)) * m))


def _public(inp: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in inp.items() if k != "prompt"}


def classify(exc: BaseException) -> remote.RemoteFailure:
    try:
        from replicate.exceptions import ModelError, ReplicateError
    except ImportError:  # pragma: no cover
        return remote.classify_any(exc)
    if isinstance(exc, ReplicateError):
        msg = exc.detail or exc.title or str(exc)
        code = exc.status or 0
        if code in (400, 422) and is_moderation(msg):
            return remote.RemoteFailure(f"replicate: {msg}", status="filtered")
        return remote.RemoteFailure(f"replicate: HTTP {code}: {msg}", transient=remote.transient_status(code))
    if isinstance(exc, ModelError):
        msg = getattr(exc.prediction, "error", None) or str(exc)
        return remote.RemoteFailure(f"replicate: {msg}", status="filtered" if is_moderation(str(msg)) else "failed")
    return remote.classify_any(exc)


def replicate(spec: BackendSpec) -> ReplicateBackend:
    return ReplicateBackend(spec)
