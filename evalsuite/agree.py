"""How well each scorer agrees with human labels: `agree(run_dir, labels)` (CLI: `evalsuite agree`).

Labels: JSONL, one labelled image per line, keyed by one of
    backend + prompt_id + seed            an item of the run folder
    image_sha256 (or sha256)              the image's content hash
    image (or file)                       the image's path (relative to the run folder, or just its name)
and carrying at least one of
    verdict (or verdict_human)            correct | minor-errors | garbled | no-text
    label                                 0/1 (or true/false): every requested string present and right
    rating                                a number, higher = better text
optional: reading (or legible_text_human), the text the person read, shown on the page.
VQA judges (a run scored with --scorers vqa): `prompt_following` (0/1, the image follows the whole prompt) and
`questions` ({question id: yes|no}) on a line are compared with each judge (agree_vqa.py); such a line needs no
text label.
Binary label: `label` when given, else the verdict (correct -> 1; minor-errors, garbled, no-text -> 0).
The rating for Spearman: `rating` when given, else the verdict's rank (correct 3, minor-errors 2,
garbled 1, no-text 0), else the 0/1 label.

Two sources of scores:
- a run folder: the stored scores (`evalsuite score` first); every OCR scorer identity of the run is
  compared on its lenient text_exact (prediction) and text_similarity (for Spearman);
- a folder of labelled images (no run.json; a manifest whose lines have `file` and `target_text`, as
  the labels file itself): each image is read here with the OCR engines given (default: the scorer's
  default), each engine and their best-of combination being a scorer identity. Nothing is written
  into that folder.
Images whose prompt asks for no text are left out of the agreement and counted (`no_target_text`).

Output (folder `out`, default RUN_DIR/agreement or ./agreement): agreement.json and agreement.html
(per scorer: accuracy, Cohen's kappa, Spearman with 95% bootstrap CIs over images; the disagreeing
images with a thumbnail, the OCR reading and the human reading).
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .errors import EvalsuiteError
from .agree_vqa import format_judges, has_vqa_labels, judge_agreement, judges_html, vqa_labels
from .metrics.agreement import VERDICT_LABEL, VERDICTS, agreement_summary
from .metrics.stats import N_RESAMPLES, RNG_SEED
from .runfolder import atomic_write_json, atomic_write_text

VERDICT_RANK = {"correct": 3, "minor-errors": 2, "garbled": 1, "no-text": 0}


@dataclass
class Label:
    line: int
    key: dict[str, Any]
    label: int | None
    rating: float | None
    verdict: str | None
    reading: str | None
    raw: dict[str, Any] = field(default_factory=dict)
    vqa: tuple[int | None, dict[str, int]] = (None, {})   # (prompt_following, {question id: 0/1}): agree_vqa.py

    @property
    def has_text_label(self) -> bool:
        return self.label is not None or self.rating is not None


def _bad(path: Path, line: int, fld: str, why: str) -> EvalsuiteError:
    return EvalsuiteError(f"{path}: line {line}: field '{fld}': {why}")


def _label_key(path: Path, n: int, d: dict[str, Any]) -> dict[str, Any]:
    """What a label line names: an item (backend, prompt_id, seed), an image hash or an image file."""
    if all(k in d for k in ("backend", "prompt_id", "seed")):
        if d["seed"] is not None and (isinstance(d["seed"], bool) or not isinstance(d["seed"], int)):
            raise _bad(path, n, "seed", f"expected an integer or null, got {d['seed']!r}")
        return {"backend": str(d["backend"]), "prompt_id": str(d["prompt_id"]), "seed": d["seed"]}
    if d.get("image_sha256") or d.get("sha256"):
        f = "image_sha256" if d.get("image_sha256") else "sha256"
        v = d[f]
        if not isinstance(v, str) or len(v) != 64 or any(c not in "0123456789abcdef" for c in v.lower()):
            raise _bad(path, n, f, "expected 64 hex digits")
        return {"sha256": v.lower()}
    if d.get("image") or d.get("file"):
        f = "image" if d.get("image") else "file"
        if not isinstance(d[f], str):
            raise _bad(path, n, f, "expected a path")
        return {"file": d[f]}
    raise EvalsuiteError(f"{path}: line {n}: no key: give backend+prompt_id+seed, image_sha256 or image")


def read_labels(path: str | Path) -> list[Label]:
    """Parse a labels file (see the module docstring); a bad line is a one-line error naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EvalsuiteError(f"{path}: labels file not found") from None
    except (UnicodeDecodeError, OSError) as e:
        raise EvalsuiteError(f"{path}: cannot read labels file: {type(e).__name__}") from None
    out: list[Label] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError as e:
            raise EvalsuiteError(f"{path}: line {n}: not JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(d, dict):
            raise EvalsuiteError(f"{path}: line {n}: expected a JSON object")
        key = _label_key(path, n, d)
        verdict = d.get("verdict", d.get("verdict_human"))
        vf = "verdict" if "verdict" in d else "verdict_human"
        if verdict is not None and verdict not in VERDICTS:
            raise _bad(path, n, vf, f"unknown verdict {verdict!r}; choose from {', '.join(VERDICTS)}")
        label = d.get("label")
        if label is not None:
            if isinstance(label, bool):
                label = int(label)
            if label not in (0, 1):
                raise _bad(path, n, "label", f"expected 0 or 1, got {d['label']!r}")
            label = int(label)
        elif verdict is not None:
            label = VERDICT_LABEL[verdict]
        rating = d.get("rating")
        if rating is not None:
            if isinstance(rating, bool) or not isinstance(rating, (int, float)) or not math.isfinite(rating):
                raise _bad(path, n, "rating", f"expected a finite number, got {rating!r}")
            rating = float(rating)
        elif verdict is not None:
            rating = float(VERDICT_RANK[verdict])
        elif label is not None:
            rating = float(label)
        vqa = vqa_labels(d, f"{path}: line {n}")
        if label is None and rating is None and not has_vqa_labels(d):
            raise EvalsuiteError(f"{path}: line {n}: no label: give verdict, label (0/1), rating, prompt_following "
                                 "or questions")
        reading = d.get("reading", d.get("legible_text_human"))
        out.append(Label(n, key, label, rating, verdict, reading if isinstance(reading, str) else None, d, vqa))
    if not out:
        raise EvalsuiteError(f"{path}: no labels")
    return out


@dataclass
class Scored:
    """One scorer identity's outcome on one labelled image."""

    exact: float            # lenient text_exact (0/1), NaN when missing
    similarity: float       # lenient text_similarity
    ocr_text: str
    has_target: bool
    image: Path | None
    item: str               # how the image is named on the page
    targets: list[str] = field(default_factory=list)


def _run_scores(root: Path, labels: list[Label]) -> tuple[dict[str, str], dict[str, dict[int, Scored]], list[int]]:
    """(scorer id -> model, scorer id -> label line -> Scored, unmatched label lines) from a run folder."""
    from .runfolder import RunFolder
    from .scoring import load_detail, load_scores

    rf = RunFolder(root)
    prompts = rf.prompts()
    find = _record_finder(rf)
    df = load_scores(root)
    if df.empty or not (df["scorer"] == "ocr").any():
        raise EvalsuiteError(f"{root}: no OCR scores yet (run `evalsuite score {root}` first)")
    ocr = df[(df["scorer"] == "ocr") & (df["variant"] == "lenient") & df["metric"].isin(["text_exact", "text_similarity"])]
    models = dict(zip(ocr["scorer_id"], ocr["model"]))
    table = {(r.scorer_id, r.backend, r.prompt_id, r.seed if r.seed == r.seed else None, r.metric): r
             for r in ocr.itertuples(index=False)}
    out: dict[str, dict[int, Scored]] = {sid: {} for sid in models}
    unmatched = []
    for lab in labels:
        rec = find(lab.key)
        if rec is None:
            unmatched.append(lab.line)
            continue
        has_target = bool(prompts[rec.prompt_id].target_text) if rec.prompt_id in prompts else False
        for sid in models:
            ex = table.get((sid, rec.backend, rec.prompt_id, rec.seed, "text_exact"))
            sm = table.get((sid, rec.backend, rec.prompt_id, rec.seed, "text_similarity"))
            text = ""
            if ex is not None and ex.cache_key:
                d = load_detail(root, sid, ex.cache_key)
                if d:
                    det = d.get("details", {})
                    text = det.get("per_engine", {}).get(det.get("main_engine"), {}).get("raw_text", "")
            out[sid][lab.line] = Scored(
                exact=float(ex.value) if ex is not None else math.nan,
                similarity=float(sm.value) if sm is not None else math.nan, ocr_text=text,
                has_target=has_target, image=root / rec.image,
                item=f"{rec.backend}/{rec.prompt_id}/s{rec.seed}",
                targets=list(prompts[rec.prompt_id].target_text) if rec.prompt_id in prompts else [])
    return models, out, unmatched


def _record_finder(rf):
    """A function from a label's key to the run's finished item record it names (None when none)."""
    records = [rec for _, rec in rf.records() if rec is not None and rec.status == "ok" and rec.image_sha256]
    by_item = {(r.backend, r.prompt_id, r.seed): r for r in records}
    by_sha: dict[str, Any] = {}
    by_file: dict[str, Any] = {}
    for r in records:
        by_sha.setdefault(r.image_sha256, r)
        by_file.setdefault(r.image, r)
        by_file.setdefault(Path(r.image).name, r)

    def find(k):
        return (by_item.get((k["backend"], k["prompt_id"], k["seed"])) if "backend" in k else
                by_sha.get(k["sha256"]) if "sha256" in k else by_file.get(k["file"]) or by_file.get(Path(k["file"]).name))
    return find


def _judges(root: Path, labs: list[Label], n_resamples: int, rng_seed: int) -> list[dict[str, Any]]:
    """Agreement of each VQA judge of a run with the labels' prompt_following / questions (agree_vqa.py)."""
    from .runfolder import RunFolder
    from .scoring import load_scores

    vlabs = [lab for lab in labs if has_vqa_labels(lab.raw)]
    if not vlabs:
        return []
    df = load_scores(root)
    if df.empty or not (df["scorer"] == "vqa").any():
        raise EvalsuiteError(f"{root}: labels carry prompt_following/questions but the run has no vqa scores yet "
                             f"(run `evalsuite score {root} --scorers vqa` first)")
    find = _record_finder(RunFolder(root))
    matched = [(lab, rec) for lab in vlabs if (rec := find(lab.key)) is not None]
    return judge_agreement(root, df, matched, n_resamples, rng_seed)


def _folder_scores(folder: Path, labels: list[Label], ocr, progress: bool) -> tuple[dict[str, str], dict[str, dict[int, Scored]], list[int]]:
    """Read every labelled image of a plain folder with the OCR engines (nothing is written there)."""
    from PIL import Image, UnidentifiedImageError
    from tqdm.auto import tqdm

    from .metrics.text import Reading, item_text_metrics
    from .scoring.ocr import parse_engines, read_boxes

    engines = parse_engines(ocr)
    files = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"):
            files.setdefault(p.relative_to(folder).as_posix(), p)
            files.setdefault(p.name, p)
    ids = list(engines) + (["+".join(engines)] if len(engines) > 1 else [])
    out: dict[str, dict[int, Scored]] = {i: {} for i in ids}
    unmatched = []
    sha_index: dict[str, Path] | None = None
    for lab in tqdm(labels, desc="ocr " + "+".join(engines), unit="img", disable=not progress, file=sys.stderr):
        if "target_text" not in lab.raw or not isinstance(lab.raw["target_text"], list):
            raise _bad(Path(folder), lab.line, "target_text", "a folder of images needs each label's target_text "
                                                             "(a list of strings)")
        path = None
        if "file" in lab.key:
            path = files.get(lab.key["file"]) or files.get(Path(lab.key["file"]).name)
        elif "sha256" in lab.key:
            if sha_index is None:
                sha_index = {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in set(files.values())}
            path = sha_index.get(lab.key["sha256"])
        if path is None:
            unmatched.append(lab.line)
            continue
        try:
            with Image.open(path) as im:
                image = im.convert("RGB")
        except (UnidentifiedImageError, OSError) as e:
            raise EvalsuiteError(f"{path}: cannot read image ({type(e).__name__})") from None
        targets = [str(t) for t in lab.raw["target_text"]]
        readings = [Reading.from_boxes(e, read_boxes(e, image)) for e in engines]
        for i, rs in zip(ids, [[r] for r in readings] + ([readings] if len(readings) > 1 else [])):
            values, det = item_text_metrics(targets, rs)
            out[i][lab.line] = Scored(
                exact=values.get(("text_exact", "lenient"), math.nan),
                similarity=values.get(("text_similarity", "lenient"), math.nan),
                ocr_text=det["per_engine"][det["main_engine"]]["raw_text"], has_target=bool(targets), image=path,
                item=str(lab.raw.get("id") or path.name), targets=targets)
    return {i: i for i in ids}, out, unmatched


def agree(run_dir: str | Path, labels: str | Path, *, ocr: str | Sequence[str] | None = None,
          out: str | Path | None = None, n_resamples: int = N_RESAMPLES, rng_seed: int = RNG_SEED,
          progress: bool = True) -> dict[str, Any]:
    """Agreement of every OCR scorer identity with the human labels; writes agreement.json/.html."""
    root = Path(run_dir)
    if not root.is_dir():
        raise EvalsuiteError(f"{root}: not a folder")
    labs = read_labels(labels)
    is_run = (root / "run.json").is_file()
    if is_run:
        if ocr is not None:
            raise EvalsuiteError("--ocr applies to a folder of images; a run folder is compared on its stored scores "
                                 f"(score it with `evalsuite score {root} --ocr ...` first)")
        text_labs = [lab for lab in labs if lab.has_text_label]
        models, scored, unmatched = _run_scores(root, text_labs) if text_labs else ({}, {}, [])
    elif any(has_vqa_labels(lab.raw) for lab in labs):
        raise EvalsuiteError(f"{root}: prompt_following/questions labels are compared on a run folder scored with "
                             "--scorers vqa, not on a plain folder of images")
    else:
        models, scored, unmatched = _folder_scores(root, labs, ocr, progress)
    by_line = {lab.line: lab for lab in labs}
    result: dict[str, Any] = {"source": str(root), "labels": str(labels), "kind": "run" if is_run else "folder",
                              "n_labels": len(labs), "unmatched_label_lines": unmatched,
                              "label_mapping": "label, else verdict: correct -> 1; minor-errors, garbled, no-text -> 0",
                              "n_resamples": n_resamples, "rng_seed": rng_seed, "scorers": []}
    for sid, model in models.items():
        result["scorers"].append(_scorer_summary(sid, model, scored[sid], by_line, n_resamples, rng_seed))
    result["judges"] = _judges(root, labs, n_resamples, rng_seed) if is_run else []
    dest = Path(out) if out else (root / "agreement" if is_run else Path("agreement"))
    dest.mkdir(parents=True, exist_ok=True)
    result["files"] = {"json": str(dest / "agreement.json"), "html": str(dest / "agreement.html")}
    atomic_write_json(dest / "agreement.json", result)
    atomic_write_text(dest / "agreement.html", render_html(result))
    return result


def _scorer_summary(sid: str, model: str, rows: dict[int, Scored], by_line: dict[int, Label], n_resamples: int,
                    rng_seed: int) -> dict[str, Any]:
    """One OCR scorer identity's agreement with the text labels: accuracy, kappa, Spearman, disagreements."""
    no_target = [ln for ln, s in rows.items() if not s.has_target]
    missing = [ln for ln, s in rows.items() if s.has_target and math.isnan(s.exact)]
    use = [ln for ln, s in rows.items() if s.has_target and not math.isnan(s.exact)]
    binary = [ln for ln in use if by_line[ln].label is not None]
    h = [by_line[ln].label for ln in binary]
    p = [int(rows[ln].exact == 1.0) for ln in binary]
    rated = [ln for ln in use if by_line[ln].rating is not None and not math.isnan(rows[ln].similarity)]
    summary = agreement_summary(h, p, n_resamples=n_resamples, rng_seed=rng_seed) if binary else {
        "n": 0, "accuracy": None, "kappa": None, "false_positives": 0, "false_negatives": 0}
    if len(rated) >= 2:
        from .metrics.agreement import bootstrap_agreement, spearman

        summary["spearman"] = bootstrap_agreement(spearman, [rows[ln].similarity for ln in rated],
                                                  [by_line[ln].rating for ln in rated],
                                                  n_resamples=n_resamples, rng_seed=rng_seed).as_dict()
    else:
        summary["spearman"] = None
    summary["n_rated"] = len(rated)
    disagreements = []
    for ln, hh, pp in zip(binary, h, p):
        if hh != pp:
            lab, s = by_line[ln], rows[ln]
            disagreements.append({"line": ln, "item": s.item, "image": str(s.image) if s.image else None,
                                  "targets": s.targets,
                                  "human": lab.verdict or str(lab.label), "human_reading": lab.reading,
                                  "predicted_exact": pp, "similarity": s.similarity, "ocr_reading": s.ocr_text,
                                  "kind": "false positive" if pp else "false negative"})
    return {"scorer_id": sid, "model": model, **summary, "no_target_text": len(no_target),
            "missing": len(missing), "disagreements": disagreements}


def _ci(e: dict | None, digits: int = 2) -> str:
    if not e or e.get("value") is None or (isinstance(e["value"], float) and math.isnan(e["value"])):
        return "-"
    lo, hi = e["low"], e["high"]
    rng = "" if lo is None or (isinstance(lo, float) and math.isnan(lo)) else f" [{lo:.{digits}f}, {hi:.{digits}f}]"
    return f"{e['value']:.{digits}f}{rng}"


def format_agreement(result: dict[str, Any]) -> str:
    """The per-scorer table printed by the CLI."""
    header = ["scorer", "n", "accuracy [95% CI]", "kappa [95% CI]", "spearman [95% CI]", "FP", "FN", "no target",
              "missing"]
    rows = [[s["model"], str(s["n"]), _ci(s["accuracy"]), _ci(s["kappa"]), _ci(s["spearman"]),
             str(s["false_positives"]), str(s["false_negatives"]), str(s["no_target_text"]), str(s["missing"])]
            for s in result["scorers"]]
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header] + rows]
    if result["unmatched_label_lines"]:
        lines.append(f"labels matching no image: {len(result['unmatched_label_lines'])} (lines "
                     f"{', '.join(map(str, result['unmatched_label_lines'][:10]))})")
    lines.append("prediction: lenient text_exact; human: label, else verdict correct -> 1, other verdicts -> 0")
    lines += format_judges(result.get("judges", []))
    return "\n".join(lines)


