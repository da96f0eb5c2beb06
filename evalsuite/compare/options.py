"""Parsing compare's options: one-line errors naming the flag and the value."""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

from ..errors import EvalsuiteError
from .facts import METRICS


def _split(values: str | Iterable[str] | None) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [p.strip() for v in values for p in str(v).split(",") if p.strip()]


def parse_metrics(values: str | Iterable[str] | None) -> list[str]:
    """--metrics clip_score,text_exact -> the metrics to compare (default: all known)."""
    out = []
    for m in _split(values):
        if m not in METRICS:
            raise EvalsuiteError(f"--metrics: unknown metric '{m}'; choose from {', '.join(METRICS)}")
        if m not in out:
            out.append(m)
    return out or list(METRICS)


def parse_margins(values: str | Iterable[str] | Mapping[str, float] | None) -> dict[str, float]:
    """--margin text_exact=5 --margin clip_score=1,prompt_following=2 -> {metric: margin}; margins are
    in the metric's reported unit (percentage points for rates, points for clip_score) and > 0."""
    if isinstance(values, Mapping):
        values = [f"{k}={v}" for k, v in values.items()]
    out: dict[str, float] = {}
    for part in _split(values):
        if "=" not in part:
            raise EvalsuiteError(f"--margin '{part}': expected metric=value, e.g. text_exact=3")
        k, v = (s.strip() for s in part.split("=", 1))
        if k not in METRICS:
            raise EvalsuiteError(f"--margin '{part}': unknown metric '{k}'; choose from {', '.join(METRICS)}")
        try:
            x = float(v)
        except ValueError:
            raise EvalsuiteError(f"--margin '{part}': '{v}' is not a number") from None
        if not math.isfinite(x) or x <= 0:
            raise EvalsuiteError(f"--margin '{part}': the margin must be a number > 0")
        if k in out and out[k] != x:
            raise EvalsuiteError(f"--margin: '{k}' given twice ({out[k]:g} and {x:g})")
        out[k] = x
    return out


def parse_allow_missing(values: str | Iterable[str] | None, metric_list: Sequence[str] | None = None) -> list[str]:
    """--allow-missing clip_score,prompt_following -> metrics whose absence does not make the verdict
    inconclusive (the verdict names them)."""
    out = []
    for m in _split(values):
        if m not in METRICS:
            raise EvalsuiteError(f"--allow-missing: unknown metric '{m}'; choose from {', '.join(METRICS)}")
        if metric_list is not None and m not in metric_list:
            raise EvalsuiteError(f"--allow-missing {m}: '{m}' is not among --metrics ({', '.join(metric_list)})")
        if m not in out:
            out.append(m)
    return out


def parse_pairs(values: str | Iterable[str] | Mapping[str, str] | None) -> dict[str, str]:
    """--pair BASE_LABEL=CAND_LABEL (repeatable) -> {baseline label: candidate label}."""
    if isinstance(values, Mapping):
        return dict(values)
    out: dict[str, str] = {}
    for v in ([values] if isinstance(values, str) else list(values or [])):
        if "=" not in v:
            raise EvalsuiteError(f"--pair '{v}': expected BASELINE_LABEL=CANDIDATE_LABEL")
        b, c = (s.strip() for s in v.split("=", 1))
        if not b or not c:
            raise EvalsuiteError(f"--pair '{v}': expected BASELINE_LABEL=CANDIDATE_LABEL")
        if b in out:
            raise EvalsuiteError(f"--pair: baseline backend '{b}' is paired twice")
        out[b] = c
    return out


def check_threshold(name: str, value: float | None, lo: float, hi: float | None = None) -> float | None:
    if value is None:
        return None
    x = float(value)
    if not math.isfinite(x) or x < lo or (hi is not None and x > hi):
        rng = f">= {lo:g}" if hi is None else f"between {lo:g} and {hi:g}"
        raise EvalsuiteError(f"--{name}: {value} must be a number {rng}")
    return x
