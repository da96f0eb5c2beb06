"""The vqa scorer and its judges: normalisation and gating by hand, the miniature Qwen2.5-VL judge through
from_pretrained, a fake OpenAI-compatible endpoint (with and without log-probabilities), unavailable weights,
the cache key, a judge's blind spot, and the paired gate on question_score."""

import json
import math
from pathlib import Path

import pytest

import evalsuite
from evalsuite.errors import EvalsuiteError
from evalsuite.judges import make_judge, parse_judge
from evalsuite.judges.base import Answer, answer_from_logprobs, answer_from_text, parse_answer_text
from evalsuite.promptset import Prompt
from evalsuite.scoring import load_scores
from evalsuite.scoring.vqa import item_result
from tests.conftest import run_cli
from tests.fakes.common import FakeServer
from tests.fakes.vlm_fake import VlmFake

PROMPTS = """
name: q
prompts:
  - id: cube
    prompt: "A red cube to the left of a blue sphere"
    category: compositional
    questions:
      - {id: "1", text: "Is there a cube?", category: entity}
      - {id: "2", text: "Is the cube red?", category: attribute, depends_on: ["1"]}
      - {id: "3", text: "Is there a sphere?", category: entity}
      - {id: "4", text: "Is the cube to the left of the sphere?", category: relation, depends_on: ["1", "3"]}
  - id: beach
    prompt: "An empty beach with no people"
    category: compositional
    questions:
      - {id: "1", text: "Is there a beach?", category: entity}
      - {id: "2", text: "Are there no people on the beach?", category: negation, depends_on: ["1"]}
  - id: plain
    prompt: "A cat"
    category: compositional
"""


@pytest.fixture(scope="module")
def prompt_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("prompts") / "q.yaml"
    p.write_text(PROMPTS)
    return p


@pytest.fixture(scope="module")
def tiny_vlm_dir(tmp_path_factory):
    from evalsuite.judges.tiny import save_tiny_vlm

    return save_tiny_vlm(tmp_path_factory.mktemp("weights") / "tiny-vlm")


@pytest.fixture(scope="module")
def dummy_run(prompt_file, tmp_path_factory):
    d = tmp_path_factory.mktemp("runs") / "dummy"
    evalsuite.run("dummy", str(prompt_file), seeds=[0, 1], run_dir=d, progress=False, log=lambda m: None,
                  score=False, report=False)
    return d


def _copy(run, tmp_path, name="r"):
    import shutil

    d = tmp_path / name
    shutil.copytree(run, d)
    return d


def _vqa(df, metric, variant=""):
    return df[(df.scorer == "vqa") & (df.metric == metric) & (df.variant == variant)]


# ---- hand-computed values ----

def test_normalisation_over_yes_and_no_by_hand():
    a = answer_from_logprobs({"Yes": math.log(0.6), " yes": math.log(0.1), "No": math.log(0.2),
                              "maybe": math.log(0.1)}, "Yes")
    assert a.source == "logprobs" and a.answer == "yes"
    assert a.p_yes == pytest.approx(0.7 / 0.9)
    b = answer_from_logprobs([("No", math.log(0.5)), (" no", math.log(0.25)), ("yes", math.log(0.25))], "No")
    assert b.p_yes == pytest.approx(0.25) and b.answer == "no"
    c = answer_from_logprobs({"Maybe": -0.1}, "Maybe")          # neither: missing, never guessed
    assert c.p_yes is None and c.answer is None and "Maybe" in c.note
    assert [parse_answer_text(t) for t in ("Yes.", " no", "YES, it is", "Perhaps", "")] == ["yes", "no", "yes", None,
                                                                                           None]
    assert answer_from_text("No").p_yes == 0.0 and answer_from_text("No").source == "text"