def _thumb(path: str | None, side: int = 220) -> str:
    if not path:
        return ""
    try:
        from PIL import Image

        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((side, side))
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=82)
        return f'<img src="data:image/jpeg;base64,{base64.b64encode(buf.getvalue()).decode()}" alt="">'
    except OSError:
        return "(image unreadable)"


def render_html(result: dict[str, Any]) -> str:
    """A self-contained page: the per-scorer figures, then each scorer's disagreeing images."""
    esc = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>evalsuite agreement</title><style>",
             "body{font-family:system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 20px}"
             "td,th{border:1px solid #ccc;padding:6px 10px;text-align:left;vertical-align:top}th{background:#f3f3f3}"
             "pre{white-space:pre-wrap;margin:0;font-size:13px}.fp{color:#b00020;font-weight:600}"
             ".fn{color:#8a5a00;font-weight:600}img{max-width:220px;border:1px solid #ddd}td.num{white-space:nowrap}",
             "</style></head><body>", "<h1>Agreement with human labels</h1>",
             f"<p>source: {esc(result['source'])} ({esc(result['kind'])}); labels: {esc(result['labels'])} "
             f"({result['n_labels']} lines, {len(result['unmatched_label_lines'])} matching no image). "
             f"Prediction: lenient text_exact. Human: {esc(result['label_mapping'])}. 95% bootstrap CIs over images "
             f"({result['n_resamples']} resamples, RNG seed {result['rng_seed']}).</p>",
             "<table><tr><th>scorer</th><th>n</th><th>accuracy</th><th>Cohen's kappa</th><th>Spearman (similarity vs rating)"
             "</th><th>false positives</th><th>false negatives</th><th>no target text</th><th>missing</th></tr>"]
    for s in result["scorers"]:
        parts.append(f"<tr><td>{esc(s['model'])}</td><td>{s['n']}</td><td class='num'>{_ci(s['accuracy'])}</td>"
                     f"<td class='num'>{_ci(s['kappa'])}</td><td class='num'>{_ci(s['spearman'])}</td>"
                     f"<td>{s['false_positives']}</td>"
                     f"<td>{s['false_negatives']}</td><td>{s['no_target_text']}</td><td>{s['missing']}</td></tr>")
    parts.append("</table>")
    for s in result["scorers"]:
        parts.append(f"<h2>{esc(s['model'])}: {len(s['disagreements'])} disagreement(s)</h2>")
        if not s["disagreements"]:
            parts.append("<p>none</p>")
            continue
        parts.append("<table><tr><th>image</th><th>item</th><th>outcome</th><th>requested text</th><th>OCR reading</th>"
                     "<th>human reading</th></tr>")
        for d in s["disagreements"]:
            cls = "fp" if d["predicted_exact"] else "fn"
            parts.append(f"<tr><td>{_thumb(d['image'])}</td><td>{esc(d['item'])}<br>label line {d['line']}</td>"
                         f"<td><span class='{cls}'>{esc(d['kind'])}</span><br>human: {esc(d['human'])}<br>"
                         f"similarity {d['similarity']:.2f}</td>"
                         f"<td><pre>{esc(chr(10).join(d.get('targets') or []))}</pre></td>"
                         f"<td><pre>{esc(d['ocr_reading'] or '')}</pre></td>"
                         f"<td><pre>{esc(d['human_reading'] or '')}</pre></td></tr>")
        parts.append("</table>")
    parts.append(judges_html(result.get("judges", [])))
    parts.append("</body></html>")
    return "\n".join(parts)
