"""`evalsuite regress`: the one command a CI job needs. Runs the baseline (reused when its run folder
already holds every item) and the candidate (BACKEND@QUANT or any --candidate spec) with identical
prompts, seeds, size and settings, scores both, then compares them (evalsuite.compare).

Run folders are deterministic, so a second call reuses the baseline and everything already done:
    RESULTS/regress/<backend label>--<prompt set>--s<seeds>[--<size>]-<hash8>/
the hash covering the spec, the prompt set's name and sha256, categories, limit, seeds and size.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Iterable

from .errors import EvalsuiteError
from .runfolder import stable_hash


def candidate_spec(backend: str, quant: str | None, candidate: str | None) -> str:
    """flux-dev + int8 -> flux-dev@int8; flux-dev:steps=20 + int8 -> flux-dev@int8:steps=20."""
    from .backends import parse_spec

    if bool(quant) == bool(candidate):
        raise EvalsuiteError("give exactly one of --quant QUANT or --candidate SPEC")
    base = parse_spec(backend)
    if candidate:
        parse_spec(candidate)
        if candidate.strip() == backend.strip():
            raise EvalsuiteError(f"--candidate '{candidate}' is the baseline itself")
        return candidate.strip()
    if base.quant:
        raise EvalsuiteError(f"--backend '{backend}' is already quantized (@{base.quant}); give the unquantized "
                             "baseline with --quant, or use --candidate SPEC")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", quant or ""):
        raise EvalsuiteError(f"--quant '{quant}': expected a scheme such as int8, int4, torchao-int8, fp8, nf4")
    raw = backend.strip()
    name = base.name
    rest = raw[len(name):]
    return f"{name}@{quant}{rest}"


def run_dir_for(results: Path, spec: str, prompt_set, seeds: list[int], size, categories, limit) -> Path:
    from .backends import label_for

    ident = {"spec": spec, "prompt_set": prompt_set.name, "sha256": prompt_set.sha256, "categories": categories,
             "limit": limit, "seeds": seeds, "size": list(size) if size else None}
    seed_part = "_".join(map(str, seeds)) if len(seeds) <= 6 else f"{len(seeds)}seeds"
    size_part = f"--{size[0]}x{size[1]}" if size else ""
    name = f"{label_for(spec)}--{label_for(prompt_set.name)}--s{seed_part}{size_part}-{stable_hash(ident)[:8]}"
    return results / "regress" / name


def regress(backend: str, *, quant: str | None = None, candidate: str | None = None, prompts: str = "core",
            seeds: Iterable[int] | str | None = None, num_seeds: int | None = None,
            categories: list[str] | None = None, limit: int | None = None, size: str | None = None,
            results: str | Path = "results", out_dir: str | Path | None = None,
            metrics=None, margins=None, ceiling_margin_db: float | None = None, min_psnr: float | None = None,
            min_ssim: float | None = None, allow_missing=None, scorers="clip,ocr", ocr=None, clip_model: str | None = None,
            judge: str | None = None, progress: bool = True, argv: list[str] | None = None, log=None) -> dict[str, Any]:
    """Generate + score the baseline and the candidate, compare, write the outputs; returns the result
    with result["runs"] = {"baseline": dir, "candidate": dir} and result["files"]."""
    from . import compare as cmp
    from .backends import make_backend, parse_size
    from .prompts import load_prompt_set
    from .runner import resolve_seeds, run
    from .scoring import validate_options

    log = log or (lambda m: print(m, file=sys.stderr))
    # validate everything first: nothing is generated for a bad flag
    cspec = candidate_spec(backend, quant, candidate)
    cmp.parse_metrics(metrics)
    cmp.parse_margins(margins)
    cmp.parse_allow_missing(allow_missing, cmp.parse_metrics(metrics))
    validate_options(scorers, ocr, clip_model, judge=judge)
    seed_list = resolve_seeds(seeds, num_seeds)
    if seed_list and len(seed_list) < 2:
        log("warning: one seed gives no seed ceiling for fidelity (psnr_over_ceiling is then not measured)")
    sz = parse_size(size, "--size") if isinstance(size, str) else size
    ps = load_prompt_set(prompts, categories=categories, limit=limit)
    b, c = make_backend(backend), make_backend(cspec)
    results = Path(results)
    bdir = run_dir_for(results, b.spec, ps, seed_list, sz, categories, limit)
    cdir = run_dir_for(results, c.spec, ps, seed_list, sz, categories, limit)
    common = dict(prompts=prompts, seeds=seed_list, categories=categories, limit=limit, size=sz,
                  progress=progress, argv=argv, log=log, score=True, scorers=scorers, ocr=ocr, clip_model=clip_model,
                  judge=judge)
    log(f"baseline {b.spec} -> {bdir}")
    rb = run(backend, run_dir=bdir, **common)
    log(rb.summary())
    log(f"candidate {cspec} -> {cdir}")
    rc = run(cspec, run_dir=cdir, **common)
    log(rc.summary())
    kw: dict[str, Any] = {}
    if ceiling_margin_db is not None:
        kw["ceiling_margin_db"] = ceiling_margin_db
    res = cmp.compare(bdir, cdir, metrics=metrics, margins=margins, min_psnr=min_psnr, min_ssim=min_ssim,
                      allow_missing=allow_missing,
                      clip_model=clip_model, fidelity_clip="clip" in str(scorers), progress=progress, **kw)
    res["runs"] = {"baseline": str(bdir), "candidate": str(cdir)}
    out = Path(out_dir) if out_dir else cmp.default_out_dir(bdir, cdir)
    res["files"] = {k: str(v) for k, v in cmp.write_outputs(res, out).items()}
    return res
