"""Scoring a run folder: `score_run(run_dir, scorers=("clip", "ocr"), ...)`, `load_scores`, `aggregate`.

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
    scorer           "clip" or "ocr"
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
import json
import math
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import EvalsuiteError
from ..runfolder import RunFolder, atomic_write_bytes, atomic_write_json, remove_partial_files, stable_hash

SCORERS = ("clip", "ocr")
TEXT_METRICS_VERSION = "text/v2"
SCORES_DIR = "scores"
TABLE = "scores.parquet"
COLUMNS = ["backend", "backend_name", "prompt_id", "seed", "key", "category", "image_sha256", "metric", "variant",
           "value", "missing_reason", "scorer", "model", "scorer_version", "scorer_id", "cache_key"]
CLIP_METRICS = ("clip_score", "clip_s")
PERCENT_METRICS = {"text_exact", "prompt_following", "word_recall", "text_duplicated", "extra_text", "text_garbled"}
# OCR protocol figures computed over a set of items, not per item (metrics/text_protocols.py)
POOLED_INPUTS = ("text_words_matched", "text_words", "oneig_ed", "oneig_cr")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def parse_scorers(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return SCORERS
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


def validate_options(scorers, ocr, clip_model) -> None:
    """Check --scorers/--ocr/--clip-model before anything is generated (one-line errors)."""
    from .clip import parse_clip_model
    from .ocr import parse_engines

    chosen = parse_scorers(scorers)
    parse_engines(ocr)
    if "clip" in chosen:
        parse_clip_model(clip_model)


@dataclass
class Unit:
    """One scorer identity: the CLIP model, one OCR engine, or the best-of combination of engines."""

    scorer: str
    model: str
    version: str
    identity: dict[str, Any]
    engines: tuple[str, ...] = ()

    @property
    def slug(self) -> str:
        label = re.sub(r"[^A-Za-z0-9._-]+", "-", self.model)[:40].strip("-")
        return f"{self.scorer}-{label}-{stable_hash(self.identity)[:10]}"

    def inputs(self, prompt) -> dict[str, Any]:
        if self.scorer == "clip":
            return {"prompt": prompt.prompt, "negatives": list(prompt.negatives)}
        return {"prompt": prompt.prompt, "target_text": list(prompt.target_text)}

    def cache_key(self, image_sha256: str, prompt) -> str:
        return stable_hash({"scorer": self.identity, "image": image_sha256, "inputs": self.inputs(prompt)})

    def metrics_for(self, prompt) -> list[tuple[str, str]]:
        """The (metric, variant) rows this scorer produces for a prompt (for missing rows)."""
        if self.scorer == "clip":
            return [(m, "") for m in CLIP_METRICS] + ([("prompt_following", "")] if prompt.negatives else [])
        from ..metrics.text import TEXT_METRICS
        from ..metrics.text_protocols import PROTOCOL_METRICS

        rows = [("ocr_chars", "lenient")]
        if prompt.target_text:
            rows = list(TEXT_METRICS) + rows + [(m, "") for m in PROTOCOL_METRICS]
        return rows

    def registry_entry(self) -> dict[str, Any]:
        return {"scorer": self.scorer, "model": self.model, "version": self.version, "identity": self.identity,
                "engines": list(self.engines)}


def make_units(scorers: Sequence[str], ocr: Sequence[str], clip_spec) -> list[Unit]:
    from .clip import CLIP_SCORER_VERSION, RESIZE_MODE
    from .ocr import engine_identity

    units: list[Unit] = []
    if "clip" in scorers:
        units.append(Unit("clip", clip_spec.identity, CLIP_SCORER_VERSION,
                          {"scorer": "clip", "model": clip_spec.identity, "version": CLIP_SCORER_VERSION,
                           "resize": RESIZE_MODE}))
    if "ocr" in scorers:
        for e in ocr:
            ident = engine_identity(e)
            units.append(Unit("ocr", e, f"{e} {ident.get('version')} / {TEXT_METRICS_VERSION}",
                              {"scorer": "ocr", "engine": ident, "metrics": TEXT_METRICS_VERSION}, (e,)))
        if len(ocr) > 1:
            idents = [engine_identity(e) for e in ocr]
            units.append(Unit("ocr", "+".join(ocr), f"best of {'+'.join(ocr)} / {TEXT_METRICS_VERSION}",
                              {"scorer": "ocr", "combined": idents, "metrics": TEXT_METRICS_VERSION}, tuple(ocr)))
    return units


def _detail_path(root: Path, slug: str, key: str) -> Path:
    return root / SCORES_DIR / "details" / slug / key[:2] / f"{key}.json"


def _read_detail(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def load_detail(run_dir: str | Path, scorer_id: str, cache_key: str) -> dict[str, Any] | None:
    """The stored detail file of one scored (scorer identity, image, inputs); None when absent."""
    return _read_detail(_detail_path(Path(run_dir), scorer_id, cache_key))


def _values_list(values: dict[tuple[str, str], float], reason: str | None = None) -> list[dict[str, Any]]:
    """Stored values; a NaN (a metric that could not be computed) is stored as None with the reason."""
    return [{"metric": m, "variant": v, "value": float(x)} if not math.isnan(x) else
            {"metric": m, "variant": v, "value": None, "missing_reason": reason or "could not be computed"}
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
    units: list[Unit]
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
        """The per-backend table for the terminal; kept in scores/table.txt with a stamp of its inputs (the
        score table, the scorers, the code that formats it), so a rerun that changed nothing loads no pandas."""
        import hashlib

        table = self.run_dir / SCORES_DIR / TABLE
        cache = self.run_dir / SCORES_DIR / "table.txt.json"
        h = hashlib.sha256(table.read_bytes() if table.is_file() else b"")
        h.update(json.dumps([u.slug for u in self.units]).encode())
        h.update(code_stamp("scoring/__init__.py", "metrics/stats.py", "metrics/text.py").encode())
        stamp = h.hexdigest()
        try:
            cached = json.loads(cache.read_text(encoding="utf-8"))
            if cached.get("stamp") == stamp:
                return cached["text"]
        except (OSError, ValueError, KeyError, AttributeError):
            pass
        text = format_table(aggregate(self.run_dir), units=self.units)
        if table.is_file():
            atomic_write_json(cache, {"stamp": stamp, "text": text})
        return text


def code_stamp(*modules: str) -> str:
    """A hash of evalsuite's version and the source of the given modules (paths under evalsuite/): derived
    files cached with it are redone when the code that makes them changes."""
    import hashlib

    from .. import __version__

    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256(__version__.encode())
    for m in modules:
        p = root / m
        h.update(m.encode() + (p.read_bytes() if p.is_file() else b"-"))
    return h.hexdigest()


def score_run(run_dir: str | Path, scorers: str | Iterable[str] | None = ("clip", "ocr"), *,
              ocr: str | Sequence[str] | None = None, clip_model: str | None = None,
              clip_batch_size: int | None = None, device: str | None = None, progress: bool = True,
              log=None) -> ScoreResult:
    """Score every finished item of a run folder with each scorer, doing only work not already done.

    CLIP weights that cannot be had make the CLIP metrics missing (with the reason); OCR still runs.
    """
    import time

    from .clip import DEFAULT_BATCH_SIZE, parse_clip_model
    from .ocr import parse_engines

    log = log or (lambda msg: print(msg, file=sys.stderr))
    t_start = time.perf_counter()
    # 1. Validate everything first.
    rf = RunFolder(run_dir)
    root = rf.path
    scorer_list = parse_scorers(scorers)
    engines = parse_engines(ocr)
    clip_spec = parse_clip_model(clip_model) if "clip" in scorer_list else None
    batch = DEFAULT_BATCH_SIZE if clip_batch_size is None else clip_batch_size
    if batch < 1:
        raise EvalsuiteError(f"--clip-batch-size must be at least 1, got {batch}")
    units = make_units(scorer_list, engines, clip_spec)
    prompts = rf.prompts()
    info = rf.info

    # 2. Register the scorers.
    (root / SCORES_DIR).mkdir(exist_ok=True)
    remove_partial_files(root / SCORES_DIR)
    reg_path = root / SCORES_DIR / "scorers.json"
    registry = json.loads(reg_path.read_text(encoding="utf-8")) if reg_path.is_file() else {}
    registered = _registry_state(registry)
    for u in units:
        registry.setdefault(u.slug, u.registry_entry())
    if _registry_state(registry) != registered:   # new scorers: registered before any of their details
        for u in units:
            registry[u.slug]["used"] = _now()
        atomic_write_json(reg_path, registry)

    # 3. What is still to do (no images held: items are streamed later).
    result = ScoreResult(run_dir=root, units=units, counts={u.slug: UnitCounts() for u in units})
    todo: dict[str, list] = {u.slug: [] for u in units}
    n_ok = 0
    for entry, rec in rf.records():
        if rec is None or rec.status != "ok" or not rec.image_sha256:
            continue
        n_ok += 1
        prompt = prompts.get(entry.prompt_id)
        if prompt is None:
            continue
        for u in units:
            k = u.cache_key(rec.image_sha256, prompt)
            if _detail_path(root, u.slug, k).is_file():
                result.counts[u.slug].cached += 1
            else:
                todo[u.slug].append((entry, rec, prompt, k))

    errors: dict[tuple[str, str], str] = {}
    before_work = _registry_state(registry)
    # 4. CLIP, batched.
    for u in units:
        if u.scorer == "clip" and todo[u.slug]:
            _score_clip(root, u, clip_spec, todo[u.slug], batch, device, progress, result, errors, registry, log)
    # 5. OCR engines, one pass over the images; then the best-of combination (no OCR, reads the engines' details).
    ocr_units = [u for u in units if u.scorer == "ocr" and len(u.engines) == 1]
    if any(todo[u.slug] for u in ocr_units):
        _score_ocr(root, ocr_units, todo, progress, result, errors)
    for u in units:
        if u.scorer == "ocr" and len(u.engines) > 1 and todo[u.slug]:
            _combine_ocr(root, u, [x for x in ocr_units if x.engines[0] in u.engines], todo[u.slug], result, errors)
    for prob in rf.problems:   # damaged files never stop scoring: said once, fixed by check --repair or run
        log(f"{root / prob.where()}: {prob.what}; its items are not scored (`evalsuite check {root} --repair`, "
            "then `evalsuite run` again, regenerates them)")

    # 6. The table. Nothing scored, nothing newly missing and the table there: nothing is rewritten.
    worked = any(c.scored or c.errors for c in result.counts.values()) or errors
    if worked or _registry_state(registry) != before_work or _registry_state(registry) != registered \
            or not (root / SCORES_DIR / TABLE).is_file():
        for u in units:
            registry[u.slug]["used"] = _now()
        atomic_write_json(reg_path, registry)
        write_table(root, registry, errors)
    result.seconds = time.perf_counter() - t_start
    return result


def _registry_state(registry: dict[str, Any]) -> str:
    """The registry as it matters for the table (when each scorer was last used does not)."""
    return json.dumps({k: {f: v for f, v in e.items() if f != "used"} for k, e in registry.items()}, sort_keys=True)


def _score_clip(root, unit, spec, items, batch, device, progress, result, errors, registry, log) -> None:
    from .clip import still_unavailable

    counts = result.counts[unit.slug]
    reason = still_unavailable(spec, registry[unit.slug])   # offline, weights still not cached: no load at all
    if reason is not None:
        counts.unavailable = reason
        counts.missing = len(items)
        return

    from tqdm.auto import tqdm

    from .clip import ClipUnavailable, load_clip, score_batch

    try:
        cm = load_clip(spec, device)
    except ClipUnavailable as e:
        counts.unavailable = str(e)
        counts.missing = len(items)
        registry[unit.slug]["unavailable"] = str(e)
        if e.hub_repo:
            registry[unit.slug]["unavailable_hub_repo"] = e.hub_repo
        return
    registry[unit.slug].pop("unavailable", None)
    registry[unit.slug].pop("unavailable_hub_repo", None)
    bar = tqdm(total=len(items), desc=f"clip {unit.model}", unit="img", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    try:
        for i in range(0, len(items), batch):
            chunk = []
            images = []
            for item in items[i:i + batch]:
                image = _open_image(root, item[1], unit, item[3], result, errors)
                if image is not None:
                    chunk.append(item)
                    images.append(image)
            if not chunk:
                bar.update(len(items[i:i + batch]))
                continue
            outs = score_batch(cm, images, [p.prompt for _, _, p, _ in chunk], [p.negatives for _, _, p, _ in chunk])
            for (entry, rec, prompt, k), out in zip(chunk, outs):
                _write_detail(root, unit, k, rec, unit.inputs(prompt), out["values"], out["details"])
                counts.scored += 1
            bar.update(len(items[i:i + batch]))
    finally:
        bar.close()


def _open_image(root, rec, unit, key, result, errors):
    """The RGB image of an item, or None when its file is missing or broken: then that item's metrics of
    this scorer are missing with the reason (the pass goes on; `evalsuite run` generates the image again)."""
    from PIL import Image

    try:
        with Image.open(root / rec.image) as im:
            return im.convert("RGB")
    except FileNotFoundError:
        why = "image file missing"
    except Exception as e:  # noqa: BLE001 - PIL raises many kinds for broken files
        why = f"image file unreadable ({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})"
    errors[(unit.slug, key)] = f"{why}: {rec.image}; rerun `evalsuite run` to generate it again"
    result.counts[unit.slug].errors += 1
    return None


def _write_detail(root, unit, key, rec, inputs, values, details) -> None:
    atomic_write_json(_detail_path(root, unit.slug, key), {
        "cache_key": key, "scorer_id": unit.slug, "scorer": unit.scorer, "model": unit.model,
        "version": unit.version, "image_sha256": rec.image_sha256, "inputs": inputs,
        "first_item": {"backend": rec.backend, "prompt_id": rec.prompt_id, "seed": rec.seed},
        "values": _values_list(values, details.get("missing_reason")), "details": details, "scored_at": _now(),
    })


def _score_ocr(root, units, todo, progress, result, errors) -> None:
    from tqdm.auto import tqdm

    from ..metrics.text import Reading, item_text_metrics
    from .ocr import read_boxes

    # item-major: each image is opened once for every engine that still needs it
    by_item: dict[str, list] = {}
    order: list[str] = []
    for u in units:
        for entry, rec, prompt, k in todo[u.slug]:
            if entry.record not in by_item:
                by_item[entry.record] = []
                order.append(entry.record)
            by_item[entry.record].append((u, entry, rec, prompt, k))
    label = "ocr " + "+".join(u.model for u in units)
    bar = tqdm(total=len(order), desc=label, unit="img", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    try:
        for rid in order:
            jobs = by_item[rid]
            rec = jobs[0][2]
            image = _open_image(root, rec, jobs[0][0], jobs[0][4], result, errors)
            if image is None:
                for u, _, _, _, k in jobs[1:]:
                    errors[(u.slug, k)] = errors[(jobs[0][0].slug, jobs[0][4])]
                    result.counts[u.slug].errors += 1
                bar.update(1)
                continue
            for u, entry, rec, prompt, k in jobs:
                try:
                    boxes = read_boxes(u.engines[0], image)
                except Exception as e:  # this item's metrics stay missing with the reason; the run goes on
                    errors[(u.slug, k)] = f"OCR {u.model} failed: {type(e).__name__}: {e}".splitlines()[0][:300]
                    result.counts[u.slug].errors += 1
                    continue
                reading = Reading.from_boxes(u.engines[0], boxes)
                values, details = item_text_metrics(prompt.target_text, [reading])
                details["boxes"] = [b.to_dict() for b in boxes]
                details["image_size"] = [image.width, image.height]
                _write_detail(root, u, k, rec, u.inputs(prompt), values, details)
                result.counts[u.slug].scored += 1
            bar.update(1)
    finally:
        bar.close()


def _combine_ocr(root, unit, engine_units, items, result, errors) -> None:
    from ..metrics.text import Reading, boxes_from, item_text_metrics

    for entry, rec, prompt, k in items:
        readings = []
        for eu in engine_units:
            d = _read_detail(_detail_path(root, eu.slug, eu.cache_key(rec.image_sha256, prompt)))
            if d is None:
                break
            readings.append(Reading.from_boxes(eu.engines[0], boxes_from(d["details"]["boxes"])))
        if len(readings) != len(engine_units):
            errors[(unit.slug, k)] = f"OCR {unit.model}: an engine's reading is missing"
            result.counts[unit.slug].errors += 1
            continue
        values, details = item_text_metrics(prompt.target_text, readings)
        _write_detail(root, unit, k, rec, unit.inputs(prompt), values, details)
        result.counts[unit.slug].scored += 1


def _unit_from_registry(slug: str, entry: dict[str, Any]) -> Unit:
    return Unit(entry["scorer"], entry["model"], entry["version"], entry["identity"], tuple(entry.get("engines", ())))


def build_rows(root: Path, registry: dict[str, Any], errors: dict | None = None) -> list[dict[str, Any]]:
    """All rows of the table: every planned item x every registered scorer (streams the details)."""
    errors = errors or {}
    rf = RunFolder(root)
    prompts = rf.prompts()
    info = rf.info
    names = {label: b.name for label, b in info.backends.items()}
    units = [(_unit_from_registry(s, e), e) for s, e in registry.items()]
    rows: list[dict[str, Any]] = []
    for entry, rec in rf.records():
        prompt = prompts.get(entry.prompt_id)
        if prompt is None:
            continue
        base = {"backend": entry.backend, "backend_name": names.get(entry.backend), "prompt_id": entry.prompt_id,
                "seed": entry.seed, "key": entry.key, "category": prompt.category,
                "image_sha256": rec.image_sha256 if rec else None}
        for u, reg in units:
            meta = {"scorer": u.scorer, "model": u.model, "scorer_version": u.version, "scorer_id": u.slug}
            reason = None
            detail = None
            k = None
            if rec is None:
                reason = "item not generated yet"
            elif rec.status != "ok" or not rec.image_sha256:
                reason = f"image {rec.status}" + (f": {rec.error}" if rec.error else "")
            else:
                k = u.cache_key(rec.image_sha256, prompt)
                detail = _read_detail(_detail_path(root, u.slug, k))
                if detail is None:
                    reason = errors.get((u.slug, k)) or reg.get("unavailable") or \
                        f"not scored with {u.scorer} {u.model} yet (run `evalsuite score` with it)"
            if detail is not None:
                for v in detail["values"]:
                    missing = v["value"] is None
                    rows.append({**base, "metric": v["metric"], "variant": v["variant"],
                                 "value": math.nan if missing else v["value"],
                                 "missing_reason": v.get("missing_reason") if missing else None, **meta, "cache_key": k})
            else:
                for m, var in u.metrics_for(prompt):
                    rows.append({**base, "metric": m, "variant": var, "value": math.nan, "missing_reason": reason,
                                 **meta, "cache_key": None})
    return rows


def _frame(rows: list[dict[str, Any]]):
    import pandas as pd

    df = pd.DataFrame(rows, columns=COLUMNS)
    df["value"] = df["value"].astype(float)
    return df


def write_table(root: Path, registry: dict[str, Any] | None = None, errors: dict | None = None):
    """Rebuild scores/scores.parquet from the detail files (atomic)."""
    root = Path(root)
    if registry is None:
        reg_path = root / SCORES_DIR / "scorers.json"
        registry = json.loads(reg_path.read_text(encoding="utf-8")) if reg_path.is_file() else {}
    df = _frame(build_rows(root, registry, errors))
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(root / SCORES_DIR / TABLE, buf.getvalue())
    return df


def load_scores(run_dir: str | Path):
    """The score table of a run folder (schema in this module's docstring); empty when never scored."""
    import pandas as pd

    root = RunFolder(run_dir).path
    p = root / SCORES_DIR / TABLE
    if not p.is_file():
        if (root / SCORES_DIR / "scorers.json").is_file():
            return write_table(root)
        return _frame([])
    return pd.read_parquet(p)


def aggregate(run_or_frame, by: Sequence[str] = ("backend",)):
    """Per group (by + scorer identity + metric + variant): mean over prompts (seeds averaged first)
    with a 95% CI over prompts (`evalsuite.metrics.stats`: Wilson-t with effective n for values in [0, 1],
    Student-t otherwise; `ci_method` names it), counts, missing reasons, the text-accuracy verdict label
    ("too few prompts (n=N)" below stats.MIN_PROMPTS) and the reference backend's value beside it
    (`ceiling`). Rates in percent.

    Columns: *by, [backend_name when grouped by backend], scorer, model, scorer_id, metric, variant, unit, mean, ci_low, ci_high, n_prompts,
    n_items, n_missing, missing_reasons, label, ceiling, ceiling_ci_low, ceiling_ci_high, ci_method.
    """
    import pandas as pd

    from ..metrics.stats import MIN_PROMPTS, mean_ci, rate_ci
    from ..metrics.text_protocols import UNIT_INTERVAL_METRICS
    from ..metrics.text import verdict_label

    df = run_or_frame if isinstance(run_or_frame, pd.DataFrame) else load_scores(run_or_frame)
    by = list(by)
    for c in by:
        if c not in COLUMNS:
            raise EvalsuiteError(f"aggregate: unknown column '{c}' to group by (columns: {', '.join(COLUMNS)})")
    keys = by + ["scorer", "model", "scorer_id", "metric", "variant"]
    out_cols = keys + ["unit", "mean", "ci_low", "ci_high", "n_prompts", "n_items", "n_missing", "missing_reasons",
                       "label", "ceiling", "ceiling_ci_low", "ceiling_ci_high", "ci_method"]
    if df.empty:
        return pd.DataFrame(columns=out_cols)
    rows = []
    for gk, g in df.groupby(keys, dropna=False, sort=True):
        metric = gk[len(by) + 3]
        scale = 100.0 if metric in PERCENT_METRICS else 1.0
        ok = g[g["missing_reason"].isna()]
        vals = ok["value"].to_numpy(dtype=float)
        unit_interval = bool(len(vals)) and bool(((vals >= 0) & (vals <= 1)).all()) and (
            metric in PERCENT_METRICS or metric == "text_similarity" or metric in UNIT_INTERVAL_METRICS)
        per_prompt = {pid: sub["value"].to_numpy(dtype=float) for pid, sub in ok.groupby("prompt_id")}
        ci = rate_ci(per_prompt) if unit_interval else mean_ci(per_prompt)
        method = "wilson-t" if unit_interval else "student-t"
        miss = g[g["missing_reason"].notna()]
        reasons = "; ".join(f"{r} ({n})" for r, n in miss["missing_reason"].value_counts().items())
        rows.append(dict(zip(keys, gk), unit="%" if scale == 100.0 else ("points" if metric == "clip_score" else ""),
                         mean=ci.mean * scale, ci_low=ci.low * scale, ci_high=ci.high * scale, n_prompts=ci.n,
                         n_items=len(ok), n_missing=len(miss), missing_reasons=reasons or None, label=None,
                         ceiling=math.nan, ceiling_ci_low=math.nan, ceiling_ci_high=math.nan, ci_method=method))
    rows += _pooled_rows(df, keys)
    out = pd.DataFrame(rows, columns=out_cols)
    # verdict labels on text accuracy (lenient)
    idx = {tuple(r[c] for c in keys): i for i, r in out.iterrows()}
    for i, r in out.iterrows():
        if r["metric"] == "text_exact" and r["variant"] == "lenient":
            gk = tuple(r[c] for c in keys[:-2]) + ("text_garbled", "lenient")
            garbled = out.loc[idx[gk], "mean"] if gk in idx else None
            out.at[i, "label"] = (too_few_label(r["n_prompts"]) if 0 < r["n_prompts"] < MIN_PROMPTS
                                  else verdict_label(r["mean"], r["ci_low"], garbled))
    # the reference backend's value beside every backend's (same scorer, metric and other group keys)
    if "backend" in by:
        names = df.drop_duplicates("backend").set_index("backend")["backend_name"]
        out.insert(len(by), "backend_name", out["backend"].map(names))
        ref = df.loc[df["backend_name"] == "reference", "backend"].dropna().unique()
        if len(ref):
            refb = ref[0]
            others = [c for c in keys if c != "backend"]
            ref_rows = out[out["backend"] == refb].set_index(others)
            for i, r in out.iterrows():
                k = tuple(r[c] for c in others)
                if k in ref_rows.index:
                    rr = ref_rows.loc[k]
                    out.at[i, "ceiling"], out.at[i, "ceiling_ci_low"], out.at[i, "ceiling_ci_high"] = \
                        rr["mean"], rr["ci_low"], rr["ci_high"]
    return out


def _pooled_rows(df, keys: list[str]) -> list[dict[str, Any]]:
    """longtext_word_acc_pooled and oneig_text_score_set per group (set-level figures of the published
    protocols). CI: the percentile bootstrap that resamples prompts (all their items move together), widened
    to at least the continuity-corrected Wilson bounds with the number of prompts as the sample size, so it
    never collapses at small n or at 0 / 1 (docs/scores.md, "Intervals and minimum prompts")."""
    import numpy as np

    from ..metrics.stats import CONFIDENCE, N_RESAMPLES, RNG_SEED, t_quantile, wilson_bounds
    from ..metrics.text_protocols import oneig_text_score

    sub = df[df["metric"].isin(POOLED_INPUTS) & df["missing_reason"].isna()]
    if sub.empty:
        return []
    gkeys = keys[:-2]
    out = []
    for gk, g in sub.groupby(gkeys, dropna=False, sort=True):
        gk = gk if isinstance(gk, tuple) else (gk,)
        wide = g.pivot_table(index=["prompt_id", "key"], columns="metric", values="value", aggfunc="first")
        if any(m not in wide.columns for m in POOLED_INPUTS):
            continue
        wide = wide.dropna(subset=list(POOLED_INPUTS))
        if wide.empty:
            continue
        per = wide.groupby(level="prompt_id")[list(POOLED_INPUTS)].agg(["sum", "count"])
        m_, w_ = per[("text_words_matched", "sum")].to_numpy(), per[("text_words", "sum")].to_numpy()
        ed_, cr_, n_ = per[("oneig_ed", "sum")].to_numpy(), per[("oneig_cr", "sum")].to_numpy(), \
            per[("oneig_ed", "count")].to_numpy()

        def stats(ix):
            w = w_[ix].sum()
            pooled = m_[ix].sum() / w if w else math.nan
            n = n_[ix].sum()
            score = oneig_text_score(ed_[ix].sum() / n, cr_[ix].sum() / n, pooled) if n and w else math.nan
            return pooled, score

        full = stats(np.arange(len(m_)))
        rng = np.random.default_rng(RNG_SEED)
        boot = np.array([stats(rng.integers(0, len(m_), len(m_))) for _ in range(N_RESAMPLES)], dtype=float)
        alpha = (1 - CONFIDENCE) / 2
        for j, metric in enumerate(("longtext_word_acc_pooled", "oneig_text_score_set")):
            b = boot[:, j][np.isfinite(boot[:, j])]
            lo, hi = (float(np.quantile(b, alpha)), float(np.quantile(b, 1 - alpha))) if b.size else (math.nan, math.nan)
            if math.isfinite(full[j]):
                wlo, whi = wilson_bounds(np.clip(full[j], 0.0, 1.0), len(m_), t_quantile(CONFIDENCE, len(m_) - 1))
                lo, hi = min(lo, float(wlo)), max(hi, float(whi))
            out.append(dict(zip(keys, gk + (metric, "")), unit="", mean=float(full[j]), ci_low=lo, ci_high=hi,
                            n_prompts=len(m_), n_items=int(n_.sum()), n_missing=0, missing_reasons=None, label=None,
                            ceiling=math.nan, ceiling_ci_low=math.nan, ceiling_ci_high=math.nan,
                            ci_method="bootstrap+wilson"))
    return out


def too_few_label(n: int) -> str:
    """The label a verdict gets below stats.MIN_PROMPTS prompts, instead of a confident word."""
    return f"too few prompts (n={int(n)})"


def _fmt_ci(mean, low, high, pct=True) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    if pct:
        return f"{mean:.0f}% [{low:.0f}, {high:.0f}]"
    return f"{mean:.1f} [{low:.1f}, {high:.1f}]"


def format_table(agg, units: Sequence[Unit] | None = None) -> str:
    """A compact per-backend table: text accuracy with CI and verdict, strict accuracy, word recall,
    clip_score, prompt following, missing counts with reasons; the reference backend marked as the ceiling."""
    import pandas as pd

    if agg.empty:
        return "no scores"
    slugs = {u.slug for u in units} if units else set(agg["scorer_id"])
    a = agg[agg["scorer_id"].isin(slugs)]
    ocr_ids = [u.slug for u in units if u.scorer == "ocr"] if units else sorted(set(a.loc[a.scorer == "ocr", "scorer_id"]))
    ocr_id = ocr_ids[-1] if ocr_ids else None     # the best-of combination when several engines
    clip_ids = [u.slug for u in units if u.scorer == "clip"] if units else sorted(set(a.loc[a.scorer == "clip", "scorer_id"]))
    clip_id = clip_ids[0] if clip_ids else None

    def get(b, sid, metric, variant):
        r = a[(a.backend == b) & (a.scorer_id == sid) & (a.metric == metric) & (a.variant == variant)]
        return r.iloc[0] if len(r) else None

    header = ["backend", "text acc [95% CI]", "verdict", "strict", "word recall", "clip_score", "prompt following",
              "missing items"]
    lines = []
    backends = list(dict.fromkeys(a["backend"]))
    missing_notes: dict[str, int] = {}
    for b in backends:
        cells = [b]
        te = get(b, ocr_id, "text_exact", "lenient")
        cells.append(_fmt_ci(te["mean"], te["ci_low"], te["ci_high"]) if te is not None else "n/a")
        cells.append((te["label"] or "-") if te is not None else "-")
        st = get(b, ocr_id, "text_exact", "strict")
        cells.append(f"{st['mean']:.0f}%" if st is not None and not math.isnan(st["mean"]) else "-")
        wr = get(b, ocr_id, "word_recall", "lenient")
        cells.append(f"{wr['mean']:.0f}%" if wr is not None and not math.isnan(wr["mean"]) else "-")
        cs = get(b, clip_id, "clip_score", "")
        cells.append(_fmt_ci(cs["mean"], cs["ci_low"], cs["ci_high"], pct=False) if cs is not None and cs["n_items"]
                     else ("missing" if cs is not None else "n/a"))
        pf = get(b, clip_id, "prompt_following", "")
        cells.append(_fmt_ci(pf["mean"], pf["ci_low"], pf["ci_high"]) if pf is not None and pf["n_items"]
                     else ("missing" if pf is not None else "n/a"))
        # items missing per scorer: clip_score and ocr_chars exist for every scored item
        sub = a[(a.backend == b) & (a.n_missing > 0) & (((a.scorer_id == clip_id) & (a.metric == "clip_score")) |
                                                         ((a.scorer_id == ocr_id) & (a.metric == "ocr_chars")))]
        cells.append(str(int(sub["n_missing"].sum())))
        for rs in sub["missing_reasons"].dropna():
            for part in rs.split("; "):
                m = re.match(r"^(.*) \((\d+)\)$", part)
                if m:
                    missing_notes[m.group(1)] = missing_notes.get(m.group(1), 0) + int(m.group(2))
        lines.append(cells)
    widths = [max(len(str(r[i])) for r in [header] + lines) for i in range(len(header))]
    fmt = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    out = [fmt(header)] + [fmt(r) for r in lines]
    ref_names = sorted(set(a.loc[a["backend_name"] == "reference", "backend"])) if "backend_name" in a else []
    if ref_names:
        out.append(f"{', '.join(ref_names)}: renders the targets legibly; its text accuracy is the OCR ceiling")
    if ocr_id:
        out.append(f"text metrics: {a.loc[a.scorer_id == ocr_id, 'model'].iloc[0]} (lenient; strict beside it)")
    for reason, n in missing_notes.items():
        out.append(f"missing ({n} items): {reason}")
    return "\n".join(out)

