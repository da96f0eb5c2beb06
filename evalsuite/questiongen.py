"""Drafting atomic questions for a prompt set with an LLM, following DSG's three steps (Davidsonian Scene Graph):

    1. tuples:       the prompt -> semantic tuples, one per line: `N | category - subcategory (arguments)`
    2. questions:    prompt + tuples -> one yes/no question per tuple: `N | question`
    3. dependencies: prompt + tuples -> the parents of each tuple: `N | 0` (none) or `N | 1,2`

Any OpenAI-compatible chat-completions endpoint works (vLLM, SGLang, Ollama, OpenAI, ...): the `openai` package
(extra `remote`) is imported only when a call is made; the key comes from EVALSUITE_LLM_API_KEY (any endpoint) or
OPENAI_API_KEY (sent only to OpenAI's own hosts;
keyless local servers need neither) and is never written anywhere. Every answer that parses is cached,
request-keyed (SHA-256 of the endpoint's model name, TEMPLATE_VERSION and the full request text, which holds the
prompt), under the cache folder: a rerun costs no calls, a killed run resumes. An answer that does not parse is
named line by line and leaves its prompt without drafts (never guessed); it is not cached, so a rerun asks again.

    draft_questions(source, out, endpoint=..., model=None, cache_dir=None, replace=False, force=False,
                    concurrency=4)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .errors import EvalsuiteError
from .promptset import QUESTION_CATEGORIES, Prompt, PromptSet, Question, question_errors

TEMPLATE_VERSION = "evalsuite-dsg-1"
KEY_ENV = ("EVALSUITE_LLM_API_KEY", "OPENAI_API_KEY")


def endpoint_key(base_url: str) -> str | None:
    """The key to send: EVALSUITE_LLM_API_KEY to any endpoint (set for this purpose), OPENAI_API_KEY only to
    OpenAI's own hosts, so an OpenAI key in the environment never reaches a third-party or local server."""
    from urllib.parse import urlsplit

    own = os.environ.get("EVALSUITE_LLM_API_KEY", "").strip()
    if own:
        return own
    host = (urlsplit(base_url).hostname or "").lower()
    if host == "openai.com" or host.endswith(".openai.com"):
        return os.environ.get("OPENAI_API_KEY", "").strip() or None
    return None
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "evalsuite" / "questiongen"
STEPS = ("tuples", "questions", "dependencies")
KINDS = ", ".join(c for c in QUESTION_CATEGORIES if c != "other")

PREAMBLES = {
    "tuples": (
        "Task: given a text-to-image prompt, list the atomic facts an image must show to follow it, as semantic "
        f"tuples. Categories: {KINDS}. Write one tuple per line as `id | category - subcategory (arguments)`; the "
        "subcategory may be left out (`id | category (arguments)`). Entities first, then their attributes, counts, "
        "relations and actions; a quoted text to render is a `text` tuple with the text verbatim; a negation is a "
        "`negation` tuple. Do not repeat a tuple and do not add facts the prompt does not state. Output only the "
        "lines."),
    "questions": (
        "Task: given a text-to-image prompt and its semantic tuples, rewrite each tuple as one yes/no question "
        "about the image, where the answer yes means the prompt is followed (for a negation: 'Is the room without "
        "windows?'). One fact per question; quoted text verbatim in double quotes. Write `id | question`, one line "
        "per tuple, same ids. Output only the lines."),
    "dependencies": (
        "Task: given a text-to-image prompt and its semantic tuples, name the parent tuples of each tuple: the "
        "tuples that must hold for it to make sense (an attribute, count, action or text depends on its entity, a "
        "relation on both entities). Write `id | parents` with the parent ids comma-separated, or `id | 0` for none. "
        "One line per tuple, same ids. Output only the lines."),
}

# In-context examples written for evalsuite (tuples, questions, parents per line).
EXAMPLES = [
    ('A neon sign in a dark window that says "OPEN 24 HOURS"', [
        ("entity - whole (sign)", "Is there a neon sign?", "0"),
        ("entity - whole (window)", "Is there a window?", "0"),
        ("attribute - state (window, dark)", "Is the window dark?", "2"),
        ("relation - spatial (sign, window, in)", "Is the neon sign in the window?", "1,2"),
        ('text (sign, "OPEN 24 HOURS")', 'Does the neon sign read "OPEN 24 HOURS"?', "1"),
    ]),
    ("Three green apples in a wooden bowl, watercolour", [
        ("entity - whole (apples)", "Are there apples?", "0"),
        ("count (apples, 3)", "Are there three apples?", "1"),
        ("attribute - color (apples, green)", "Are the apples green?", "1"),
        ("entity - whole (bowl)", "Is there a bowl?", "0"),
        ("attribute - material (bowl, wood)", "Is the bowl wooden?", "4"),
        ("relation - spatial (apples, bowl, in)", "Are the apples in the bowl?", "1,4"),
        ("style (watercolour)", "Is the image a watercolour painting?", "0"),
    ]),
    ("A cat sleeping in a room with no windows", [
        ("entity - whole (cat)", "Is there a cat?", "0"),
        ("action (cat, sleep)", "Is the cat sleeping?", "1"),
        ("entity - whole (room)", "Is there a room?", "0"),
        ("relation - spatial (cat, room, in)", "Is the cat in the room?", "1,3"),
        ("negation (room, windows)", "Is the room without windows?", "3"),
    ]),
]


