"""Agreement with human labels: pure functions on hand-computed cases, `agree` on a run and on an image folder."""

import json
import math

import pytest
from PIL import Image

from evalsuite.metrics.agreement import (VERDICT_LABEL, accuracy, agreement_summary, bootstrap_agreement, cohen_kappa,
                                         spearman)
from tests.conftest import cli_env, run_cli


def test_accuracy_kappa_spearman_hand_computed():
    assert accuracy([1, 0, 1, 1], [1, 0, 0, 1]) == 0.75
    # p_o = 3/4; marginals human 1/2, predicted 1/4 -> p_e = 1/2*1/4 + 1/2*3/4 = 1/2; kappa = (3/4-1/2)/(1/2)
    assert cohen_kappa([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(0.5)
    assert cohen_kappa([1, 0, 1, 0], [0, 1, 0, 1]) == pytest.approx(-1.0)
    assert cohen_kappa([1, 1, 1], [1, 1, 1]) == 1.0            # one label throughout, full agreement
    assert math.isnan(cohen_kappa([], []))
    # no ties: 1 - 6*sum(d^2)/(n(n^2-1)) = 1 - 12/60
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    # ties share the mean rank: ranks (1.5, 1.5, 3) vs (1, 2, 3): r = 1.5 / sqrt(1.5 * 2)
    assert spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(1.5 / math.sqrt(3.0))
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3])) and math.isnan(spearman([1], [2]))
    with pytest.raises(ValueError):
        accuracy([1, 0], [1])
    assert VERDICT_LABEL == {"correct": 1, "minor-errors": 0, "garbled": 0, "no-text": 0}


def test_bootstrap_ci_and_summary():
    h, p = [1, 1, 0, 0, 1, 0, 1, 0], [1, 0, 0, 0, 1, 0, 1, 1]
    e = bootstrap_agreement(accuracy, h, p, n_resamples=500, rng_seed=3)
    assert e.value == 0.75 and e.low <= 0.75 <= e.high and 0.0 <= e.low and e.high <= 1.0
    assert e == bootstrap_agreement(accuracy, h, p, n_resamples=500, rng_seed=3)      # deterministic
    s = agreement_summary(h, p, n_resamples=200)
    assert s["n"] == 8 and s["false_positives"] == 1 and s["false_negatives"] == 1 and s["human_positive"] == 4
    assert s["kappa"]["value"] == pytest.approx(0.5)   # p_o 3/4, p_e 1/2
    # accuracy's interval: continuity-corrected Wilson (Newcombe method 4), 6/8 -> [0.3558, 0.9555] by hand (z = 1.96)
    assert s["accuracy"]["method"] == "wilson-cc" and s["accuracy"]["value"] == 0.75
    assert s["accuracy"]["low"] == pytest.approx(0.3558, abs=5e-4) and s["accuracy"]["high"] == pytest.approx(0.9555, abs=5e-4)
    perfect = agreement_summary([1, 0] * 10, [1, 0] * 10)["accuracy"]        # 20/20: never [1, 1]
    assert perfect["value"] == 1.0 and perfect["high"] == 1.0 and 0.75 < perfect["low"] < 0.9


