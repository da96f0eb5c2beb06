"""Atomic questions in prompt sets: schema, validation errors naming file/entry/field, and the DSG/DPG gating."""

import json

import pytest

from evalsuite.errors import EvalsuiteError
from evalsuite.metrics.questions import all_yes, category_scores, gated_answers, question_score
from evalsuite.prompts import load_prompt_file, validate_all
from evalsuite.promptset import Prompt, PromptSet, Question


def _write(tmp_path, entries):
    f = tmp_path / "q.jsonl"
    f.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return f


QS = [
    {"id": 1, "text": "Is there a cat?", "category": "entity"},
    {"id": 2, "text": "Is the cat black?", "depends_on": [1], "category": "attribute"},
    {"id": "3", "text": "Is the cat on a sofa?", "depends_on": ["1"], "category": "relation"},
]


def test_questions_load_and_ints_become_ids(tmp_path):
    ps = load_prompt_file(_write(tmp_path, [{"id": "a", "prompt": "a black cat on a sofa", "questions": QS}]))
    qs = ps.prompts[0].questions
    assert [q.id for q in qs] == ["1", "2", "3"]
    assert qs[1].depends_on == ["1"] and qs[0].category == "entity"


@pytest.mark.parametrize("questions, phrase", [
    ([{"id": 1, "text": "a?"}, {"id": 1, "text": "b?"}], "question id '1' is used twice"),
    ([{"id": 1, "text": "a?", "depends_on": [9]}], "depends on '9', which is not a question"),
    ([{"id": 1, "text": "a?", "depends_on": [1]}], "depends on itself"),
    ([{"id": 1, "text": "a?", "depends_on": [2]}, {"id": 2, "text": "b?", "depends_on": [1]}],
     "dependency cycle: 1 -> 2 -> 1"),
    ([{"id": 1, "text": "  "}], "must not be empty"),
    ([{"id": 1, "text": "a?", "answer": "no"}], "not a known question field"),
])
def test_bad_questions_name_file_entry_field(tmp_path, questions, phrase):
    f = _write(tmp_path, [{"id": "ok", "prompt": "x"}, {"id": "bad", "prompt": "a cat", "questions": questions}])
    with pytest.raises(EvalsuiteError) as e:
        load_prompt_file(f)
    msg = str(e.value)
    assert str(f) in msg and "entry 2 (id 'bad')" in msg and "questions" in msg and phrase in msg
    _, errors, _ = validate_all(str(f))
    assert len(errors) == 1 and phrase in errors[0]


def test_hash_without_questions_is_unchanged():
    p = Prompt(id="a", prompt="a cat")
    legacy = {k: v for k, v in p.model_dump().items() if k not in ("questions", "geneval")}
    assert p.hash_dump() == legacy
    with_q = Prompt(id="a", prompt="a cat", questions=[Question(id="1", text="Is there a cat?")])
    a = PromptSet(name="s", source="s", prompts=[p]).sha256
    b = PromptSet(name="s", source="s", prompts=[with_q]).sha256
    assert a != b


def test_gating_by_hand():
    qs = [Question.model_validate(q) for q in QS]
    # cat present (0.9), black no (0.2), on sofa yes (0.7): scores 1, 0, 1 -> 2/3; not all yes
    p = {"1": 0.9, "2": 0.2, "3": 0.7}
    assert gated_answers(qs, p) == {"1": (True, 1.0, False), "2": (False, 0.0, False), "3": (True, 1.0, False)}
    assert question_score(qs, p) == pytest.approx(2 / 3)
    assert all_yes(qs, p) == 0.0
    # no cat (0.4): both children gated to 0 although answered yes -> 0/3
    p = {"1": 0.4, "2": 0.8, "3": 0.99}
    g = gated_answers(qs, p)
    assert g["2"] == (True, 0.0, True) and g["3"] == (True, 0.0, True)
    assert question_score(qs, p) == 0.0
    assert category_scores(qs, {"1": 0.9, "2": 0.5, "3": 0.1}) == {"entity": 1.0, "attribute": 1.0, "relation": 0.0}
    assert all_yes(qs, {"1": 0.5, "2": 0.5, "3": 0.5}) == 1.0
    assert question_score([], {}) is None
    with pytest.raises(KeyError):
        gated_answers(qs, {"1": 0.9})


def test_gating_uses_direct_parents_raw_answers():
    # 1 <- 2 <- 3: 1 is "no", 2 "yes" (gated to 0), 3 "yes": 3's parent 2 answered yes, so 3 scores 1 (DSG;
    # DPG-Bench's in-place rule would zero 3 too: metrics/dpg.py)
    qs = [Question(id="1", text="a"), Question(id="2", text="b", depends_on=["1"]),
          Question(id="3", text="c", depends_on=["2"])]
    g = gated_answers(qs, {"1": 0.1, "2": 0.9, "3": 0.9})
    assert [g[i][1] for i in "123"] == [0.0, 0.0, 1.0]
