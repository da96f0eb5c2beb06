"""CLIP alignment and contrastive prompt following with open_clip (definitions: docs/scores.md).

Model selection (`--clip-model`, `clip_model=`), identity stored with every score:
    NAME:TAG              an open_clip pretrained tag, e.g. ViT-L-14:openai (default), ViT-B-32:laion2b_s34b_b79k
    NAME:/path/ckpt.pt    a local checkpoint for the open_clip architecture NAME (identity: NAME:local:<sha256[:16]>)
    CONFIG.json:/path/ckpt.pt
                          as above with an architecture config file (registered with open_clip.add_model_config;
                          the model name is the file's stem); used for the tiny test models
    hf-hub:ORG/REPO       an open_clip model on the Hugging Face hub

Weights are never replaced by random ones: when they cannot be had (offline, not cached) the scorer
raises ClipUnavailable with the reason and the CLIP metrics are stored as missing. The hub is never
waited on: with HF_HUB_OFFLINE=1, or when huggingface.co does not answer within 3 s, only the local
cache is looked at.

Scoring: image preprocessing is the model's own transform with resize-to-fit ("longest": the long
side is resized to the model's input size and the rest padded) so no edge of a non-square image is
cropped away; texts use the model's tokenizer (open_clip's bundled BPE for OpenAI-style models),
truncated to the context length (77) keeping the end token, flagged `prompt_truncated`.

    clip_score = 100 * max(cos(E_image, E_text), 0)   per item, L2-normalised embeddings
    clip_s     = 2.5 * max(cos, 0)                    Hessel et al. 2021 CLIP-S (a separate metric name)
    prompt_following = 1 when the prompt's cosine is strictly above every negative's, else 0
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..errors import EvalsuiteError
from .base import Scorer, ScoreOptions, ScorerUnavailable

DEFAULT_CLIP_MODEL = "ViT-L-14:openai"
CLIP_SCORER_VERSION = "clip/v1"
RESIZE_MODE = "longest"
DEFAULT_BATCH_SIZE = 16


class ClipUnavailable(Exception):
    """The CLIP weights cannot be had here; the message is the stored missing reason. hub_repo: the Hugging
    Face repository the weights would come from (None when not from the hub)."""

    def __init__(self, reason: str, hub_repo: str | None = None):
        super().__init__(reason)
        self.hub_repo = hub_repo


def still_unavailable(spec: "ClipModelSpec", entry: dict[str, Any]) -> str | None:
    """The stored reason when a rerun would fail the same way, checked without importing open_clip or torch:
    hub weights found missing before, the hub still offline (HF_HUB_OFFLINE) and nothing of that repository
    in the local cache since. None: try loading."""
    reason, repo = entry.get("unavailable"), entry.get("unavailable_hub_repo")
    if not reason or not repo or spec.checkpoint or not _env_offline():
        return None
    from huggingface_hub import constants

    folder = Path(constants.HF_HUB_CACHE) / ("models--" + repo.strip("/").replace("/", "--"))
    return None if folder.exists() else reason


@dataclass(frozen=True)
class ClipModelSpec:
    raw: str
    name: str                    # open_clip architecture name (or hf-hub:...)
    pretrained: str | None       # tag, or None for a local checkpoint / hf-hub model
    checkpoint: str | None       # local checkpoint path
    config: str | None           # architecture config file registered with open_clip
    identity: str                # stored with every score

    def describe(self) -> str:
        return self.raw


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@functools.lru_cache(maxsize=None)
def parse_clip_model(value: str | None) -> ClipModelSpec:
    """Validate a --clip-model value (one-line EvalsuiteError on bad input); loads no weights."""
    raw = (value or DEFAULT_CLIP_MODEL).strip()
    if raw == DEFAULT_CLIP_MODEL:   # known to open_clip (a test checks): no import of open_clip/torch for it
        name, tag = raw.split(":")
        return ClipModelSpec(raw, name, tag, None, None, raw)
    import open_clip

    if raw.startswith("hf-hub:"):
        return ClipModelSpec(raw, raw, None, None, None, raw)
    name, sep, rest = raw.partition(":")
    if not sep or not name or not rest:
        raise EvalsuiteError(f"--clip-model '{raw}': expected NAME:PRETRAINED (e.g. {DEFAULT_CLIP_MODEL}), "
                             "NAME:/path/checkpoint.pt or CONFIG.json:/path/checkpoint.pt")
    config = None
    config_hash = ""
    if name.endswith(".json"):
        cfg = Path(name)
        if not cfg.is_file():
            raise EvalsuiteError(f"--clip-model '{raw}': config file {cfg} does not exist")
        open_clip.add_model_config(cfg)
        config, name = str(cfg), cfg.stem
        config_hash = _sha256_file(cfg)[:16]
    if name not in open_clip.list_models():
        import difflib

        close = difflib.get_close_matches(name, open_clip.list_models(), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise EvalsuiteError(f"--clip-model '{raw}': unknown open_clip model '{name}'{hint}")
    looks_like_path = os.sep in rest or "/" in rest or rest.endswith((".pt", ".pth", ".bin", ".safetensors"))
    if looks_like_path or Path(rest).is_file():
        ckpt = Path(rest)
        if not ckpt.is_file():
            raise EvalsuiteError(f"--clip-model '{raw}': checkpoint {ckpt} does not exist")
        ident = f"{name}:local:{_sha256_file(ckpt)[:16]}" + (f":config:{config_hash}" if config else "")
        return ClipModelSpec(raw, name, None, str(ckpt), config, ident)
    tags = open_clip.list_pretrained_tags_by_model(name)
    if rest not in tags:
        raise EvalsuiteError(f"--clip-model '{raw}': open_clip has no pretrained tag '{rest}' for {name}"
                             f" (tags: {', '.join(tags) or 'none'}; or give a local checkpoint path)")
    return ClipModelSpec(raw, name, rest, None, config, f"{name}:{rest}")


def _hub_reachable(timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def _hub_offline(offline: bool):
    """Make huggingface_hub look only at its cache (it reads this flag at call time)."""
    if not offline:
        yield
        return
    from huggingface_hub import constants

    old = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = old


def _env_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def device_default() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class ClipModel:
    spec: ClipModelSpec
    model: Any
    preprocess: Any
    tokenizer: Any
    context_length: int
    device: str

    def truncated(self, text: str) -> bool:
        enc = getattr(self.tokenizer, "encode", None)
        if enc is None:
            return False
        try:
            return len(enc(text)) + 2 > self.context_length
        except Exception:
            return False

    def encode_images(self, images: Sequence[Any]):
        import torch

        x = torch.stack([self.preprocess(im.convert("RGB")) for im in images]).to(self.device)
        with torch.no_grad():
            e = self.model.encode_image(x).float()
        return e / e.norm(dim=-1, keepdim=True)

    def encode_texts(self, texts: Sequence[str]):
        import torch

        tok = self.tokenizer(list(texts)).to(self.device)
        with torch.no_grad():
            e = self.model.encode_text(tok).float()
        return e / e.norm(dim=-1, keepdim=True)


_LOADED: dict[tuple[str, str], ClipModel] = {}
_FAILED: dict[tuple[str, str], str] = {}


def load_clip(spec: ClipModelSpec, device: str | None = None) -> ClipModel:
    """Load (once per process) the model, its transform and tokenizer; raise ClipUnavailable with the
    reason when the weights cannot be had."""
    import open_clip

    device = device or device_default()
    k = (spec.identity, device)
    if k in _LOADED:
        return _LOADED[k]
    if k in _FAILED:
        raise ClipUnavailable(_FAILED[k])
    offline = False
    hub_repo = None
    try:
        if spec.checkpoint:
            pretrained = spec.checkpoint
        else:
            pretrained = spec.pretrained
            offline = _env_offline() or not _hub_reachable()
            if spec.pretrained:
                cfg = open_clip.get_pretrained_cfg(spec.name, spec.pretrained)
                hub_repo = os.path.split(cfg.get("hf_hub") or "")[0] or None   # open_clip: "ORG/REPO/[FILE]"
                with _hub_offline(offline):
                    open_clip.download_pretrained(cfg)
        with _hub_offline(offline):
            model, _, preprocess = open_clip.create_model_and_transforms(
                spec.name, pretrained=pretrained, device=device, image_resize_mode=RESIZE_MODE)
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        first = first.split(". ")[0].rstrip(".")[:200]
        where = "offline, not in the local cache" if offline else "could not be loaded"
        reason = f"CLIP weights {spec.identity} unavailable ({where}): {first}"
        _FAILED[k] = reason
        raise ClipUnavailable(reason, hub_repo if offline else None) from None
    model.eval()
    tokenizer = open_clip.get_tokenizer(spec.name)
    ctx = int(getattr(tokenizer, "context_length", None) or getattr(model, "context_length", 77) or 77)
    cm = ClipModel(spec, model, preprocess, tokenizer, ctx, device)
    _LOADED[k] = cm
    return cm


def clip_score_from_cosine(cos: float) -> float:
    """torchmetrics' per-sample CLIP score: 100 * max(cos, 0)."""
    return 100.0 * max(float(cos), 0.0)