@dataclass(frozen=True)
class Tuple:
    id: str
    category: str
    subcategory: str | None
    arguments: str


class DraftProblem(Exception):
    """An LLM answer that does not parse: the step and the offending lines."""


def _numbered(rows: list[str]) -> str:
    return "\n".join(f"{i} | {r}" for i, r in enumerate(rows, 1))


def _example_output(step: str, rows) -> str:
    return _numbered([r[STEPS.index(step)] for r in rows])   # rows are (tuple, question, parents)


def build_messages(step: str, prompt: str, tuples_text: str | None = None) -> list[dict[str, str]]:
    """The chat messages of one step: the task, the examples as user/assistant turns, then this prompt."""
    msgs = [{"role": "system", "content": PREAMBLES[step]}]
    for ex_prompt, rows in EXAMPLES:
        ex_in = ex_prompt if step == "tuples" else ex_prompt + "\n" + _numbered([r[0] for r in rows])
        msgs += [{"role": "user", "content": ex_in}, {"role": "assistant", "content": _example_output(step, rows)}]
    msgs.append({"role": "user", "content": prompt if step == "tuples" else prompt + "\n" + (tuples_text or "")})
    return msgs


LINE = re.compile(r"^\s*(\d+)\s*[|:]\s*(.*?)\s*$")
TUPLE = re.compile(r"^([A-Za-z]+)\s*(?:-\s*([A-Za-z][A-Za-z ]*?))?\s*\((.*)\)$")
ALIASES = {"relation - action": "action", "other - count": "count", "other - text": "text"}


def _lines(text: str, step: str) -> list[tuple[int, str, str]]:
    """(line number, id, rest) of each numbered line; blank lines, code fences and an `output:` label are skipped,
    anything else is a problem naming the line."""
    out, bad = [], []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip().removeprefix("output:").strip()
        if not line or line.startswith("```"):
            continue
        m = LINE.match(line)
        if not m or not m.group(2):
            bad.append(f"{step} line {n} {raw.strip()[:80]!r} is not 'N | ...'")
        else:
            out.append((n, m.group(1), m.group(2)))
    if bad:
        raise DraftProblem("; ".join(bad))
    if not out:
        raise DraftProblem(f"{step}: the answer holds no numbered line")
    return out


def parse_tuples(text: str) -> list[Tuple]:
    out, bad, seen = [], [], set()
    for n, tid, rest in _lines(text, "tuples"):
        m = TUPLE.match(rest)
        if not m:
            bad.append(f"tuples line {n} {rest[:80]!r} is not 'category - subcategory (arguments)'")
            continue
        cat, sub = m.group(1).lower(), (m.group(2) or "").strip().lower() or None
        alias = ALIASES.get(f"{cat} - {sub}") if sub else None
        cat, sub = (alias, None) if alias else (cat, sub)
        if cat not in QUESTION_CATEGORIES or cat == "other":
            bad.append(f"tuples line {n}: category {cat!r} is not one of {KINDS}")
        elif tid in seen:
            bad.append(f"tuples line {n}: id {tid} repeats")
        else:
            seen.add(tid)
            out.append(Tuple(tid, cat, sub, m.group(3).strip()))
    if bad:
        raise DraftProblem("; ".join(bad))
    return out


def _per_id(text: str, step: str, ids: list[str]) -> dict[str, tuple[int, str]]:
    got: dict[str, tuple[int, str]] = {}
    bad = []
    for n, tid, rest in _lines(text, step):
        if tid not in ids:
            bad.append(f"{step} line {n}: id {tid} is no tuple")
        elif tid in got:
            bad.append(f"{step} line {n}: id {tid} repeats")
        else:
            got[tid] = (n, rest)
    missing = [i for i in ids if i not in got]
    if missing:
        bad.append(f"{step}: no line for tuple {', '.join(missing)}")
    if bad:
        raise DraftProblem("; ".join(bad))
    return got


