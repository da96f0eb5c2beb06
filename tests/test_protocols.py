"""`run --protocol geneval|dpg` end to end offline, the DPG-Bench importer on a file in the original CSV format, and
DPG's scoring on hand-made judge answers written through ScoreStore in the vqa scorer's detail format (every
expected figure worked out by hand from compute_dpg_bench.py's logic)."""

import csv
import io
import json

import pytest

from evalsuite.cli import main
from evalsuite.metrics import dpg as D
from test_geneval import tiny_detector  # noqa: F401  (the miniature Mask2Former fixture)
from test_scoring_clip import tiny_clip  # noqa: F401  (the random-weight open_clip fixture)

HEADER = ["item_id", "text", "keywords", "proposition_id", "dependency", "category_broad", "category_detailed",
          "tuple", "question_natural_language"]
ROWS = [
    ["itemA", "A red cat sits on a sofa, calm.", "cat,sofa", "1", "0", "entity", "whole", "entity - whole (cat)",
     "Is there a cat?"],
    ["itemA", "A red cat sits on a sofa, calm.", "cat,sofa", "2", "0", "entity", "whole", "entity - whole (sofa)",
     "Is there a sofa?"],
    ["itemA", "A red cat sits on a sofa, calm.", "cat,sofa", "3", "1", "attribute", "color",
     "attribute - color (cat, red)", "Is the cat red?"],
    ["itemA", "A red cat sits on a sofa, calm.", "cat,sofa", "4", "1,2", "relation", "spatial",
     "relation - spatial (cat, sofa, on)", "Is the cat on the sofa?"],
    ["itemB", "Two fluffy dogs.", "dog", "1", "0", "entity", "whole", "entity - whole (dog)", "Is there a dog?"],
    ["itemB", "Two fluffy dogs.", "dog", "2", "1", "attribute", "texture", "attribute - texture (dog, fluffy)",
     "Is the dog fluffy?"],
    ["itemB", "Two fluffy dogs.", "dog", "3", "2", "other", "count", "other - count (dog, ==2)",
     "Are there two dogs?"],
    ["itemC", "A kettle.", "kettle", "1", "0", "entity", "whole", "entity - whole (kettle)", "Is there a kettle?"],
]


def dpg_csv(tmp_path, rows=ROWS):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(HEADER)
    w.writerows(rows)
    f = tmp_path / "dpg_bench.csv"
    f.write_text(buf.getvalue(), encoding="utf-8")
    return f


def test_dpg_importer_questions_and_dependencies(tmp_path):
    from evalsuite.importers import import_dpg

    ps = import_dpg(dpg_csv(tmp_path))
    assert [p.id for p in ps] == ["itemA", "itemB", "itemC"]
    a = ps[0]
    assert a.prompt == "A red cat sits on a sofa, calm." and a.category == "dpg"
    assert [(q.id, q.depends_on, q.category, q.subcategory) for q in a.questions] == [
        ("1", [], "entity", "whole"), ("2", [], "entity", "whole"), ("3", ["1"], "attribute", "color"),
        ("4", ["1", "2"], "relation", "spatial")]
    assert a.questions[3].text == "Is the cat on the sofa?"


def test_dpg_importer_errors_name_file_line_field(tmp_path):
    from evalsuite.errors import EvalsuiteError
    from evalsuite.importers import import_dpg

    bad = [r[:] for r in ROWS]
    bad[2][4] = "one"
    with pytest.raises(EvalsuiteError, match=r"dpg_bench.csv: line 4: field 'proposition_id'/'dependency'"):
        import_dpg(dpg_csv(tmp_path, bad))
    bad = [r[:] for r in ROWS]
    bad[2][4] = "7"
    with pytest.raises(EvalsuiteError, match=r"line 2 \(item_id 'itemA'\): question '3' depends on '7'"):
        import_dpg(dpg_csv(tmp_path, bad))


def test_dpg_gating_is_in_order_and_transitive():
    from evalsuite.importers import import_dpg  # noqa: F401  (the questions below are the importer's kind)
    from evalsuite.promptset import Question

    qs = [Question(id="1", text="a?"), Question(id="2", text="b?", depends_on=["1"]),
          Question(id="3", text="c?", depends_on=["2"])]
    # parent 1 "no" zeroes 2, and the zeroed 2 zeroes 3 although 3's own parent said "yes"
    assert D.gated_scores(qs, {"1": "no", "2": "yes", "3": "yes"}) == {"1": 0.0, "2": 0.0, "3": 0.0}
    assert D.image_score(qs, {"1": "yes", "2": "no", "3": "yes"}) == pytest.approx(1 / 3)
    assert D.prompt_score([1.0, 0.25, 0.75, 0.5]) == 0.625
    assert D.overall([0.625, 0.75]) == pytest.approx(68.75)


