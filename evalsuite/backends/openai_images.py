"""`openai:MODEL` (gpt-image-2, gpt-image-2.5-flare, ...) through the `openai` client's Images API (imported when used).

Key: OPENAI_API_KEY. Base URL: option base_url=, else OPENAI_BASE_URL, else the client's default.
Models, their lifecycle, price and size rules: evalsuite/data/services/openai.yaml. A shut-down model
(dall-e-3, gpt-image-1, ...) fails at plan time with its shutdown date and replacement.
Options: size=WxH (gpt-image-2 family: any size in multiples of 16, longest edge <= 3840, ratio <= 3:1;
a size off the grid is rounded to the nearest multiple of 16 and the size sent is recorded), quality
(per model, default medium), moderation=auto|low (default auto), plus the shared remote options.
Images are asked for as PNG (output_format=png). No seed exists in this API: the seed is stored as not
applicable and repeated calls are samples.
The client's own retries are off (max_retries=0) and it runs with timeout=: evalsuite's bounded retry
decides. Final at once: insufficient_quota (a 429), invalid key, invalid request, a shut-down model (404).
"""

from __future__ import annotations

from typing import Any

from ..errors import EvalsuiteError
from . import BackendSpec, GenRequest, GenResult, take_options
from . import remote
from .base import RemoteService
from .services import model_info, refuse_shut_down

SCHEMA: dict[str, Any] = {**remote.COMMON_SCHEMA, "size": "size", "quality": str, "moderation": ("auto", "low"),
                          "base_url": str}
BLOCK_CODES = ("content_policy_violation", "moderation_blocked")
FINAL_CODES = ("insufficient_quota", "billing_hard_limit_reached", "invalid_api_key", "model_not_found",
               "invalid_request_error")
GPT_IMAGE_DEFAULT_SIZES = {"multiple_of": 16, "max_edge": 3840, "max_ratio": 3.0, "max_pixels": 8294400}


def request_size(rules: dict[str, Any], w: int, h: int) -> tuple[int, int]:
    """The size sent for a requested w x h under a model's size rules; RemoteFailure when none fits."""
    m = int(rules.get("multiple_of", 1))
    sw, sh = max(m, int(round(w / m)) * m), max(m, int(round(h / m)) * m)
    edge, ratio, pixels = rules.get("max_edge"), rules.get("max_ratio"), rules.get("max_pixels")
    if (edge and max(sw, sh) > edge) or (ratio and max(sw, sh) / min(sw, sh) > ratio) or \
            (pixels and sw * sh > pixels) or (rules.get("min_pixels") and sw * sh < rules["min_pixels"]):
        raise remote.RemoteFailure(
            f"openai: size {w}x{h} is outside the model's sizes (multiples of {m}, longest edge <= {edge}, "
            f"ratio <= {ratio}:1, at most {pixels} pixels)")
    return sw, sh


