"""`hf:MODEL_ID`: a local vision-language judge through transformers.

Loaded with AutoProcessor / AutoModelForImageTextToText.from_pretrained (from the Hugging Face cache, the hub,
or `path=DIR`), questions formatted by the model's own chat template. P(yes) comes from the next-token scores
after the assistant turn starts: softmax over the vocabulary, the yes spellings' probabilities summed against
the no spellings' (judges/base.py). Batched: `batch` (image, question) pairs per forward pass, left-padded.

Default: Qwen/Qwen2.5-VL-7B-Instruct (Apache-2.0; natively supported by transformers, strong on the
question-answering and text-reading benchmarks VQA judges are chosen by; 7B fits one 24 GB GPU in bf16).
Weights that cannot be had make the vqa metrics missing with the reason (JudgeUnavailable), never random
weights. Identity (part of the cache key): model id (or `local:<hash>` of a folder's config and weight files),
revision, dtype, template version.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

from . import JudgeSpec, take_judge_options
from .base import NO_SPELLINGS, YES_SPELLINGS, TEMPLATE_VERSION, Answer, Judge, JudgeUnavailable, answer_from_p, \
    bad_spec, normalised

SCHEMA = {"revision": str, "path": str, "dtype": ("auto", "bf16", "fp16", "fp32"), "device": str,
          "offload": ("none", "model", "sequential"), "batch": int}
DEFAULTS = {"revision": None, "path": None, "dtype": "auto", "device": "auto", "offload": "none", "batch": 8}
DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def folder_hash(folder: Path) -> str:
    """A local model folder's identity: its config, processor files and every weight file's name, size and first
    MiB (fast on 16 GB of weights; another checkpoint changes it)."""
    h = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        if not f.is_file():
            continue
        h.update(f"{f.name}\0{f.stat().st_size}\0".encode())
        with open(f, "rb") as fh:
            h.update(fh.read(1 << 20) if f.suffix in (".safetensors", ".bin") else fh.read())
    return h.hexdigest()[:16]


class HfJudge(Judge):
    kind = "hf"

    def __init__(self, spec: JudgeSpec):
        self.spec = spec
        self.opts = take_judge_options(spec, SCHEMA, DEFAULTS)
        self.batch = self.opts["batch"]
        path = self.opts["path"] or (spec.ref if spec.ref and Path(spec.ref).expanduser().is_dir() else None)
        self.folder = Path(path).expanduser() if path else None
        self._model_id = f"local:{folder_hash(self.folder)}" if self.folder else spec.ref
        self.loaded: tuple[Any, Any] | None = None
        self.resolved: dict[str, Any] = {}

    @classmethod
    def check_spec(cls, spec: JudgeSpec) -> None:
        opts = take_judge_options(spec, SCHEMA, DEFAULTS)
        if not spec.ref and not opts["path"]:
            raise bad_spec(spec.raw, "give a model id (hf:ORG/NAME) or path=DIR")
        if opts["path"] and not (Path(opts["path"]).expanduser() / "config.json").is_file():
            raise bad_spec(spec.raw, f"path {opts['path']} holds no config.json (a transformers model folder)")
        dev = opts["device"]
        if dev not in ("auto", "cpu", "cuda") and not (dev.startswith("cuda:") and dev[5:].isdigit()):
            raise bad_spec(spec.raw, f"option 'device' must be auto, cpu, cuda or cuda:N, got '{dev}'")

    @property
    def model(self) -> str:
        return self._model_id

    def device(self) -> str:
        import torch

        dev = self.opts["device"]
        return ("cuda" if torch.cuda.is_available() else "cpu") if dev == "auto" else dev

    def dtype_name(self) -> str:
        d = self.opts["dtype"]
        if d == "auto":
            return "bf16" if self.device().startswith("cuda") else "fp32"
        return d

    def identity(self) -> dict[str, Any]:
        return {"kind": "hf", "model": self._model_id, "revision": self.opts["revision"],
                "template": TEMPLATE_VERSION, "dtype": self.dtype_name()}

    def facts(self) -> dict[str, Any]:
        return {"resolved_revision": self.resolved.get("resolved_revision"), "device": self.device(),
                "offload": self.opts["offload"], "batch": self.batch}

    def load(self) -> None:
        if self.loaded is None:
            self.loaded = load_model(self)

    def answer(self, images: Sequence[Any], questions: Sequence[str]) -> list[Answer]:
        self.load()
        out: list[Answer] = []
        for i in range(0, len(questions), self.batch):
            out += self._forward(images[i:i + self.batch], questions[i:i + self.batch])
        return out

    def _forward(self, images, questions) -> list[Answer]:
        import torch

        model, processor = self.loaded
        texts = [processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": q}]}],
            add_generation_prompt=True, tokenize=False) for q in questions]
        enc = processor(text=texts, images=[im.convert("RGB") for im in images], return_tensors="pt", padding=True)
        enc = enc.to(self.resolved.get("input_device", self.device()))
        with torch.no_grad():
            logits = model(**enc).logits[:, -1, :].float()
        probs = torch.softmax(logits, dim=-1)
        yes, no = self.resolved["yes_ids"], self.resolved["no_ids"]
        y = probs[:, yes].sum(dim=-1).tolist()
        n = probs[:, no].sum(dim=-1).tolist()
        return [answer_from_p(normalised(a, b), "scores") for a, b in zip(y, n)]


def single_token_ids(tokenizer, spellings: Sequence[str]) -> list[int]:
    """The ids of the spellings that are one token each (deduplicated)."""
    ids: list[int] = []
    for s in spellings:
        enc = tokenizer.encode(s, add_special_tokens=False)
        if len(enc) == 1 and enc[0] not in ids and enc[0] != tokenizer.unk_token_id:
            ids.append(enc[0])
    return ids


def load_model(judge: HfJudge):
    """(model, processor), ready on the judge's device; JudgeUnavailable with the reason when it cannot be."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    src = str(judge.folder) if judge.folder else judge.spec.ref
    rev = None if judge.folder else judge.opts["revision"]
    device, offload = judge.device(), judge.opts["offload"]
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise JudgeUnavailable(f"judge {judge.model}: device {device} asked but CUDA is not available here")
    if offload != "none" and not device.startswith("cuda"):
        raise JudgeUnavailable(f"judge {judge.model}: offload={offload} needs a CUDA device")
    dtype = getattr(torch, DTYPES[judge.dtype_name()])
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()        # its per-shard "Loading weights" bar; the scorer reports progress
    try:
        processor = AutoProcessor.from_pretrained(src, revision=rev)
        kw: dict[str, Any] = {"dtype": dtype, "revision": rev}
        if offload == "model":
            kw["device_map"] = "auto"        # layers that do not fit the GPU wait on the CPU (accelerate)
        model = AutoModelForImageTextToText.from_pretrained(src, **kw).eval()
    except Exception as e:  # noqa: BLE001 - any loading failure is the stored missing reason
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise JudgeUnavailable(f"judge weights {judge.model} unavailable: {first}") from None
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    _place(model, device, offload)
    processor.tokenizer.padding_side = "left"
    yes, no = single_token_ids(processor.tokenizer, YES_SPELLINGS), single_token_ids(processor.tokenizer, NO_SPELLINGS)
    if not yes or not no:
        raise JudgeUnavailable(f"judge {judge.model}: its tokenizer has no single token for yes or for no")
    commit = getattr(model.config, "_commit_hash", None)
    judge.resolved = {"yes_ids": yes, "no_ids": no, "resolved_revision": commit,
                      "input_device": "cuda" if offload != "none" else device}
    return model, processor


def _place(model, device: str, offload: str) -> None:
    if offload == "sequential":
        from accelerate import cpu_offload

        cpu_offload(model, execution_device=device)
    elif offload == "none":
        model.to(device)
