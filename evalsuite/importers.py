"""Importers for public prompt formats: one pure function per format, path -> list[Prompt].

Formats (the name is also the prefix of `--prompts FORMAT:PATH`):

    parti          PartiPrompts TSV: columns Prompt, Category, Challenge, Note (Challenge kept as a tag)
    drawbench      DrawBench CSV: columns Prompts, Category
    geneval        GenEval metadata JSONL: {"tag", "prompt", "include": [...], "exclude": [...]}
    dpg            DPG-Bench CSV (ELLA's dpg_bench.csv): one row per question, columns item_id, text, keywords,
                   proposition_id, dependency, category_broad, category_detailed, tuple, question_natural_language;
                   one prompt per item_id (id = item_id) with its questions
    t2i-compbench  T2I-CompBench text files: one prompt per line, category from the file name
                   (`color_val.txt` -> `color`); PATH may be a folder of such files
    text           plain text: one prompt per line ('#' comments and blank lines skipped)
    csv            CSV with a prompt column (prompt, prompts, text or caption; any case) and an
                   optional category column

Every imported prompt gets a stable id (slug of the prompt + 8 hex digits of its SHA-256), its
category, and target_text = the quoted spans of the prompt (`extract_quoted`). A prompt whose text
repeats an earlier one in the same file is dropped (same text, same images); `warn` is told.
Negatives are left empty except where the source says honestly what would be wrong (GenEval, see
`geneval_negatives`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import sys
import unicodedata
from pathlib import Path
from typing import Any, Callable

from pydantic import ValidationError

from .errors import EvalsuiteError
from .promptset import Prompt, PromptSet, Question

Warn = Callable[[str], None]

# Opening quote -> closing quote. Straight single quotes and the curly right single quote are also
# apostrophes; those only open/close a span at a word boundary (see _is_opener/_is_closer).
QUOTE_PAIRS = {'"': '"', "\u201c": "\u201d", "\u201e": "\u201c", "\u00ab": "\u00bb", "'": "'", "\u2018": "\u2019"}
APOSTROPHES = {"'", "\u2019"}


def _is_opener(text: str, i: int) -> bool:
    ch = text[i]
    if ch not in QUOTE_PAIRS:
        return False
    prev = text[i - 1] if i > 0 else " "
    nxt = text[i + 1] if i + 1 < len(text) else " "
    if prev.isalnum():  # don't, McDonald's, 12" pizza: inside or right after a word, never an opener
        return False
    return ch not in ("'", "\u2018") or not nxt.isspace()  # ' followed by a space is no opener


def _is_closer(text: str, i: int, closer: str) -> bool:
    if text[i] != closer:
        return False
    if closer in APOSTROPHES:
        nxt = text[i + 1] if i + 1 < len(text) else " "
        prev = text[i - 1] if i > 0 else " "
        return not nxt.isalnum() and not prev.isspace()  # 'McDonald's' closes after the s, not at d's
    return True


def extract_quoted(text: str) -> list[str]:
    """The quoted spans of a prompt, outermost only, in order (repeats kept: they say how often).

    Double quotes, curly quotes, guillemets and single-quoted spans count; an apostrophe inside a word
    (don't, McDonald's) neither opens nor closes a span, so 'McDonald's' is one target. Quotes nested
    in a span stay part of it: `"Joe's 'Best' Diner"` -> ["Joe's 'Best' Diner"]. An opening quote
    without a closing one is ignored.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        if _is_opener(text, i):
            closer = QUOTE_PAIRS[text[i]]
            j = i + 1
            while j < len(text) and not _is_closer(text, j, closer):
                j += 1
            if j < len(text):
                span = text[i + 1:j].strip()
                if span:
                    out.append(span)
                i = j + 1
                continue
        i += 1
    return out


def slugify(text: str, max_len: int = 40) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    slug = slug[:max_len].rstrip("-")
    return slug or "prompt"


def stable_id(prompt: str) -> str:
    """slug + 8 hex digits of the prompt's SHA-256: the same prompt text gets the same id everywhere."""
    return f"{slugify(prompt)}-{hashlib.sha256(prompt.encode('utf-8')).hexdigest()[:8]}"


