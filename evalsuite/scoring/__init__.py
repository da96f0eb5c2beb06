"""Scoring a run folder: `score_run(run_dir, scorers=("clip", "ocr"), ...)`, `load_scores`, `aggregate`.

Scorers follow one contract (scoring/base.py: identity, inputs, metrics it produces, load, score a batch) and
are named in scoring/registry.py; `score_items` runs any set of them over any items, for the final pass
(`score_run`) and for the worker that scores while generation goes on (scoring/overlap.py) alike. The layout
below is owned by evalsuite.store.scores; aggregation lives in metrics/aggregate.py, the terminal table in
report/tables.py.

Storage (inside the run folder; every file written atomically, so a killed scoring run loses nothing
finished and the next one carries on):

    scores/scorers.json                       every scorer identity ever used on this run, by slug
    scores/details/<slug>/<kk>/<cache_key>.json
                                              one scored (scorer, image, inputs): metric values plus details
                                              (OCR boxes with text/confidence/polygon, reading-order text,
                                              per-target similarity/outcome/window; CLIP cosine, negatives'
                                              cosines, rank, prompt_truncated)
    scores/scores.parquet                     the table: one row per item x metric x scorer (rebuilt at
                                              the end of every scoring pass from the details)

cache_key = sha256(scorer identity, image sha256, inputs), inputs being the prompt text, its
negatives (CLIP) or its target texts (OCR). A rescore with the same scorer finds every detail file
and computes nothing; another CLIP model or OCR engine has another slug and adds rows beside the old.

Table schema (`load_scores(run_dir)` returns it as a pandas DataFrame):

    backend          backend label (folder name)          backend_name   registry name (flux-tiny, reference, ...)
    prompt_id, seed, key, category                        the item (key: its content address)
    image_sha256     the scored PNG's sha256 (None when the item has no image)
    metric           clip_score, clip_s, prompt_following, text_exact, text_similarity, word_recall,
                     text_duplicated, extra_text, text_garbled, ocr_chars
    variant          "lenient" / "strict" for text metrics, "" for CLIP metrics
    value            float; NaN when missing
    missing_reason   why the value is missing (weights unavailable, image failed, not scored yet), else None
    scorer           the scorer kind: "clip", "ocr" (the default pair), "blank"
    model            CLIP identity (ViT-L-14:openai, NAME:local:<sha16>) or OCR engine(s) (easyocr,
                     rapidocr, easyocr+rapidocr for the per-target best of several engines)
    scorer_version   e.g. clip/v1, rapidocr 1.4.4 / text/v2
    scorer_id        the slug (folder under scores/details/)
    cache_key        the detail file's key (None when missing)

Rates are stored as 0/1 or shares in [0, 1]; `aggregate` reports them in percent. Metrics that do
not apply produce no row: text metrics need target_text, prompt_following needs negatives.
"""

from __future__ import annotations

import io
import math
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import EvalsuiteError
from ..runfolder import RunFolder
from ..store import MetricValue, ScoreDetail, ScoreStore
from ..store.scores import SCORES_DIR, TABLE  # noqa: F401  (the layout's names, kept importable here)
from .base import Job, Scorer, ScoreOptions, ScorerUnavailable
from .registry import DEFAULT_SCORERS, SCORERS as _REGISTRY, scorer_class

SCORERS = tuple(_REGISTRY)
COLUMNS = ["backend", "backend_name", "prompt_id", "seed", "key", "category", "image_sha256", "metric", "variant",
           "value", "missing_reason", "scorer", "model", "scorer_version", "scorer_id", "cache_key"]
