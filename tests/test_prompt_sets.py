"""The shipped prompt sets: counts per set, category and sub-kind; validation rules; core; `run --prompts article`."""

import difflib
import inspect
import json
import re
from collections import Counter

import pytest

from conftest import REPO, run_cli
from evalsuite.coreset import build_core, render_core
from evalsuite.errors import EvalsuiteError
from evalsuite.importers import extract_quoted
from evalsuite.prompts import check_prompt_set, load_prompt_file, load_prompt_set

PROMPTS = REPO / "evalsuite" / "data" / "prompts"
SHIPPED = ["article", "compositional", "core", "smoke", "text"]


def load(name):
    return load_prompt_file(PROMPTS / f"{name}.yaml")


def words(s):
    return re.findall(r"[\w'%$&@#!?.:-]+", s)


def one_change(prompt, negative):
    """True when `negative` differs from `prompt` in one contiguous run of words, or by swapping two runs
    (a heuristic: it cannot tell "two cats" -> "three dogs" is two changes; the authors check that)."""
    a, b = words(prompt.lower()), words(negative.lower())
    ops = []
    for op in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op[0] == "equal":
            continue
        # "in a field" -> "on a beach" is one change: merge runs separated only by an article
        if ops and set(a[ops[-1][2]:op[1]]) <= {"a", "an", "the"} and op[1] - ops[-1][2] <= 1:
            ops[-1] = ("replace", ops[-1][1], op[2], ops[-1][3], op[4])
        else:
            ops.append(op)
    if len(ops) == 1:
        return True
    diff = [i for i in range(len(a)) if len(a) == len(b) and a[i] != b[i]]
    if len(diff) == 2 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]:  # two words swapped
        return True
    if len(ops) == 2 and all(op[0] == "replace" for op in ops):
        (_, i1, i2, j1, j2), (_, k1, k2, l1, l2) = ops
        return a[i1:i2] == b[l1:l2] and a[k1:k2] == b[j1:j2]
    return False


def test_every_shipped_set_is_there_and_validates_without_warnings():
    for name in SHIPPED:
        ps = load(name)
        assert ps.name == name
        assert check_prompt_set(ps) == [], name


