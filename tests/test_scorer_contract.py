"""The scorer contract and registry, the metric registry and the score store: a new scorer is one file plus one
registry line (scoring/blank.py is the one docs/architecture.md adds by following its recipe)."""

import ast
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import evalsuite
from evalsuite.errors import EvalsuiteError
from evalsuite.metrics import registry as R
from evalsuite.prompts import load_prompt_set
from evalsuite.scoring import ScoreOptions, make_scorers, parse_scorers
from evalsuite.scoring.registry import SCORERS, scorer_class
from evalsuite.store import ScoreDetail, ScoreStore

from conftest import REPO, cli_env, run_cli

QUIET = dict(progress=False, log=lambda m: None)


@pytest.fixture()
def folder_run(tmp_path):
    """Two imported images over the smoke set: one flat white (blank), one noise."""
    prompts = load_prompt_set("smoke").prompts[:2]
    src = tmp_path / "src"
    src.mkdir()
    Image.new("RGB", (64, 64), "white").save(src / f"{prompts[0].id}_0.png")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(src / f"{prompts[1].id}_0.png")
    d = tmp_path / "run"
    evalsuite.run(f"folder:{src},label=imported", "smoke", seeds=[0], limit=2, run_dir=d, score=False, **QUIET)
    return d, prompts


def test_blank_scorer_scores_caches_and_aggregates(folder_run):
    d, prompts = folder_run
    res = evalsuite.score(d, scorers="blank", **QUIET)
    assert res.summary() == "blank pixel-std: scored 2, cached 0"
    df = evalsuite.load_scores(d)
    vals = dict(zip(df["prompt_id"], df["value"]))
    assert set(df["metric"]) == {"image_blank"} and set(df["scorer"]) == {"blank"}
    assert vals == {prompts[0].id: 1.0, prompts[1].id: 0.0}
    agg = evalsuite.aggregate(d)
    row = agg[agg.metric == "image_blank"].iloc[0]
    assert row["unit"] == "%" and row["mean"] == pytest.approx(50.0) and row["ci_method"] == "wilson-t"
    # the detail file follows the store's schema and keeps the scorer's own details
    store = ScoreStore(d)
    key = df.loc[df.prompt_id == prompts[0].id, "cache_key"].iloc[0]
    detail = store.read_detail(res.units[0].slug, key)
    ScoreDetail.model_validate(detail)
    assert detail["details"]["pixel_std"] == 0.0 and detail["details"]["mean_level"] == 255.0
    assert store.detail_path(res.units[0].slug, key).is_file()
    # a rescore finds every detail file and computes nothing; the terminal table says there is no headline
    again = evalsuite.score(d, scorers="blank", **QUIET)
    assert again.summary() == "blank pixel-std: scored 0, cached 2"
    assert "backend" in again.text() and "imported" in again.text()


def test_blank_scorer_from_the_cli_beside_a_failed_image(folder_run):
    d, prompts = folder_run
    rec = next((d / "items" / "imported" / prompts[1].id).glob("*.json"))
    (d / json.loads(rec.read_text())["image"]).unlink()          # the image file gone: that item is missing
    r = run_cli("score", d, "--scorers", "blank", "--no-progress", env=cli_env())
    assert r.returncode == 0, r.stderr
    assert "blank pixel-std: scored 1, cached 0, errors 1" in r.stdout
    df = evalsuite.load_scores(d)
    missing = df[df.value.isna()]
    assert list(missing["prompt_id"]) == [prompts[1].id]
    assert "image file missing" in missing["missing_reason"].iloc[0]
    bad = run_cli("score", d, "--scorers", "blank,nope", env=cli_env())
    assert bad.returncode == 2 and "unknown scorer 'nope'; choose from clip, ocr, blank" in bad.stderr


def test_every_registered_scorer_follows_the_contract():
    smoke = load_prompt_set("smoke").prompts
    with_text = next(p for p in smoke if p.target_text)
    with_negs = next(p for p in smoke if p.negatives)
    assert parse_scorers(None) == ("clip", "ocr")
    for kind in SCORERS:
        cls = scorer_class(kind)
        assert cls.kind == kind
        for p in (with_text, with_negs):
            for unit in make_scorers((kind,), ScoreOptions(ocr="rapidocr", clip_model="ViT-B-32:openai")):
                assert unit.scorer == kind and unit.slug.startswith(kind + "-")
                # every metric a scorer produces is described once, in the metric registry
                for metric, variant in unit.metrics_for(p):
                    assert metric in R.METRICS, (kind, metric)
                    assert R.METRICS[metric].scorer == kind
                # identity -> cache key: the inputs decide, a registry entry gives the same identity back
                back = cls.from_registry(unit.registry_entry())
                assert back.slug == unit.slug and back.cache_key("0" * 64, p) == unit.cache_key("0" * 64, p)


