"""VQA judges for the `vqa` scorer (scoring/vqa.py): one file per kind, their packages imported lazily.

    --judge hf:MODEL_ID[,revision=R,path=DIR,dtype=auto|bf16|fp16|fp32,device=auto|cpu|cuda|cuda:N,
                offload=none|model|sequential,batch=N]
        a local vision-language model through transformers (AutoModelForImageTextToText, AutoProcessor and
        the model's chat template); default hf:Qwen/Qwen2.5-VL-7B-Instruct (judges/hf.py)
    --judge openai:BASE_URL[,model=NAME,key_env=VAR,concurrency=N,timeout=S,retries=N,revision=R]
        any OpenAI-compatible chat-completions endpoint (vllm serve, SGLang, Ollama, OpenAI, ...)
        (judges/openai_compat.py)

The grammar is the backends' (backends/__init__.py): KIND:REF,key=value,... with the reference first.
`parse_judge` validates a spec without importing torch, transformers or openai; `make_judge` builds the judge.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field

from .base import Answer, Judge, JudgeUnavailable, bad_spec  # noqa: F401  (the judges' shared names)

DEFAULT_JUDGE = "hf:Qwen/Qwen2.5-VL-7B-Instruct"
KINDS = {"hf": "evalsuite.judges.hf:HfJudge", "openai": "evalsuite.judges.openai_compat:OpenAIJudge"}


@dataclass(frozen=True)
class JudgeSpec:
    raw: str
    kind: str
    ref: str
    options: dict[str, str] = field(default_factory=dict)


def parse_judge(raw: str | None) -> JudgeSpec:
    """A --judge value split into kind, reference and options (one-line EvalsuiteError on bad input)."""
    raw = (raw or DEFAULT_JUDGE).strip()
    kind, sep, rest = raw.partition(":")
    if kind not in KINDS:
        close = difflib.get_close_matches(kind, list(KINDS), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise bad_spec(raw, f"unknown judge kind '{kind}'{hint} (expected hf:MODEL_ID or openai:BASE_URL)")
    parts = [p.strip() for p in rest.split(",")] if sep else []
    ref = parts.pop(0) if parts and "=" not in parts[0] else ""
    options: dict[str, str] = {}
    for part in parts:
        if not part:
            continue
        if "=" not in part:
            raise bad_spec(raw, f"option '{part}' is not key=value")
        k, v = (s.strip() for s in part.split("=", 1))
        if k in options:
            raise bad_spec(raw, f"option '{k}' given twice")
        options[k] = v
    spec = JudgeSpec(raw, kind, ref, options)
    judge_class(kind).check_spec(spec)
    return spec


def judge_class(kind: str):
    module, _, name = KINDS[kind].partition(":")
    return getattr(importlib.import_module(module), name)


def make_judge(raw: str | None) -> Judge:
    spec = parse_judge(raw)
    return judge_class(spec.kind)(spec)


def take_judge_options(spec: JudgeSpec, schema: dict, defaults: dict) -> dict:
    """spec.options checked against schema {key: type | tuple of choices}; unknown keys suggest the closest."""
    out = dict(defaults)
    for k, v in spec.options.items():
        if k not in schema:
            close = difflib.get_close_matches(k, list(schema), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise bad_spec(spec.raw, f"unknown option '{k}'{hint} (options: {', '.join(schema)})")
        kind = schema[k]
        if isinstance(kind, tuple):
            if v not in kind:
                raise bad_spec(spec.raw, f"option '{k}' must be one of {', '.join(kind)}, got '{v}'")
            out[k] = v
            continue
        try:
            out[k] = kind(v)
        except ValueError:
            raise bad_spec(spec.raw, f"option '{k}' must be {kind.__name__}, got '{v}'") from None
        if kind in (int, float) and out[k] <= 0:
            raise bad_spec(spec.raw, f"option '{k}' must be positive, got '{v}'")
    return out