def _labels(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_agree_on_a_scored_run(scored_demo_run, tmp_path):
    import evalsuite
    from evalsuite.runfolder import RunFolder

    rf = RunFolder(scored_demo_run)
    prompts = rf.prompts()
    rows, flipped = [], None
    for entry, rec in rf.records():
        verdict = "correct" if rec.backend == "reference" else "garbled"
        if rec.backend != "reference" and prompts[rec.prompt_id].target_text and flipped is None:
            verdict, flipped = "correct", (rec.backend, rec.prompt_id, rec.seed)   # a label the metric contradicts
        if rec.backend == "reference" and rec.seed == 1:
            rows.append({"image_sha256": rec.image_sha256, "verdict": verdict, "reading": "as rendered"})
        elif rec.backend == "reference":
            rows.append({"image": rec.image, "label": 1})
        else:
            rows.append({"backend": rec.backend, "prompt_id": rec.prompt_id, "seed": rec.seed, "verdict": verdict})
    rows.append({"backend": "nobody", "prompt_id": "x", "seed": 0, "rating": 2})
    res = evalsuite.agree(scored_demo_run, _labels(tmp_path / "labels.jsonl", rows), out=tmp_path / "out",
                          n_resamples=300, progress=False)
    s = next(x for x in res["scorers"] if x["model"] == "rapidocr")
    # 12 text items (6 reference exact, 6 noise not), one noise item labelled correct: 11/12 agree
    assert s["n"] == 12 and s["accuracy"]["value"] == pytest.approx(11 / 12)
    # human 7 ones / 5 zeros, predicted 6 / 6: p_e = 7/12*6/12 + 5/12*6/12 = 1/2; kappa = (11/12 - 1/2)/(1/2)
    assert s["kappa"]["value"] == pytest.approx(5 / 6)
    assert s["false_positives"] == 0 and s["false_negatives"] == 1
    assert s["no_target_text"] == sum(1 for e, r in rf.records() if not prompts[r.prompt_id].target_text)
    assert res["unmatched_label_lines"] == [len(rows)]
    d = s["disagreements"][0]
    assert d["item"] == f"{flipped[0]}/{flipped[1]}/s{flipped[2]}" and d["kind"] == "false negative"
    page = (tmp_path / "out" / "agreement.html").read_text(encoding="utf-8")
    assert "false negative" in page and "data:image/jpeg;base64," in page
    assert json.loads((tmp_path / "out" / "agreement.json").read_text())["scorers"][0]["n"] == 12


def test_agree_on_an_image_folder_and_bad_labels(tmp_path):
    from evalsuite.backends.reference import font_paths, render_text

    folder = tmp_path / "imgs"
    (folder / "images").mkdir(parents=True)
    font = font_paths()[0]
    render_text(["GRAND OPENING"], 512, 256, font).save(folder / "images" / "a.png")
    render_text(["FRESH BREAD"], 512, 256, font).save(folder / "images" / "b.png")
    Image.new("RGB", (256, 256), (246, 244, 238)).save(folder / "images" / "c.png")
    manifest = _labels(folder / "manifest.jsonl", [
        {"id": "a", "file": "images/a.png", "target_text": ["GRAND OPENING"], "verdict_human": "correct",
         "legible_text_human": "GRAND OPENING"},
        {"id": "b", "file": "images/b.png", "target_text": ["FRESH BREAD"], "verdict_human": "correct"},
        {"id": "c", "file": "images/c.png", "target_text": [], "verdict_human": "no-text"}])
    r = run_cli("agree", folder, "--labels", manifest, "--ocr", "rapidocr", "--out", tmp_path / "o", "--no-progress",
                env=cli_env())
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("rapidocr"))
    assert line.split()[1] == "2" and "1.00" in line
    res = json.loads((tmp_path / "o" / "agreement.json").read_text())
    assert res["scorers"][0]["no_target_text"] == 1 and res["scorers"][0]["false_positives"] == 0
    for bad, field in (({"image": "a.png", "verdict": "great"}, "'verdict'"), ({"image": "a.png", "label": 2}, "'label'"),
                       ({"image_sha256": "abc", "label": 1}, "'image_sha256'"), ({"verdict": "correct"}, "no key")):
        lf = _labels(tmp_path / "bad.jsonl", [{"image": "a.png", "label": 1}, bad])
        r = run_cli("agree", folder, "--labels", lf, "--no-progress", env=cli_env())
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert "bad.jsonl: line 2" in r.stderr and field in r.stderr


def test_targets_without_letters_are_stored_missing_with_the_reason(tmp_path):
    import evalsuite

    (tmp_path / "p.yaml").write_text(
        "name: symbols\nprompts:\n"
        "  - id: amp\n    prompt: 'a sign with an ampersand'\n    category: text\n    target_text: ['&']\n"
        "  - id: open\n    prompt: 'a sign that says OPEN & CO'\n    category: text\n    target_text: ['OPEN', '&']\n",
        encoding="utf-8")
    evalsuite.run("reference", str(tmp_path / "p.yaml"), seeds=[0], run_dir=tmp_path / "r", progress=False,
                  log=lambda m: None, scorers="ocr")
    df = evalsuite.load_scores(tmp_path / "r")
    amp = df[(df.prompt_id == "amp") & (df.metric == "text_exact")]
    assert len(amp) == 2 and amp["value"].isna().all()
    assert amp["missing_reason"].str.contains("no letter or digit").all()
    assert df[(df.prompt_id == "amp") & (df.metric == "ocr_chars")]["value"].notna().all()
    opn = df[(df.prompt_id == "open") & (df.metric == "text_exact") & (df.variant == "lenient")]
    assert opn["value"].tolist() == [1.0] and opn["missing_reason"].isna().all()
    agg = evalsuite.aggregate(tmp_path / "r")
    te = agg[(agg.metric == "text_exact") & (agg.variant == "lenient")].iloc[0]
    assert te["n_prompts"] == 1 and te["n_missing"] == 1 and "no letter or digit" in te["missing_reasons"]