def parse_questions(text: str, ids: list[str]) -> dict[str, str]:
    got = _per_id(text, "questions", ids)
    bad = [f"questions line {n} {q[:80]!r} is not a question" for n, q in got.values() if not q.endswith("?")]
    if bad:
        raise DraftProblem("; ".join(bad))
    return {i: q for i, (_, q) in got.items()}


def parse_dependencies(text: str, ids: list[str]) -> dict[str, list[str]]:
    out, bad = {}, []
    for i, (n, rest) in _per_id(text, "dependencies", ids).items():
        parts = [p.strip() for p in rest.replace(" ", ",").split(",") if p.strip()]
        deps = [p for p in parts if p != "0"]
        if not all(p.isdigit() for p in parts):
            bad.append(f"dependencies line {n} {rest[:80]!r} is not '0' or ids separated by commas")
        elif any(d not in ids for d in deps):
            bad.append(f"dependencies line {n}: {', '.join(d for d in deps if d not in ids)} is no tuple")
        else:
            out[i] = deps
    if bad:
        raise DraftProblem("; ".join(bad))
    return out


def assemble(tuples: list[Tuple], questions: dict[str, str], deps: dict[str, list[str]]) -> list[Question]:
    qs = [Question(id=t.id, text=questions[t.id], depends_on=deps[t.id], category=t.category,
                   subcategory=t.subcategory) for t in tuples]
    problems = question_errors(qs)
    if problems:
        raise DraftProblem("dependencies: " + "; ".join(problems))
    return qs


class DraftCache:
    """LLM answers keyed by SHA-256 of (endpoint model, template version, step, the request's messages)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @staticmethod
    def key(model: str, step: str, messages: list[dict[str, str]]) -> str:
        blob = json.dumps({"model": model, "template": TEMPLATE_VERSION, "step": step, "messages": messages},
                          sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        try:
            return json.loads(self.path(key).read_text(encoding="utf-8"))["response"]
        except (OSError, ValueError, KeyError, TypeError):   # absent or damaged: ask again
            return None

    def put(self, key: str, model: str, step: str, prompt: str, response: str) -> None:
        from .runfolder import atomic_write_json

        atomic_write_json(self.path(key), {"model": model, "template": TEMPLATE_VERSION, "step": step,
                                           "prompt": prompt, "response": response})


class LLMEndpoint:
    """An OpenAI-compatible chat-completions endpoint (`openai` imported on the first call); counts its calls."""

    def __init__(self, base_url: str, model: str | None = None, timeout: float = 120.0, max_retries: int = 3):
        self.base_url, self.timeout, self.max_retries = base_url.rstrip("/"), timeout, max_retries
        self.key = endpoint_key(self.base_url)
        self._client = None
        self._model = model
        self.calls = 0

    def client(self):
        if self._client is None:
            from .extras import require

            require("openai", "drafting questions through an LLM")
            import openai

            # keyless local servers (vLLM, Ollama) accept any placeholder; the real key only from the environment
            self._client = openai.OpenAI(base_url=self.base_url, api_key=self.key or "no-key",
                                         timeout=self.timeout, max_retries=self.max_retries)
        return self._client

    @property
    def model(self) -> str:
        if self._model is None:
            self.client()
            models = self._guard(lambda: [m.id for m in self.client().models.list()])
            if len(models) != 1:
                raise EvalsuiteError(f"llm {self.base_url}: serves {len(models)} models "
                                     f"({', '.join(models[:8]) or 'none'}); choose one with --model")
            self._model = models[0]
        return self._model

    def complete(self, messages: list[dict[str, str]]) -> str:
        def call():
            r = self.client().chat.completions.create(model=self.model, messages=messages, temperature=0,
                                                      max_tokens=1024)
            return (r.choices[0].message.content or "") if r.choices else ""

        self.client()
        self.calls += 1
        return self._guard(call)

    def _guard(self, fn: Callable):
        """Run fn; an endpoint failure becomes one line without the key (the run stops; cached drafts stay)."""
        import openai

        from .backends.remote import redact

        try:
            return fn()
        except openai.APIStatusError as e:
            hint = f"; set {' or '.join(KEY_ENV)}" if e.status_code in (401, 403) else ""
            msg = f"llm {self.base_url}: HTTP {e.status_code}: {e.message}{hint}"
        except openai.APIError as e:   # connection errors and timeouts
            msg = f"llm {self.base_url}: {type(e).__name__}: {e}"
        raise EvalsuiteError(redact(" ".join(msg.split()), extra=(self.key or "",))[:400])


@dataclass
class DraftReport:
    drafted: list[str] = field(default_factory=list)     # prompt ids given new questions
    kept: list[str] = field(default_factory=list)        # prompt ids that already had questions
    failed: dict[str, str] = field(default_factory=dict)  # prompt id -> why no draft
    calls: int = 0
    cached: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


def _ask(llm: LLMEndpoint, cache: DraftCache, report: DraftReport, step: str, prompt: str,
         messages: list[dict[str, str]], parse: Callable[[str], object]):
    """One step: the cached answer, else a call; the parsed result. Only answers that parse are cached."""
    key = DraftCache.key(llm.model, step, messages)
    text = cache.get(key)
    if text is not None:
        with report.lock:
            report.cached += 1
        return parse(text)
    text = llm.complete(messages)
    with report.lock:
        report.calls += 1
    parsed = parse(text)
    cache.put(key, llm.model, step, prompt, text)
    return parsed


def draft_prompt(prompt: str, llm: LLMEndpoint, cache: DraftCache, report: DraftReport) -> list[Question]:
    """DSG's three steps for one prompt (raises DraftProblem when an answer does not parse)."""
    tuples = _ask(llm, cache, report, "tuples", prompt, build_messages("tuples", prompt), parse_tuples)
    ids = [t.id for t in tuples]
    listing = "\n".join(f"{t.id} | {t.category}{' - ' + t.subcategory if t.subcategory else ''} ({t.arguments})"
                        for t in tuples)
    questions = _ask(llm, cache, report, "questions", prompt, build_messages("questions", prompt, listing),
                     lambda t: parse_questions(t, ids))
    deps = _ask(llm, cache, report, "dependencies", prompt, build_messages("dependencies", prompt, listing),
                lambda t: parse_dependencies(t, ids))
    return assemble(tuples, questions, deps)