def make_prompt(path: Path, where: str, field: str, text: Any, category: Any = None,
                tags: list[str] | None = None, negatives: list[str] | None = None) -> Prompt:
    """One imported prompt; an empty prompt is an error naming the file, the line and the field."""
    if text is not None and not isinstance(text, str):
        raise EvalsuiteError(f"{path}: {where}: field '{field}' must be a string")
    text = (text or "").strip()
    if not text:
        raise EvalsuiteError(f"{path}: {where}: field '{field}' is empty")
    cat = str(category).strip() if category is not None and str(category).strip() else "uncategorized"
    return Prompt(id=stable_id(text), prompt=text, category=cat, target_text=extract_quoted(text),
                  negatives=[n for n in (negatives or []) if n.strip() and n.strip() != text],
                  tags=[t for t in (tags or []) if t.strip()])


def _dedupe(path: Path, rows: list[tuple[str, Prompt]], warn: Warn | None) -> list[Prompt]:
    out: dict[str, Prompt] = {}
    first: dict[str, str] = {}
    for where, p in rows:
        if p.id in out:
            if warn:
                warn(f"{path}: {where}: prompt repeats {first[p.id]} and is dropped: {p.prompt[:60]!r}")
            continue
        out[p.id], first[p.id] = p, where
    return list(out.values())


def _read_text(path: Path) -> str:
    if path.is_dir():
        raise EvalsuiteError(f"{path} is a directory, not a file to import")
    if not path.is_file():
        raise EvalsuiteError(f"{path}: no such file")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise EvalsuiteError(f"{path}: not UTF-8 text (byte {e.start})") from None


def _table(path: Path, delimiter: str, wanted: dict[str, tuple[str, ...]], required: str):
    """Rows of a CSV/TSV as (line number, {role: value}); the header names the columns (any case)."""
    text = _read_text(path)
    # TSV (PartiPrompts) has no quoting: a prompt may start with a quote. CSV uses standard quoting.
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as e:
        raise EvalsuiteError(f"{path}: line 1: not valid {'TSV' if delimiter == chr(9) else 'CSV'} ({e})") from None
    if header is None:
        raise EvalsuiteError(f"{path}: empty file (expected a header with a '{wanted[required][0]}' column)")
    names = [h.strip().lower() for h in header]
    cols: dict[str, int] = {}
    for role, options in wanted.items():
        for opt in options:
            if opt.lower() in names:
                cols[role] = names.index(opt.lower())
                break
    if required not in cols:
        raise EvalsuiteError(f"{path}: line 1: header has no '{wanted[required][0]}' column "
                             f"(found: {', '.join(h.strip() for h in header) or 'nothing'})")
    rows = []
    try:
        for fields in reader:
            line = reader.line_num
            if not any(f.strip() for f in fields):
                continue
            if len(fields) > len(header):
                raise EvalsuiteError(f"{path}: line {line}: {len(fields)} fields but the header has {len(header)}")
            rows.append((line, {role: fields[i] if i < len(fields) else "" for role, i in cols.items()},
                         header[cols[required]].strip()))
    except csv.Error as e:
        raise EvalsuiteError(f"{path}: line {reader.line_num}: not valid CSV ({e})") from None
    return rows


def import_parti(path: str | Path, warn: Warn | None = None) -> list[Prompt]:
    """PartiPrompts TSV (Prompt, Category, Challenge, Note). Challenge becomes the tag `challenge:X`."""
    path = Path(path)
    rows = _table(path, "\t", {"prompt": ("Prompt",), "category": ("Category",), "challenge": ("Challenge",)},
                  "prompt")
    out = []
    for line, r, col in rows:
        tags = [f"challenge:{r['challenge'].strip()}"] if r.get("challenge", "").strip() else []
        out.append((f"line {line}", make_prompt(path, f"line {line}", col, r["prompt"], r.get("category"), tags)))
    return _dedupe(path, out, warn)


def import_drawbench(path: str | Path, warn: Warn | None = None) -> list[Prompt]:
    """DrawBench CSV (Prompts, Category)."""
    path = Path(path)
    rows = _table(path, ",", {"prompt": ("Prompts", "Prompt"), "category": ("Category",)}, "prompt")
    out = [(f"line {line}", make_prompt(path, f"line {line}", col, r["prompt"], r.get("category")))
           for line, r, col in rows]
    return _dedupe(path, out, warn)


