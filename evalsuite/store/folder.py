"""The run-folder API: reading a run folder without ever stopping at a damaged file, and moving damaged
files aside. The layout and its guarantees are described in evalsuite/runfolder.py.

    RunFolder                 read access for later stages (scoring, reports, comparisons)
    scan_jsonl, read_jsonl, load_json_model   readers that turn a damaged line or file into a Problem
    image_problem             why the image of an ok record is unusable (missing, truncated, hash mismatch)
    quarantine                move a damaged file to RUN/quarantine/ with a note (quarantine/NOTES.jsonl)
    records_on_disk, entry_from_record       the records under items/, and the plan entry each stands for
    write_jsonl               a JSON-lines file, atomically
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable

from pydantic import BaseModel

from ..promptset import Prompt
from .files import TMP_MARK, atomic_write_text
from .records import ItemRecord, PlanEntry, Problem, RunInfo, item_paths


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The objects of a JSON-lines file; a damaged line is a one-line EvalsuiteError naming file and line
    (readers that must go on use scan_jsonl)."""
    rows, problems = scan_jsonl(path)
    if problems:
        from ..errors import EvalsuiteError

        raise EvalsuiteError(f"{problems[0].where()}: {problems[0].what}")
    return [d for _, d in rows]


def _short_error(e: BaseException) -> str:
    """A stable one-line description of a parse/validation error (no object addresses, no input dumps)."""
    from pydantic import ValidationError

    if isinstance(e, ValidationError):
        errs = e.errors()
        if errs:
            x = errs[0]
            if x.get("type") == "json_invalid":
                return f"not valid JSON ({str(x.get('msg', '')).removeprefix('Invalid JSON: ')})"
            loc = ".".join(str(p) for p in x.get("loc", ())) or "record"
            return f"{loc}: {x.get('msg', 'invalid')}" + (f" (+{len(errs) - 1} more)" if len(errs) > 1 else "")
    if isinstance(e, json.JSONDecodeError):
        return f"not valid JSON ({e.msg} at column {e.colno})"
    if isinstance(e, UnicodeDecodeError):
        return f"not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})"
    return f"{type(e).__name__}: {e}".splitlines()[0][:200]


def scan_jsonl(path: Path, rel: str | None = None, model: type[BaseModel] | None = None
               ) -> tuple[list[tuple[int, Any]], list[Problem]]:
    """(line number, object) for every readable line, and a Problem for every damaged one."""
    path = Path(path)
    rel = rel or str(path)
    if not path.exists():
        return [], []
    if path.is_dir():
        return [], [Problem(path=rel, what="is a directory, not a file")]
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        return [], [Problem(path=rel, what=_short_error(e))]
    rows, problems = [], []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            if model is not None:
                d = model.model_validate(d)
            elif not isinstance(d, dict):
                raise ValueError(f"expected a JSON object, got {type(d).__name__}")
        except (ValueError, TypeError) as e:
            problems.append(Problem(path=rel, line=i, what=_short_error(e)))
            continue
        rows.append((i, d))
    return rows, problems


def load_json_model(path: Path, model: type[BaseModel], rel: str) -> tuple[Any, Problem | None]:
    """A pydantic model from a JSON file, or (None, Problem) when the file is damaged."""
    try:
        return model.model_validate_json(Path(path).read_bytes()), None
    except (ValueError, OSError) as e:
        return None, Problem(path=rel, what=_short_error(e))


PNG_TRAILER = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def image_problem(root: Path, rec: "ItemRecord", full: bool = False) -> str | None:
    """Why the image of an ok record is unusable (missing, empty, truncated; with full=True also a hash
    mismatch or a file PIL cannot decode), or None. The quick check reads only the PNG trailer."""
    if rec.status != "ok" or not rec.image:
        return None
    p = Path(root) / rec.image
    if not p.is_file():
        return "image file missing"
    try:
        size = p.stat().st_size
        if size < len(PNG_TRAILER) + 8:
            return "image file empty or truncated"
        with open(p, "rb") as f:
            f.seek(size - len(PNG_TRAILER))
            if f.read() != PNG_TRAILER:
                return "image file truncated (no PNG end marker)"
        if full:
            data = p.read_bytes()
            if rec.image_sha256 and hashlib.sha256(data).hexdigest() != rec.image_sha256:
                return "image file differs from the record (sha256 mismatch)"
            import io

            from PIL import Image

            with Image.open(io.BytesIO(data)) as im:
                im.load()
    except OSError as e:
        return f"image file unreadable ({type(e).__name__})"
    except Exception as e:  # noqa: BLE001 - PIL raises many kinds for broken files
        return f"image file not decodable ({type(e).__name__})"
    return None


QUARANTINE = "quarantine"