def test_item_metrics_and_gating_by_hand():
    p = Prompt.model_validate({"id": "x", "prompt": "p", "questions": [
        {"id": "1", "text": "a?", "category": "entity"},
        {"id": "2", "text": "b?", "category": "attribute", "depends_on": ["1"]},
        {"id": "3", "text": "c?", "category": "relation", "depends_on": ["2"]},
        {"id": "4", "text": "d?", "category": "entity"},
        {"id": "5", "text": "e?", "category": "negation"}]})
    ans = [Answer(0.7, "yes", "scores"), Answer(0.9, "yes", "scores"), Answer(0.2, "no", "scores"),
           Answer(0.8, "yes", "scores"), Answer(0.3, "no", "scores"), Answer(0.6, "yes", "scores")]
    values, det = item_result(p, ans, {"kind": "hf"})
    # q1 yes -> 1; q2 no -> 0; q3 yes but its parent q2 is no -> gated 0; q4 no -> 0; q5 yes -> 1
    assert values[("vqa_score", "")] == 0.7
    assert values[("question_score", "")] == pytest.approx(2 / 5)
    assert values[("prompt_following_vqa", "")] == 0.0
    assert values[("question_acc", "entity")] == pytest.approx(0.5)
    assert values[("question_acc", "attribute")] == 0.0 and values[("question_acc", "relation")] == 0.0
    assert values[("question_acc", "negation")] == 1.0
    q3 = det["questions"][2]
    assert q3 == {"id": "3", "text": "c?", "category": "relation", "subcategory": None, "depends_on": ["2"],
                  "p_yes": 0.8, "answer": "yes", "source": "scores", "gated": True, "score": 0.0}
    assert det["vqa"]["question"] == 'Does this figure show "p"? Please answer Yes or No.'
    # every question yes -> the prompt is followed
    yes = [Answer(0.9, "yes", "scores")] * 6
    assert item_result(p, yes, {})[0][("prompt_following_vqa", "")] == 1.0
    # one answer neither yes nor no: the question metrics are missing with the reason, vqa_score stays
    odd = yes[:3] + [Answer(None, None, "text", "answered 'blue'")] + yes[4:]
    v, d = item_result(p, odd, {})
    assert v[("vqa_score", "")] == 0.9 and math.isnan(v[("question_score", "")])
    assert "question 3" in d["missing_reason"] and "blue" in d["missing_reason"]


def test_judge_specs_are_checked(prompt_file, tmp_path):
    assert parse_judge(None).kind == "hf" and parse_judge(None).ref == "Qwen/Qwen2.5-VL-7B-Instruct"
    s = parse_judge("openai:http://127.0.0.1:9/v1,model=m,concurrency=3")
    assert (s.kind, s.ref, s.options) == ("openai", "http://127.0.0.1:9/v1", {"model": "m", "concurrency": "3"})
    for bad, words in [("gpt:x", "unknown judge kind"), ("hf:x,batchh=2", "did you mean 'batch'"),
                       ("hf:x,dtype=int3", "one of"), ("hf:x,batch=0", "positive"), ("openai:nowhere", "BASE_URL"),
                       ("hf:", "model id"), ("hf:path=/does/not/exist", "config.json"), ("hf:x,device=tpu", "device")]:
        with pytest.raises(EvalsuiteError, match=words):
            parse_judge(bad)
    r = run_cli("run", "--backends", "dummy", "--prompts", prompt_file, "--scorers", "vqa", "--judge", "gpt:x",
                "--run-dir", tmp_path / "r")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--judge 'gpt:x'" in r.stderr
    assert not (tmp_path / "r").exists()      # validated before anything is written



def test_endpoint_tokens_are_normalised_and_null_logprobs_skipped_by_hand():
    # "Yes." is yes: e^-0.1 / (e^-0.1 + e^-2.5) = 1 / (1 + e^-2.4) = 0.916827...
    a = answer_from_logprobs([("Yes.", -0.1), ("No", -2.5)], "Yes.")
    assert a.source == "logprobs" and a.answer == "yes" and a.p_yes == pytest.approx(1 / (1 + math.exp(-2.4)))
    # sentencepiece / byte-level pieces and punctuation: 0.5 + 0.1 yes, 0.2 + 0.1 no -> 0.6 / 0.9
    b = answer_from_logprobs([("\u2581Yes", math.log(0.5)), ("\u0120yes", math.log(0.1)), (" NO!", math.log(0.2)),
                              ("\u2581no,", math.log(0.1)), ("Yesterday", math.log(0.05))], "\u2581Yes")
    assert b.p_yes == pytest.approx(0.6 / 0.9) and b.answer == "yes"
    # null, non-finite and non-numeric log-probabilities are skipped, never a crash: 0.6 / (0.6 + 0.2)
    c = answer_from_logprobs([("Yes", None), ("yes", math.log(0.6)), ("No", math.log(0.2)), ("no", float("nan")),
                              (" No", float("inf")), (" yes", "x")], "yes")
    assert c.p_yes == pytest.approx(0.75) and c.source == "logprobs"
    # a positive logprob (rounding, or garbage) is probability 1, never an OverflowError: 2 / (2 + 0.25)
    e = answer_from_logprobs([("Yes", 1e-9), ("No", math.log(0.25)), ("yes", 1000.0)], "Yes")
    assert e.p_yes == pytest.approx(2 / 2.25)
    # no usable yes/no entry: the chosen token's text decides, labelled "text" (counted in judge_text_answers)
    d = answer_from_logprobs([("Yes", None), ("The", -0.1)], "\u2581No")
    assert (d.p_yes, d.answer, d.source) == (0.0, "no", "text")
    p = Prompt.model_validate({"id": "x", "prompt": "p",
                               "questions": [{"id": "1", "text": "a?", "category": "entity"}]})
    values, det = item_result(p, [answer_from_logprobs([("Yes", -0.1)], "Yes"), d], {})
    assert values[("judge_text_answers", "")] == 0.5 and det["questions"][0]["source"] == "text"


