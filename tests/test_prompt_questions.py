"""The curated sets' atomic questions (DSG style): present for every prompt, well formed, covering every target
text, dependencies where a question presupposes something; the counts in docs/prompts.md are the real ones;
`prompts validate` warns about questions that break these rules."""

import re
from collections import Counter

import pytest

from conftest import REPO, run_cli
from evalsuite.prompts import ROOT_CATEGORIES, check_prompt_set, load_prompt_file
from evalsuite.promptset import QUESTION_CATEGORIES, Prompt, PromptSet

PROMPTS = REPO / "evalsuite" / "data" / "prompts"
CURATED = ["text", "compositional", "article", "smoke", "core"]


def load(name):
    return load_prompt_file(PROMPTS / f"{name}.yaml")


def question_counts(ps):
    """(prompts, questions, {category: questions}) of a set."""
    cats = Counter(q.category for p in ps.prompts for q in p.questions)
    return len(ps.prompts), sum(cats.values()), cats


@pytest.mark.parametrize("name", CURATED)
def test_every_curated_prompt_has_well_formed_questions(name):
    for p in load(name).prompts:
        assert 2 <= len(p.questions) <= 13, p.id
        texts = [q.text.strip().lower() for q in p.questions]
        assert len(set(texts)) == len(texts), f"{p.id}: a question text repeats"
        by_id = {q.id: q for q in p.questions}
        for q in p.questions:
            assert q.category in QUESTION_CATEGORIES and q.category != "other", (p.id, q.id)
            assert q.text[0].isupper() and q.text.endswith("?"), (p.id, q.text)
            if q.category not in ROOT_CATEGORIES:
                assert q.depends_on, f"{p.id}: {q.category} question {q.id} depends on nothing"
            if q.category == "text":   # a text question depends on the object carrying the text
                assert any(by_id[d].category == "entity" for d in q.depends_on), (p.id, q.id)
        assert any(not q.depends_on and q.category in ROOT_CATEGORIES for q in p.questions), p.id


@pytest.mark.parametrize("name", CURATED)
def test_every_target_text_is_asked_by_a_text_question(name):
    for p in load(name).prompts:
        asked = [q.text for q in p.questions if q.category == "text"]
        for t in p.target_text:
            assert any(f'"{t}"' in a for a in asked), (p.id, t)
        # and no text question asks for a string the prompt does not target
        for a in asked:
            for quoted in re.findall(r'"([^"]+)"', a):
                assert quoted in p.target_text, (p.id, quoted)


def test_curated_sets_validate_without_question_warnings():
    for name in CURATED:
        assert check_prompt_set(load(name)) == [], name


def test_core_carries_the_questions_of_its_source_sets():
    sources = {p.id: p for name in ("text", "compositional") for p in load(name).prompts}
    core = load("core").prompts
    assert core and all(p == sources[p.id] for p in core)


def test_docs_state_the_real_question_counts():
    docs = (REPO / "docs" / "prompts.md").read_text(encoding="utf-8")
    for name in CURATED:
        n_prompts, n_questions, cats = question_counts(load(name))
        cells = " | ".join(str(cats.get(c, 0)) for c in QUESTION_CATEGORIES if c != "other")
        row = f"| `{name}` | {n_prompts} | {n_questions} | {cells} |"
        assert row in docs, row
    distinct = {p.id: len(p.questions) for name in CURATED for p in load(name).prompts}
    assert f"In all, {sum(distinct.values())} distinct questions" in docs


def _set(tmp_path, questions, target_text=()):
    p = Prompt(id="a", prompt='A sign that says "OPEN"', target_text=list(target_text), questions=questions)
    return PromptSet(name="t", source=str(tmp_path / "t.yaml"), prompts=[p])


def test_question_warnings_name_file_entry_and_question(tmp_path):
    ps = _set(tmp_path, [
        {"id": "1", "text": "Is there a sign?", "category": "thing"},
        {"id": "2", "text": "Is the sign red?", "category": "attribute"},
        {"id": "3", "text": "Is the sign big?", "depends_on": ["1"], "category": "attribute"},
    ], target_text=["OPEN"])
    w = check_prompt_set(ps)
    src = f"{tmp_path / 't.yaml'}: entry 1 (id 'a')"
    assert w[0].startswith(f"{src}: field 'questions' item 1 (id '1'): category 'thing' is not one of entity,")
    assert w[1].startswith(f"{src}: field 'questions' item 2 (id '2'): a attribute question depends on no")
    assert w[2].startswith(f"{src}: field 'target_text' item 1 'OPEN' has no text question quoting it")
    assert w[3].startswith(f"{src}: field 'questions' has no root question")
    assert len(w) == 4


def test_question_warnings_quiet_for_a_good_prompt_and_for_none(tmp_path):
    good = [{"id": "1", "text": "Is there a sign?", "category": "entity"},
            {"id": "2", "text": 'Does the sign say "OPEN"?', "depends_on": ["1"], "category": "text"}]
    assert check_prompt_set(_set(tmp_path, good, ["OPEN"])) == []
    assert check_prompt_set(_set(tmp_path, [], ["OPEN"])) == []   # a set without questions is not nagged


def test_validate_cli_prints_question_warnings_and_exits_0(tmp_path):
    f = tmp_path / "q.yaml"
    f.write_text("- id: a\n  prompt: 'A sign'\n  questions:\n"
                 "    - {id: 1, text: 'Is there a sign?', category: entity}\n"
                 "    - {id: 2, text: 'Is the sign red?', category: colour}\n")
    r = run_cli("prompts", "validate", f)
    assert r.returncode == 0, r.stderr
    assert "field 'questions' item 2 (id '2'): category 'colour' is not one of" in r.stdout + r.stderr


def test_show_prints_questions_with_their_dependencies():
    r = run_cli("prompts", "show", "smoke", "--limit", "1")
    assert r.returncode == 0, r.stderr
    assert "questions: 1. [entity] Is there a neon sign?" in r.stdout
    assert '5. [text] Does the neon sign read "OPEN 24 HOURS"?  (if 1)' in r.stdout