Unit = Scorer          # the name of a scorer identity before the scorer contract


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def parse_scorers(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return DEFAULT_SCORERS
    if isinstance(value, str):
        value = value.split(",")
    out = []
    for v in value:
        v = v.strip().lower()
        if not v:
            continue
        if v not in SCORERS:
            raise EvalsuiteError(f"--scorers: unknown scorer '{v}'; choose from {', '.join(SCORERS)}")
        if v not in out:
            out.append(v)
    if not out:
        raise EvalsuiteError(f"--scorers: no scorer given; choose from {', '.join(SCORERS)}")
    return tuple(out)


def validate_options(scorers, ocr, clip_model, clip_batch_size: int | None = None, judge: str | None = None) -> None:
    """Check --scorers and the chosen scorers' options before anything is generated (one-line errors)."""
    opts = ScoreOptions(ocr=ocr, clip_model=clip_model, clip_batch_size=clip_batch_size, judge=judge)
    for kind in parse_scorers(scorers):
        scorer_class(kind).check_options(opts)


def make_scorers(kinds: Sequence[str], opts: ScoreOptions) -> list[Scorer]:
    """The scorer identities of the chosen kinds, in registry order within each kind."""
    return [s for kind in kinds for s in scorer_class(kind).from_options(opts)]


def scorer_from_registry(entry: dict[str, Any]) -> Scorer:
    """The identity a scorers.json entry records (for cache keys and missing rows)."""
    return scorer_class(entry["scorer"]).from_registry(entry)


def load_detail(run_dir: str | Path, scorer_id: str, cache_key: str) -> dict[str, Any] | None:
    """The stored detail file of one scored (scorer identity, image, inputs); None when absent."""
    return ScoreStore(run_dir).read_detail(scorer_id, cache_key)


def _values_list(values: dict[tuple[str, str], float], reason: str | None = None) -> list[MetricValue]:
    """Stored values; a NaN (a metric that could not be computed) is stored as None with the reason."""
    return [MetricValue(metric=m, variant=v, value=float(x)) if not math.isnan(x) else
            MetricValue(metric=m, variant=v, value=None, missing_reason=reason or "could not be computed")
            for (m, v), x in values.items()]


@dataclass
class UnitCounts:
    scored: int = 0
    cached: int = 0
    missing: int = 0
    errors: int = 0
    unavailable: str | None = None


@dataclass
class ScoreResult:
    run_dir: Path
    units: list[Scorer]
    counts: dict[str, UnitCounts] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self, reasons: bool = True) -> str:
        """One line; reasons=False leaves the missing reasons to the table's footnote printed after it."""
        parts = []
        for u in self.units:
            c = self.counts[u.slug]
            s = f"{u.scorer} {u.model}: scored {c.scored}, cached {c.cached}"
            if c.errors:
                s += f", errors {c.errors}"
            if c.unavailable:
                s += f", missing {c.missing}" + (f" ({c.unavailable})" if reasons else "")
            parts.append(s)
        return "; ".join(parts)

    def frame(self):
        return load_scores(self.run_dir)

    def table(self, by: Sequence[str] = ("backend",)):
        return aggregate(self.run_dir, by=by)

    def text(self) -> str:
        """The per-backend table for the terminal (report/tables.py, score_summary); kept in scores/table.txt.json
        with a stamp of its inputs (the score table, the scorers, the code that formats it), so a rerun that
        changed nothing loads no pandas."""
        import hashlib

        from ..store import code_stamp

        store = ScoreStore(self.run_dir)
        h = hashlib.sha256(store.table_bytes())
        h.update(json_dumps([u.slug for u in self.units]).encode())
        h.update(code_stamp("scoring/__init__.py", "metrics/aggregate.py", "metrics/registry.py", "metrics/stats.py",
                            "metrics/text.py", "report/tables.py").encode())
        stamp = h.hexdigest()
        cached = store.read_text_cache()
        if cached and cached.get("stamp") == stamp and isinstance(cached.get("text"), str):
            return cached["text"]
        from ..report.tables import score_summary

        text = score_summary(aggregate(self.run_dir), scorer_ids=[u.slug for u in self.units])
        if store.has_table():
            store.write_text_cache(stamp, text)
        return text


def json_dumps(obj) -> str:
    import json

    return json.dumps(obj, sort_keys=True)


def code_stamp(*modules: str) -> str:
    """evalsuite.store.code_stamp (kept importable here)."""
    from ..store import code_stamp as _cs

    return _cs(*modules)


