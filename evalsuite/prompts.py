"""Prompt sets: schema, loading (YAML or JSONL, by name or path), filtering and validation.

Schema of one entry (YAML mapping or one JSON object per line):

    id:          unique, file-safe (letters, digits, '.', '_', '-'; no leading '.'; <= 80 chars)
    prompt:      the text sent to the model (non-empty)
    category:    free-form group name, used for per-category tables (default "uncategorized")
    target_text: list of strings the image must show verbatim (text-rendering prompts); default []
    negatives:   list of hard-negative prompts, each changing exactly one thing; default []
    tags:        list of free-form labels; default []
    questions:   atomic yes/no questions about the image (DSG/TIFA/DPG-Bench style), each
                 {id, text, depends_on: [ids], category, subcategory}; "yes" means followed. Ids are unique
                 within the prompt, dependencies exist and form no cycle. Default [] (see docs/prompts.md).

A YAML file is either a list of entries or a mapping with `name`, `description` and `prompts`.

Rules checked on every load (errors name the file, the entry and the field): ids unique and file-safe,
prompts non-empty, every negative different from the prompt and from the other negatives (compared
case- and whitespace-insensitively, as CLIP's tokenizer sees them). `check_prompt_set` adds warnings
(targets that do not appear verbatim in the prompt; quoted text in the prompt that is no target;
questions of an unknown category, non-root kinds depending on nothing, targets no text question quotes). A source `FORMAT:PATH` (parti:, drawbench:,
geneval:, t2i-compbench:, text:, csv:) imports a public format on the fly (see evalsuite.importers).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import EvalsuiteError
from .importers import extract_quoted, import_source, split_import_source
from .promptset import QUESTION_CATEGORIES, SAFE_ID, Prompt, PromptSet, Question  # noqa: F401  (the models live there; re-exported here)

PROMPT_SUFFIXES = (".yaml", ".yml", ".jsonl")
# The shipped prompt sets are package data: found the same way from a checkout, an editable or a wheel install.
SHIPPED_PROMPTS = Path(__file__).resolve().parent / "data" / "prompts"


def prompt_dirs() -> list[Path]:
    """Where named prompt sets are looked up, in order."""
    dirs = []
    if os.environ.get("EVALSUITE_PROMPTS"):
        dirs += [Path(p) for p in os.environ["EVALSUITE_PROMPTS"].split(os.pathsep) if p]
    dirs.append(Path.cwd() / "prompts")
    dirs.append(SHIPPED_PROMPTS)
    seen, out = set(), []
    for d in dirs:
        r = d.resolve()
        if r not in seen:
            seen.add(r)
            out.append(d)
    return out


def available_sets() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for d in prompt_dirs():
        if not d.is_dir():
            continue
        for f in sorted(d.iterdir()):
            if f.suffix in PROMPT_SUFFIXES and f.stem not in out:
                out[f.stem] = f
    return out


def resolve_prompt_source(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in PROMPT_SUFFIXES or os.sep in name_or_path or p.exists():
        if p.is_dir():
            raise EvalsuiteError(f"prompt file {name_or_path} is a directory; give a .yaml or .jsonl file "
                                 "(or the name of a set: `evalsuite prompts list`)")
        if not p.is_file():
            raise EvalsuiteError(f"prompt file {name_or_path} does not exist")
        return p
    sets = available_sets()
    if name_or_path in sets:
        return sets[name_or_path]
    import difflib

    close = difflib.get_close_matches(name_or_path, list(sets), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; available: {', '.join(sets) or 'none'}"
    raise EvalsuiteError(f"unknown prompt set '{name_or_path}'{hint}")


def _entry_errors(path: Path, index: int, entry: Any, err: ValidationError) -> list[str]:
    """One line per problem of an entry (pydantic's own wording, such as 'Value error,', left out)."""
    ident = entry.get("id") if isinstance(entry, dict) else None
    where = f"entry {index + 1}" + (f" (id {ident!r})" if isinstance(ident, str) and ident else "")
    out = []
    for e in err.errors():
        field = ".".join(str(x) for x in e["loc"]) or "entry"
        msg = e["msg"]
        if e["type"] == "missing":
            msg = "is required"
        elif e["type"] == "extra_forbidden" and e["loc"] and e["loc"][0] == "questions":
            msg = f"is not a known question field ({', '.join(Question.model_fields)})"
        elif e["type"] == "extra_forbidden":
            msg = f"is not a known field ({', '.join(Prompt.model_fields)})"
        elif e["type"] == "value_error":
            msg = str(e.get("ctx", {}).get("error", msg.removeprefix("Value error, ")))
        else:
            msg = msg[:1].lower() + msg[1:]
        out.append(f"{path}: {where}: field '{field}' {msg}")
    return out


def parse_entries(path: Path, entries: list[Any], errors: list[str] | None = None) -> list[Prompt]:
    """Validate raw entries; every error names the file, the entry and the field. Without `errors` the
    first error is raised; with a list, every error of every entry is appended to it (one pass)."""
    prompts: list[Prompt] = []
    seen: dict[str, int] = {}
    found: list[str] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            found.append(f"{path}: entry {i + 1}: expected a mapping with 'id' and 'prompt'")
        else:
            try:
                p = Prompt.model_validate(entry)
            except ValidationError as e:
                found += _entry_errors(path, i, entry, e)
            else:
                found += _negative_errors(path, i, p)
                if p.id in seen:
                    found.append(f"{path}: entry {i + 1}: field 'id' {p.id!r} duplicates entry {seen[p.id] + 1}")
                else:
                    seen[p.id] = i
                prompts.append(p)
        if found and errors is None:
            raise EvalsuiteError(found[0])
    if errors is not None:
        errors += found
    return prompts


def _loose(text: str) -> str:
    """How CLIP's tokenizer sees a prompt: case and runs of whitespace do not matter."""
    return " ".join(text.split()).lower()


def _negative_errors(path: Path | str, index: int, p: Prompt) -> list[str]:
    where = f"{path}: entry {index + 1} (id {p.id!r})"
    seen: dict[str, int] = {}
    out = []
    for j, neg in enumerate(p.negatives):
        key = _loose(neg)
        if key == _loose(p.prompt):
            out.append(f"{where}: field 'negatives' item {j + 1} is the same as the prompt; "
                       "a negative must change one thing")
        elif key in seen:
            out.append(f"{where}: field 'negatives' item {j + 1} repeats item {seen[key] + 1}")
        else:
            seen[key] = j
    return out


def check_prompt_set(ps: PromptSet) -> list[str]:
    """Warnings about a loaded (already valid) set: one line each, naming the file, entry and field."""
    warnings: list[str] = []
    for i, p in enumerate(ps.prompts):
        where = f"{ps.source}: entry {i + 1} (id {p.id!r})"
        for j, t in enumerate(p.target_text):
            if t not in p.prompt:
                warnings.append(f"{where}: field 'target_text' item {j + 1} {t!r} does not appear in the prompt")
        for q in extract_quoted(p.prompt):
            if q not in p.target_text:
                warnings.append(f"{where}: field 'target_text' lacks the quoted text {q!r} of the prompt "
                                "(no OCR score for it)")
        warnings += question_warnings(where, p)
    return warnings


# Question kinds that presuppose something else in the image (an entity, a text carrier): they should depend on
# the question asking for it, so a judge's "no" to the entity fails them too (DSG's dependency gating).
ROOT_CATEGORIES = ("entity", "global", "style")


def question_warnings(where: str, p: Prompt) -> list[str]:
    """Warnings about one prompt's questions (already valid: ids unique, dependencies existing and acyclic):
    unknown categories, targets no `text` question asks about, non-root kinds depending on nothing, no root."""
    if not p.questions:
        return []
    out = []
    for j, q in enumerate(p.questions):
        at = f"{where}: field 'questions' item {j + 1} (id {q.id!r})"
        if q.category not in QUESTION_CATEGORIES:
            out.append(f"{at}: category {q.category!r} is not one of {', '.join(QUESTION_CATEGORIES)} "
                       "(tables group by these)")
        elif q.category not in ROOT_CATEGORIES + ("other",) and not q.depends_on:
            out.append(f"{at}: a {q.category} question depends on no question (add depends_on: the entity it "
                       "presupposes)")
    asked = " ".join(q.text for q in p.questions if q.category == "text")
    for j, t in enumerate(p.target_text):
        if f'"{t}"' not in asked:
            out.append(f"{where}: field 'target_text' item {j + 1} {t!r} has no text question quoting it "
                       f"(e.g. 'Does the sign read \"{t}\"?', category text)")
    if not any(q.category in ROOT_CATEGORIES and not q.depends_on for q in p.questions):
        out.append(f"{where}: field 'questions' has no root question (an entity, global or style question that "
                   "depends on nothing)")
    return out


def dump_prompt_set_yaml(name: str, description: str, prompts: list[Prompt]) -> str:
    """A prompt set as YAML in the layout of the shipped sets (empty fields left out); loads back unchanged."""
    import yaml

    entries = []
    for p in prompts:
        d = p.model_dump(exclude_none=True)
        d["questions"] = [{k: v for k, v in q.items() if v != []} for q in d.get("questions", [])]
        entries.append({k: v for k, v in d.items() if v not in ([], None) and not (k == "category" and v == "uncategorized")})
    data = {"name": name, "description": description, "prompts": entries}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1_000_000, default_flow_style=False)


