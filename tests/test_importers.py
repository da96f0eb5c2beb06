"""Importers for public prompt formats, on fixtures written here (not copied from the public files)."""

import json
import re

import pytest

from conftest import run_cli
from evalsuite.errors import EvalsuiteError
from evalsuite.importers import (extract_quoted, geneval_negatives, import_csv, import_drawbench, import_file,
                                 import_geneval, import_parti, import_t2i_compbench, import_text, slugify,
                                 stable_id)
from evalsuite.prompts import SAFE_ID, load_prompt_file, load_prompt_set


def write(tmp_path, name, text):
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    return f


@pytest.mark.parametrize("text, expected", [
    ('A sign that says "OPEN" and a door reading \'PULL\'', ["OPEN", "PULL"]),
    ("A McDonald's sign next to a shop called 'Bob's Bikes'", ["Bob's Bikes"]),
    ("A cat that doesn't care, on a mat reading 'don't panic'", ["don't panic"]),
    ('A diner sign reading "Joe\'s \'Best\' Burgers"', ["Joe's 'Best' Burgers"]),
    ("A poster titled 'The \"Big\" Night'", ['The "Big" Night']),
    ("A banner with \u201cHappy New Year\u201d and a card saying \u2018Cheers\u2019 that\u2019s gold",
     ["Happy New Year", "Cheers"]),
    ('A 12" pizza box printed "PIZZA"', ["PIZZA"]),
    ("The dogs' bowl says 'WOOF'", ["WOOF"]),
    ('Two signs both saying "GO" and "GO"', ["GO", "GO"]),
    ('An unbalanced "quote with no end', []),
    ("It's a sunny day in the park", []),
    ('An empty "" pair and "  X  "', ["X"]),
])
def test_extract_quoted(text, expected):
    assert extract_quoted(text) == expected


def test_stable_ids_are_slug_plus_short_hash_and_file_safe():
    a = stable_id("A sign that says \"Café Zoë\" — on a wall!")
    assert re.fullmatch(r"a-sign-that-says-cafe-zoe-on-a-wall-[0-9a-f]{8}", a), a
    assert stable_id("A sign that says \"Café Zoë\" — on a wall!") == a
    assert stable_id("A sign that says \"Café Zoë\" — on a wall?") != a
    long = stable_id("word " * 50)
    assert SAFE_ID.match(long) and len(long) <= 49
    assert slugify("日本の庭") == "prompt" and SAFE_ID.match(stable_id("日本の庭"))


PARTI = (
    "Prompt\tCategory\tChallenge\tNote\n"
    "A storefront with \"Sunny's Bakery\" painted above the door\tText\tWriting & Symbols\tapostrophe inside quotes\n"
    "\"HELLO\" written in the sand\tText\tWriting & Symbols\tstarts with a quote\n"
    "A shop sign reading 'Ye Olde \"Fish\" Shoppe'\tText\tWriting & Symbols\t\n"
    "A dog's toy on a kitchen floor\tAnimals\tBasic\n"
    "\n"
    "A dog's toy on a kitchen floor\tIndoor Scenes\tBasic\tsame text again\n"
)


def test_parti_tsv(tmp_path):
    f = write(tmp_path, "parti.tsv", PARTI)
    warnings = []
    ps = import_parti(f, warnings.append)
    assert [p.prompt for p in ps] == [
        "A storefront with \"Sunny's Bakery\" painted above the door",
        "\"HELLO\" written in the sand",
        "A shop sign reading 'Ye Olde \"Fish\" Shoppe'",
        "A dog's toy on a kitchen floor",
    ]
    assert [p.category for p in ps] == ["Text", "Text", "Text", "Animals"]
    assert [p.target_text for p in ps] == [["Sunny's Bakery"], ["HELLO"], ['Ye Olde "Fish" Shoppe'], []]
    assert ps[0].tags == ["challenge:Writing & Symbols"] and ps[3].tags == ["challenge:Basic"]
    assert all(p.id == stable_id(p.prompt) and not p.negatives for p in ps)
    assert warnings == [f"{f}: line 7: prompt repeats line 5 and is dropped: \"A dog's toy on a kitchen floor\""]


DRAWBENCH = (
    "Prompts,Category\n"
    "A storefront with 'Deep Learning' written on it.,Text\n"
    "\"A sign saying \"\"OPEN\"\", lit at night\",Text\n"
    "\"A red colored car, parked\",Colors\n"
    "A McDonald's sign at dusk,Misspellings\n"
)


def test_drawbench_csv_with_csv_quoting(tmp_path):
    ps = import_drawbench(write(tmp_path, "drawbench.csv", DRAWBENCH))
    assert [(p.prompt, p.category, p.target_text) for p in ps] == [
        ("A storefront with 'Deep Learning' written on it.", "Text", ["Deep Learning"]),
        ('A sign saying "OPEN", lit at night', "Text", ["OPEN"]),
        ("A red colored car, parked", "Colors", []),
        ("A McDonald's sign at dusk", "Misspellings", []),
    ]