def import_csv(path: str | Path, warn: Warn | None = None) -> list[Prompt]:
    """Any CSV with a prompt column (prompt, prompts, text or caption) and optionally a category column."""
    path = Path(path)
    rows = _table(path, ",", {"prompt": ("prompt", "prompts", "text", "caption"), "category": ("category",)},
                  "prompt")
    out = [(f"line {line}", make_prompt(path, f"line {line}", col, r["prompt"], r.get("category")))
           for line, r, col in rows]
    return _dedupe(path, out, warn)


def _lines(path: Path, comments: bool) -> list[tuple[int, str]]:
    out = []
    for n, line in enumerate(_read_text(path).splitlines(), 1):
        s = line.strip()
        if not s or (comments and s.startswith("#")):
            continue
        out.append((n, s))
    return out


def import_text(path: str | Path, warn: Warn | None = None) -> list[Prompt]:
    """Plain text: one prompt per line; blank lines and lines starting with '#' are skipped."""
    path = Path(path)
    out = [(f"line {n}", make_prompt(path, f"line {n}", "prompt", s)) for n, s in _lines(path, comments=True)]
    return _dedupe(path, out, warn)


def t2i_compbench_category(path: Path) -> str:
    """`color_val.txt` -> `color`, `non_spatial_train.txt` -> `non_spatial`, `complex.txt` -> `complex`."""
    return re.sub(r"_(val|train|test)$", "", path.stem) or path.stem


def import_t2i_compbench(path: str | Path, warn: Warn | None = None) -> list[Prompt]:
    """T2I-CompBench: one prompt per line, category from the file name; a folder imports every *.txt."""
    path = Path(path)
    files = sorted(path.glob("*.txt")) if path.is_dir() else [path]
    if path.is_dir() and not files:
        raise EvalsuiteError(f"{path}: folder holds no .txt files")
    out = []
    for f in files:
        cat = t2i_compbench_category(f)
        out += [(f"{f.name} line {n}", make_prompt(f, f"line {n}", "prompt", s, cat))
                for n, s in _lines(f, comments=False)]
    return _dedupe(path, out, warn)


NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                "eleven", "twelve"]
FLIPS = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}


def _replace_once(text: str, old: str, new: str) -> str | None:
    """Replace the whole word/phrase `old` (any case) when it occurs exactly once; else None."""
    hits = list(re.finditer(rf"(?<![A-Za-z]){re.escape(old)}(?![A-Za-z])", text, flags=re.IGNORECASE))
    if len(hits) != 1:
        return None
    m = hits[0]
    found = m.group(0)
    repl = new.capitalize() if found[:1].isupper() else new
    return text[:m.start()] + repl + text[m.end():]


def _swap_once(text: str, a: str, b: str) -> str | None:
    """Swap two words that each occur once; the article before each follows (a orange -> an orange)."""
    if _replace_once(text, a, "\0") is None or _replace_once(text, b, "\0") is None:
        return None
    out = _replace_once(_replace_once(_replace_once(text, a, "\0"), b, a), "\0", b)
    for w in (a, b):
        out = re.sub(rf"\b([Aa])n? ({re.escape(w)})\b",
                     lambda m: m.group(1) + ("n" if m.group(2)[:1].lower() in "aeiou" else "") + " " + m.group(2), out)
    return out


def geneval_negatives(prompt: str, include: list[dict], exclude: list[dict]) -> list[str]:
    """Hard negatives GenEval's metadata states honestly; nothing is guessed.

    - count: include `{class, count: n}` with exclude `{class, count: n+1}` (the image must not show
      n+1) -> the prompt with the number word n replaced by n+1.
    - position: include `{position: [rel, i]}` with rel left of/right of/above/below -> the flipped
      relation (the arrangement the check rejects).
    - two colours bound to two objects -> the colours swapped between the objects.
    Each only when the words occur exactly once in the prompt. Single-object colours, plain object
    lists etc. get no negatives: which wrong colour or object to name is not in the metadata.
    """
    negs: list[str] = []
    excl = {(e.get("class"), e.get("count")) for e in exclude if isinstance(e, dict)}
    for inc in include:
        n = inc.get("count")
        if isinstance(n, int) and 2 <= n < len(NUMBER_WORDS) - 1 and (inc.get("class"), n + 1) in excl:
            neg = _replace_once(prompt, NUMBER_WORDS[n], NUMBER_WORDS[n + 1])
            if neg:
                negs.append(neg)
        pos = inc.get("position")
        if isinstance(pos, list) and pos and isinstance(pos[0], str) and pos[0] in FLIPS:
            neg = _replace_once(prompt, pos[0], FLIPS[pos[0]])
            if neg:
                negs.append(neg)
    colours = [inc.get("color") for inc in include if isinstance(inc.get("color"), str)]
    if len(colours) == 2 and colours[0] != colours[1]:
        neg = _swap_once(prompt, colours[0], colours[1])
        if neg:
            negs.append(neg)
    return list(dict.fromkeys(negs))


