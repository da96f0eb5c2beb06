"""`evalsuite.run(...)`: generate every prompt x seed with each backend into one resumable run folder."""

from __future__ import annotations

import io
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from . import __version__
from .backends import REGISTRY, GenRequest, GenResult, make_backend, parse_size
from .envinfo import environment, peak_rss_gb
from .errors import EvalsuiteError
from .prompts import Prompt, PromptSet, load_prompt_set
from .runfolder import (BackendInfo, ItemRecord, PlanEntry, RunInfo, atomic_write_bytes, atomic_write_json,
                        item_key, item_paths, read_jsonl, remove_partial_files, write_jsonl)

DEFAULT_SEEDS = (0, 1)
RESULTS_ROOT = Path("results")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def split_backend_specs(values: str | Iterable[str]) -> list[str]:
    """'flux-dev:steps=20,guidance=3.5,flux-schnell' -> ['flux-dev:steps=20,guidance=3.5', 'flux-schnell'].

    A comma-separated piece of the form key=value whose key is not a backend name continues the
    previous spec's options.
    """
    if isinstance(values, str):
        values = [values]
    specs: list[str] = []
    for value in values:
        for piece in value.split(","):
            piece = piece.strip()
            if not piece:
                continue
            m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=", piece)
            if m and specs and m.group(1) not in REGISTRY:
                specs[-1] += "," + piece
            else:
                specs.append(piece)
    if not specs:
        raise EvalsuiteError("no backends given (e.g. --backends flux-tiny,reference)")
    if len(set(specs)) != len(specs):
        dup = next(s for s in specs if specs.count(s) > 1)
        raise EvalsuiteError(f"backend '{dup}' is given twice")
    return specs


def resolve_seeds(seeds: Iterable[int] | str | None, num_seeds: int | None) -> list[int]:
    if seeds is not None and num_seeds is not None:
        raise EvalsuiteError("give either --seeds or --num-seeds, not both")
    if isinstance(seeds, str):
        try:
            seeds = [int(s) for s in seeds.split(",") if s.strip()]
        except ValueError:
            raise EvalsuiteError(f"--seeds '{seeds}' is not a comma-separated list of integers") from None
    if seeds is not None:
        out = list(seeds)
    elif num_seeds is not None:
        if num_seeds < 1:
            raise EvalsuiteError(f"--num-seeds must be at least 1, got {num_seeds}")
        out = list(range(num_seeds))
    else:
        out = list(DEFAULT_SEEDS)
    if not out:
        raise EvalsuiteError("no seeds given")
    if any(s < 0 or s >= 2**63 for s in out):
        raise EvalsuiteError(f"seeds must be between 0 and 2**63-1, got {out}")
    if len(set(out)) != len(out):
        raise EvalsuiteError(f"seeds repeat: {out}")
    return out


@dataclass
class BackendCounts:
    planned: int = 0
    generated: int = 0
    reused: int = 0
    failed: int = 0
    filtered: int = 0
    skipped_prompts: int = 0


@dataclass
class RunResult:
    run_dir: Path
    backends: dict[str, BackendCounts] = field(default_factory=dict)
    unmatched_files: dict[str, list[str]] = field(default_factory=dict)
    scores: Any = None

    def total(self, what: str) -> int:
        return sum(getattr(c, what) for c in self.backends.values())

    def summary(self) -> str:
        g, r, f, x = (self.total(k) for k in ("generated", "reused", "failed", "filtered"))
        if g == 0 and f == 0 and x == 0:
            return f"nothing to generate: all {r} items already in {self.run_dir} (reused {r})"
        return f"generated {g}, reused {r}, failed {f}, filtered {x} -> {self.run_dir}"