def test_read_choice_survives_a_null_message_and_null_logprobs():
    from types import SimpleNamespace as NS

    from evalsuite.judges.openai_compat import read_choice

    a = read_choice(NS(choices=[NS(message=None, logprobs=None)]))
    assert (a.p_yes, a.answer, a.source) == (None, None, "text")
    lp = NS(content=[NS(token="Yes", logprob=None, top_logprobs=[NS(token="Yes", logprob=None)])])
    b = read_choice(NS(choices=[NS(message=None, logprobs=lp)]))
    assert (b.p_yes, b.source) == (1.0, "text")        # every logprob null: the chosen token's text decides


def test_one_failed_request_fails_its_item_naming_the_questions():
    p = Prompt.model_validate({"id": "x", "prompt": "p", "questions": [
        {"id": "1", "text": "a?", "category": "entity"}, {"id": "2", "text": "b?", "category": "entity"}]})
    ok = Answer(0.9, "yes", "logprobs")
    why = item_result(p, [ok, Answer(None, None, "error", "TypeError: boom"), Answer(None, None, "error", "HTTP 500")],
                      {})
    assert why == "judge: 2 of 3 requests failed (question 1, question 2): TypeError: boom; HTTP 500"
    assert item_result(p, [Answer(None, None, "error", "x"), ok, ok], {}) == \
        "judge: 1 of 3 requests failed (the prompt question): x"


def test_vqa_question_is_t2v_metrics_template_exactly():
    from evalsuite.judges.base import TEMPLATE_VERSION, vqa_question

    # linzhiqiu/t2v_metrics, t2v_metrics/models/vqascore_models/qwen2vl_model.py (and the others): default
    # question_template = 'Does this figure show "{}"? Please answer Yes or No.'
    assert vqa_question("a red cube") == 'Does this figure show "a red cube"? Please answer Yes or No.'
    assert TEMPLATE_VERSION == "vqa-yn/v2"


# ---- the miniature local judge (same from_pretrained path as real weights) ----

def test_tiny_vlm_judge_p_yes_is_the_normalised_next_token_softmax(tiny_vlm_dir):
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    judge = make_judge(f"hf:path={tiny_vlm_dir},batch=2")
    imgs = [Image.new("RGB", (64, 64), c) for c in ((200, 20, 20), (20, 20, 200), (250, 250, 250))]
    qs = ["Is there a cat? Please answer yes or no.", "Is it red? Please answer yes or no.",
          "Does this figure show 'a dog'? Please answer yes or no."]
    batched = judge.answer(imgs, qs)
    assert all(a.source == "scores" and 0 < a.p_yes < 1 for a in batched)
    # independently: the model's own forward pass, one pair at a time, yes/no spellings summed by hand
    model = AutoModelForImageTextToText.from_pretrained(tiny_vlm_dir).eval()
    proc = AutoProcessor.from_pretrained(tiny_vlm_dir)
    tok = proc.tokenizer
    yes = {tok.convert_tokens_to_ids(t) for t in ("Yes", "yes", "YES") if t in tok.get_vocab()}
    no = {tok.convert_tokens_to_ids(t) for t in ("No", "no", "NO") if t in tok.get_vocab()}
    for im, q, a in zip(imgs, qs, batched):
        text = proc.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": q}]}],
                                        add_generation_prompt=True, tokenize=False)
        with torch.no_grad():
            probs = torch.softmax(model(**proc(text=[text], images=[im], return_tensors="pt")).logits[0, -1].float(), -1)
        y, n = float(probs[list(yes)].sum()), float(probs[list(no)].sum())
        assert a.p_yes == pytest.approx(y / (y + n), abs=1e-4)
    ident = judge.identity()
    assert ident["kind"] == "hf" and ident["model"].startswith("local:") and ident["template"] == "vqa-yn/v2"
    assert ident["dtype"] == "fp32"