def test_metric_registry_facts():
    assert R.title("text_exact", "strict") == "text accuracy, strict (%)"
    assert R.title("prompt_following") == "prompt following (% accurate)"
    assert R.rate_metrics() == {"text_exact", "prompt_following", "word_recall", "text_duplicated", "extra_text",
                                "text_garbled", "image_blank", "geneval", "question_score", "prompt_following_vqa",
                                "question_acc", "judge_text_answers"}
    assert R.title("question_acc", "count") == "question accuracy, count (%)"
    assert "vqa_score" in R.bounded_metrics() and R.info("vqa_score").scale == 1.0
    assert {"text_similarity", "cvtg_ned", "longtext_word_acc"} <= R.bounded_metrics()
    assert "oneig_ed" not in R.bounded_metrics() and R.info("oneig_ed").higher_is_better is False
    assert R.info("clip_score").unit == "points" and R.info("clip_score").default_margin == 0.5
    unknown = R.info("made_up")
    assert unknown.title == "made_up" and not unknown.bounded and unknown.scale == 1.0


def test_options_are_checked_before_anything_runs():
    with pytest.raises(EvalsuiteError, match="--clip-batch-size must be at least 1"):
        evalsuite.scoring.validate_options("clip", None, None, 0)
    with pytest.raises(EvalsuiteError, match="unknown OCR engine 'tess'"):
        evalsuite.scoring.validate_options("ocr", "tess", None)


def _module_imports(path: Path) -> list[tuple[str, list[str]]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("evalsuite")):
            out.append((node.module or "", [a.name for a in node.names]))
    return out


def test_no_module_imports_another_modules_private_names():
    bad = []
    for p in sorted((REPO / "evalsuite").rglob("*.py")):
        for module, names in _module_imports(p):
            bad += [f"{p.relative_to(REPO)}: from {module} import {n}" for n in names
                    if n.startswith("_") and not n.startswith("__")]
    assert bad == []


def test_report_reads_score_files_only_through_the_store():
    """No module but the store builds a path under scores/ (the layout lives in store/scores.py)."""
    offenders = []
    for p in sorted((REPO / "evalsuite").rglob("*.py")):
        rel = p.relative_to(REPO).as_posix()
        if rel.startswith("evalsuite/store/"):
            continue
        text = p.read_text(encoding="utf-8")
        if any(s in text for s in ('"scorers.json"', '"scores.parquet"', '"table.txt.json"', '"scores/', "/ SCORES_DIR")):
            offenders.append(rel)
    assert offenders == []


def test_a_run_folder_written_before_the_scorer_contract_reads_resumes_scores_and_reports(tmp_path):
    """tests/data/run_v0_1_0: written by evalsuite 0.1.0 before the store and scorer registry (reference backend,
    smoke --limit 3, one seed, 256x256, --scorers ocr with rapidocr). The only edit: run.json's prompt_set.source,
    an absolute path on the machine that wrote it, replaced by the set's name."""
    import shutil

    import pandas as pd

    d = tmp_path / "old"
    shutil.copytree(REPO / "tests" / "data" / "run_v0_1_0", d)
    stored = pd.read_parquet(d / "scores" / "scores.parquet")
    assert stored.equals(evalsuite.load_scores(d))
    res = evalsuite.run("reference", "smoke", limit=3, seeds=[0], size="256x256", run_dir=d, scorers="ocr",
                        report=False, **QUIET)
    assert res.scores.summary() == "ocr rapidocr: scored 0, cached 3"          # every old detail file is found
    assert pd.read_parquet(d / "scores" / "scores.parquet").equals(stored)
    evalsuite.score(d, scorers="blank", **QUIET)                               # a new scorer adds rows beside
    df = evalsuite.load_scores(d)
    assert set(df["scorer"]) == {"ocr", "blank"} and (df[df.scorer == "blank"]["value"] == 0.0).all()
    from evalsuite.report import write_report

    write_report([d], tmp_path / "rep", progress=False, log=lambda m: None)
    html = (tmp_path / "rep" / "report.html").read_text(encoding="utf-8")
    assert "text accuracy (%)" in html and "image_blank" in html