# seed -> answers (hand-made judge); itemC is never judged
ANSWERS = {
    "itemA": {0: dict.fromkeys("1234", "yes"),
              1: {"1": "no", "2": "yes", "3": "yes", "4": "yes"},     # 3 and 4 gated: 1/4
              2: {"1": "yes", "2": "yes", "3": "no", "4": "yes"},     # 3/4
              3: {"1": "yes", "2": "no", "3": "yes", "4": "yes"}},    # 4 gated: 2/4
    "itemB": {0: dict.fromkeys("123", "yes"), 1: dict.fromkeys("123", "yes"), 2: dict.fromkeys("123", "yes"),
              3: {"1": "no", "2": "yes", "3": "yes"}},                # all gated: 0
}


def write_hand_judged(run_dir, slug="vqa-hand-judge-0123456789", model="hand", identity=None, answers_of=None):
    """Detail files in the vqa scorer's format, through ScoreStore, for itemA and itemB (or what answers_of
    answers: (prompt id, seed) -> {question id: answer} or None), added to the registry."""
    from evalsuite.runfolder import RunFolder
    from evalsuite.store.scores import ScoreDetail, ScoreStore

    rf, store = RunFolder(run_dir), ScoreStore(run_dir)
    prompts = rf.prompts()
    store.prepare()
    reg = store.read_registry() if store.has_registry() else {}
    reg[slug] = {"scorer": "vqa", "model": model, "version": "vqa/v1", "identity": identity or {}, "engines": []}
    store.write_registry(reg)
    answers_of = answers_of or (lambda pid, seed: ANSWERS.get(pid, {}).get(seed))
    for entry, rec in rf.records():
        answers = answers_of(entry.prompt_id, entry.seed)
        if answers is None:
            continue
        p = prompts[entry.prompt_id]
        qs = [{"id": q.id, "text": q.text, "category": q.category, "subcategory": q.subcategory,
               "depends_on": q.depends_on, "p_yes": 1.0 if answers[q.id] == "yes" else 0.0, "answer": answers[q.id],
               "source": "text", "gated": False, "score": 0.0} for q in p.questions]
        store.write_detail(ScoreDetail(
            cache_key=f"{entry.key}{entry.seed}", scorer_id=slug, scorer="vqa", model=model, version="vqa/v1",
            image_sha256=rec.image_sha256, inputs={"prompt": p.prompt},
            first_item={"backend": entry.backend, "prompt_id": p.id, "seed": entry.seed}, values=[],
            details={"judge": {"kind": "hf", "model": model, "revision": None, "template": "t1"}, "questions": qs},
            scored_at="2026-01-01T00:00:00+00:00"))