def test_vqa_run_with_the_tiny_judge_fills_the_detail_format(dummy_run, tiny_vlm_dir, tmp_path):
    run = _copy(dummy_run, tmp_path)
    res = evalsuite.score(run, scorers="vqa", judge=f"hf:path={tiny_vlm_dir}", progress=False, log=lambda m: None)
    assert "vqa local:" in res.summary() and "scored 6" in res.summary()
    df = load_scores(run)
    assert len(_vqa(df, "vqa_score")) == 6 and _vqa(df, "vqa_score").value.notna().all()
    # question metrics only where the prompt has questions (no row for "plain")
    assert set(_vqa(df, "question_score").prompt_id) == {"cube", "beach"}
    assert set(df[(df.scorer == "vqa") & (df.metric == "question_acc")].variant) == {"entity", "attribute",
                                                                                    "relation", "negation"}
    row = _vqa(df, "question_score").iloc[0]
    d = evalsuite.scoring.load_detail(run, row.scorer_id, row.cache_key)["details"]
    assert set(d) >= {"judge", "vqa", "questions"}
    assert d["judge"]["kind"] == "hf" and d["judge"]["template"] == "vqa-yn/v2"
    assert d["vqa"]["source"] == "scores" and d["vqa"]["answer"] in ("yes", "no")
    assert set(d["questions"][0]) == {"id", "text", "category", "subcategory", "depends_on", "p_yes", "answer",
                                      "source", "gated", "score"}
    again = evalsuite.score(run, scorers="vqa", judge=f"hf:path={tiny_vlm_dir}", progress=False, log=lambda m: None)
    assert "scored 0, cached 6" in again.summary()
    # another dtype is another judge identity: a new slug, never the old cache
    from evalsuite.scoring import ScoreOptions, make_scorers

    a = make_scorers(["vqa"], ScoreOptions(judge=f"hf:path={tiny_vlm_dir}"))[0]
    b = make_scorers(["vqa"], ScoreOptions(judge=f"hf:path={tiny_vlm_dir},dtype=bf16"))[0]
    assert a.slug != b.slug and a.identity["judge"]["dtype"] == "fp32"


def test_unavailable_judge_weights_are_missing_with_the_reason(dummy_run, tmp_path):
    run = _copy(dummy_run, tmp_path)
    res = evalsuite.score(run, scorers="vqa", judge="hf:nobody/no-such-judge-model", progress=False,
                          log=lambda m: None)
    assert "missing 6" in res.summary()
    rows = _vqa(load_scores(run), "vqa_score")
    assert rows.value.isna().all() and rows.missing_reason.str.contains("nobody/no-such-judge-model").all()
    assert rows.missing_reason.str.contains("unavailable").all()


# ---- an OpenAI-compatible endpoint ----

@pytest.fixture
def endpoint(monkeypatch):
    fake = VlmFake(rules={"Does this figure": 0.55, "Is there a cube": 0.9, "Is the cube red": 0.3, "Is there a sphere": 0.75,
                          "left of": 0.6, "Is there a beach": 0.95, "no people": 0.2})
    with FakeServer(fake) as srv:
        monkeypatch.setenv("VLM_KEY", fake.secret)
        yield fake, f"openai:{srv.url}/v1,model=fake-vlm,key_env=VLM_KEY,retry_base=0.01"


