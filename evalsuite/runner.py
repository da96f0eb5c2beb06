"""`evalsuite.run(...)`: generate every prompt x seed with each backend into one resumable run folder."""

from __future__ import annotations

import contextlib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from . import __version__
from .backends import REGISTRY, make_backend, parse_size, planning
from .backends.remote import Budget, redact, redact_obj
from .envinfo import environment
from .plan import Plan, PlannedItem  # noqa: F401  (re-exported: the rows of Plan.entries)
from .errors import BackendError, EvalsuiteError
from .prompts import Prompt, load_prompt_set
from .runopts import RunOptions
from .generate import BackendCounts, generate_all, now  # noqa: F401  (BackendCounts: re-exported)
from .spending import check_spending, cost_guard
from .resume import FolderState, merge_folder, still_to_make
from .store.files import atomic_write_json, remove_partial_files
from .store.folder import load_json_model, quarantine, write_jsonl
from .store.records import BackendInfo, ItemRecord, PlanEntry, RunInfo

DEFAULT_SEEDS = (0, 1)
RESULTS_ROOT = Path("results")


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
class RunResult:
    run_dir: Path
    backends: dict[str, BackendCounts] = field(default_factory=dict)
    unmatched_files: dict[str, list[str]] = field(default_factory=dict)
    scores: Any = None
    dry_run: bool = False
    todo: dict[str, int] = field(default_factory=dict)           # items to generate per backend label
    failures: dict[str, list[str]] = field(default_factory=dict)  # per backend: failed/filtered summary lines
    report: Any = None                                            # evalsuite.report.Report when one was written
    scored_while_generating: int = 0  # scorer x item pairs the overlapped worker scored during generation
    rank: int | None = None          # under torchrun: this process's rank (counts of rank > 0: its share only)
    missing: list[str] = field(default_factory=list)  # dry run: what is missing here to run for real

    def total(self, what: str) -> int:
        return sum(getattr(c, what) for c in self.backends.values())

    def summary(self) -> str:
        if self.rank:
            return f"rank {self.rank}: " + self._summary() + " (this rank's share; rank 0 prints the totals)"
        return self._summary()

    def _summary(self) -> str:
        g, r, f, x = (self.total(k) for k in ("generated", "reused", "failed", "filtered"))
        if self.dry_run:
            return (f"dry run: {sum(self.todo.values())} item(s) to generate, {r} already done; nothing written"
                    + (f"; {len(self.missing)} thing(s) missing to run for real (listed above)" if self.missing else ""))
        n = self.total("not_attempted")
        if n:
            return (f"generated {g}, reused {r}, failed {f}, filtered {x}, not attempted {n} "
                    f"(rerun to continue) -> {self.run_dir}")
        if g == 0 and f == 0 and x == 0:
            return f"nothing to generate: all {r} items already in {self.run_dir} (reused {r})"
        return f"generated {g}, reused {r}, failed {f}, filtered {x} -> {self.run_dir}"


