"""`hf:PROVIDER/OWNER/MODEL` (e.g. hf:fal-ai/black-forest-labs/FLUX.1-dev): Hugging Face Inference Providers
through `huggingface_hub.InferenceClient(provider=...).text_to_image` (imported when used).

One token (HF_TOKEN, an hf_... token billed on your Hugging Face account) reaches the same Hub model on
several providers: hf:fal-ai/black-forest-labs/FLUX.1-dev, hf:together/black-forest-labs/FLUX.1-dev, ...
The client asks the Hub which provider model id serves MODEL (model_info expand=inferenceProviderMapping),
then calls the provider through the router (https://router.huggingface.co/PROVIDER; option base_url=
sets another router base, as the tests do for their fake).
Providers, price and the parameters each applies: evalsuite/data/services/hf.yaml; only those are sent,
recorded and keyed (together takes no guidance). Prices are the providers' own and unknown here: set
price=USD to bound a run with --max-cost.
Options: steps, guidance, size=WxH, base_url=, plus the shared remote options.
Errors: the client does not retry inference calls itself; `with_retry` retries transient answers of the
generation POST (429 honouring Retry-After, 5xx, timeouts) and counts each attempt. Moderation
(content_policy_violation, NSFW refusals) is `filtered`; quota/auth/invalid requests fail at once.
timeout= applies to the generation call and to the shared huggingface_hub session's default (the image
download of URL-returning providers), so no request waits without bound.
"""

from __future__ import annotations

import io
import re
import time
from typing import Any

from ..errors import BackendError, EvalsuiteError
from . import BackendSpec, GenRequest, GenResult, take_options
from . import remote
from .base import RemoteService
from .services import model_info, refuse_shut_down

SCHEMA: dict[str, Any] = {**remote.COMMON_SCHEMA, "steps": int, "guidance": float, "size": "size", "base_url": str}
MODERATION_WORDS = ("content_policy_violation", "nsfw", "moderat", "safety")


class HfInferenceBackend(RemoteService):
    service = "hf"
    key_env = ("HF_TOKEN",)
    package = "huggingface_hub"

    def __init__(self, spec: BackendSpec):
        self.take_spec(spec)
        ref = spec.ref or ""
        m = re.fullmatch(r"([a-z0-9-]+)/([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)", ref)
        if not m:
            raise EvalsuiteError(f"backend '{spec.raw}': expected hf:PROVIDER/OWNER/MODEL, e.g. "
                                 f"hf:fal-ai/black-forest-labs/FLUX.1-dev, got '{ref}'")
        self.provider, self.model = m.group(1), m.group(2)
        self.info = model_info("hf", ref)
        refuse_shut_down(self.info, spec.raw)
        rules = self.info.rules
        opts = take_options(spec, SCHEMA, {
            **remote.COMMON_DEFAULTS, "concurrency": 2, "steps": rules.get("default_steps"),
            "guidance": rules.get("default_guidance"), "size": (1024, 1024), "base_url": None,
        })
        remote.common_options(opts, spec.raw)
        for k in ("steps", "guidance"):
            if k in spec.options and not self.info.applies(k):
                raise EvalsuiteError(f"backend '{spec.raw}': option '{k}' is not taken by provider {self.provider} "
                                     "(see evalsuite/data/services/hf.yaml)")
            if not self.info.applies(k):
                opts[k] = None
        self.opts = opts
        self.default_size = tuple(opts["size"])
        self.concurrency = opts["concurrency"]
        self.price_key = f"hf:{ref}"
        self.price_per_image = remote.price_per_image(self.price_key, opts["price"])
        self.client = None

    def _applied(self) -> dict[str, Any]:
        o = self.opts
        return {k: o[k] for k in ("steps", "guidance") if o[k] is not None}

    def config(self) -> dict[str, Any]:
        return {"service": "hf", "provider": self.provider, "model": self.model, **self._applied(),
                "base_url": self.opts["base_url"], "lifecycle": self.info.lifecycle(), "size": list(self.default_size),
                **remote.common_config(self.opts, self.price_per_image)}

    def key(self) -> dict[str, Any]:
        return {"service": "hf", "provider": self.provider, "model": self.model, **self._applied()}

    def prepare(self) -> None:
        remote.require_env(self.key_env, self.label, "a Hugging Face token (hf_...) with Inference Providers access")
        try:
            import huggingface_hub  # noqa: F401
        except ImportError:
            raise BackendError(f"{self.label}: the 'huggingface_hub' package is not installed") from None

    def load(self) -> None:
        if self.client is not None:
            return
        from huggingface_hub import InferenceClient, constants, get_session

        token = remote.require_env(self.key_env, self.label, "a Hugging Face token")
        if self.opts["base_url"]:
            constants.INFERENCE_PROXY_TEMPLATE = self.opts["base_url"].rstrip("/") + "/{provider}"
        self.client = InferenceClient(provider=self.provider, token=token, timeout=self.opts["timeout"])
        session = get_session()
        if getattr(session.timeout, "read", None) is None:    # the shared session waits forever by default
            session.timeout = type(session.timeout)(self.opts["timeout"], connect=min(self.opts["timeout"], 15.0))
        self.policy = remote.policy_from(self.opts)

    def _mapping(self, stats: dict[str, Any]) -> str:
        """The provider's model id for self.model, looked up once on the Hub with timeout= (bounded and retried
        here; the client's own lookup would wait without a timeout) and handed to the client's mapping table."""
        if getattr(self, "provider_model", None):
            return self.provider_model
        from huggingface_hub import HfApi

        def lookup():
            info = HfApi().model_info(self.model, expand=["inferenceProviderMapping"], timeout=self.opts["timeout"])
            return info.inference_provider_mapping or []

        found = remote.with_retry(lookup, self.policy, classify, "provider mapping", stats)
        mine = next((m for m in found if m.provider == self.provider), None)
        if mine is None:
            served = ", ".join(sorted(m.provider for m in found)) or "no provider"
            raise remote.RemoteFailure(f"hf: {self.model} is not served by provider {self.provider} (served by: {served})")
        try:   # the client consults this table before asking the Hub itself
            from huggingface_hub.inference._providers import _common

            _common.HARDCODED_MODEL_INFERENCE_MAPPING.setdefault(self.provider, {})[self.model] = mine
        except (ImportError, AttributeError):  # another huggingface_hub layout: the client asks the Hub itself
            pass
        self.provider_model = mine.provider_id
        return self.provider_model

    def _one(self, req: GenRequest, stats: dict[str, Any]) -> GenResult:
        provider_model = self._mapping(stats)
        kw: dict[str, Any] = {"model": self.model, "width": req.width, "height": req.height, "seed": req.seed}
        if self.opts["steps"] is not None:
            kw["num_inference_steps"] = self.opts["steps"]
        if self.opts["guidance"] is not None:
            kw["guidance_scale"] = self.opts["guidance"]
        t = time.perf_counter()
        image = remote.with_retry(lambda: self.client.text_to_image(req.prompt.prompt, **kw), self.policy, classify,
                                  "text_to_image", stats)
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        img, facts = remote.decode_image(buf.getvalue(), "image/png", f"hf {self.provider}")
        applied: dict[str, Any] = {"service": "hf", "provider": self.provider, "model": self.model,
                                   "provider_model": provider_model, **self._applied(),
                                   "requested_size": f"{req.width}x{req.height}", "width": img.width,
                                   "height": img.height, "generation_s": round(time.perf_counter() - t, 4),
                                   "source_format": getattr(image, "format", None)}
        applied.update({k: v for k, v in facts.items() if k != "source_format"})
        return GenResult(image=img, applied=applied, seed=req.seed)