def test_cli_validate_and_list_show_every_set_with_counts_per_category():
    r = run_cli("prompts", "validate", *[PROMPTS / f"{n}.yaml" for n in SHIPPED], timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout.count("ok: ") == len(SHIPPED)
    assert "ok: " + str(PROMPTS / "text.yaml") + ": 70 prompts in 11 categories" in r.stdout

    r = run_cli("prompts", "list", timeout=60)
    assert r.returncode == 0, r.stderr
    lines = {ln.split()[0]: ln for ln in r.stdout.splitlines()}
    for name in SHIPPED:
        ps = load(name)
        assert f"{len(ps.prompts)} prompts" in lines[name]
        for cat, n in ps.categories().items():
            assert f"{cat} {n}" in lines[name]


def test_text_set_counts_targets_and_negatives():
    ps = load("text")
    assert len(ps.prompts) >= 60
    cats = ps.categories()
    assert set(cats) == {"text-short", "text-sentence", "text-multi", "text-small", "text-curved", "text-stylised",
                         "text-brand", "text-digits", "text-symbols", "text-accented", "text-rare"}
    assert min(cats.values()) >= 5
    tags = Counter(t for p in ps.prompts for t in p.tags)
    for tag, minimum in {"short-word": 5, "sentence": 5, "multi-region": 5, "small-print": 5, "curved": 4,
                         "rotated": 2, "angled": 1, "stylised": 8, "script": 2, "chalk": 1, "graffiti": 1,
                         "embroidery": 1, "neon": 2, "brand-case": 6, "digits": 8, "lookalike": 2, "price": 2,
                         "time": 1, "date": 1, "symbols": 8, "url": 2, "accented": 6, "made-up": 6}.items():
        assert tags[tag] >= minimum, (tag, tags[tag])
    for p in ps.prompts:
        assert p.target_text, p.id
        for t in p.target_text:  # verbatim, inside quotes, and what an importer would extract
            assert f'"{t}"' in p.prompt, (p.id, t)
        assert extract_quoted(p.prompt) == p.target_text, p.id
        assert p.negatives, p.id
        for neg in p.negatives:  # each negative changes the text and nothing else
            assert extract_quoted(neg) != p.target_text, (p.id, neg)
            outside = lambda s: re.sub(r'"[^"]*"', '""', s)  # noqa: E731
            assert outside(neg) == outside(p.prompt), (p.id, neg)
    by_cat = {}
    for p in ps.prompts:
        by_cat.setdefault(p.category, []).append(p)
    assert all(len(p.target_text[0].split()) >= 10 for p in by_cat["text-sentence"])
    assert all(2 <= len(p.target_text) <= 5 for p in by_cat["text-multi"])
    assert {len(p.target_text) for p in by_cat["text-multi"]} >= {2, 3, 4, 5}
    all_targets = " ".join(t for p in ps.prompts for t in p.target_text)
    for ch in "&@#%!?$:":
        assert ch in all_targets, ch
    assert any(t.startswith("www.") for t in all_targets.split())
    assert re.search(r"[0O].*[1l]|[1l].*[0O]", " ".join(t for p in ps.prompts if "lookalike" in p.tags
                                                         for t in p.target_text))
    assert sum(1 for c in all_targets if ord(c) > 127) >= 10  # accented Latin
    assert any(t != t.upper() and t != t.lower() and t[0].islower() for p in by_cat["text-brand"] for t in p.target_text)


def test_compositional_set_counts_and_hard_negatives_change_one_thing():
    ps = load("compositional")
    assert len(ps.prompts) >= 60
    cats = ps.categories()
    assert set(cats) == {"single-object", "two-objects", "attribute", "counting", "spatial", "action", "style",
                         "complex"}
    assert min(cats.values()) >= 6
    tags = Counter(t for p in ps.prompts for t in p.tags)
    for tag in ("attribute-colour", "attribute-material", "attribute-size"):
        assert tags[tag] >= 4, tag
    assert {t for t in tags if t.startswith("count-")} == {f"count-{n}" for n in range(2, 7)}
    for p in ps.prompts:
        assert not p.target_text, p.id
        assert len(p.negatives) >= 2, p.id
        for neg in p.negatives:
            assert one_change(p.prompt, neg), (p.id, neg)
    # attribute binding: at least one negative per two-object attribute prompt swaps the attribute
    swaps = [p for p in ps.prompts if p.category == "attribute"
             and any(len([o for o in difflib.SequenceMatcher(a=words(p.prompt.lower()), b=words(n.lower())).get_opcodes()
                          if o[0] != "equal"]) == 2 for n in p.negatives)]
    assert len(swaps) >= 10


def test_one_change_helper_can_fail():
    assert one_change("A red cube left of a blue ball", "A blue cube left of a red ball")
    assert one_change("Two cats on a sofa", "Three cats on a sofa")
    assert not one_change("Two cats on a sofa", "Three cats on a bed")
    assert not one_change("A red cube left of a blue ball", "A green cube left of a red ball")
    assert one_change("A cat chasing a mouse", "A mouse chasing a cat")
    assert one_change("A book lying on top of a closed laptop", "A closed laptop lying on top of a book")
    assert one_change("A child in a field", "A child on a beach")


def test_article_set_holds_the_articles_prompts():
    ps = load("article")
    by_id = ps.by_id()
    assert len(ps.prompts) == 8
    garden = by_id["japanese-garden-anime"].prompt.lower()
    for w in ("japanese garden", "red bridge", "koi pond", "cherry blossoms", "anime"):
        assert w in garden
    assert "chef's hat" in by_id["cat-chef"].prompt and "whisking eggs" in by_id["cat-chef"].prompt
    assert by_id["neon-open-24"].target_text == ["OPEN 24 HOURS"]
    assert by_id["futuristic-city-sunset"].prompt == "A futuristic city at sunset"
    colours = ["red", "blue", "green", "black"]
    for c in colours:
        p = by_id[f"water-bottle-{c}"]
        assert f"{c} water bottle" in p.prompt and "white background" in p.prompt
        assert sorted(p.negatives) == sorted(p.prompt.replace(c, o) for o in colours if o != c)
    for p in ps.prompts:
        assert "article" in p.tags and len(p.negatives) >= 2


def test_entries_shared_between_sets_are_identical():
    seen = {}
    for name in SHIPPED:
        for p in load(name).prompts:
            if p.id in seen:
                assert p == seen[p.id][1], (p.id, name, seen[p.id][0])
            else:
                seen[p.id] = (name, p)


def test_core_is_the_generated_balanced_sample():
    core = load("core")
    assert (PROMPTS / "core.yaml").read_text(encoding="utf-8") == render_core(), \
        "evalsuite/data/prompts/core.yaml is out of date: run python -m evalsuite.coreset"
    assert core.prompts == build_core()
    assert 35 <= len(core.prompts) <= 45
    text, comp = load("text"), load("compositional")
    ids_text, ids_comp = text.by_id(), comp.by_id()
    assert sum(p.id in ids_text for p in core.prompts) == 20
    assert sum(p.id in ids_comp for p in core.prompts) == 20
    assert set(core.categories()) == set(text.categories()) | set(comp.categories())
    assert max(core.categories().values()) - min(core.categories().values()) <= 2
    attr_tags = {t for p in core.prompts if p.category == "attribute" for t in p.tags}
    assert {"attribute-colour", "attribute-material", "attribute-size"} <= attr_tags


def test_smoke_stays_small():
    assert len(load("smoke").prompts) <= 10


def test_core_is_the_default_of_run():
    from evalsuite.cli import build_parser
    from evalsuite.runner import run

    assert inspect.signature(run).parameters["prompts"].default == "core"
    assert build_parser().parse_args(["run", "-b", "reference"]).prompts == "core"


def write(tmp_path, text, name="set.yaml"):
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    return f


BASE = """prompts:
  - id: ok-one
    prompt: 'A sign that says "HELLO"'
    target_text: ["HELLO"]
    negatives: ['A sign that says "HELLO!"']
"""


@pytest.mark.parametrize("entry, field, message", [
    ("  - id: two\n    prompt: 'A red cube'\n    negatives: ['a  RED cube']\n", "negatives", "same as the prompt"),
    ("  - id: two\n    prompt: 'A red cube'\n    negatives: ['A blue cube', 'a blue  cube']\n", "negatives",
     "item 2 repeats item 1"),
    ("  - id: two\n    prompt: '   '\n", "prompt", "must not be empty"),
    ("  - id: 'bad/id'\n    prompt: 'A cat'\n", "id", "not a safe file name"),
    ("  - id: ok-one\n    prompt: 'A cat'\n", "id", "duplicates entry 1"),
    ("  - id: two\n    prompt: 'A cat'\n    colour: red\n", "colour", "not a known field"),
])
def test_bad_entries_give_one_line_errors_naming_file_entry_and_field(tmp_path, entry, field, message):
    f = write(tmp_path, BASE + entry)
    with pytest.raises(EvalsuiteError) as e:
        load_prompt_set(str(f))
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"{f}: entry 2")
    assert f"field '{field}'" in msg and message in msg