def run(
    backends: str | Iterable[str],
    prompts: str = "core",
    *,
    seeds: Iterable[int] | str | None = None,
    num_seeds: int | None = None,
    categories: list[str] | None = None, limit: int | None = None,
    size: str | tuple[int, int] | None = None,
    run_dir: str | Path | None = None,
    retry_failed: bool = False, retry_filtered: bool = False,
    concurrency: int | None = None, yes: bool = False, dry_run: bool = False,
    max_cost: float | None = None, rate_limit: float | None = None,
    max_calls_without_confirm: int = 50,
    progress: bool = True,
    argv: list[str] | None = None,
    log=None,
    score: bool = True,
    scorers: str | Iterable[str] | None = ("clip", "ocr"),
    ocr: str | Iterable[str] | None = None,
    clip_model: str | None = None,
    judge: str | None = None,
    report: bool = True,
    overlap: bool | None = None,
    config: dict[str, Any] | None = None,
    options: RunOptions | None = None,
) -> RunResult:
    """Generate every prompt x seed with each backend into `run_dir`; resume where a run stopped.

    Nothing is written before every input is validated. Returns a RunResult with per-backend counts.
    Remote backends (b.remote) run in background threads, `concurrency` requests in flight each, local ones
    in this thread; before the first paid call the calls and an estimated cost are printed, and above
    `max_calls_without_confirm` paid calls `yes=True` is required. `dry_run` prints the plan and writes
    nothing; `max_cost` (USD) stops submitting remote calls; `rate_limit` caps remote submissions per second.
    score=True (default) scores the run (evalsuite.scoring.score_run) into result.scores; with overlap a
    worker thread scores finished images during generation (docs/scale.md); overlap=None (default) turns it
    on when generation does not compete with scoring for the CPU (a local backend on CUDA or a remote one).
    Under torchrun / accelerate launch (WORLD_SIZE > 1) the items are sharded over the processes and rank 0
    writes the run files and scores once (evalsuite.distributed). report=True (default) writes the report
    (RUN_DIR/report) into result.report. `config` ({path, options} of `run --config FILE`) is recorded in
    run.json. `options` (evalsuite.runopts.RunOptions, what the CLI builds) replaces all the keyword
    arguments above but `log`; the keyword arguments are the same options, flat.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    from . import distributed

    dist = distributed.init()
    if options is None:
        options = RunOptions.from_kwargs(
            prompts=prompts, seeds=seeds, num_seeds=num_seeds, categories=categories, limit=limit, size=size,
            run_dir=run_dir, retry_failed=retry_failed, retry_filtered=retry_filtered, concurrency=concurrency,
            yes=yes, dry_run=dry_run, max_cost=max_cost, rate_limit=rate_limit,
            max_calls_without_confirm=max_calls_without_confirm, progress=progress, argv=argv, score=score,
            scorers=scorers, ocr=ocr, clip_model=clip_model, judge=judge, report=report, overlap=overlap,
            config=config)
    try:
        return _run(backends, options, log, dist)
    finally:
        dist.close()


def _prepare_backends(objs, concurrency: int | None, dry_run: bool, missing: list[str]) -> None:
    """Cheap checks of every backend; a dry run plans and prices anyway and notes what is missing."""
    for b in objs:
        if concurrency is not None and b.remote:
            b.concurrency = concurrency
        try:
            b.prepare()
        except BackendError as e:
            if not dry_run:
                raise
            missing.append(str(e))


def _backend_infos(objs, old_info: RunInfo | None) -> dict[str, BackendInfo]:
    """run.json's backends: the old ones kept, these ones (re)described (secrets redacted)."""
    backend_infos = dict(old_info.backends) if old_info else {}
    for b in objs:
        prev = backend_infos.get(b.label)
        backend_infos[b.label] = BackendInfo(
            spec=redact(b.spec), name=b.name, config=redact_obj(b.config()), key=b.key(),
            labelled_noise=bool(b.labelled_noise),
            # a rerun that generates nothing keeps the load time measured when the model was loaded
            load_s=prev.load_s if prev is not None and prev.key == b.key() else None,
        )
        # ... and the weight memory measured at that load (compare's memory table reads it)
        if prev is not None and prev.key == b.key() and backend_infos[b.label].config.get("weight_memory") is None \
                and prev.config.get("weight_memory") is not None:
            backend_infos[b.label].config["weight_memory"] = prev.config["weight_memory"]
    return backend_infos