GENEVAL = [
    {"tag": "single_object", "include": [{"class": "bench", "count": 1}], "prompt": "a photo of a bench"},
    {"tag": "counting", "include": [{"class": "cat", "count": 3}], "exclude": [{"class": "cat", "count": 4}],
     "prompt": "a photo of three cats"},
    {"tag": "colors", "include": [{"class": "car", "count": 1, "color": "pink"}], "prompt": "a photo of a pink car"},
    {"tag": "position", "include": [{"class": "teddy bear", "count": 1},
                                    {"class": "dog", "count": 1, "position": ["right of", 0]}],
     "prompt": "a photo of a dog right of a teddy bear"},
    {"tag": "color_attr", "include": [{"class": "vase", "count": 1, "color": "green"},
                                      {"class": "umbrella", "count": 1, "color": "orange"}],
     "prompt": "a photo of a green vase and an orange umbrella"},
    {"tag": "two_object", "include": [{"class": "clock", "count": 1}, {"class": "kite", "count": 1}],
     "prompt": "a photo of a clock and a kite"},
]


def test_geneval_metadata_tags_and_honest_negatives(tmp_path):
    f = write(tmp_path, "evaluation_metadata.jsonl", "".join(json.dumps(d) + "\n" for d in GENEVAL))
    ps = import_geneval(f)
    by_cat = {p.category: p for p in ps}
    assert list(by_cat) == ["single_object", "counting", "colors", "position", "color_attr", "two_object"]
    assert by_cat["counting"].negatives == ["a photo of four cats"]
    assert by_cat["counting"].tags == ["include:cat:count=3", "exclude:cat:count=4"]
    assert by_cat["position"].negatives == ["a photo of a dog left of a teddy bear"]
    assert "include:dog:count=1:position=right of 0" in by_cat["position"].tags
    assert by_cat["color_attr"].negatives == ["a photo of an orange vase and a green umbrella"]
    # no honest negative in the metadata: none made up
    for cat in ("single_object", "colors", "two_object"):
        assert by_cat[cat].negatives == [], cat
    assert by_cat["colors"].tags == ["include:car:count=1:color=pink"]
    assert all(not p.target_text for p in ps)


def test_geneval_negatives_only_when_unambiguous():
    # the count word appears twice: no negative rather than a wrong one
    assert geneval_negatives("two cats and two dogs", [{"class": "cat", "count": 2}],
                             [{"class": "cat", "count": 3}]) == []
    # count without the matching exclude: nothing
    assert geneval_negatives("a photo of three cats", [{"class": "cat", "count": 3}], []) == []
    assert geneval_negatives("Three cats", [{"class": "cat", "count": 3}], [{"class": "cat", "count": 4}]) == \
        ["Four cats"]


def test_t2i_compbench_folder_and_file(tmp_path):
    d = tmp_path / "t2i"
    d.mkdir()
    write(d, "color_val.txt", "a blue bench and a green cake\n\na red book and a yellow vase\n")
    write(d, "non_spatial_val.txt", "a man is reading a book\n")
    write(d, "3d_spatial_train.txt", "a cat hidden behind a chair\n")
    write(d, "README.md", "not a prompt file\n")
    ps = import_t2i_compbench(d)
    assert [(p.category, p.prompt) for p in ps] == [
        ("3d_spatial", "a cat hidden behind a chair"),
        ("color", "a blue bench and a green cake"),
        ("color", "a red book and a yellow vase"),
        ("non_spatial", "a man is reading a book"),
    ]
    assert [p.category for p in import_t2i_compbench(d / "color_val.txt")] == ["color", "color"]


def test_plain_text_and_csv(tmp_path):
    t = write(tmp_path, "mine.txt", "# my prompts\nA sign that says 'EXIT'\n\n  A cat on a mat  \n")
    assert [(p.prompt, p.category, p.target_text) for p in import_text(t)] == [
        ("A sign that says 'EXIT'", "uncategorized", ["EXIT"]), ("A cat on a mat", "uncategorized", [])]
    c = write(tmp_path, "mine.csv", "id,Caption,Category,notes\n1,\"A mug printed \"\"BREW\"\"\",text,x\n2,A cat,animals,\n")
    assert [(p.prompt, p.category, p.target_text) for p in import_csv(c)] == [
        ('A mug printed "BREW"', "text", ["BREW"]), ("A cat", "animals", [])]


def test_header_only_files_yield_no_prompts_and_a_one_line_error_on_import(tmp_path):
    f = write(tmp_path, "empty.tsv", "Prompt\tCategory\tChallenge\tNote\n")
    assert import_parti(f) == []
    assert import_drawbench(write(tmp_path, "empty.csv", "Prompts,Category\n")) == []
    with pytest.raises(EvalsuiteError, match=r"empty.tsv: no prompts in this parti file \(header only or empty\)$"):
        import_file("parti", f)
    r = run_cli("prompts", "import", "parti", f, "-o", tmp_path / "out.yaml", timeout=60)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [f"error: {f}: no prompts in this parti file (header only or empty)"]
    assert not (tmp_path / "out.yaml").exists()


