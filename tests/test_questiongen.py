"""`evalsuite prompts questions`: DSG's three drafting steps through an OpenAI-compatible LLM (a fake on 127.0.0.1
behind the real `openai` client), robust parsing, the request-keyed cache (a rerun makes no calls, a stopped run
resumes) and no key in any written file."""

import json

import pytest

from conftest import cli_env, run_cli
from evalsuite import questiongen as qg
from evalsuite.prompts import load_prompt_file, validate_all
from evalsuite.promptset import Question
from fakes.common import FakeServer
from fakes.llm_chat_fake import ChatLLMFake

MUG = 'A blue mug on a desk that says "HELLO"'
KITES = "Two red kites"
GOOD = {
    ("tuples", MUG): "```\n1 | entity - whole (mug)\n2 | attribute - color (mug, blue)\n3 | entity - whole (desk)\n"
                     '4 | relation - spatial (mug, desk, on)\n5 | text (mug, "HELLO")\n```',
    ("questions", MUG): 'output: 1 | Is there a mug?\n2 | Is the mug blue?\n3 | Is there a desk?\n'
                        '4 | Is the mug on the desk?\n5 | Does the mug say "HELLO"?',
    ("dependencies", MUG): "1 | 0\n2 | 1\n3 | 0\n4 | 1,3\n5 | 1",
}
MUG_QUESTIONS = [
    Question(id="1", text="Is there a mug?", category="entity", subcategory="whole"),
    Question(id="2", text="Is the mug blue?", depends_on=["1"], category="attribute", subcategory="color"),
    Question(id="3", text="Is there a desk?", category="entity", subcategory="whole"),
    Question(id="4", text="Is the mug on the desk?", depends_on=["1", "3"], category="relation", subcategory="spatial"),
    Question(id="5", text='Does the mug say "HELLO"?', depends_on=["1"], category="text"),
]
KITES_BAD = {("tuples", KITES): "Sure! Here are the tuples:\n1 | entity - whole (kites)\n2 | count (kites, 2)"}
KITES_GOOD = {("tuples", KITES): "1 | entity - whole (kites)\n2 | other - count (kites, 2)\n3 | attribute - color (kites, red)",
              ("questions", KITES): "1 | Are there kites?\n2 | Are there two kites?\n3 | Are the kites red?",
              ("dependencies", KITES): "1 | 0\n2 | 1\n3 | 1"}
PROMPTS = f"""name: mine
prompts:
  - id: mug
    prompt: '{MUG}'
    target_text: [HELLO]
  - id: kites
    prompt: '{KITES}'
  - id: kept
    prompt: 'A red ball'
    questions:
      - {{id: a, text: 'Is there a ball?', category: entity}}
"""


@pytest.fixture
def llm():
    svc = ChatLLMFake()
    with FakeServer(svc) as srv:
        yield svc, srv


def draft(srv, src, out, cache, *extra, key=ChatLLMFake.secret):
    return run_cli("prompts", "questions", src, "--llm", srv.url + "/v1", "-o", out, "--cache", cache,
                   "--no-progress", *extra, env=cli_env(EVALSUITE_LLM_API_KEY=key, OPENAI_API_KEY=""))


def test_three_steps_parsed_into_the_file_bad_output_named_cache_hit_on_rerun_no_key_written(llm, tmp_path):
    svc, srv = llm
    svc.answers.update({**GOOD, **KITES_BAD})
    src, out, cache = tmp_path / "mine.yaml", tmp_path / "out.yaml", tmp_path / "cache"
    src.write_text(PROMPTS)
    r = draft(srv, src, out, cache, "--concurrency", "3")
    assert r.returncode == 0, r.stderr
    assert svc.count("chat") == 4 and svc.count("models") == 1   # 3 steps for the mug, 1 for the kites; model asked
    assert svc.bodies[0]["model"] == "tiny-drafter" and svc.bodies[0]["temperature"] == 0
    assert "entry 2 (id 'kites'): no questions drafted: tuples line 1 'Sure! Here are the tuples:' is not " \
           "'N | ...'" in r.stderr
    assert "drafted 5 questions for 1 of 3 prompts (1 kept, 1 without drafts); 4 LLM calls" in r.stdout
    ps, errors, warnings = validate_all(str(out))
    assert errors == [] and warnings == []
    got = ps.by_id()
    assert got["mug"].questions == MUG_QUESTIONS
    assert got["kites"].questions == []                              # never invented
    assert [q.text for q in got["kept"].questions] == ["Is there a ball?"]
    assert [p.id for p in ps.prompts] == ["mug", "kites", "kept"] and ps.name == "mine"

    svc.answers.update(KITES_GOOD)                                   # the failed prompt is asked again, the rest cached
    r = draft(srv, src, out, cache, "--force")
    assert r.returncode == 0, r.stderr
    assert svc.count("chat") == 7
    assert load_prompt_file(out).by_id()["kites"].questions[1] == Question(
        id="2", text="Are there two kites?", depends_on=["1"], category="count")

    r = draft(srv, src, out, cache, "--force", "--model", "tiny-drafter")
    assert r.returncode == 0, r.stderr
    assert svc.count("chat") == 7 and "0 LLM calls, 6 answers from the cache" in r.stdout
    for f in [out, *cache.rglob("*")]:
        if f.is_file():
            assert ChatLLMFake.secret not in f.read_text(encoding="utf-8"), f
    assert len(list(cache.rglob("*.json"))) == 6