def _draft_one(p: Prompt, llm: LLMEndpoint, cache: DraftCache, report: DraftReport) -> tuple[Prompt, str | None]:
    try:
        return p.model_copy(update={"questions": draft_prompt(p.prompt, llm, cache, report)}), None
    except DraftProblem as e:
        return p, str(e)


def draft_set(ps: PromptSet, llm: LLMEndpoint, cache: DraftCache, replace: bool = False,
              progress: bool = True, concurrency: int = 4) -> tuple[PromptSet, DraftReport]:
    """Every prompt without questions (all with replace) drafted, `concurrency` prompts at a time; the others
    kept as they are. An endpoint failure cancels what has not started and is raised (answers so far cached)."""
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    if concurrency < 1:
        raise EvalsuiteError(f"--concurrency must be at least 1, got {concurrency}")
    report = DraftReport()
    todo = [p for p in ps.prompts if replace or not p.questions]
    report.kept = [p.id for p in ps.prompts if not (replace or not p.questions)]
    if todo:
        llm.model   # resolved once (GET /v1/models when not given), before the threads
    done: dict[str, Prompt] = {}
    stop = threading.Event()

    def work(p: Prompt):
        if stop.is_set():                      # an endpoint failure elsewhere: start nothing new
            return None
        try:
            return _draft_one(p, llm, cache, report)
        except BaseException:
            stop.set()
            raise

    pool = ThreadPoolExecutor(max_workers=concurrency)
    try:
        with tqdm(total=len(todo), desc="draft questions", unit="prompt", disable=not progress, file=sys.stderr) as bar:
            for res in pool.map(work, todo):
                if res is None:
                    continue
                new, why = res
                done[new.id] = new
                if why is None:
                    report.drafted.append(new.id)
                else:
                    report.failed[new.id] = why
                bar.update()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return ps.model_copy(update={"prompts": [done.get(p.id, p) for p in ps.prompts]}), report


def draft_questions(source: str, out: str | Path, endpoint: str, model: str | None = None,
                    cache_dir: str | Path | None = None, replace: bool = False, force: bool = False,
                    progress: bool = True, concurrency: int = 4) -> tuple[PromptSet, DraftReport]:
    """Draft questions for a prompt file, set name or FORMAT:PATH and write the set to `out` atomically (what
    `evalsuite prompts questions` runs)."""
    from .prompts import check_output_path, load_prompt_set, write_prompt_set

    check_output_path(out, force)
    ps = load_prompt_set(source)
    llm = LLMEndpoint(endpoint, model)
    drafted, report = draft_set(ps, llm, DraftCache(Path(cache_dir) if cache_dir else DEFAULT_CACHE), replace,
                                progress, concurrency)
    write_prompt_set(drafted, out, force=force)
    return drafted, report