def _geneval_tag(kind: str, item: dict) -> str:
    parts = [kind, str(item.get("class", "?"))]
    for key in ("count", "color"):
        if key in item:
            parts.append(f"{key}={item[key]}")
    if "position" in item and isinstance(item["position"], list):
        parts.append("position=" + " ".join(map(str, item["position"])))
    return ":".join(parts)


def import_geneval(path: str | Path, warn: Warn | None = None) -> list[Prompt]:
    """GenEval metadata JSONL: category = tag; include/exclude kept as tags (`include:cat:count=3`) and whole in
    `Prompt.geneval` (what the geneval scorer judges by); negatives only where the metadata states them
    (`geneval_negatives`)."""
    path = Path(path)
    out = []
    for n, line in _lines(path, comments=False):
        where = f"line {n}"
        try:
            d = json.loads(line)
        except json.JSONDecodeError as e:
            raise EvalsuiteError(f"{path}: {where}: not valid JSON ({e.msg})") from None
        if not isinstance(d, dict):
            raise EvalsuiteError(f"{path}: {where}: expected a JSON object with 'prompt' and 'tag'")
        if "prompt" not in d:
            raise EvalsuiteError(f"{path}: {where}: field 'prompt' is required")
        lists = {}
        for key in ("include", "exclude"):
            v = d.get(key, [])
            if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
                raise EvalsuiteError(f"{path}: {where}: field '{key}' must be a list of objects")
            lists[key] = v
        text = d["prompt"].strip() if isinstance(d["prompt"], str) else d["prompt"]
        tags = [_geneval_tag("include", x) for x in lists["include"]] + \
               [_geneval_tag("exclude", x) for x in lists["exclude"]]
        negs = geneval_negatives(text, lists["include"], lists["exclude"]) if isinstance(text, str) else []
        p = make_prompt(path, where, "prompt", text, d.get("tag"), tags, negs)
        out.append((where, p.model_copy(update={"geneval": _geneval_metadata(path, where, d, lists)})))
    return _dedupe(path, out, warn)


def _geneval_metadata(path: Path, where: str, d: dict, lists: dict) -> dict:
    """The metadata the geneval scorer reads (Prompt.geneval), checked clause by clause (metrics/geneval.py)."""
    from .metrics.geneval import metadata_errors

    meta = {"tag": d.get("tag"), "include": lists["include"], "exclude": lists["exclude"]}
    problems = metadata_errors(meta)
    if problems:
        raise EvalsuiteError(f"{path}: {where}: field 'geneval' metadata: {problems[0]}")
    return meta


DPG_COLUMNS = ("item_id", "text", "keywords", "proposition_id", "dependency", "category_broad", "category_detailed",
               "tuple", "question_natural_language")


def _dpg_question(path: Path, line: int, r: dict) -> Question:
    where = f"{path}: line {line}"
    deps = [d.strip() for d in r["dependency"].split(",") if d.strip()]
    if not r["proposition_id"].strip().isdigit() or not deps or not all(d.isdigit() for d in deps):
        raise EvalsuiteError(f"{where}: field 'proposition_id'/'dependency' must be integers "
                             f"(dependency: comma-separated, 0 = none), got {r['proposition_id']!r} / {r['dependency']!r}")
    for f in ("question_natural_language", "category_broad"):
        if not r[f].strip():
            raise EvalsuiteError(f"{where}: field '{f}' is empty")
    return Question(id=str(int(r["proposition_id"])), text=r["question_natural_language"].strip(),
                    depends_on=[str(int(d)) for d in deps if int(d) != 0], category=r["category_broad"].strip(),
                    subcategory=r["category_detailed"].strip() or None)