def score_run(run_dir: str | Path, scorers: str | Iterable[str] | None = ("clip", "ocr"), *,
              ocr: str | Sequence[str] | None = None, clip_model: str | None = None,
              clip_batch_size: int | None = None, device: str | None = None, progress: bool = True,
              log=None, judge: str | None = None) -> ScoreResult:
    """Score every finished item of a run folder with each scorer, doing only work not already done.

    A scorer that cannot be had here (CLIP weights offline) makes its metrics missing (with the reason);
    the others still run. `judge`: the vqa scorer's judge (judges/__init__.py grammar; default the local
    Qwen2.5-VL-7B-Instruct).
    """
    import time

    log = log or (lambda msg: print(msg, file=sys.stderr))
    t_start = time.perf_counter()
    rf = RunFolder(run_dir)
    rf.info                      # a damaged run.json stops here (one line), before anything is scored
    store = ScoreStore(rf.path)
    opts = ScoreOptions(ocr=ocr, clip_model=clip_model, clip_batch_size=clip_batch_size, device=device, judge=judge)
    kinds = parse_scorers(scorers)
    validate_options(kinds, ocr, clip_model, clip_batch_size, judge)
    units = make_scorers(kinds, opts)

    store.prepare()
    registry = store.read_registry()
    registered = _registry_state(registry)
    for u in units:
        registry.setdefault(u.slug, u.registry_entry())
    if _registry_state(registry) != registered:   # new scorers: registered before any of their details
        for u in units:
            registry[u.slug]["used"] = _now()
        store.write_registry(registry)

    result = ScoreResult(run_dir=rf.path, units=units, counts={u.slug: UnitCounts() for u in units})
    todo = pending_jobs(rf, store, units, rf.records(), result)
    errors: dict[tuple[str, str], str] = {}
    before_work = _registry_state(registry)
    score_items(store, units, todo, result, errors, registry, progress=progress)
    for prob in rf.problems:   # damaged files never stop scoring: said once, fixed by check --repair or run
        log(f"{rf.path / prob.where()}: {prob.what}; its items are not scored (`evalsuite check {rf.path} --repair`, "
            "then `evalsuite run` again, regenerates them)")

    # The table. Nothing scored, nothing newly missing, the same plan and records (new, failed, damaged or
    # healed items; details an overlapped worker wrote during `run`) and the table there: nothing is rewritten.
    worked = any(c.scored or c.errors for c in result.counts.values()) or errors
    inputs = _table_inputs(rf)
    if worked or _registry_state(registry) != before_work or _registry_state(registry) != registered \
            or not store.has_table() or store.read_table_inputs() != inputs:
        for u in units:
            registry[u.slug]["used"] = _now()
        store.write_registry(registry)
        write_table(rf.path, registry, errors)
        store.write_table_inputs(inputs)
    result.seconds = time.perf_counter() - t_start
    return result


def _table_inputs(rf) -> str:
    """A signature of what the score table's rows come from besides the details: every planned item and its
    record's status and image hash (a damaged record counts as none)."""
    import hashlib

    h = hashlib.sha256()
    for e, rec in rf.records():
        h.update(f"{e.record}\0{rec.status if rec else '-'}\0{(rec.image_sha256 or '') if rec else ''}\n".encode())
    return h.hexdigest()


def _registry_state(registry: dict[str, Any]) -> str:
    """The registry as it matters for the table (when each scorer was last used does not)."""
    return json_dumps({k: {f: v for f, v in e.items() if f != "used"} for k, e in registry.items()})


def pending_jobs(rf: RunFolder, store: ScoreStore, units: Sequence[Scorer], records, result: ScoreResult | None = None,
                 prompts: dict | None = None) -> dict[str, list[Job]]:
    """Per scorer identity, the finished items (from `records`: (entry, record) pairs) without a detail file
    yet; the others are counted as cached in `result`."""
    prompts = rf.prompts() if prompts is None else prompts
    todo: dict[str, list[Job]] = {u.slug: [] for u in units}
    for entry, rec in records:
        if rec is None or rec.status != "ok" or not rec.image_sha256:
            continue
        prompt = prompts.get(entry.prompt_id)
        if prompt is None:
            continue
        for u in units:
            k = u.cache_key(rec.image_sha256, prompt)
            if store.has_detail(u.slug, k):
                if result is not None:
                    result.counts[u.slug].cached += 1
            else:
                todo[u.slug].append(Job(entry, rec, prompt, k))
    return todo