class OpenAIImagesBackend(RemoteService):
    service = "openai"
    key_env = ("OPENAI_API_KEY",)
    package = "openai"

    def __init__(self, spec: BackendSpec):
        self.take_spec(spec)
        model = (spec.ref or "").strip()
        if not model:
            raise EvalsuiteError(f"backend '{spec.raw}': expected openai:MODEL (e.g. gpt-image-2)")
        self.model = model
        self.info = model_info("openai", model)
        refuse_shut_down(self.info, spec.raw)
        rules = self.info.rules
        self.size_rules = rules.get("sizes") or (GPT_IMAGE_DEFAULT_SIZES if model.startswith("gpt-image") else {})
        self.qualities = tuple(rules.get("quality") or ())
        opts = take_options(spec, SCHEMA, {
            **remote.COMMON_DEFAULTS, "concurrency": 2, "size": (1024, 1024),
            "quality": rules.get("default_quality", "medium"), "moderation": "auto", "base_url": None,
        })
        remote.common_options(opts, spec.raw)
        if self.qualities and opts["quality"] not in self.qualities:
            raise EvalsuiteError(f"backend '{spec.raw}': option 'quality' must be one of {', '.join(self.qualities)} "
                                 f"for {model}, got '{opts['quality']}'")
        self.opts = opts
        self.default_size = tuple(opts["size"])
        self.concurrency = opts["concurrency"]
        self.price_key = f"openai:{model}"
        self.price_per_image = remote.price_per_image(self.price_key, opts["price"])
        self.client = None

    def _applied_params(self) -> dict[str, Any]:
        """The model parameters the service applies for this model (the table's `takes`), besides size."""
        p: dict[str, Any] = {}
        if self.info.applies("quality"):
            p["quality"] = self.opts["quality"]
        if self.info.applies("output_format", default=False):
            p["output_format"] = "png"
        if self.info.applies("moderation", default=False):
            p["moderation"] = self.opts["moderation"]
        return p

    def params(self, req: GenRequest) -> dict[str, Any]:
        w, h = request_size(self.size_rules, req.width, req.height) if self.size_rules else (req.width, req.height)
        return {"model": self.model, "prompt": req.prompt.prompt, "n": 1, "size": f"{w}x{h}", **self._applied_params()}

    def config(self) -> dict[str, Any]:
        return {"service": "openai", "model": self.model, **self._applied_params(), "base_url": self.opts["base_url"],
                "seed_supported": False, "size": list(self.default_size), "lifecycle": self.info.lifecycle(),
                "size_rules": self.size_rules or None, **remote.common_config(self.opts, self.price_per_image)}

    def key(self) -> dict[str, Any]:
        return {"service": "openai", "model": self.model, **self._applied_params()}

    def prepare(self) -> None:
        remote.require_env(self.key_env, self.label, "an OpenAI API key")
        from ..extras import require

        require("openai", f"{self.label}")

    def load(self) -> None:
        if self.client is None:
            self.client = make_client(self.opts["base_url"], self.opts["timeout"], self.label)
            self.http = remote.http_client(self.opts["timeout"])
            self.policy = remote.policy_from(self.opts)

    def close(self) -> None:
        if self.client is not None:
            self.http.close()
            self.client.close()

    def _one(self, req: GenRequest, stats: dict[str, Any]) -> GenResult:
        params = self.params(req)
        resp = remote.with_retry(lambda: self.client.images.generate(**params), self.policy, classify, "generate", stats)
        data = resp.data or []
        applied: dict[str, Any] = {"service": "openai", "model": self.model, "size": params["size"],
                                   **{k: params[k] for k in ("quality", "output_format", "moderation") if k in params},
                                   "seed_supported": False, "created": getattr(resp, "created", None)}
        if not data:
            raise remote.RemoteFailure("openai: the response holds no image")
        item = data[0]
        if getattr(item, "revised_prompt", None):
            applied["revised_prompt"] = item.revised_prompt
            applied["prompt_rewritten"] = item.revised_prompt != req.prompt.prompt
        if getattr(item, "b64_json", None):
            src = "data:image/png;base64," + item.b64_json
        elif getattr(item, "url", None):
            src = item.url
        else:
            raise remote.RemoteFailure("openai: the image holds neither b64_json nor url")
        img, facts = remote.fetch_image(src, self.http, max_bytes=int(self.opts["max_download_mb"] * 2**20),
                                        policy=self.policy, stats=stats)
        applied.update(facts)
        applied.update(width=img.width, height=img.height)
        return GenResult(image=img, applied=applied, seed=None)


def make_client(base_url: str | None, timeout: float, label: str):
    import openai

    key = remote.require_env(("OPENAI_API_KEY",), label, "an OpenAI API key")
    return openai.OpenAI(api_key=key, base_url=base_url, max_retries=0, timeout=timeout)


def live_models(base_url: str | None = None, timeout: float = 20.0) -> dict[str, str | None]:
    """GET /v1/models: {model id: shutdown_date or None} as the service lists them now (needs OPENAI_API_KEY)."""
    client = make_client(base_url, timeout, "openai")
    try:
        return {m.id: getattr(m, "shutdown_date", None) for m in client.models.list()}
    finally:
        client.close()


def classify(exc: BaseException) -> remote.RemoteFailure:
    import openai

    if isinstance(exc, openai.APIStatusError):
        code = exc.status_code
        body = exc.body if isinstance(exc.body, dict) else {}
        err = body.get("error", body) if isinstance(body, dict) else {}
        ecode = getattr(exc, "code", None) or (err.get("code") if isinstance(err, dict) else None)
        etype = err.get("type") if isinstance(err, dict) else None
        msg = (err.get("message") if isinstance(err, dict) else None) or exc.message
        if ecode in BLOCK_CODES:
            return remote.RemoteFailure(f"openai: {ecode}: {msg}", status="filtered")
        final = ecode in FINAL_CODES or etype in ("insufficient_quota",) or code in (400, 401, 403, 404, 422)
        if final:
            return remote.RemoteFailure(f"openai: HTTP {code} {ecode or etype or ''}: {msg}".replace("  ", " "))
        return remote.http_failure(code, f"openai: {msg}", exc.response.headers)
    if isinstance(exc, openai.APITimeoutError):
        return remote.RemoteFailure("openai: request timed out", transient=True)
    if isinstance(exc, openai.APIConnectionError):
        return remote.RemoteFailure(f"openai: connection error: {exc}", transient=True)
    return remote.classify_any(exc)


def openai_images(spec: BackendSpec) -> OpenAIImagesBackend:
    return OpenAIImagesBackend(spec)