def _write_run_files(run_dir: Path, heal, merged_prompts: dict[str, Prompt], entries: list[PlanEntry],
                     info: RunInfo, log) -> None:
    """Partial files removed, damaged ones quarantined, then prompts.jsonl, plan.jsonl and run.json (atomic)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    removed = remove_partial_files(run_dir)
    if removed:
        log(f"removed {removed} partial file(s) left by an interrupted run")
    for rel, why in heal:
        moved = quarantine(run_dir, rel, why)
        if moved is not None:
            log(f"moved {rel} to {moved.relative_to(run_dir)} ({why})")
    write_jsonl(run_dir / "prompts.jsonl", [merged_prompts[k] for k in sorted(merged_prompts)])
    write_jsonl(run_dir / "plan.jsonl", entries)
    atomic_write_json(run_dir / "run.json", info.model_dump())


def _note_backends(objs, plan: Plan, info: RunInfo, result: RunResult, log) -> None:
    """Folder files no planned item uses, and the noise label of random-weight miniature models."""
    for b in objs:
        extra = b.unmatched({(e.prompt_id, e.seed) for e, *_ in plan.entries[b.label]})
        if extra:
            result.unmatched_files[b.label] = extra
            info.backends[b.label].notes.append(f"{len(extra)} file(s) matched no prompt/seed: {extra[:20]}")
            log(f"{b.label}: {len(extra)} file(s) in the folder match no prompt/seed of this run: "
                f"{', '.join(extra[:5])}{' ...' if len(extra) > 5 else ''}")
        if b.labelled_noise:
            log(f"{b.label}: random-weight miniature model: its images are noise, for smoke tests only")


def _gather_ranks(dist, counts_by, before, info: RunInfo, run_dir: Path) -> bool:
    """Every rank's new counts and hardware to rank 0, which records them (and goes on to score: True)."""
    from . import distributed

    deltas = {k: tuple(a - b for a, b in zip((c.generated, c.failed, c.filtered, c.not_attempted), before[k]))
              for k, c in counts_by.items()}
    gathered = dist.gather((deltas, distributed.rank_info(dist)))
    dist.barrier()
    if not dist.is_main:
        return False
    for r, (d, _) in enumerate(gathered):
        if r == 0:
            continue
        for k, (g, f, x, n) in d.items():
            c = counts_by[k]
            c.generated, c.failed, c.filtered, c.not_attempted = (c.generated + g, c.failed + f,
                                                                  c.filtered + x, c.not_attempted + n)
    info.environment["distributed"]["ranks"] = [
        {**ri, "generated": {k: v[0] for k, v in d.items()}} for d, ri in gathered]
    atomic_write_json(run_dir / "run.json", info.model_dump())
    return True


@dataclass
class _Setup:
    """Step 1, validated before anything is written: the backends, seeds, size, prompts and the plan."""

    specs: list[str]
    seeds: list[int]
    size: tuple[int, int] | None
    prompt_set: Any
    objs: list[Any]
    missing: list[str]        # --dry-run: what this machine lacks to run for real (no GPU, keys, weights)
    run_dir: Path
    plan: Plan


def _setup(backends, options: RunOptions) -> _Setup:
    """Validate every input (scoring options, specs, seeds, size, prompts, backends, spending limits)."""
    sel, spend, sc = options.selection, options.spending, options.scoring
    if sc.score:
        from .scoring import validate_options

        validate_options(sc.scorers, sc.ocr, sc.clip_model, judge=sc.judge)
    specs = split_backend_specs(backends)
    seed_list = resolve_seeds(sel.seeds, sel.num_seeds)
    size = parse_size(sel.size, "--size") if isinstance(sel.size, str) else sel.size
    prompt_set = load_prompt_set(sel.prompts, categories=sel.categories, limit=sel.limit)
    missing: list[str] = []
    with planning() if spend.dry_run else contextlib.nullcontext(missing) as missing:
        objs = [make_backend(s) for s in specs]
    labels = [b.label for b in objs]
    if len(set(labels)) != len(labels):
        raise EvalsuiteError(f"two backends map to the same folder label: {labels}")
    check_spending(spend)
    _prepare_backends(objs, spend.concurrency, spend.dry_run, missing)
    run_dir = Path(options.output.run_dir) if options.output.run_dir else RESULTS_ROOT / prompt_set.name
    plan = Plan(run_dir, objs, prompt_set, seed_list, size)
    return _Setup(specs, seed_list, size, prompt_set, objs, missing, run_dir, plan)


def _dry_run_result(s: _Setup, counts_by, todos, log) -> RunResult:
    """--dry-run: the plan was printed and priced; say what is missing to run for real, write nothing."""
    if s.missing:
        log("missing to run for real:")
        for line in s.missing:
            log(f"  {line}")
    return RunResult(run_dir=s.run_dir, backends=counts_by, dry_run=True,
                     todo={k: len(v) for k, v in todos.items()}, missing=s.missing)


def _shard_todos(plan: Plan, todos, dist) -> None:
    """This rank's share: plan entry i of each backend goes to rank i % world_size."""
    from . import distributed

    for label, rows in plan.entries.items():
        mine = {e.record for e, *_ in distributed.shard(rows, dist.rank, dist.world_size)}
        todos[label] = [row for row in todos[label] if row[0].record in mine]