def test_replace_redrafts_prompts_that_have_questions_and_out_is_not_overwritten_without_force(llm, tmp_path):
    svc, srv = llm
    svc.answers.update(GOOD)
    src, out = tmp_path / "one.yaml", tmp_path / "out.jsonl"
    src.write_text(f"- id: mug\n  prompt: '{MUG}'\n  questions:\n    - {{id: a, text: 'Is there a cup?', category: entity}}\n")
    out.write_text("")
    r = draft(srv, src, out, tmp_path / "c")
    assert r.returncode == 2 and "exists; use --force" in r.stderr and svc.count("chat") == 0
    r = draft(srv, src, out, tmp_path / "c", "--force", "--replace")
    assert r.returncode == 0, r.stderr
    row = json.loads(out.read_text().splitlines()[0])
    assert [q["text"] for q in row["questions"]] == [q.text for q in MUG_QUESTIONS]


def test_an_endpoint_failure_stops_in_one_line_and_the_rerun_resumes_from_the_cache(llm, tmp_path):
    svc, srv = llm
    svc.answers.update(GOOD)
    svc.fail_at[2] = 400
    src, out, cache = tmp_path / "one.yaml", tmp_path / "out.yaml", tmp_path / "c"
    src.write_text(f"- id: mug\n  prompt: '{MUG}'\n")
    r = draft(srv, src, out, cache, "--model", "tiny-drafter")
    assert r.returncode == 2 and not out.exists()
    assert r.stderr.strip().splitlines()[-1].startswith(f"error: llm {srv.url}/v1: HTTP 400: ")
    r = draft(srv, src, out, cache, "--model", "tiny-drafter")
    assert r.returncode == 0, r.stderr
    assert svc.count("chat") == 4          # tuples (1), failed questions (2), then questions and dependencies only
    assert load_prompt_file(out).prompts[0].questions == MUG_QUESTIONS


def test_a_wrong_key_is_one_line_naming_the_variables_without_the_key(llm, tmp_path):
    svc, srv = llm
    src = tmp_path / "one.yaml"
    src.write_text(f"- id: mug\n  prompt: '{MUG}'\n")
    wrong = "sk-wrongkey0123456789abcdef"
    r = draft(srv, src, tmp_path / "o.yaml", tmp_path / "c", "--model", "m", key=wrong)
    assert r.returncode == 2
    assert "HTTP 401" in r.stderr and "EVALSUITE_LLM_API_KEY or OPENAI_API_KEY" in r.stderr
    assert wrong not in r.stderr + r.stdout and len(r.stderr.strip().splitlines()) == 1


def test_parsing_accepts_dsg_aliases_and_names_every_bad_line():
    ts = qg.parse_tuples("1 | entity - whole (cat)\n2 | relation - action (cat, sleep)\n3 | global (night)")
    assert [(t.category, t.subcategory) for t in ts] == [("entity", "whole"), ("action", None), ("global", None)]
    with pytest.raises(qg.DraftProblem, match=r"tuples line 2: category 'colour' is not one of entity"):
        qg.parse_tuples("1 | entity (cat)\n2 | colour (cat, black)")
    with pytest.raises(qg.DraftProblem, match=r"questions: no line for tuple 2"):
        qg.parse_questions("1 | Is there a cat?", ["1", "2"])
    with pytest.raises(qg.DraftProblem, match=r"questions line 1 'There is a cat' is not a question"):
        qg.parse_questions("1 | There is a cat", ["1"])
    with pytest.raises(qg.DraftProblem, match=r"dependencies line 2: 7 is no tuple"):
        qg.parse_dependencies("1 | 0\n2 | 1, 7", ["1", "2"])
    assert qg.parse_dependencies("1 | 0\n2 | 1 3\n3 | 0", ["1", "2", "3"]) == {"1": [], "2": ["1", "3"], "3": []}
    ts = qg.parse_tuples("1 | entity (cat)\n2 | entity (dog)")
    with pytest.raises(qg.DraftProblem, match="dependency cycle"):
        qg.assemble(ts, {"1": "Is there a cat?", "2": "Is there a dog?"}, {"1": ["2"], "2": ["1"]})


