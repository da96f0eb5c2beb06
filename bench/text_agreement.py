"""Text metric vs a human reader on real generated images: agreement, Cohen's kappa, false positives.

    python bench/text_agreement.py [DEV_DIR] [--configs default,easyocr,rapidocr,easyocr+rapidocr]
                                   [--cache DIR] [--resamples 2000]

DEV_DIR (default ../shared/data/real-text-dev relative to the repository root) holds manifest.jsonl
(one image per line: id, file, target_text, verdict_human, legible_text_human, ...) and the images.
Read only. For each OCR configuration (`default` is what `evalsuite score` does with no --ocr; a
config of several engines is their per-target best-of, as `--ocr a,b` scores it) every image is read
through the scorer's own code path (evalsuite.scoring.ocr.read_boxes, metrics.text.item_text_metrics)
and its lenient text_exact is compared with the human label: verdict `correct` -> 1; `minor-errors`,
`garbled`, `no-text` -> 0. Images whose prompt asks for no text are left out of the agreement and
counted separately (with the characters OCR read on them).

Prints, per configuration: agreement (95% Wilson CI) and kappa (95% bootstrap CI, resampling images), false
positives (called exact, a person says wrong), false negatives, OCR seconds per image (this
machine, one process); then the per-image outcome table. --cache DIR keeps each engine's boxes per
(engine identity, image sha256) so that a rerun only redoes the matching.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from _common import ROOT, machine

from evalsuite.metrics.agreement import VERDICT_LABEL, agreement_summary  # noqa: E402
from evalsuite.metrics.text import Box, Reading, item_text_metrics  # noqa: E402
from evalsuite.runfolder import stable_hash  # noqa: E402
from evalsuite.scoring.ocr import engine_identity, parse_engines, read_boxes  # noqa: E402


def load_manifest(dev: Path) -> list[dict]:
    items = []
    for n, line in enumerate((dev / "manifest.jsonl").read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        d = json.loads(line)
        for f in ("id", "file", "target_text", "verdict_human"):
            if f not in d:
                sys.exit(f"{dev / 'manifest.jsonl'}: line {n}: missing field '{f}'")
        if d["verdict_human"] not in VERDICT_LABEL:
            sys.exit(f"{dev / 'manifest.jsonl'}: line {n}: field 'verdict_human': unknown verdict {d['verdict_human']!r}")
        items.append(d)
    return items


def engine_boxes(engine: str, path: Path, cache: Path | None, times: dict) -> list[Box]:
    from PIL import Image

    data = path.read_bytes()
    key = stable_hash({"engine": engine_identity(engine), "image": hashlib.sha256(data).hexdigest()})
    cp = cache / f"{engine}-{key[:24]}.json" if cache else None
    if cp and cp.is_file():
        d = json.loads(cp.read_text(encoding="utf-8"))
        times.setdefault(engine, []).append(d["seconds"])
        return [Box.from_dict(b) for b in d["boxes"]]
    with Image.open(path) as im:
        image = im.convert("RGB")
    t = time.perf_counter()
    boxes = read_boxes(engine, image)
    dt = time.perf_counter() - t
    times.setdefault(engine, []).append(dt)
    if cp:
        cp.parent.mkdir(parents=True, exist_ok=True)
        cp.write_text(json.dumps({"boxes": [b.to_dict() for b in boxes], "seconds": dt}), encoding="utf-8")
    return boxes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dev", nargs="?", default=str(ROOT.parent / "shared" / "data" / "real-text-dev"))
    ap.add_argument("--configs", default="default,easyocr,rapidocr,easyocr+rapidocr",
                    help="OCR configurations, comma-separated; engines of one configuration joined by +")
    ap.add_argument("--cache", default=None, help="folder keeping OCR boxes between runs")
    ap.add_argument("--resamples", type=int, default=2000)
    a = ap.parse_args()
    dev = Path(a.dev)
    if not (dev / "manifest.jsonl").is_file():
        sys.exit(f"{dev}: no manifest.jsonl (give the dev set's folder as the first argument)")
    items = load_manifest(dev)
    cache = Path(a.cache) if a.cache else None
    default = parse_engines(None)
    configs = []
    for c in a.configs.split(","):
        c = c.strip()
        if c:
            configs.append((c, default if c == "default" else parse_engines(c.split("+"))))
    print(f"machine: {machine()}")
    print(f"dev set: {len(items)} images, {sum(bool(d['target_text']) for d in items)} ask for text; "
          f"default OCR: {'+'.join(default)}")
    times: dict[str, list[float]] = {}
    outcome: dict[str, dict[str, tuple[int, float, str]]] = {}
    for name, engines in configs:
        outcome[name] = {}
        for d in items:
            readings = [Reading.from_boxes(e, engine_boxes(e, dev / d["file"], cache, times)) for e in engines]
            values, det = item_text_metrics(d["target_text"], readings)
            if d["target_text"]:
                exact = values[("text_exact", "lenient")]
                outcome[name][d["id"]] = (int(exact == 1.0), values[("text_similarity", "lenient")],
                                          det["per_engine"][det["main_engine"]]["raw_text"])
            else:
                outcome[name][d["id"]] = (-1, values[("ocr_chars", "lenient")], "")
    text_items = [d for d in items if d["target_text"]]
    human = [VERDICT_LABEL[d["verdict_human"]] for d in text_items]
    print()
    print(f"{'configuration':<22} {'agreement [95% CI]':<22} {'kappa [95% CI]':<22} {'FP':>3} {'FN':>3} "
          f"{'OCR s/image':>11}  no-text images: OCR chars")
    for name, engines in configs:
        pred = [outcome[name][d["id"]][0] for d in text_items]
        s = agreement_summary(human, pred, n_resamples=a.resamples)
        acc, kap = s["accuracy"], s["kappa"]
        sec = sum(sum(times.get(e, [0.0])) / max(len(times.get(e, [])), 1) for e in engines)
        blanks = ", ".join(f"{outcome[name][d['id']][1]:.0f}" for d in items if not d["target_text"])
        label = f"{name} ({'+'.join(engines)})" if name == "default" else name
        print(f"{label:<22} {acc['value']:.3f} [{acc['low']:.2f}, {acc['high']:.2f}]     "
              f"{kap['value']:.3f} [{kap['low']:.2f}, {kap['high']:.2f}]     {s['false_positives']:>3} "
              f"{s['false_negatives']:>3} {sec:>11.2f}  {blanks}")
    print(f"\n(n = {len(text_items)} text images, {sum(human)} correct by the human reader; "
          f"{len(items) - len(text_items)} no-text images left out of the agreement; "
          "s/image from cache when --cache had them)")
    print()
    names = [n for n, _ in configs]
    print(f"{'image':<30} {'human':<13} " + " ".join(f"{n[:16]:<16}" for n in names))
    for d in text_items:
        cells = []
        for n in names:
            p, sim, _ = outcome[n][d["id"]]
            mark = "" if p == VERDICT_LABEL[d["verdict_human"]] else (" FP" if p else " FN")
            cells.append(f"{'exact' if p else 'not'} {sim:.2f}{mark}".ljust(16))
        print(f"{d['id'][:30]:<30} {d['verdict_human']:<13} " + " ".join(cells))
    first = names[0]
    print(f"\nOCR reading ({first}) of the disagreements:")
    for d in text_items:
        p, _, raw = outcome[first][d["id"]]
        if p != VERDICT_LABEL[d["verdict_human"]]:
            print(f"  {d['id']}: target {d['target_text']!r}\n    read {raw!r}")


if __name__ == "__main__":
    main()