def _prompt_info(s: _Setup, f: FolderState, sel) -> dict[str, Any]:
    ps = s.prompt_set
    return {"name": ps.name, "source": ps.source, "sha256": ps.sha256, "count": len(ps.prompts),
            "categories": sel.categories, "limit": sel.limit, "planned_items": len(f.entries),
            "kept_from_earlier_invocations": f.widened}


def _unchanged(s: _Setup, f: FolderState, todos, prompt_info, backend_infos, dist) -> bool:
    """A rerun with nothing to do and nothing changed rewrites nothing (and measures no environment)."""
    old = f.old_info
    return (old is not None and not dist.active and not any(todos.values()) and not f.heal
            and old.evalsuite_version == __version__ and old.prompt_set == prompt_info
            and old.seeds == s.seeds and old.size == (list(s.size) if s.size else None)
            and all(k in old.backends and _same(old.backends[k], v) for k, v in backend_infos.items())
            and f.old_plan == f.entries and f.old_prompts == f.merged_prompts)


def _run_info(s: _Setup, f: FolderState, todos, out, sel, dist) -> tuple[RunInfo, bool]:
    """run.json of this invocation, and whether it is unchanged from the folder's (then it is the old one)."""
    from .timing import rss_method

    stamp, old = now(), f.old_info
    backend_infos = _backend_infos(s.objs, old)
    prompt_info = _prompt_info(s, f, sel)
    unchanged = _unchanged(s, f, todos, prompt_info, backend_infos, dist)
    if unchanged:
        return old, True
    env = environment()
    env["peak_rss_method"] = rss_method()
    if dist.active:
        env["distributed"] = {"world_size": dist.world_size, "backend": dist.backend,
                              "sharding": "plan entry i of each backend -> rank i % world_size"}
    invocation = {"time": stamp, "argv": redact_obj(list(out.argv)) if out.argv is not None else None,
                  "backends": redact_obj(s.specs), "seeds": s.seeds,
                  **({"config": redact_obj(out.config)} if out.config else {})}
    info = RunInfo(
        evalsuite_version=__version__, created=old.created if old else stamp, updated=stamp,
        prompt_set=prompt_info, seeds=s.seeds, size=list(s.size) if s.size else None, backends=backend_infos,
        environment=env, invocations=(old.invocations if old else []) + [invocation],
    )
    return info, False


def _start_worker(s: _Setup, todos, sc, dist, log):
    """The overlapped scoring worker (None when off): it scores each item as it lands, and the items made
    earlier but maybe not scored yet (this rank's share)."""
    from . import distributed

    overlap = sc.overlap
    if overlap is None:   # on a CPU-only machine generation and scoring fight over the same cores: score after
        overlap = any(b.remote or str(b.device or "").startswith("cuda") for b in s.objs if todos[b.label])
    if not (sc.score and overlap and any(todos.values())):
        return None
    from .scoring.overlap import ScoringWorker

    worker = ScoringWorker(s.run_dir, sc.scorers, ocr=sc.ocr, clip_model=sc.clip_model, log=log, judge=sc.judge)
    worker.start()
    for label, rows in s.plan.entries.items():
        for e, *_ in distributed.shard(rows, dist.rank, dist.world_size):
            worker.submit(e)
    return worker


def _log_outcome(result: RunResult, s: _Setup, counts_by, log) -> None:
    """Failed/filtered items of this plan and the items not attempted, per backend."""
    result.failures = _failure_summary(s.run_dir, s.plan)
    for label, lines in result.failures.items():
        for line in lines:
            log(f"{label}: {line}")
    for label, c in counts_by.items():
        if c.not_attempted:
            log(f"{label}: {c.not_attempted} item(s) not attempted (--max-cost reached or interrupted); "
                "rerun to continue")


def _score_and_report(result: RunResult, worker, sc, progress: bool, log) -> None:
    """The final scoring pass (evalsuite.scoring.score_run), then the report in RUN_DIR/report."""
    from .scoring import score_run

    result.scores = score_run(result.run_dir, sc.scorers, ocr=sc.ocr, clip_model=sc.clip_model, progress=progress,
                              log=log, judge=sc.judge)
    if worker is not None:   # what the worker scored during this run counts as scored, not as cached
        for slug, wc in worker.result.counts.items():
            c = result.scores.counts.get(slug)
            if c is not None and wc.scored:
                moved = min(wc.scored, c.cached)
                c.scored, c.cached = c.scored + moved, c.cached - moved
    if sc.report:  # tables, charts and report.html in RUN_DIR/report (evalsuite.report; only after scoring)
        from .report import write_report

        result.report = write_report([result.run_dir], progress=progress, log=log, reuse=True)


