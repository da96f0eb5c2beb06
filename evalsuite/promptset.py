"""The prompt models, with no dependency inside evalsuite: `Prompt` (one entry) and `PromptSet` (a loaded set).

The entry schema is documented in evalsuite.prompts (loading, filtering, validation), which re-exports these
classes; evalsuite.importers and the run folder build on this module alone, so prompts -> importers and the
run folder -> prompts form no import circle.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

SAFE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,79}$")
QUESTION_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,39}$")
# The question categories the curated sets use (DSG's and DPG-Bench's broad kinds plus text and negation);
# other names are allowed (an imported benchmark keeps its own), these are the ones tables know.
QUESTION_CATEGORIES = ("entity", "attribute", "count", "relation", "action", "text", "negation", "style", "global",
                       "other")


def _as_id(v):
    """Question ids and dependencies may be written as integers (DSG and DPG-Bench number them); kept as text."""
    if isinstance(v, bool):
        return v
    return str(v) if isinstance(v, int) else v


class Question(BaseModel):
    """One atomic yes/no question about the image (DSG, TIFA, DPG-Bench): "yes" means the prompt is followed
    in this respect. A question whose parent (`depends_on`) is answered "no" counts as failed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    text: str
    depends_on: list[str] = Field(default_factory=list)
    category: str = "other"
    subcategory: str | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, v):
        return _as_id(v)

    @field_validator("depends_on", mode="before")
    @classmethod
    def _deps_text(cls, v):
        return [_as_id(x) for x in v] if isinstance(v, list) else v

    @field_validator("id")
    @classmethod
    def _safe_qid(cls, v: str) -> str:
        if not QUESTION_ID.match(v):
            raise ValueError(f"{v!r} is not a question id (letters, digits, '.', '_', '-'; at most 40 characters)")
        return v

    @field_validator("text", "category")
    @classmethod
    def _text_non_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v


def question_errors(questions: list[Question]) -> list[str]:
    """What is wrong with a prompt's questions as a whole: duplicate ids, dependencies on a missing question or
    on itself, and dependency cycles. One phrase each (the caller adds file and entry)."""
    out: list[str] = []
    seen: set[str] = set()
    for q in questions:
        if q.id in seen:
            out.append(f"question id {q.id!r} is used twice")
        seen.add(q.id)
    for q in questions:
        for d in q.depends_on:
            if d == q.id:
                out.append(f"question {q.id!r} depends on itself")
            elif d not in seen:
                out.append(f"question {q.id!r} depends on {d!r}, which is not a question of this prompt")
    if out:
        return out
    deps = {q.id: list(q.depends_on) for q in questions}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for d in deps[node]:
            if state.get(d) == 1:
                return path + [node, d]
            if state.get(d) is None:
                cyc = visit(d, path + [node])
                if cyc:
                    return cyc
        state[node] = 2
        return None

    for q in questions:
        if state.get(q.id) is None:
            cyc = visit(q.id, [])
            if cyc:
                start = cyc.index(cyc[-1])
                out.append("questions form a dependency cycle: " + " -> ".join(cyc[start:]))
                break
    return out


class Prompt(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    prompt: str
    category: str = "uncategorized"
    target_text: list[str] = Field(default_factory=list)
    negatives: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    questions: list[Question] = Field(default_factory=list)
    # GenEval's per-prompt metadata ({tag, include: [{class, count, color?, position?}], exclude: [...]}), read by
    # the geneval scorer; None for prompts not from GenEval (metrics/geneval.py checks it)
    geneval: dict[str, Any] | None = None

    @field_validator("geneval")
    @classmethod
    def _geneval_metadata(cls, v):
        if v is None:
            return v
        from .metrics.geneval import metadata_errors

        problems = metadata_errors(v)
        if problems:
            raise ValueError("; ".join(problems))
        return v

    @field_validator("questions")
    @classmethod
    def _questions_consistent(cls, v: list[Question]) -> list[Question]:
        problems = question_errors(v)
        if problems:
            raise ValueError("; ".join(problems))
        return v

    def hash_dump(self) -> dict:
        """The entry as hashed into a prompt set's sha256: an entry without questions (or GenEval metadata)
        hashes as it did before those fields existed, so older run folders keep resuming."""
        d = self.model_dump()
        if not d["questions"]:
            del d["questions"]
        if d["geneval"] is None:
            del d["geneval"]
        return d

    @field_validator("id")
    @classmethod
    def _safe_id(cls, v: str) -> str:
        if not SAFE_ID.match(v) or ".." in v:
            raise ValueError(
                f"{v!r} is not a safe file name (use letters, digits, '.', '_', '-'; at most 80 characters)"
            )
        return v

    @field_validator("prompt")
    @classmethod
    def _non_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v

    @field_validator("target_text", "negatives", "tags")
    @classmethod
    def _non_empty_items(cls, v: list[str]) -> list[str]:
        for s in v:
            if not s.strip():
                raise ValueError("must not contain empty strings")
        return v


class PromptSet(BaseModel):
    name: str
    source: str
    description: str = ""
    prompts: list[Prompt]

    @property
    def sha256(self) -> str:
        """Content hash over the prompts (order included), recorded in run.json."""
        payload = json.dumps([p.hash_dump() for p in self.prompts], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def categories(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.prompts:
            out[p.category] = out.get(p.category, 0) + 1
        return out

    def by_id(self) -> dict[str, Prompt]:
        return {p.id: p for p in self.prompts}