def load_scorers(units: Sequence[Scorer], registry: dict[str, Any], result: ScoreResult,
                 pending: dict[str, int]) -> list[Scorer]:
    """Load every scorer with work to do; one that cannot be had has its `pending` items counted missing and the
    reason kept in its registry entry (the table stores its metrics as missing with it). Returns the loaded."""
    ready = []
    for u in units:
        if not pending.get(u.slug):
            continue
        entry = registry.setdefault(u.slug, u.registry_entry())
        try:
            u.load(entry)
        except ScorerUnavailable as e:
            counts = result.counts[u.slug]
            counts.unavailable, counts.missing = str(e), pending[u.slug]
            entry["unavailable"] = str(e)
            entry.update(e.notes)
            continue
        for k in [k for k in entry if k.startswith("unavailable")]:
            del entry[k]
        ready.append(u)
    return ready


def score_items(store: ScoreStore, units: Sequence[Scorer], todo: dict[str, list[Job]], result: ScoreResult,
                errors: dict[tuple[str, str], str], registry: dict[str, Any], *, progress: bool = False,
                loaded: bool = False) -> None:
    """Score the jobs of every scorer identity and write one detail file per job (atomic).

    Item-major in chunks of the largest batch size: each image is opened once per chunk for every scorer that
    needs it; scorers run in the given order, so one that reads another's details (the OCR combination) runs
    after it. A job that fails (image missing or unreadable, the engine raised) is recorded in `errors` with
    the reason and counted; the pass goes on. loaded=True: the scorers are already loaded (the worker)."""
    active = list(units) if loaded else load_scorers(units, registry, result, {s: len(j) for s, j in todo.items()})
    active = [u for u in active if todo.get(u.slug)]
    if not active:
        return
    from tqdm.auto import tqdm

    by_record: dict[str, dict[str, Job]] = {}
    for u in active:
        for job in todo[u.slug]:
            by_record.setdefault(job.entry.record, {})[u.slug] = job
    order = list(by_record)
    size = max(u.batch_size for u in active)
    bar = tqdm(total=len(order), desc="score " + ", ".join(u.label for u in active), unit="img",
               disable=not progress, file=sys.stderr, dynamic_ncols=True)
    try:
        for i in range(0, len(order), size):
            chunk = order[i:i + size]
            images: dict[str, Any] = {}
            for u in active:
                jobs = [by_record[r][u.slug] for r in chunk if u.slug in by_record[r]]
                if u.needs_image:
                    jobs, imgs = _with_images(store, u, jobs, images, result, errors)
                else:
                    imgs = [None] * len(jobs)
                if jobs:
                    _store_results(store, u, jobs, u.score_batch(jobs, imgs, store), result, errors)
            bar.update(len(chunk))
    finally:
        bar.close()


def _with_images(store, unit, jobs, images, result, errors):
    """The jobs whose image opens, with their images (opened once per chunk); the others are errors."""
    keep, imgs = [], []
    for job in jobs:
        rid = job.entry.record
        if rid not in images:
            images[rid] = _open_image(store.root, job.rec)
        image = images[rid]
        if isinstance(image, str):
            errors[(unit.slug, job.key)] = image
            result.counts[unit.slug].errors += 1
        else:
            keep.append(job)
            imgs.append(image)
    return keep, imgs


def _open_image(root: Path, rec):
    """The RGB image of an item, or the reason it cannot be had: then that item's metrics are missing with the
    reason (the pass goes on; `evalsuite run` generates the image again)."""
    from PIL import Image

    try:
        with Image.open(root / rec.image) as im:
            return im.convert("RGB")
    except FileNotFoundError:
        why = "image file missing"
    except Exception as e:  # noqa: BLE001 - PIL raises many kinds for broken files
        why = f"image file unreadable ({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})"
    return f"{why}: {rec.image}; rerun `evalsuite run` to generate it again"


def _store_results(store, unit, jobs, outs, result, errors) -> None:
    if len(outs) != len(jobs):
        raise EvalsuiteError(f"scorer {unit.label} returned {len(outs)} results for {len(jobs)} items")
    for job, out in zip(jobs, outs):
        if isinstance(out, str):
            errors[(unit.slug, job.key)] = out
            result.counts[unit.slug].errors += 1
            continue
        values, details = out
        rec = job.rec
        store.write_detail(ScoreDetail(
            cache_key=job.key, scorer_id=unit.slug, scorer=unit.scorer, model=unit.model, version=unit.version,
            image_sha256=rec.image_sha256, inputs=unit.inputs(job.prompt),
            first_item={"backend": rec.backend, "prompt_id": rec.prompt_id, "seed": rec.seed},
            values=_values_list(values, details.get("missing_reason")), details=details, scored_at=_now()))
        result.counts[unit.slug].scored += 1


