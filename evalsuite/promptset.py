"""The prompt models, with no dependency inside evalsuite: `Prompt` (one entry) and `PromptSet` (a loaded set).

The entry schema is documented in evalsuite.prompts (loading, filtering, validation), which re-exports these
classes; evalsuite.importers and the run folder build on this module alone, so prompts -> importers and the
run folder -> prompts form no import circle.
"""

from __future__ import annotations

import hashlib
import json
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

SAFE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,79}$")


class Prompt(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    prompt: str
    category: str = "uncategorized"
    target_text: list[str] = Field(default_factory=list)
    negatives: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)

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
        payload = json.dumps([p.model_dump() for p in self.prompts], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def categories(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.prompts:
            out[p.category] = out.get(p.category, 0) + 1
        return out

    def by_id(self) -> dict[str, Prompt]:
        return {p.id: p for p in self.prompts}