def _read_entries(path: Path) -> tuple[list[Any], dict[str, Any]]:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        line = path.read_bytes()[:e.start].count(b"\n") + 1
        raise EvalsuiteError(f"{path}: line {line}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset "
                             f"{e.start}); save the file as UTF-8") from None
    except IsADirectoryError:
        raise EvalsuiteError(f"{path} is a directory, not a prompt file") from None
    meta: dict[str, Any] = {}
    if path.suffix == ".jsonl":
        entries = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise EvalsuiteError(f"{path}: line {n}: not valid JSON ({e.msg})") from None
        return entries, meta
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise EvalsuiteError(f"{path}: {where}not valid YAML ({getattr(e, 'problem', e)})") from None
    if isinstance(data, dict):
        if "prompts" not in data:
            raise EvalsuiteError(f"{path}: a mapping at the top needs a 'prompts' list")
        meta = {k: v for k, v in data.items() if k != "prompts"}
        data = data["prompts"]
    if not isinstance(data, list):
        raise EvalsuiteError(f"{path}: expected a list of prompt entries")
    return data, meta


def load_prompt_file(path: str | Path, name: str | None = None) -> PromptSet:
    path = Path(path)
    entries, meta = _read_entries(path)
    prompts = parse_entries(path, entries)
    if not prompts:
        raise EvalsuiteError(f"{path}: no prompts")
    return PromptSet(
        name=name or str(meta.get("name") or path.stem),
        source=str(path),
        description=str(meta.get("description") or ""),
        prompts=prompts,
    )