def test_the_cache_key_holds_model_template_and_request():
    msgs = qg.build_messages("tuples", MUG)
    k = qg.DraftCache.key("m", "tuples", msgs)
    assert k == qg.DraftCache.key("m", "tuples", qg.build_messages("tuples", MUG))
    assert k != qg.DraftCache.key("other-model", "tuples", msgs)
    assert k != qg.DraftCache.key("m", "tuples", qg.build_messages("tuples", KITES))
    assert msgs[-1] == {"role": "user", "content": MUG} and msgs[0]["role"] == "system"
    # the in-context examples show the three answers in the very format the parser reads
    for i in range(len(qg.EXAMPLES)):
        tuples = qg.parse_tuples(qg.build_messages("tuples", MUG)[2 + 2 * i]["content"])
        ids = [t.id for t in tuples]
        qs = qg.parse_questions(qg.build_messages("questions", MUG)[2 + 2 * i]["content"], ids)
        deps = qg.parse_dependencies(qg.build_messages("dependencies", MUG)[2 + 2 * i]["content"], ids)
        assert len(qg.assemble(tuples, qs, deps)) == len(ids) >= 5


def test_missing_openai_package_is_one_line_naming_the_extra(monkeypatch):
    from evalsuite import extras
    from evalsuite.errors import EvalsuiteError

    monkeypatch.setattr(extras, "has", lambda m: False)
    with pytest.raises(EvalsuiteError, match=r"needs the package openai, which is not installed: pip install "
                                             r"'evalsuite\[remote\]'"):
        qg.LLMEndpoint("http://127.0.0.1:9/v1", "m").complete([{"role": "user", "content": "x"}])


def test_an_import_source_is_drafted_and_written_as_a_set_that_validates(llm, tmp_path):
    svc, srv = llm
    svc.answers.update(GOOD)
    txt, out = tmp_path / "mine.txt", tmp_path / "out.yaml"
    txt.write_text(MUG + "\n")
    r = draft(srv, f"text:{txt}", out, tmp_path / "c", "--model", "tiny-drafter")
    assert r.returncode == 0, r.stderr
    ps, errors, warnings = validate_all(str(out))
    assert errors == [] and warnings == [] and ps.name == "text-mine"
    assert ps.prompts[0].target_text == ["HELLO"] and ps.prompts[0].questions == MUG_QUESTIONS


def test_an_endpoint_failure_cancels_the_prompts_not_started(llm, tmp_path):
    svc, srv = llm
    svc.answers.update(GOOD)
    svc.fail_at[1] = 400
    svc.latency = 0.2
    src = tmp_path / "many.yaml"
    src.write_text("".join(f"- id: p{i}\n  prompt: 'A prompt number {i}'\n" for i in range(40)))
    r = draft(srv, src, tmp_path / "o.yaml", tmp_path / "c", "--model", "tiny-drafter", "--concurrency", "2")
    assert r.returncode == 2 and "HTTP 400" in r.stderr
    assert svc.count("chat") < 10          # the failed one and those already running, not all 40


def test_a_killed_run_resumes_asking_only_what_the_cache_lacks(llm, tmp_path):
    import subprocess
    import sys
    import time

    svc, srv = llm
    prompts = [f"A blue mug number {i}" for i in range(12)]
    for p in prompts:
        svc.answers.update({(step, p): GOOD[(step, MUG)] for step in qg.STEPS})
    svc.latency = 0.1
    src, out, cache = tmp_path / "many.yaml", tmp_path / "o.yaml", tmp_path / "c"
    src.write_text("".join(f"- id: p{i}\n  prompt: '{p}'\n" for i, p in enumerate(prompts)))
    argv = [sys.executable, "-m", "evalsuite", "prompts", "questions", str(src), "--llm", srv.url + "/v1", "-o",
            str(out), "--cache", str(cache), "--model", "tiny-drafter", "--concurrency", "1", "--no-progress"]
    proc = subprocess.Popen(argv, env=cli_env(EVALSUITE_LLM_API_KEY=ChatLLMFake.secret), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(list(cache.rglob("*.json"))) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    assert not out.exists()
    cached = len(list(cache.rglob("*.json")))
    assert 4 <= cached < 36
    before = svc.count("chat")
    r = draft(srv, src, out, cache, "--model", "tiny-drafter")
    assert r.returncode == 0, r.stderr
    assert svc.count("chat") - before == 36 - cached          # only the steps the killed run had not finished
    assert all(len(p.questions) == 5 for p in load_prompt_file(out).prompts)


def test_an_openai_key_goes_only_to_openai(monkeypatch):
    """OPENAI_API_KEY in the environment is sent to OpenAI's hosts only, never to a local or third-party server;
    EVALSUITE_LLM_API_KEY (set for this purpose) goes to the endpoint given."""
    from evalsuite.questiongen import endpoint_key

    monkeypatch.delenv("EVALSUITE_LLM_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    assert endpoint_key("http://127.0.0.1:8000/v1") is None
    assert endpoint_key("https://openai.com.evil.example/v1") is None
    assert endpoint_key("https://api.openai.com/v1") == "sk-openai"
    monkeypatch.setenv("EVALSUITE_LLM_API_KEY", "own")
    assert endpoint_key("http://127.0.0.1:8000/v1") == "own" and endpoint_key("https://api.openai.com/v1") == "own"