def quarantine(root: Path, rel: str, note: str) -> Path | None:
    """Move RUN/rel into RUN/quarantine/rel (never overwriting an earlier one) and add a note line to
    RUN/quarantine/NOTES.jsonl. Returns the new path (None when the file was already gone)."""
    from datetime import datetime, timezone

    root = Path(root)
    src = root / rel
    if not src.exists():
        return None
    dst = root / QUARANTINE / rel
    n = 1
    while dst.exists():
        dst = root / QUARANTINE / f"{rel}.{n}"
        n += 1
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)
    notes = root / QUARANTINE / "NOTES.jsonl"
    old = notes.read_text(encoding="utf-8") if notes.is_file() else ""
    line = json.dumps({"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "file": rel,
                       "moved_to": str(dst.relative_to(root)), "why": note}, ensure_ascii=False)
    atomic_write_text(notes, old + line + "\n")
    return dst


def records_on_disk(root: Path) -> Iterable[tuple[str, "ItemRecord"]]:
    """(relative path, record) of every readable item record under RUN/items (damaged ones skipped)."""
    root = Path(root)
    items = root / "items"
    if not items.is_dir():
        return
    for p in sorted(items.rglob("*.json")):
        if TMP_MARK in p.name:
            continue
        rec, prob = load_json_model(p, ItemRecord, str(p.relative_to(root)))
        if rec is not None:
            yield str(p.relative_to(root)), rec


def entry_from_record(rel: str, rec: "ItemRecord") -> PlanEntry | None:
    """The plan entry of a record found at RUN/rel (the planned seed is in its file name), or None when the
    name does not follow the items/<backend>/<prompt-id>/s<seed>-<key12>.json layout."""
    import re

    m = re.fullmatch(r"items/([^/]+)/([^/]+)/s(\d+)-([0-9a-f]{12})\.json", rel.replace(os.sep, "/"))
    if not m or m.group(1) != rec.backend or m.group(2) != rec.prompt_id or not rec.key.startswith(m.group(4)):
        return None
    img, js = item_paths(rec.backend, rec.prompt_id, int(m.group(3)), rec.key)
    return PlanEntry(backend=rec.backend, prompt_id=rec.prompt_id, seed=int(m.group(3)), key=rec.key,
                     image=img, record=js)


def write_jsonl(path: Path, rows: Iterable[BaseModel | dict[str, Any]]) -> None:
    lines = []
    for r in rows:
        d = r.model_dump() if isinstance(r, BaseModel) else r
        lines.append(json.dumps(d, ensure_ascii=False, sort_keys=True))
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))


class RunFolder:
    """Read access to a run folder for later stages (scoring, reports, comparisons).

    Damaged files never raise here: a broken plan line is skipped, a damaged record reads as not generated
    yet, and each is listed in self.problems (path, line, what); only an unreadable run.json is an error
    (`evalsuite check RUN_DIR --repair` rebuilds it from the records)."""

    def __init__(self, path: str | Path):
        from ..errors import EvalsuiteError

        self.path = Path(path)
        self.problems: list[Problem] = []
        if self.path.exists() and not self.path.is_dir():
            raise EvalsuiteError(f"{self.path} is a file, not a run folder")
        if not self.path.is_dir():
            raise EvalsuiteError(f"{self.path} is not a run folder (the directory does not exist)")
        if not (self.path / "run.json").is_file():
            raise EvalsuiteError(f"{self.path} is not a run folder (no run.json)")
        self._info: RunInfo | None = None

    def _note(self, prob: Problem) -> None:
        if not any(p.path == prob.path and p.line == prob.line for p in self.problems):
            self.problems.append(prob)

    @property
    def info(self) -> RunInfo:
        if self._info is None:
            from ..errors import EvalsuiteError

            info, prob = load_json_model(self.path / "run.json", RunInfo, "run.json")
            if info is None:
                raise EvalsuiteError(f"{self.path / 'run.json'} is damaged ({prob.what}); run `evalsuite check "
                                     f"{self.path} --repair` to rebuild it from the item records")
            self._info = info
        return self._info

    def prompts(self) -> dict[str, Prompt]:
        rows, problems = scan_jsonl(self.path / "prompts.jsonl", "prompts.jsonl", Prompt)
        for prob in problems:
            self._note(prob)
        return {d.id: d for _, d in rows}

    def plan(self) -> list[PlanEntry]:
        rows, problems = scan_jsonl(self.path / "plan.jsonl", "plan.jsonl", PlanEntry)
        for prob in problems:
            self._note(prob)
        return [d for _, d in rows]

    def record(self, entry: PlanEntry) -> ItemRecord | None:
        p = self.path / entry.record
        if not p.is_file():
            return None
        rec, prob = load_json_model(p, ItemRecord, entry.record)
        if prob is not None:
            self._note(prob)
        return rec

    def records(self) -> Iterable[tuple[PlanEntry, ItemRecord | None]]:
        """Each planned item with its record (None when not generated yet or damaged). Streams: one at a time."""
        for e in self.plan():
            yield e, self.record(e)

    def records_frame(self):
        """All records of the plan as a pandas DataFrame (one row per item; missing items have status 'missing')."""
        import pandas as pd

        rows = []
        for e, r in self.records():
            if r is None:
                rows.append({"backend": e.backend, "prompt_id": e.prompt_id, "seed": e.seed, "key": e.key,
                             "status": "missing"})
            else:
                d = r.model_dump()
                d.pop("applied", None)
                rows.append(d)
        return pd.DataFrame(rows)