def test_run_protocol_dpg_then_tables_from_judge_details(tmp_path, capsys):
    run_dir = tmp_path / "dpg-run"
    csv_path = dpg_csv(tmp_path)
    assert main(["run", "--protocol", "dpg", "--prompts", f"dpg:{csv_path}", "--backends", "dummy",
                 "-o", str(run_dir), "--no-progress", "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "DPG-Bench overall" in out and "missing" in out
    rec = json.loads((run_dir / "protocol.json").read_text())
    assert rec["protocol"] == "dpg" and rec["seeds"] == "0,1,2,3"
    write_hand_judged(run_dir)
    assert main(["protocol", str(run_dir)]) == 0
    summary = json.loads((run_dir / "protocol" / "summary.json").read_text())
    (row,) = summary["rows"]
    assert row["overall"]["mean"] == pytest.approx(68.75)          # (0.625 + 0.75) / 2
    assert row["overall"]["low"] < 68.75 < row["overall"]["high"]
    assert (row["n_prompts"], row["n_images"]) == (2, 8)
    assert row["missing"] == {"not judged by the vqa scorer (run `evalsuite score RUN_DIR --scorers vqa`)": 4}
    # raw answers of each prompt's last image (seed 3): entity 1 yes, 0 no (A) and 0 no (B)
    assert row["l1"] == pytest.approx({"entity": 100 / 3, "attribute": 100.0, "relation": 100.0, "other": 100.0})
    assert row["l2"]["entity - whole"] == pytest.approx(100 / 3) and row["l2"]["other - count"] == 100.0
    md = (run_dir / "protocol" / "summary.md").read_text()
    assert "74.65" in md and "83.84" in md and "| samples per prompt | 4 (a 2x2 grid) | 4 | yes |" in md


def test_protocol_flags_that_contradict_are_errors(tmp_path, capsys):
    assert main(["run", "--protocol", "geneval", "--prompts", "smoke", "--backends", "dummy",
                 "-o", str(tmp_path / "x"), "--dry-run"]) == 2
    assert "--protocol geneval sets the prompts" in capsys.readouterr().err
    assert main(["run", "--protocol", "geneval", "--scorers", "clip", "--backends", "dummy",
                 "-o", str(tmp_path / "x"), "--dry-run"]) == 2
    assert "scores with geneval; leave out --scorers" in capsys.readouterr().err
    assert main(["run", "--protocol", "dpg", "--backends", "dummy", "-o", str(tmp_path / "x"), "--dry-run"]) == 2
    assert "give the benchmark's file as --prompts dpg:PATH" in capsys.readouterr().err


def test_run_protocol_geneval_with_the_miniature_detector(tmp_path, capsys, monkeypatch, tiny_detector):
    monkeypatch.setenv("EVALSUITE_GENEVAL_DETECTOR", str(tiny_detector))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run_dir = tmp_path / "ge"
    assert main(["run", "--protocol", "geneval", "--backends", "flux-tiny", "--limit", "3", "--num-seeds", "2",
                 "-o", str(run_dir), "--no-progress", "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "GenEval overall (0-1)" in out and "no scored image for tag(s) two_object" in out
    assert "random weights: numbers are noise, not quality" in out      # flux-tiny is noise: the row says so
    summary = json.loads((run_dir / "protocol" / "summary.json").read_text())
    (row,) = summary["rows"]
    assert row["tags"]["single_object"]["n_images"] == 6
    assert {s["setting"]: s["matches"] for s in summary["settings"]}["samples per prompt"] == "no"
    devs = json.loads((run_dir / "protocol.json").read_text())["deviations"]
    assert any("--limit 3" in d for d in devs) and any("seeds" in d for d in devs)
    # every image has GenEval's verdict and reason in its detail file
    from evalsuite.store.scores import ScoreStore

    store = ScoreStore(run_dir)
    (slug,) = [s for s, e in store.read_registry().items() if e["scorer"] == "geneval"]
    details = list(store.iter_details(slug))
    assert len(details) == 6 and all(isinstance(d["details"]["correct"], bool) for d in details)
    assert all(d["details"]["correct"] or d["details"]["reason"].startswith("expected") for d in details)


def test_geneval_colour_prompts_with_and_without_clip(tmp_path, capsys, monkeypatch, tiny_detector, tiny_clip):
    """Colour clauses need CLIP: the miniature open_clip through --clip-model judges them; the default ViT-L-14
    offline and not cached leaves exactly those images missing with the reason."""
    monkeypatch.setenv("EVALSUITE_GENEVAL_DETECTOR", str(tiny_detector))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")       # ViT-L-14 is not in the test machines' cache (as elsewhere)
    cfg, ckpt = tiny_clip
    judged = tmp_path / "judged"
    assert main(["run", "--protocol", "geneval", "--backends", "dummy", "--category", "colors", "--limit", "2",
                 "--clip-model", f"{cfg}:{ckpt}", "-o", str(judged), "--no-progress", "--no-report"]) == 0
    (row,) = json.loads((judged / "protocol" / "summary.json").read_text())["rows"]
    assert row["tags"]["colors"]["n_images"] == 8 and not row["missing"]
    plain = tmp_path / "plain"
    assert main(["run", "--protocol", "geneval", "--backends", "dummy", "--category", "colors", "--limit", "1",
                 "-o", str(plain), "--no-progress", "--no-report"]) == 0
    (row,) = json.loads((plain / "protocol" / "summary.json").read_text())["rows"]
    assert "colors" not in row["tags"] and "colour needs CLIP: CLIP weights ViT-L-14:openai unavailable" \
        in row["missing"]["colors"]
    capsys.readouterr()


def test_geneval_without_detector_weights_is_missing_with_the_reason(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EVALSUITE_GENEVAL_DETECTOR", "nobody-org/no-such-mask2former")   # never in any cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run_dir = tmp_path / "nodet"
    assert main(["run", "--protocol", "geneval", "--backends", "dummy", "--limit", "2", "-o", str(run_dir),
                 "--no-progress", "--no-report"]) == 0
    capsys.readouterr()
    (row,) = json.loads((run_dir / "protocol" / "summary.json").read_text())["rows"]
    assert row["tags"] == {} and row["overall"] is None
    assert "8 image(s) missing: GenEval detector nobody-org/no-such-mask2former unavailable " \
           "(offline, not in the local cache)" in row["missing"]["single_object"]


def test_protocol_from_a_config_file_and_its_contradictions(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("protocol: geneval\nprompts: smoke\nbackends: [dummy]\n")
    assert main(["run", "--config", str(cfg), "-o", str(tmp_path / "x"), "--dry-run"]) == 2
    assert "--protocol geneval sets the prompts" in capsys.readouterr().err


def test_run_protocol_dpg_judged_by_the_miniature_vqa_judge(tmp_path, capsys):
    """The whole DPG path with the real vqa scorer: a miniature random-weight Qwen2.5-VL judge loaded through
    from_pretrained answers every question of every image; the table is recomputed here from the stored answers
    with DPG's rule (random weights: the figure tests the plumbing, not a model)."""
    from evalsuite.judges.tiny import save_tiny_vlm
    from evalsuite.runfolder import RunFolder
    from evalsuite.store.scores import ScoreStore

    judge = save_tiny_vlm(tmp_path / "tiny-vlm")
    run_dir = tmp_path / "dpg-judged"
    assert main(["run", "--protocol", "dpg", "--prompts", f"dpg:{dpg_csv(tmp_path)}", "--backends", "dummy",
                 "--seeds", "0,1", "--judge", f"hf:path={judge}", "-o", str(run_dir), "--no-progress",
                 "--no-report"]) == 0
    capsys.readouterr()
    (row,) = json.loads((run_dir / "protocol" / "summary.json").read_text())["rows"]
    assert row["missing"] == {} and (row["n_prompts"], row["n_images"]) == (3, 6)
    prompts = RunFolder(run_dir).prompts()
    store = ScoreStore(run_dir)
    per_prompt: dict[str, list[float]] = {}
    (slug,) = [k for k, v in store.read_registry().items() if v["scorer"] == "vqa"]
    for d in store.iter_details(slug):
        p = prompts[d["first_item"]["prompt_id"]]
        answers = {q["id"]: q["answer"] for q in d["details"]["questions"]}
        assert set(answers) == {q.id for q in p.questions} and set(answers.values()) <= {"yes", "no"}
        per_prompt.setdefault(p.id, []).append(D.image_score(p.questions, answers))
    assert sorted(len(v) for v in per_prompt.values()) == [2, 2, 2]
    expected = D.overall([D.prompt_score(v) for v in per_prompt.values()])
    assert row["overall"]["mean"] == pytest.approx(expected)


def test_geneval_colour_items_without_clip_are_not_cached(tmp_path, capsys, monkeypatch, tiny_detector, tiny_clip):
    """CLIP not to be had on the first pass: the colour images are missing with the reason and no detail file is
    written for them, so a later `evalsuite score` with CLIP available (same CLIP identity) scores them."""
    from evalsuite.scoring import clip as C
    from evalsuite.scoring import load_scores

    monkeypatch.setenv("EVALSUITE_GENEVAL_DETECTOR", str(tiny_detector))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg, ckpt = tiny_clip
    real = C.load_clip

    def no_clip(*a, **k):
        raise C.ClipUnavailable("CLIP weights not here yet")

    monkeypatch.setattr(C, "load_clip", no_clip)
    run_dir = tmp_path / "retry"
    assert main(["run", "--protocol", "geneval", "--backends", "dummy", "--category", "colors", "--limit", "1",
                 "--clip-model", f"{cfg}:{ckpt}", "-o", str(run_dir), "--no-progress", "--no-report"]) == 0
    df = load_scores(run_dir)
    g = df[df["metric"] == "geneval"]
    assert len(g) == 4 and g["value"].isna().all()
    assert (g["missing_reason"] == "colour needs CLIP: CLIP weights not here yet").all()
    monkeypatch.setattr(C, "load_clip", real)
    assert main(["score", str(run_dir), "--scorers", "geneval", "--clip-model", f"{cfg}:{ckpt}",
                 "--no-progress"]) == 0
    capsys.readouterr()
    g = load_scores(run_dir)
    g = g[g["metric"] == "geneval"]
    assert len(g) == 4 and g["missing_reason"].isna().all() and g["value"].isin([0.0, 1.0]).all()


def test_geneval_tag_accuracy_is_the_mean_over_images_when_one_is_missing(monkeypatch):
    """GenEval's summary_scores.py: a tag's accuracy is the mean over its images, the overall the mean of the tag
    means. single_object: prompt p1 has 4 correct images, p2 one wrong image (3 missing): over images 4/5 = 0.8
    (the mean of prompt means would be (1 + 0) / 2 = 0.5). The five other tags: one correct image each, so the
    overall is (0.8 + 5) / 6 = 0.96667 (not (0.5 + 5) / 6 = 0.91667)."""
    import pandas as pd

    import evalsuite.scoring as S
    from evalsuite.metrics import geneval as G
    from evalsuite.protocol_tables import geneval_rows

    rows = [("p1", "single_object", 1.0, None)] * 4 + [("p2", "single_object", 0.0, None)]
    rows += [("p2", "single_object", float("nan"), "image failed")] * 3
    rows += [(f"q{i}", tag, 1.0, None) for i, tag in enumerate(G.TAGS) if tag != "single_object"]
    df = pd.DataFrame([{"backend": "b", "metric": "geneval", "prompt_id": p, "variant": t, "value": v,
                        "missing_reason": r} for p, t, v, r in rows])
    monkeypatch.setattr(S, "load_scores", lambda run_dir: df)
    (row,) = geneval_rows("unused")
    one = row["tags"]["single_object"]
    assert one["mean"] == pytest.approx(0.8) and (one["n_prompts"], one["n_images"]) == (2, 5)
    assert one["low"] <= 0.8 <= one["high"]
    assert row["overall"]["mean"] == pytest.approx(5.8 / 6)
    assert row["overall"]["low"] <= 5.8 / 6 <= row["overall"]["high"]
    assert row["missing"]["single_object"] == "3 image(s) missing: image failed"


def test_dpg_table_one_row_per_judge_never_mixed(tmp_path, capsys):
    """Two judges in one run: the hand judge of the test above (68.75 over itemA, itemB; itemC not judged) and
    judge B answering "yes" to everything of every image (each image 1: overall 100 over 3 prompts, 12 images).
    Each has its own row, named by its judge; the settings' judge row names both."""
    run_dir = tmp_path / "dpg-two"
    assert main(["run", "--protocol", "dpg", "--prompts", f"dpg:{dpg_csv(tmp_path)}", "--backends", "dummy",
                 "-o", str(run_dir), "--no-progress", "--no-report"]) == 0
    write_hand_judged(run_dir)
    qids = {"itemA": "1234", "itemB": "123", "itemC": "1"}
    write_hand_judged(run_dir, slug="vqa-judge-b-9876543210", model="org/judge-b",
                      identity={"scorer": "vqa", "judge": {"model": "org/judge-b", "revision": "abc123"}},
                      answers_of=lambda pid, seed: dict.fromkeys(qids[pid], "yes"))
    assert main(["protocol", str(run_dir)]) == 0
    capsys.readouterr()
    summary = json.loads((run_dir / "protocol" / "summary.json").read_text())
    by_judge = {r["judge"]: r for r in summary["rows"]}
    assert set(by_judge) == {"hand @ revision not recorded", "org/judge-b @ abc123"}
    hand, b = by_judge["hand @ revision not recorded"], by_judge["org/judge-b @ abc123"]
    assert hand["overall"]["mean"] == pytest.approx(68.75) and (hand["n_prompts"], hand["n_images"]) == (2, 8)
    assert b["overall"]["mean"] == pytest.approx(100.0) and (b["n_prompts"], b["n_images"]) == (3, 12)
    assert b["missing"] == {} and b["l1"] == pytest.approx(dict.fromkeys(["entity", "attribute", "relation",
                                                                          "other"], 100.0))
    (judge_row,) = [s for s in summary["settings"] if s["setting"] == "judge"]
    assert judge_row["this run"].startswith("hand @ revision not recorded; org/judge-b @ abc123")
    md = (run_dir / "protocol" / "summary.md").read_text()
    assert "| dummy | org/judge-b @ abc123 | 100.00 [" in md
