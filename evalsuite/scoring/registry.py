"""The scorer registry: kind -> "module:Class" of its Scorer subclass (scoring/base.py), imported only when
used (CLIP pulls in torch, OCR its engines). Add a scorer: its file, then one line here
(docs/architecture.md, "Add a scorer"). The order is the order scorers run and tables list them.
"""

from __future__ import annotations

import importlib

SCORERS: dict[str, str] = {
    "clip": "evalsuite.scoring.clip:ClipScorer",
    "ocr": "evalsuite.scoring.ocr:OcrScorer",
    "blank": "evalsuite.scoring.blank:BlankScorer",
    "vqa": "evalsuite.scoring.vqa:VqaScorer",
    "geneval": "evalsuite.scoring.geneval:GenevalScorer",
}
DEFAULT_SCORERS = ("clip", "ocr")


def scorer_class(kind: str):
    """The Scorer subclass of a kind (KeyError when not registered)."""
    module, _, name = SCORERS[kind].partition(":")
    return getattr(importlib.import_module(module), name)