def load_prompt_set(
    name_or_path: str,
    categories: list[str] | None = None,
    limit: int | None = None,
) -> PromptSet:
    """Load a prompt set by name (a file in $EVALSUITE_PROMPTS, ./prompts or the shipped sets), path or FORMAT:PATH (imported on the fly),
    then filter by category and limit."""
    if split_import_source(name_or_path):
        ps = import_source(name_or_path)
    else:
        ps = load_prompt_file(resolve_prompt_source(name_or_path))
    prompts = ps.prompts
    if categories:
        known = set(ps.categories())
        unknown = [c for c in categories if c not in known]
        if unknown:
            raise EvalsuiteError(
                f"{ps.source}: no category {', '.join(map(repr, unknown))}; categories: {', '.join(sorted(known))}"
            )
        prompts = [p for p in prompts if p.category in categories]
    if limit is not None:
        if limit < 1:
            raise EvalsuiteError(f"--limit must be at least 1, got {limit}")
        prompts = prompts[:limit]
    return ps.model_copy(update={"prompts": prompts})


def list_prompt_sets() -> tuple[list[tuple[str, PromptSet, Path]], list[str]]:
    """Every named set (name, loaded set, file) and one error line per set that does not load."""
    rows, errors = [], []
    for name, path in sorted(available_sets().items()):
        try:
            rows.append((name, load_prompt_file(path, name=name), path))
        except EvalsuiteError as e:
            errors.append(str(e))
    return rows, errors