def test_endpoint_logprobs_give_hand_computed_scores(dummy_run, endpoint, tmp_path):
    fake, spec = endpoint
    run = _copy(dummy_run, tmp_path)
    evalsuite.score(run, scorers="vqa", judge=spec, progress=False, log=lambda m: None)
    df = load_scores(run)
    cube = _vqa(df, "question_score")
    # cube: q1 0.9 yes, q2 0.3 no, q3 0.75 yes, q4 0.6 yes -> scores 1, 0, 1, 1 -> 3/4; beach: 1, 0 -> 1/2
    assert dict(zip(cube.prompt_id, cube.value)) == {"cube": 0.75, "beach": 0.5}
    assert set(_vqa(df, "prompt_following_vqa").value) == {0.0}
    assert _vqa(df, "vqa_score").value.round(6).eq(0.55).all()
    acc = df[(df.metric == "question_acc") & (df.prompt_id == "cube")]
    assert dict(zip(acc.variant, acc.value)) == {"entity": 1.0, "attribute": 0.0, "relation": 1.0}
    assert {s["max_tokens"] for s in fake.seen} == {1} and {s["top_logprobs"] for s in fake.seen} == {20}
    assert {s["model"] for s in fake.seen} == {"fake-vlm"}
    row = _vqa(df, "question_score").iloc[0]
    det = evalsuite.scoring.load_detail(run, row.scorer_id, row.cache_key)["details"]
    assert {q["source"] for q in det["questions"]} == {"logprobs"}
    assert det["judge"]["endpoint_model"] == "fake-vlm"
    for f in run.rglob("*"):   # the key is never on disk
        if f.is_file():
            assert fake.secret.encode() not in f.read_bytes(), f


def test_endpoint_without_logprobs_parses_the_text_and_says_so(dummy_run, endpoint, tmp_path):
    fake, spec = endpoint
    fake.logprobs = False
    fake.text_answers = {"Is there a sphere": "Blue"}
    fake.fail("chat", 503, times=2)              # transient: retried as the remote backends do
    run = _copy(dummy_run, tmp_path)
    evalsuite.score(run, scorers="vqa", judge=spec, progress=False, log=lambda m: None)
    df = load_scores(run)
    assert _vqa(df, "vqa_score").value.eq(1.0).all()          # 0.55 -> text "Yes" -> 1.0
    beach = _vqa(df, "question_score")
    assert beach[beach.prompt_id == "beach"].value.eq(0.5).all()
    cube = beach[beach.prompt_id == "cube"]
    assert cube.value.isna().all() and cube.missing_reason.str.contains("Blue").all()
    row = beach[beach.prompt_id == "beach"].iloc[0]
    det = evalsuite.scoring.load_detail(run, row.scorer_id, row.cache_key)["details"]
    assert det["vqa"]["source"] == "text" and {q["p_yes"] for q in det["questions"]} == {1.0, 0.0}
    assert fake.count("chat") == 2 * (5 + 3 + 1) + 2   # per seed: cube 1+4, beach 1+2, plain 1; 2 retried



def test_endpoint_odd_token_spellings_null_logprobs_and_null_message(dummy_run, endpoint, tmp_path):
    fake, spec = endpoint
    fake.odd_tokens = ("Is there a cube", "Does this figure")   # "Yes." / "\u2581No" / "\u0120yes" + a null logprob
    fake.no_message = ("Is there a beach",)                    # message: null, no log-probabilities
    run = _copy(dummy_run, tmp_path)
    res = evalsuite.score(run, scorers="vqa", judge=spec, progress=False, log=lambda m: None)
    assert "errors" not in res.summary()
    df = load_scores(run)
    assert _vqa(df, "vqa_score").value.round(6).eq(0.55).all()      # the odd spellings still give 0.55
    qs = _vqa(df, "question_score")
    cube, beach = qs[qs.prompt_id == "cube"], qs[qs.prompt_id == "beach"]
    assert cube.value.eq(0.75).all()                                  # as with plain spellings: 1, 0, 1, 1
    assert beach.value.isna().all() and beach.missing_reason.str.contains("question 1").all()
    row = cube.iloc[0]
    det = evalsuite.scoring.load_detail(run, row.scorer_id, row.cache_key)["details"]
    assert det["questions"][0]["source"] == "logprobs" and det["questions"][0]["p_yes"] == pytest.approx(0.9)