@pytest.mark.parametrize("fmt, name, text, message", [
    ("parti", "a.tsv", "Text\tCategory\nA cat\tAnimals\n", "line 1: header has no 'Prompt' column (found: Text, Category)"),
    ("parti", "b.tsv", "Prompt\tCategory\nA cat\tAnimals\n  \tText\n", "line 3: field 'Prompt' is empty"),
    ("parti", "c.tsv", "Prompt\tCategory\nA cat\tAnimals\textra\n", "line 2: 3 fields but the header has 2"),
    ("drawbench", "d.csv", "Prompts,Category\n\"A cat,Animals\n", "line 2: not valid CSV"),
    ("drawbench", "e.csv", "", "empty file (expected a header with a 'Prompts' column)"),
    ("geneval", "f.jsonl", '{"tag": "x", "prompt": "a cat"}\n{"tag": "x", "prompt": \n', "line 2: not valid JSON"),
    ("geneval", "g.jsonl", '{"tag": "x", "include": []}\n', "line 1: field 'prompt' is required"),
    ("geneval", "h.jsonl", '{"tag": "x", "prompt": "a cat", "include": {"class": "cat"}}\n',
     "line 1: field 'include' must be a list of objects"),
    ("geneval", "i.jsonl", '{"tag": "x", "prompt": ""}\n', "line 1: field 'prompt' is empty"),
    ("geneval", "j.jsonl", '["a cat"]\n', "line 1: expected a JSON object"),
    ("csv", "k.csv", "id,notes\n1,x\n", "line 1: header has no 'prompt' column (found: id, notes)"),
])
def test_malformed_files_give_one_line_errors(tmp_path, fmt, name, text, message):
    f = write(tmp_path, name, text)
    with pytest.raises(EvalsuiteError) as e:
        import_file(fmt, f)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"{f}: {message}"), msg


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(EvalsuiteError, match=r"nope.tsv: no such file$"):
        load_prompt_set(f"parti:{tmp_path / 'nope.tsv'}")
    with pytest.raises(EvalsuiteError, match=r"unknown prompt import format 'partiprompts'.*formats: parti, drawbench"):
        load_prompt_set(f"partiprompts:{tmp_path / 'x.tsv'}")
    with pytest.raises(EvalsuiteError, match=r"give a path after 'csv:'"):
        load_prompt_set("csv:")


def test_import_cli_writes_a_set_that_loads_back_and_validates(tmp_path):
    src = write(tmp_path, "PartiPrompts.tsv", PARTI)
    out = tmp_path / "sets" / "parti.yaml"
    r = run_cli("prompts", "import", "parti", src, "-o", out, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"imported 4 prompts (Text 3, Animals 1); 3 with target text, 0 with negatives -> {out}"
    assert "prompt repeats line 5" in r.stderr
    back = load_prompt_file(out)
    assert back.name == "parti-partiprompts"
    assert back.prompts == import_parti(src)
    r = run_cli("prompts", "validate", out, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith(f"ok: {out}: 4 prompts in 2 categories")
    r = run_cli("prompts", "import", "parti", src, "-o", out, timeout=60)
    assert r.returncode == 2 and r.stderr.strip() == f"error: {out} exists; use --force to overwrite it"
    r = run_cli("prompts", "import", "geneval", write(tmp_path, "m.jsonl", json.dumps(GENEVAL[1]) + "\n"),
                "-o", tmp_path / "g.jsonl", "--name", "counts", timeout=60)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(ln) for ln in (tmp_path / "g.jsonl").read_text().splitlines()]
    assert rows[0]["negatives"] == ["a photo of four cats"] and rows[0]["category"] == "counting"


def test_on_the_fly_import_as_a_prompt_source(tmp_path):
    import evalsuite

    src = write(tmp_path, "drawbench.csv", DRAWBENCH)
    ps = load_prompt_set(f"drawbench:{src}", categories=["Text"])
    assert ps.name == "drawbench-drawbench" and ps.source == f"drawbench:{src}"
    assert [p.target_text for p in ps.prompts] == [["Deep Learning"], ["OPEN"]]
    # the reference backend renders the targets: only the two Text prompts have any
    res = evalsuite.run("reference", f"drawbench:{src}", seeds=[0], run_dir=tmp_path / "run", progress=False,
                        log=lambda m: None, score=False)
    assert res.backends["reference"].generated == 2 and res.backends["reference"].skipped_prompts == 2
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["prompt_set"]["source"] == f"drawbench:{src}" and info["prompt_set"]["count"] == 4