def build_rows(root: Path, registry: dict[str, Any], errors: dict | None = None) -> list[dict[str, Any]]:
    """All rows of the table: every planned item x every registered scorer (streams the details)."""
    errors = errors or {}
    rf = RunFolder(root)
    store = ScoreStore(root)
    prompts = rf.prompts()
    info = rf.info
    names = {label: b.name for label, b in info.backends.items()}
    units = [(scorer_from_registry(e), e) for s, e in registry.items() if e.get("scorer") in _REGISTRY]
    rows: list[dict[str, Any]] = []
    for entry, rec in rf.records():
        prompt = prompts.get(entry.prompt_id)
        if prompt is None:
            continue
        base = {"backend": entry.backend, "backend_name": names.get(entry.backend), "prompt_id": entry.prompt_id,
                "seed": entry.seed, "key": entry.key, "category": prompt.category,
                "image_sha256": rec.image_sha256 if rec else None}
        for u, reg in units:
            rows += _item_rows(store, u, reg, base, rec, prompt, errors)
    return rows


def _item_rows(store, u, reg, base, rec, prompt, errors) -> list[dict[str, Any]]:
    meta = {"scorer": u.scorer, "model": u.model, "scorer_version": u.version, "scorer_id": u.slug}
    detail = k = None
    if rec is None:
        reason = "item not generated yet"
    elif rec.status != "ok" or not rec.image_sha256:
        reason = f"image {rec.status}" + (f": {rec.error}" if rec.error else "")
    else:
        k = u.cache_key(rec.image_sha256, prompt)
        detail = store.read_detail(u.slug, k)
        reason = None if detail is not None else (errors.get((u.slug, k)) or reg.get("unavailable") or
                                                  f"not scored with {u.scorer} {u.model} yet (run `evalsuite score` "
                                                  "with it)")
    if detail is not None:
        out = []
        for v in detail["values"]:
            missing = v["value"] is None
            out.append({**base, "metric": v["metric"], "variant": v["variant"],
                        "value": math.nan if missing else v["value"],
                        "missing_reason": v.get("missing_reason") if missing else None, **meta, "cache_key": k})
        return out
    return [{**base, "metric": m, "variant": var, "value": math.nan, "missing_reason": reason, **meta,
             "cache_key": None} for m, var in u.metrics_for(prompt)]


def _frame(rows: list[dict[str, Any]]):
    import pandas as pd

    df = pd.DataFrame(rows, columns=COLUMNS)
    df["value"] = df["value"].astype(float)
    return df


def write_table(root: Path, registry: dict[str, Any] | None = None, errors: dict | None = None):
    """Rebuild scores/scores.parquet from the detail files (atomic)."""
    store = ScoreStore(root)
    if registry is None:
        registry = store.read_registry()
    df = _frame(build_rows(Path(root), registry, errors))
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    store.write_table_bytes(buf.getvalue())
    return df


def load_scores(run_dir: str | Path):
    """The score table of a run folder (schema in this module's docstring); empty when never scored."""
    import pandas as pd

    store = ScoreStore(RunFolder(run_dir).path)
    if not store.has_table():
        if store.has_registry():
            return write_table(store.root)
        return _frame([])
    return pd.read_parquet(store.table_path)


def aggregate(run_or_frame, by: Sequence[str] = ("backend",)):
    """Per group (by + scorer identity + metric + variant): mean over prompts with a 95% CI, counts, missing
    reasons, verdict labels and the reference backend's value beside it; rates in percent. `run_or_frame`: a
    score table (`load_scores`) or a run folder. Columns and methods: metrics/aggregate.py."""
    import pandas as pd

    from ..metrics.aggregate import aggregate as _aggregate

    df = run_or_frame if isinstance(run_or_frame, pd.DataFrame) else load_scores(run_or_frame)
    for c in by:
        if c not in COLUMNS and c not in df.columns:
            raise EvalsuiteError(f"aggregate: unknown column '{c}' to group by (columns: {', '.join(COLUMNS)})")
    return _aggregate(df, by)


def too_few_label(n: int) -> str:
    """metrics.aggregate.too_few_label (kept importable here)."""
    from ..metrics.aggregate import too_few_label as _t

    return _t(n)