def _run(backends, options: RunOptions, log, dist) -> RunResult:
    """The stages of a run: validate, merge with the folder, guard the cost, record, generate, score."""
    spend, sc, out = options.spending, options.scoring, options.output
    s = _setup(backends, options)                       # 1. validate everything before writing anything
    f = merge_folder(s.run_dir, s.objs, s.plan, s.prompt_set, s.size, log)                           # 2. merge with what the folder already holds
    # What is still to make (read-only): the cost guard and --dry-run need it before anything is written.
    todos, counts_by = still_to_make(s.plan, s.run_dir, options.resume.retry_failed, options.resume.retry_filtered,
                             f.heal, log)
    cost_guard(s.objs, s.plan, todos, yes=spend.yes, dry_run=spend.dry_run, max_cost=spend.max_cost,
               max_calls_without_confirm=spend.max_calls_without_confirm, log=log)
    if spend.dry_run:
        return _dry_run_result(s, counts_by, todos, log)
    if dist.active:
        _shard_todos(s.plan, todos, dist)
    info, unchanged = _run_info(s, f, todos, out, options.selection, dist)
    dist.barrier()     # every rank has read the folder's old state before rank 0 changes it
    if dist.is_main and not unchanged:   # rank 0 writes the run files; the other ranks start once they exist
        _write_run_files(s.run_dir, f.heal, f.merged_prompts, f.entries, info, log)
    dist.barrier()

    result = RunResult(run_dir=s.run_dir, rank=dist.rank if dist.active else None)
    _note_backends(s.objs, s.plan, info, result, log)
    # 3. Generate what is missing: remote backends in background threads, local ones here, one at a time.
    result.backends = counts_by
    result.todo = {k: len(v) for k, v in todos.items()}
    budget = Budget(spend.max_cost / dist.world_size if spend.max_cost is not None else None,  # each rank its share
                    spend.rate_limit / dist.world_size if spend.rate_limit is not None else None)
    before = {k: (c.generated, c.failed, c.filtered, c.not_attempted) for k, c in counts_by.items()}
    worker = _start_worker(s, todos, sc, dist, log)
    generate_all(s.objs, todos, s.run_dir, info, counts_by, out.progress, budget, worker, dist)
    if dist.active and not _gather_ranks(dist, counts_by, before, info, s.run_dir):
        return RunResult(run_dir=s.run_dir, backends=counts_by, todo=result.todo, rank=dist.rank)
    _log_outcome(result, s, counts_by, log)
    if worker is not None:
        result.scored_while_generating = worker.scored
    if sc.score:
        _score_and_report(result, worker, sc, out.progress, log)
    return result


def _same(a, b) -> bool:
    """Two pydantic records equal as they would be stored (JSON: tuples and lists alike)."""
    import json

    return json.dumps(a.model_dump(mode="json"), sort_keys=True) == json.dumps(b.model_dump(mode="json"), sort_keys=True)


def _failure_summary(run_dir: Path, plan: Plan, per_backend: int = 3) -> dict[str, list[str]]:
    """Per backend: counts of failed/filtered items of this plan and the first few distinct messages."""
    out: dict[str, list[str]] = {}
    for label, rows in plan.entries.items():
        bad: dict[str, list[tuple[str, str]]] = {"failed": [], "filtered": []}
        for entry, *_ in rows:
            p = run_dir / entry.record
            if p.is_file():
                rec, _ = load_json_model(p, ItemRecord, entry.record)
                if rec is not None and rec.status in bad:
                    bad[rec.status].append((f"{rec.prompt_id} s{rec.seed}", rec.error or ""))
        lines = []
        for status, items in bad.items():
            if items:
                seen: list[str] = []
                for where, msg in items:
                    if msg not in seen:
                        seen.append(msg)
                examples = "; ".join(seen[:per_backend])
                lines.append(f"{len(items)} {status} ({examples})")
        if lines:
            out[label] = lines
    return out