def _body_message(response) -> tuple[str, bool]:
    """The provider's error as one line, and whether it is a moderation refusal."""
    try:
        body = response.json()
    except Exception:  # noqa: BLE001 - not JSON: the text
        text = (response.text or "")[:300]
        return text, any(w in text.lower() for w in MODERATION_WORDS)
    detail = body.get("detail", body.get("error", body)) if isinstance(body, dict) else body
    if isinstance(detail, list):
        from .fal import detail_text

        return detail_text(detail)
    if isinstance(detail, dict):
        detail = detail.get("message") or detail.get("detail") or str(detail)
    text = str(detail)
    return text, any(w in text.lower() for w in MODERATION_WORDS)


def classify(exc: BaseException) -> remote.RemoteFailure:
    try:
        from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError
    except ImportError:  # pragma: no cover
        return remote.classify_any(exc)
    if isinstance(exc, HfHubHTTPError) and getattr(exc, "response", None) is not None:
        r = exc.response
        code = r.status_code
        text, policy = _body_message(r)
        if policy:
            return remote.RemoteFailure(f"hf: {text}", status="filtered")
        post = getattr(getattr(r, "request", None), "method", "POST") == "POST"
        # A failed download or status poll after a generation is not resubmitted: that could pay twice.
        return remote.RemoteFailure(f"hf: HTTP {code}: {text}", transient=post and remote.transient_status(code),
                                    retry_after=remote.parse_retry_after(r.headers.get("retry-after")))
    if isinstance(exc, InferenceTimeoutError):
        return remote.RemoteFailure(f"hf: {exc}", transient=True)
    if isinstance(exc, ValueError):        # the client's own checks: no mapping for this model/provider, ...
        return remote.RemoteFailure(f"hf: {exc}")
    name = type(exc).__module__.split(".")[0]
    if name in ("httpx2", "httpx") and "Timeout" in type(exc).__name__:
        return remote.RemoteFailure(f"hf: no answer within timeout ({type(exc).__name__})", transient=True)
    if name in ("httpx2", "httpx"):
        return remote.RemoteFailure(f"hf: connection error: {type(exc).__name__}: {exc}", transient=True)
    return remote.classify_any(exc)


def hf_inference(spec: BackendSpec) -> HfInferenceBackend:
    return HfInferenceBackend(spec)