def test_a_request_that_raises_fails_only_its_item_and_a_rerun_retries(dummy_run, endpoint, tmp_path, monkeypatch):
    from evalsuite.judges import openai_compat

    fake, spec = endpoint
    fake.text_answers = {"Is there a sphere": "Blue"}
    real = openai_compat.read_choice

    def broken(resp):
        if resp.choices[0].message.content == "Blue":
            raise TypeError(f"must be real number, not NoneType {fake.secret}")
        return real(resp)

    monkeypatch.setattr(openai_compat, "read_choice", broken)
    run = _copy(dummy_run, tmp_path)
    res = evalsuite.score(run, scorers="vqa", judge=spec, progress=False, log=lambda m: None)
    assert "scored 4" in res.summary() and "errors 2" in res.summary()
    rows = _vqa(load_scores(run), "vqa_score")
    bad = rows[rows.prompt_id == "cube"]
    assert bad.value.isna().all() and rows[rows.prompt_id != "cube"].value.notna().all()
    assert bad.missing_reason.eq("judge: 1 of 5 requests failed (question 3): TypeError: must be real number, not "
                                 "NoneType [redacted]").all()
    for f in run.rglob("*"):
        if f.is_file():
            assert fake.secret.encode() not in f.read_bytes(), f
    monkeypatch.setattr(openai_compat, "read_choice", real)
    again = evalsuite.score(run, scorers="vqa", judge=spec, progress=False, log=lambda m: None)
    assert "scored 2, cached 4" in again.summary()                   # the failed items were not cached


# ---- a judge's known blind spot, in per-category accuracy and in `agree` ----

def test_negation_blind_spot_shows_in_category_accuracy_and_agree(dummy_run, endpoint, tmp_path):
    fake, spec = endpoint
    run = _copy(dummy_run, tmp_path)
    fake.blind_negation = True      # "Are there no people on the beach?" -> yes, whatever the image shows
    evalsuite.score(run, scorers="vqa", judge=spec, progress=False, log=lambda m: None)
    df = load_scores(run)
    neg = df[(df.metric == "question_acc") & (df.variant == "negation")]
    assert neg.value.eq(1.0).all()          # the judge says every image follows the negation
    # a person looked: both beach images show people (negation not followed), every other answer is right
    labels = tmp_path / "labels.jsonl"
    lines = []
    for seed in (0, 1):
        lines.append({"backend": "dummy", "prompt_id": "beach", "seed": seed, "prompt_following": 0,
                      "questions": {"1": "yes", "2": "no"}})
        lines.append({"backend": "dummy", "prompt_id": "cube", "seed": seed, "prompt_following": 0,
                      "questions": {"1": "yes", "2": "no", "3": "yes", "4": "yes"}})
    labels.write_text("\n".join(json.dumps(x) for x in lines))
    from evalsuite.agree import agree

    res = agree(run, labels, progress=False)
    j = res["judges"][0]
    assert j["questions"]["n"] == 12 and j["questions"]["accuracy"]["value"] == pytest.approx(10 / 12)
    assert j["by_category"]["negation"]["accuracy"] == 0.0 and j["by_category"]["negation"]["n"] == 2
    assert j["by_category"]["entity"]["accuracy"] == 1.0
    # the blind spot reaches the per-image verdict: both beach images are judged followed (false positives)
    assert j["images"]["n"] == 4 and j["images"]["accuracy"]["value"] == 0.5
    assert j["images"]["false_positives"] == 2 and j["images"]["false_negatives"] == 0
    assert "negation" in Path(res["files"]["html"]).read_text()


# ---- the paired gate ----

def test_compare_gates_question_score_like_any_rate(endpoint, tmp_path):
    from evalsuite.compare import compare

    fake, spec = endpoint
    cubes = "prompts:\n" + "".join(
        f"""  - id: cube-{i}
    prompt: "A red cube number {i} to the left of a blue sphere"
    questions:
      - {{id: "1", text: "Is there a cube?", category: entity}}
      - {{id: "2", text: "Is the cube red?", category: attribute, depends_on: ["1"]}}
      - {{id: "3", text: "Is there a sphere?", category: entity}}
      - {{id: "4", text: "Is the cube to the left of the sphere?", category: relation, depends_on: ["1", "3"]}}
""" for i in range(12))
    (tmp_path / "cubes.yaml").write_text(cubes)
    base, cand = tmp_path / "base", tmp_path / "cand"
    for d in (base, cand):
        evalsuite.run("dummy", str(tmp_path / "cubes.yaml"), seeds=[0], run_dir=d, progress=False, log=lambda m: None,
                      score=False, report=False)
    evalsuite.score(base, scorers="vqa", judge=spec, progress=False, log=lambda m: None)
    fake.rules["Is there a cube"] = 0.1          # the candidate's cubes are gone: 3/4 -> 1/4 on every prompt
    evalsuite.score(cand, scorers="vqa", judge=spec, progress=False, log=lambda m: None)
    gated = compare(base, cand, metrics="question_score,prompt_following_vqa", margins="question_score=10",
                    min_psnr=None).to_json()
    m = gated["pairs"][0]["metrics"]
    assert m["question_score"]["gated"] and m["question_score"]["decision"] == "fail"
    assert m["question_score"]["n_items"] == 12
    assert not m["prompt_following_vqa"]["gated"]
    assert gated["verdict"]["exit_code"] == 1
    plain = compare(base, cand, metrics="question_score").to_json()
    assert not plain["pairs"][0]["metrics"]["question_score"]["gated"]