def import_dpg(path: str | Path, warn: Warn | None = None) -> list[Prompt]:
    """DPG-Bench's CSV: the rows of one item_id (consecutive or not) make one prompt (id = item_id, text = the
    item's `text`, category "dpg") whose questions are its rows in file order: id = proposition_id, depends_on
    = `dependency` without 0, category = category_broad, subcategory = category_detailed. The original scorer
    skips the file's first data row; we keep it (docs/protocols.md)."""
    path = Path(path)
    rows = _table(path, ",", {c: (c,) for c in DPG_COLUMNS}, "item_id")
    missing = [c for c in DPG_COLUMNS if rows and c not in rows[0][1]]
    if missing:
        raise EvalsuiteError(f"{path}: line 1: header has no '{missing[0]}' column (DPG-Bench: {', '.join(DPG_COLUMNS)})")
    items: dict[str, dict] = {}
    for line, r, _ in rows:
        iid = r["item_id"].strip()
        if not iid:
            raise EvalsuiteError(f"{path}: line {line}: field 'item_id' is empty")
        it = items.setdefault(iid, {"line": line, "text": r["text"], "questions": []})
        it["questions"].append(_dpg_question(path, line, r))
    out = []
    for iid, it in items.items():
        try:
            p = Prompt(id=iid, prompt=it["text"].strip(), category="dpg", questions=it["questions"])
        except ValidationError as e:
            msg = e.errors()[0]["msg"].removeprefix("Value error, ")
            raise EvalsuiteError(f"{path}: line {it['line']} (item_id {iid!r}): {msg}") from None
        out.append((f"line {it['line']}", p))
    return _dedupe(path, out, warn)


IMPORTERS: dict[str, Callable[..., list[Prompt]]] = {
    "parti": import_parti,
    "drawbench": import_drawbench,
    "geneval": import_geneval,
    "dpg": import_dpg,
    "t2i-compbench": import_t2i_compbench,
    "text": import_text,
    "csv": import_csv,
}


def split_import_source(source: str) -> tuple[str, str] | None:
    """'parti:PATH' -> ('parti', 'PATH'); None for a set name or a plain path.

    An unknown FORMAT: prefix (that is not itself an existing path) is an error listing the formats.
    """
    m = re.match(r"^([A-Za-z][A-Za-z0-9_-]+):(.*)$", source)
    if not m:
        return None
    fmt, path = m.group(1).lower(), m.group(2)
    if fmt in IMPORTERS:
        if not path:
            raise EvalsuiteError(f"'{source}': give a path after '{fmt}:'")
        return fmt, path
    if Path(source).exists():
        return None
    raise EvalsuiteError(f"unknown prompt import format '{m.group(1)}' in '{source}'; "
                         f"formats: {', '.join(IMPORTERS)}")


def _stderr_warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


def import_file(fmt: str, path: str | Path, warn: Warn | None = _stderr_warn) -> PromptSet:
    """Import PATH in FORMAT as a PromptSet named FORMAT-<file stem>; no prompts at all is an error."""
    if fmt not in IMPORTERS:
        raise EvalsuiteError(f"unknown import format '{fmt}'; formats: {', '.join(IMPORTERS)}")
    path = Path(path)
    if path.is_dir():
        raise EvalsuiteError(f"{path} is a directory, not a file to import")
    if not path.exists():
        raise EvalsuiteError(f"{path}: no such file")
    prompts = IMPORTERS[fmt](path, warn)
    if not prompts:
        raise EvalsuiteError(f"{path}: no prompts in this {fmt} file (header only or empty)")
    return PromptSet(name=f"{fmt}-{slugify(path.stem)}", source=f"{fmt}:{path}",
                     description=f"imported from {path.name} ({fmt} format) by evalsuite", prompts=prompts)


def import_source(source: str, warn: Warn | None = _stderr_warn) -> PromptSet:
    """`FORMAT:PATH` -> PromptSet (what `run --prompts parti:PATH` uses)."""
    split = split_import_source(source)
    if split is None:
        raise EvalsuiteError(f"'{source}' is not FORMAT:PATH (formats: {', '.join(IMPORTERS)})")
    return import_file(*split, warn=warn)