def test_validate_cli_warns_on_missing_targets_and_fails_on_errors(tmp_path):
    warn = write(tmp_path, BASE + "  - id: two\n    prompt: 'A sign'\n    target_text: ['EXIT']\n", "warn.yaml")
    bad = write(tmp_path, BASE + "  - id: two\n    prompt: 'A cube'\n    negatives: ['A cube']\n", "bad.yaml")
    r = run_cli("prompts", "validate", warn, timeout=60)
    assert r.returncode == 0
    assert f"warning: {warn}: entry 2 (id 'two'): field 'target_text' item 1 'EXIT' does not appear" in r.stderr
    assert "1 warning(s)" in r.stdout
    quoted = write(tmp_path, BASE + "  - id: two\n    prompt: 'A mug printed \"BREW\"'\n", "quoted.yaml")
    r = run_cli("prompts", "validate", quoted, timeout=60)
    assert r.returncode == 0
    assert r.stderr.strip() == (f"warning: {quoted}: entry 2 (id 'two'): field 'target_text' lacks the quoted text "
                                "'BREW' of the prompt (no OCR score for it)")
    r = run_cli("prompts", "validate", warn, bad, timeout=60)
    assert r.returncode == 2
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert errors == [f"error: {bad}: entry 2 (id 'two'): field 'negatives' item 1 is the same as the prompt; "
                      "a negative must change one thing"]
    assert f"ok: {warn}" in r.stdout


def test_show_prints_prompts_targets_and_negatives():
    r = run_cli("prompts", "show", "article", "--category", "text", timeout=60)
    assert r.returncode == 0, r.stderr
    assert "article: 1 prompts (text 1)" in r.stdout
    assert "targets:   OPEN 24 HOURS" in r.stdout and 'OPEN 12 HOURS' in r.stdout
    r = run_cli("prompts", "show", "core", "--jsonl", "--limit", "3", timeout=60)
    rows = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert [row["id"] for row in rows] == [p.id for p in load("core").prompts[:3]]
    r = run_cli("prompts", "show", "txet", timeout=60)
    assert r.returncode == 2 and r.stderr.strip() == "error: unknown prompt set 'txet'; did you mean 'text'?"


def test_run_prompts_article_end_to_end(tmp_path):
    # any local backend will do (the torch-free dummy) beside the reference, which draws only target text
    out = tmp_path / "article-run"
    r = run_cli("run", "--backends", "dummy,reference", "--prompts", "article", "--seeds", "0",
                "--no-progress", "--run-dir", out, timeout=240)
    assert r.returncode == 0, r.stderr
    # dummy: all 8 prompts; reference: only the one with target text (the neon sign)
    assert "generated 9, reused 0, failed 0, filtered 0" in r.stdout
    ids = [json.loads(ln)["id"] for ln in (out / "prompts.jsonl").read_text().splitlines()]
    assert sorted(ids) == sorted(p.id for p in load("article").prompts)
    info = json.loads((out / "run.json").read_text())
    assert info["prompt_set"]["name"] == "article" and info["prompt_set"]["count"] == 8
    assert len(list((out / "items" / "dummy").rglob("*.png"))) == 8
    assert [p.parent.name for p in (out / "items" / "reference").rglob("*.png")] == ["neon-open-24"]
