"""`openai:MODEL` (dall-e-3, gpt-image-1) through the `openai` client's Images API (imported when used).

Key: OPENAI_API_KEY. Base URL: option base_url=, else OPENAI_BASE_URL, else the client's default.
Options: size=WxH (mapped to the nearest size the model offers), quality, style=vivid|natural (dall-e-3),
response_format=b64_json|url (dall-e-3; gpt-image-1 always returns b64_json), plus the shared remote options.
No seed exists in this API: the seed is stored as not applicable and repeated calls are samples.
DALL-E 3 rewrites every prompt: the revised prompt is stored per item (applied.revised_prompt).
The client's own retries are turned off (max_retries=0): evalsuite's bounded retry decides.
"""

from __future__ import annotations

from typing import Any

from ..errors import EvalsuiteError
from . import BackendSpec, GenRequest, GenResult, label_for, take_options
from . import remote

SIZES = {
    "dall-e-3": ((1024, 1024), (1792, 1024), (1024, 1792)),
    "dall-e-2": ((256, 256), (512, 512), (1024, 1024)),
    "gpt-image-1": ((1024, 1024), (1536, 1024), (1024, 1536)),
}
QUALITY = {"dall-e-3": ("standard", "hd"), "gpt-image-1": ("low", "medium", "high", "auto"), "dall-e-2": ("standard",)}
SCHEMA: dict[str, Any] = {**remote.COMMON_SCHEMA, "size": "size", "quality": str, "style": ("vivid", "natural"),
                          "response_format": ("b64_json", "url"), "base_url": str}
BLOCK_CODES = ("content_policy_violation", "moderation_blocked")


def nearest_size(model: str, w: int, h: int) -> tuple[int, int]:
    sizes = SIZES.get(model, SIZES["gpt-image-1"])
    return min(sizes, key=lambda s: (abs(s[0] / s[1] - w / h), abs(s[0] * s[1] - w * h)))


class OpenAIImagesBackend:
    remote = True
    max_batch_size = 1
    labelled_noise = False

    def __init__(self, spec: BackendSpec):
        self.spec = spec.raw
        self.name = spec.name
        self.label = label_for(spec.raw)
        if spec.quant:
            raise EvalsuiteError(f"backend '{spec.raw}': remote models take no quantization")
        model = (spec.ref or "").strip()
        if not model:
            raise EvalsuiteError(f"backend '{spec.raw}': expected openai:MODEL (dall-e-3, gpt-image-1)")
        self.model = model
        self.gpt_image = model.startswith("gpt-image")
        opts = take_options(spec, SCHEMA, {
            **remote.COMMON_DEFAULTS, "concurrency": 2, "size": (1024, 1024),
            "quality": "medium" if self.gpt_image else "standard", "style": "vivid" if model == "dall-e-3" else None,
            "response_format": "b64_json", "base_url": None,
        })
        remote.common_options(opts, spec.raw)
        allowed = QUALITY.get(model)
        if allowed and opts["quality"] not in allowed:
            raise EvalsuiteError(f"backend '{spec.raw}': option 'quality' must be one of {', '.join(allowed)} "
                                 f"for {model}, got '{opts['quality']}'")
        self.opts = opts
        self.default_size = tuple(opts["size"])
        self.concurrency = opts["concurrency"]
        self.price_key = f"openai:{model}"
        self.price_per_image = remote.price_per_image(self.price_key, opts["price"])
        self.client = None

    def params(self, req: GenRequest) -> dict[str, Any]:
        w, h = nearest_size(self.model, req.width, req.height)
        p: dict[str, Any] = {"model": self.model, "prompt": req.prompt.prompt, "n": 1, "size": f"{w}x{h}",
                             "quality": self.opts["quality"]}
        if not self.gpt_image:
            p["response_format"] = self.opts["response_format"]
            if self.opts["style"]:
                p["style"] = self.opts["style"]
        return p

    def config(self) -> dict[str, Any]:
        return {"service": "openai", "model": self.model, "quality": self.opts["quality"], "style": self.opts["style"],
                "response_format": "b64_json" if self.gpt_image else self.opts["response_format"],
                "base_url": self.opts["base_url"], "seed_supported": False,
                "prompt_rewriting": self.model == "dall-e-3", "size": list(self.default_size),
                **remote.common_config(self.opts, self.price_per_image)}

    def key(self) -> dict[str, Any]:
        return {"service": "openai", "model": self.model, "quality": self.opts["quality"], "style": self.opts["style"]}

    def accepts(self, prompt) -> bool:
        return True

    def item_extra(self, prompt, seed):
        return None

    def estimate_cost(self, n: int, size: tuple[int, int]) -> float | None:
        return remote.estimate_cost(self.price_per_image, self.price_key, n, size)

    def prepare(self) -> None:
        remote.require_env(("OPENAI_API_KEY",), self.label, "an OpenAI API key")
        from ..extras import require

        require("openai", f"{self.label}")

    def load(self) -> None:
        import openai

        if self.client is None:
            key = remote.require_env(("OPENAI_API_KEY",), self.label, "an OpenAI API key")
            self.client = openai.OpenAI(api_key=key, base_url=self.opts["base_url"], max_retries=0,
                                        timeout=self.opts["timeout"])
            self.http = remote.http_client(self.opts["timeout"])
            self.policy = remote.policy_from(self.opts)

    def close(self) -> None:
        if self.client is not None:
            self.http.close()
            self.client.close()

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        return [self.generate_one(r) for r in requests]

    def generate_one(self, req: GenRequest) -> GenResult:
        self.load()
        return remote.run_item(self.label, lambda stats: self._one(req, stats))

    def _one(self, req: GenRequest, stats: dict[str, Any]) -> GenResult:
        params = self.params(req)
        resp = remote.with_retry(lambda: self.client.images.generate(**params), self.policy, classify, "generate", stats)
        data = resp.data or []
        applied: dict[str, Any] = {"service": "openai", "model": self.model, "size": params["size"],
                                   "quality": params["quality"], "style": params.get("style"),
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


def classify(exc: BaseException) -> remote.RemoteFailure:
    import openai

    if isinstance(exc, openai.APIStatusError):
        code = exc.status_code
        body = exc.body if isinstance(exc.body, dict) else {}
        err = body.get("error", body) if isinstance(body, dict) else {}
        ecode = getattr(exc, "code", None) or (err.get("code") if isinstance(err, dict) else None)
        msg = (err.get("message") if isinstance(err, dict) else None) or exc.message
        if ecode in BLOCK_CODES:
            return remote.RemoteFailure(f"openai: {ecode}: {msg}", status="filtered")
        return remote.http_failure(code, f"openai: {msg}", exc.response.headers)
    if isinstance(exc, openai.APITimeoutError):
        return remote.RemoteFailure("openai: request timed out", transient=True)
    if isinstance(exc, openai.APIConnectionError):
        return remote.RemoteFailure(f"openai: connection error: {exc}", transient=True)
    return remote.classify_any(exc)


def openai_images(spec: BackendSpec) -> OpenAIImagesBackend:
    return OpenAIImagesBackend(spec)