# ---- done when: the question columns of the tables and the gallery are filled ----

def test_run_flux_tiny_and_reference_with_the_tiny_judge_fills_tables_and_gallery(tiny_vlm_dir, tmp_path):
    import pandas as pd

    (tmp_path / "p.yaml").write_text("""
prompts:
  - id: neon
    prompt: 'A neon sign that says "OPEN"'
    category: text
    target_text: ["OPEN"]
    questions:
      - {id: "1", text: "Is there a neon sign?", category: entity}
      - {id: "2", text: 'Does the sign say "OPEN"?', category: text, depends_on: ["1"]}
  - id: cube
    prompt: "A red cube"
    category: compositional
    questions:
      - {id: "1", text: "Is there a cube?", category: entity}
      - {id: "2", text: "Is the cube red?", category: attribute, depends_on: ["1"]}
""")
    run = tmp_path / "run"
    r = run_cli("run", "--backends", "flux-tiny,reference", "--prompts", tmp_path / "p.yaml", "--seeds", "0",
                "--scorers", "ocr,vqa", "--judge", f"hf:path={tiny_vlm_dir}", "--run-dir", run, "--no-progress")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "VQA judge local:" in r.stdout and "every question yes" in r.stdout
    vqa = pd.read_csv(run / "report" / "tables" / "vqa.csv")
    assert list(vqa.backend) == ["flux-tiny", "reference"]
    for col in ("VQAScore", "questions yes", "every question yes", "question accuracy, entity (%)",
                "question accuracy, attribute (%)", "question accuracy, text (%)"):
        assert col in vqa.columns
    import re

    assert re.fullmatch(r"\d+% \[\d+, \d+\]", vqa.loc[0, "question accuracy, attribute (%)"])  # value + interval
    assert vqa.loc[0, "scored/planned"] == "2/2"            # (1 of 1 prompt with an attribute question: no gap)
    assert vqa.loc[1, "question accuracy, attribute (%)"] == "-"            # reference skips the cube prompt
    cats = pd.read_csv(run / "report" / "tables" / "vqa_categories.csv")   # the same cells, one column per category
    assert list(cats.columns) == ["backend", "attribute", "entity", "text"]
    assert list(cats["attribute"]) == list(vqa["question accuracy, attribute (%)"])
    page = (run / "report" / "report.html").read_text()
    assert "Prompt following judged by a VLM" in page and "Question accuracy (%) by question category" in page
    assert page.count('class="small qs"') == 3                             # flux-tiny x 2 prompts + reference x 1
    assert "Is the cube red?" in page and "p=0." in page


def test_an_endpoint_that_echoes_the_key_never_puts_it_on_disk(dummy_run, endpoint, tmp_path):
    fake, spec = endpoint
    fake.echo, fake.echo_pad = 401, 30          # every answer repeats the request's headers, Authorization included
    run = _copy(dummy_run, tmp_path)
    res = evalsuite.score(run, scorers="vqa", judge=spec, progress=False, log=lambda m: None)
    assert "errors 6" in res.summary()
    rows = _vqa(load_scores(run), "vqa_score")
    assert rows.value.isna().all() and rows.missing_reason.str.contains("401").all()
    for f in run.rglob("*"):
        if f.is_file():
            assert fake.secret.encode() not in f.read_bytes(), f


def test_an_openai_key_in_the_environment_goes_only_to_openai(monkeypatch):
    """Without key_env, OPENAI_API_KEY is sent to OpenAI's own hosts only: a local or third-party endpoint gets no
    key (the client's placeholder), so an OpenAI key never leaks to another server."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-secret")
    local = make_judge("openai:http://127.0.0.1:9/v1,model=m")
    local.load()
    assert local.client.api_key == "EMPTY"
    far = make_judge("openai:https://api.other-provider.example/v1,model=m")
    far.load()
    assert far.client.api_key == "EMPTY"
    own = make_judge("openai:https://api.openai.com/v1,model=m")
    own.load()
    assert own.client.api_key == "sk-openai-secret"