def _png_bytes(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _reset_peak_vram(device: str | None) -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
    except ImportError:
        pass


def _peak_vram_gb() -> float | None:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.max_memory_allocated() / 1024**3
    except ImportError:
        pass
    return None


class _Plan:
    def __init__(self, run_dir: Path, backends: list[Any], prompt_set: PromptSet, seeds: list[int],
                 size: tuple[int, int] | None):
        self.entries: dict[str, list[tuple[PlanEntry, Prompt, int, int]]] = {}
        self.skipped: dict[str, int] = {}
        for b in backends:
            w, h = size or b.default_size
            bkey = b.key()
            rows = []
            skipped = 0
            for p in prompt_set.prompts:
                if not b.accepts(p):
                    skipped += 1
                    continue
                for s in seeds:
                    k = item_key(bkey, p, s, w, h, b.item_extra(p, s))
                    img, rec = item_paths(b.label, p.id, s, k)
                    rows.append((PlanEntry(backend=b.label, prompt_id=p.id, seed=s, key=k, image=img, record=rec),
                                 p, w, h))
            self.entries[b.label] = rows
            self.skipped[b.label] = skipped


def run(
    backends: str | Iterable[str],
    prompts: str = "smoke",
    *,
    seeds: Iterable[int] | str | None = None,
    num_seeds: int | None = None,
    categories: list[str] | None = None,
    limit: int | None = None,
    size: str | tuple[int, int] | None = None,
    run_dir: str | Path | None = None,
    retry_failed: bool = False,
    progress: bool = True,
    argv: list[str] | None = None,
    log=None,
) -> RunResult:
    """Generate every prompt x seed with each backend into `run_dir`; resume where a run stopped.

    Nothing is written before every input is validated. Returns a RunResult with per-backend counts.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    # 1. Validate everything before writing anything.
    specs = split_backend_specs(backends)
    seed_list = resolve_seeds(seeds, num_seeds)
    if isinstance(size, str):
        size = parse_size(size, "--size")
    prompt_set = load_prompt_set(prompts, categories=categories, limit=limit)
    objs = [make_backend(s) for s in specs]
    labels = [b.label for b in objs]
    if len(set(labels)) != len(labels):
        raise EvalsuiteError(f"two backends map to the same folder label: {labels}")
    for b in objs:
        b.prepare()
    run_dir = Path(run_dir) if run_dir else RESULTS_ROOT / prompt_set.name
    plan = _Plan(run_dir, objs, prompt_set, seed_list, size)

    # 2. Merge with what the folder already holds.
    old_info = None
    if (run_dir / "run.json").exists():
        try:
            old_info = RunInfo.model_validate_json((run_dir / "run.json").read_text(encoding="utf-8"))
        except Exception as e:
            raise EvalsuiteError(f"{run_dir / 'run.json'}: not a readable run.json ({e}); use another --run-dir") from None
    elif run_dir.exists() and any(run_dir.iterdir()):
        raise EvalsuiteError(f"{run_dir} exists and is not a run folder; use another --run-dir")
    old_plan = [PlanEntry.model_validate(d) for d in read_jsonl(run_dir / "plan.jsonl")]
    kept = [e for e in old_plan if e.backend not in plan.entries]
    old_prompts = {d["id"]: Prompt.model_validate(d) for d in read_jsonl(run_dir / "prompts.jsonl")}
    new_prompts = prompt_set.by_id()
    kept_ids = {e.prompt_id for e in kept}
    for pid in kept_ids & set(new_prompts):
        if old_prompts.get(pid) is not None and old_prompts[pid] != new_prompts[pid]:
            raise EvalsuiteError(
                f"prompt '{pid}' differs from the one already in {run_dir} for other backends; "
                "use another --run-dir for the changed prompt set"
            )
    merged_prompts = {pid: old_prompts[pid] for pid in kept_ids if pid in old_prompts}
    merged_prompts.update(new_prompts)
    new_entries = [row[0] for rows in plan.entries.values() for row in rows]

    env = environment()
    stamp = now()
    backend_infos = dict(old_info.backends) if old_info else {}
    for b in objs:
        backend_infos[b.label] = BackendInfo(spec=b.spec, name=b.name, config=b.config(), key=b.key(),
                                             labelled_noise=bool(getattr(b, "labelled_noise", False)))
    info = RunInfo(
        evalsuite_version=__version__, created=old_info.created if old_info else stamp, updated=stamp,
        prompt_set={"name": prompt_set.name, "source": prompt_set.source, "sha256": prompt_set.sha256,
                    "count": len(prompt_set.prompts), "categories": categories, "limit": limit},
        seeds=seed_list, size=list(size) if size else None, backends=backend_infos, environment=env,
        invocations=(old_info.invocations if old_info else []) + [
            {"time": stamp, "argv": argv, "backends": specs, "seeds": seed_list}],
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    removed = remove_partial_files(run_dir)
    if removed:
        log(f"removed {removed} partial file(s) left by an interrupted run")
    write_jsonl(run_dir / "prompts.jsonl", [merged_prompts[k] for k in sorted(merged_prompts)])
    write_jsonl(run_dir / "plan.jsonl", kept + new_entries)
    atomic_write_json(run_dir / "run.json", info.model_dump())

    result = RunResult(run_dir=run_dir)
    for b in objs:
        if hasattr(b, "unmatched"):
            planned = {(e.prompt_id, e.seed) for e, *_ in plan.entries[b.label]}
            extra = b.unmatched(planned)
            if extra:
                result.unmatched_files[b.label] = extra
                info.backends[b.label].notes.append(f"{len(extra)} file(s) matched no prompt/seed: {extra[:20]}")
                log(f"{b.label}: {len(extra)} file(s) in the folder match no prompt/seed of this run: "
                    f"{', '.join(extra[:5])}{' ...' if len(extra) > 5 else ''}")
        if getattr(b, "labelled_noise", False):
            log(f"{b.label}: random-weight miniature model: its images are noise, for smoke tests only")

    # 3. Generate what is missing, one backend at a time.
    for b in objs:
        counts = BackendCounts(planned=len(plan.entries[b.label]), skipped_prompts=plan.skipped[b.label])
        result.backends[b.label] = counts
        todo = []
        for entry, prompt, w, h in plan.entries[b.label]:
            rec_path = run_dir / entry.record
            if rec_path.is_file():
                rec = ItemRecord.model_validate_json(rec_path.read_text(encoding="utf-8"))
                if not (retry_failed and rec.status == "failed"):
                    counts.reused += rec.status == "ok"
                    counts.failed += rec.status == "failed"
                    counts.filtered += rec.status == "filtered"
                    continue
            todo.append((entry, prompt, w, h))
        if not todo:
            continue
        try:
            _generate_backend(b, todo, run_dir, info, counts, progress)
        finally:
            atomic_write_json(run_dir / "run.json", info.model_dump())
            if hasattr(b, "close"):
                b.close()
    return result


def _generate_backend(b, todo, run_dir: Path, info: RunInfo, counts: BackendCounts, progress: bool) -> None:
    from tqdm.auto import tqdm

    _reset_peak_vram(getattr(b, "device", None))
    t0 = time.perf_counter()
    b.load()
    load_s = time.perf_counter() - t0
    info.backends[b.label].load_s = round(load_s, 4)
    cfg = b.config()
    info.backends[b.label].config = cfg  # now with what load() measured (e.g. weight memory)
    # First call alone (the warm-up, excluded from medians), then batches of the backend's size.
    batches = [todo[:1]] + [todo[i:i + b.max_batch_size] for i in range(1, len(todo), b.max_batch_size)]
    bar = tqdm(total=len(todo), desc=b.label, unit="img", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    try:
        for bi, batch in enumerate(batches):
            if not batch:
                continue
            reqs = [GenRequest(prompt=p, seed=e.seed, width=w, height=h) for e, p, w, h in batch]
            t = time.perf_counter()
            try:
                results = b.generate(reqs)
            except EvalsuiteError:
                raise
            except Exception as e:  # this batch fails; the run goes on
                results = [GenResult(status="failed", error=f"{type(e).__name__}: {e}".splitlines()[0][:500])
                           for _ in reqs]
            per_item = (time.perf_counter() - t) / len(batch)
            vram = _peak_vram_gb()
            rss = peak_rss_gb()
            for (entry, prompt, w, h), res in zip(batch, results):
                rec = ItemRecord(
                    backend=b.label, spec=b.spec, prompt_id=prompt.id, prompt=prompt.prompt, category=prompt.category,
                    seed=entry.seed, key=entry.key,
                    status=res.status, error=res.error, steps=cfg.get("steps"), guidance=cfg.get("guidance"),
                    latency_s=round(per_item, 5), batch_size=len(batch), warmup=bi == 0, load_s=round(load_s, 4),
                    peak_vram_gb=round(vram, 4) if vram is not None else None, peak_rss_gb=round(rss, 4),
                    applied={**res.applied, "seed": res.seed}, created=now(),
                )
                if res.status == "ok" and res.image is not None:
                    data = _png_bytes(res.image)
                    atomic_write_bytes(run_dir / entry.image, data)
                    rec.image, rec.image_sha256 = entry.image, _sha256(data)
                    rec.width, rec.height = res.image.width, res.image.height
                    counts.generated += 1
                elif res.status == "filtered":
                    counts.filtered += 1
                else:
                    rec.status = "failed"
                    counts.failed += 1
                atomic_write_json(run_dir / entry.record, rec.model_dump())
                bar.update(1)
    finally:
        bar.close()