def validate_source(source: str) -> tuple[PromptSet, list[str]]:
    """Load a file, set name or FORMAT:PATH with every check; returns the set and its warnings."""
    ps = load_prompt_set(source)
    return ps, check_prompt_set(ps)


def validate_all(source: str) -> tuple[PromptSet | None, list[str], list[str]]:
    """(set or None, every error, warnings) of a file, set name or FORMAT:PATH, in one pass: all entries
    are checked, so one run of `prompts validate` lists every mistake of a file."""
    if split_import_source(source):
        try:
            ps, warnings = validate_source(source)
        except EvalsuiteError as e:
            return None, [str(e)], []
        return ps, [], warnings
    try:
        path = resolve_prompt_source(source)
        entries, meta = _read_entries(path)
    except EvalsuiteError as e:
        return None, [str(e)], []
    errors: list[str] = []
    prompts = parse_entries(path, entries, errors)
    if not entries:
        errors.append(f"{path}: no prompts")
    if errors:
        return None, errors, []
    ps = PromptSet(name=str(meta.get("name") or path.stem), source=str(path),
                   description=str(meta.get("description") or ""), prompts=prompts)
    return ps, [], check_prompt_set(ps)


def format_prompt(p: Prompt) -> str:
    """A prompt as a few readable lines (for `evalsuite prompts show`)."""
    lines = [f"{p.id}  [{p.category}]", f"  prompt:    {p.prompt}"]
    if p.target_text:
        lines.append("  targets:   " + " | ".join(p.target_text))
    for j, neg in enumerate(p.negatives):
        lines.append(("  negatives: " if j == 0 else "             ") + neg)
    if p.tags:
        lines.append("  tags:      " + ", ".join(p.tags))
    for j, q in enumerate(p.questions):
        deps = f"  (if {', '.join(q.depends_on)})" if q.depends_on else ""
        lines.append(("  questions: " if j == 0 else "             ") + f"{q.id}. [{q.category}] {q.text}{deps}")
    return "\n".join(lines)


def check_output_path(out: str | Path, force: bool = False) -> Path:
    """A prompt file to write: .yaml/.yml/.jsonl, and not an existing file unless force."""
    out = Path(out)
    if out.suffix not in PROMPT_SUFFIXES:
        raise EvalsuiteError(f"{out}: the output must end in .yaml, .yml or .jsonl")
    if out.exists() and not force:
        raise EvalsuiteError(f"{out} exists; use --force to overwrite it")
    return out


def write_prompt_set(ps: PromptSet, out: str | Path, force: bool = False) -> Path:
    """Write a set as YAML (.yaml/.yml) or JSONL (.jsonl), atomically; refuses to overwrite unless force."""
    from .runfolder import atomic_write_text

    out = check_output_path(out, force)
    if out.suffix == ".jsonl":
        text = "".join(json.dumps(p.model_dump(), ensure_ascii=False) + "\n" for p in ps.prompts)
    else:
        text = dump_prompt_set_yaml(ps.name, ps.description, ps.prompts)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, text)
    return out