def clip_s_from_cosine(cos: float) -> float:
    """Hessel et al. 2021 CLIP-S: 2.5 * max(cos, 0)."""
    return 2.5 * max(float(cos), 0.0)


def rank_against_negatives(own: float, negatives: Sequence[float]) -> tuple[int, bool]:
    """(rank of the own prompt among own + negatives, 1 = best; ties count against it), accurate."""
    rank = 1 + sum(1 for n in negatives if n >= own)
    return rank, rank == 1


def score_batch(cm: ClipModel, images: Sequence[Any], prompts: Sequence[str],
                negatives: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    """Score a batch of images against their prompts and negatives. Returns, per image:
    {"values": {(metric, variant): value}, "details": {...}}."""
    texts: list[str] = []
    index: dict[str, int] = {}
    for t in list(prompts) + [n for negs in negatives for n in negs]:
        if t not in index:
            index[t] = len(texts)
            texts.append(t)
    img = cm.encode_images(images)
    txt = cm.encode_texts(texts)
    sims = (img @ txt.T).cpu().double().numpy()
    out = []
    for i, (p, negs) in enumerate(zip(prompts, negatives)):
        cos = float(sims[i, index[p]])
        values = {("clip_score", ""): clip_score_from_cosine(cos), ("clip_s", ""): clip_s_from_cosine(cos)}
        det: dict[str, Any] = {"cosine": cos, "prompt_truncated": cm.truncated(p), "context_length": cm.context_length}
        if negs:
            ncos = [float(sims[i, index[n]]) for n in negs]
            rank, acc = rank_against_negatives(cos, ncos)
            values[("prompt_following", "")] = float(acc)
            det.update(rank=rank, accurate=acc,
                       negatives=[{"text": n, "cosine": c, "truncated": cm.truncated(n)} for n, c in zip(negs, ncos)])
        out.append({"values": values, "details": det})
    return out


class ClipScorer(Scorer):
    """CLIP alignment (clip_score, clip_s) and, for prompts with hard negatives, prompt_following."""

    kind = "clip"

    @classmethod
    def check_options(cls, opts: ScoreOptions) -> None:
        parse_clip_model(opts.clip_model)
        if opts.clip_batch_size is not None and opts.clip_batch_size < 1:
            raise EvalsuiteError(f"--clip-batch-size must be at least 1, got {opts.clip_batch_size}")

    @classmethod
    def from_options(cls, opts: ScoreOptions) -> list[Scorer]:
        cls.check_options(opts)
        spec = parse_clip_model(opts.clip_model)
        return [cls("clip", spec.identity, CLIP_SCORER_VERSION, {"scorer": "clip", "model": spec.identity,
                                                                 "version": CLIP_SCORER_VERSION,
                                                                 "resize": RESIZE_MODE}, options=opts)]

    @property
    def batch_size(self) -> int:   # type: ignore[override]
        return self.options.clip_batch_size or DEFAULT_BATCH_SIZE

    def inputs(self, prompt) -> dict[str, Any]:
        return {"prompt": prompt.prompt, "negatives": list(prompt.negatives)}

    def metrics_for(self, prompt) -> list[tuple[str, str]]:
        return [("clip_score", ""), ("clip_s", "")] + ([("prompt_following", "")] if prompt.negatives else [])

    def load(self, entry: dict[str, Any]) -> None:
        spec = parse_clip_model(self.options.clip_model)
        reason = still_unavailable(spec, entry)   # offline, weights still not cached: no load at all
        if reason is not None:
            raise ScorerUnavailable(reason, {k: v for k, v in entry.items() if k.startswith("unavailable_")})
        try:
            self._model = load_clip(spec, self.options.device)
        except ClipUnavailable as e:
            raise ScorerUnavailable(str(e), {"unavailable_hub_repo": e.hub_repo} if e.hub_repo else {}) from None

    def score_batch(self, jobs, images, store) -> list:
        outs = score_batch(self._model, images, [j.prompt.prompt for j in jobs], [j.prompt.negatives for j in jobs])
        return [(o["values"], o["details"]) for o in outs]
