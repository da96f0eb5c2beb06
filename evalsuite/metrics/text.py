"""Text-rendering metrics: pure functions over target strings and OCR boxes (spec: metrics.md, "Text rendering").

Normalisation
    lenient (default): Unicode NFKC, curly quotes and dashes to ASCII, accents folded (é -> e),
        lowercase, everything but letters, digits and spaces dropped (so "McDonald's" -> "mcdonalds"),
        runs of spaces collapsed, stripped.
    strict: whitespace collapsed and stripped only; case, accents and punctuation count.

    Accent folding in lenient mode is an addition to metrics.md: the English OCR models (EasyOCR
    english_g2, PP-OCR en) have no accented letters, so without folding "Café" could never be read
    exactly; strict mode keeps accents.

OCR text
    The boxes are grouped into lines (a box joins a line when their vertical extents overlap by at
    least half the smaller height), lines ordered top to bottom, boxes in a line left to right, lines
    joined with a space.

Per target t over the normalised OCR text o
    NED(a, b) = Levenshtein(a, b) / max(len(a), len(b))  (0 when both are empty)
    similarity(t) = max over windows w of o (contiguous, len(w) within +-20% of len(t), crossing
        line boundaries) of 1 - NED(t, w). When o is non-empty but shorter than every allowed window,
        o itself is the only window (it scores below 0.8, i.e. garbled, either way). Empty o: 0.
    outcome: "exact" (1.0), "near_miss" (>= 0.8), "garbled" (< 0.8 or not found).

Per item: text_exact, text_similarity (lenient and strict), word_recall, text_duplicated,
extra_text, text_garbled (share of the item's targets garbled) and ocr_chars (confidently read
characters: false positives on images that should show no text). See item_text_metrics().
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

EXACT, NEAR_MISS, GARBLED = "exact", "near_miss", "garbled"
NEAR_MISS_THRESHOLD = 0.8
WINDOW_TOLERANCE = 0.2
CONFIDENT = 0.5
VARIANTS = ("lenient", "strict")

_ASCII_MAP = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'", "`": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
})
_SPACES = re.compile(r"\s+")


def normalize(text: str, variant: str = "lenient") -> str:
    """Normalise a string for comparison; variant is 'lenient' or 'strict' (see the module docstring)."""
    if variant == "strict":
        return _SPACES.sub(" ", text).strip()
    if variant != "lenient":
        raise ValueError(f"unknown normalisation variant {variant!r}")
    s = unicodedata.normalize("NFKC", text).translate(_ASCII_MAP)
    s = "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))
    s = s.lower()
    s = "".join(c if (c.isalnum() or c.isspace()) else "" for c in s)
    return _SPACES.sub(" ", s).strip()


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions, each cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def ned(a: str, b: str) -> float:
    """Normalised edit distance: Levenshtein(a, b) / max(len(a), len(b)); 0 when both are empty."""
    n = max(len(a), len(b))
    return levenshtein(a, b) / n if n else 0.0


def best_window(target: str, text: str, tolerance: float = WINDOW_TOLERANCE) -> tuple[float, int, int]:
    """(similarity, start, end) of the best window of `text` for `target` (both already normalised).

    Windows are contiguous substrings whose length is within +-tolerance of len(target). One edit
    distance table per start position gives every window length at once.
    """
    L, N = len(target), len(text)
    if L == 0:
        return (1.0, 0, 0) if N == 0 else (0.0, 0, 0)
    if N == 0:
        return 0.0, 0, 0
    lo = max(1, math.ceil(L * (1 - tolerance) - 1e-9))
    hi = math.floor(L * (1 + tolerance) + 1e-9)
    if N < lo:
        return 1.0 - ned(target, text), 0, N
    best = (-1.0, 0, 0)
    for start in range(0, N - lo + 1):
        seg = text[start:start + hi]
        # DP over target (rows) x seg (columns): last row holds distance(target, seg[:k]) for every k.
        prev = list(range(len(seg) + 1))
        for i, ct in enumerate(target, 1):
            cur = [i]
            for j, cs in enumerate(seg, 1):
                cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ct != cs)))
            prev = cur
        for k in range(lo, len(seg) + 1):
            sim = 1.0 - prev[k] / max(L, k)
            if sim > best[0]:
                best = (sim, start, start + k)
        if best[0] == 1.0:
            break
    return best


def outcome(similarity: float) -> str:
    if similarity >= 1.0:
        return EXACT
    return NEAR_MISS if similarity >= NEAR_MISS_THRESHOLD else GARBLED


@dataclass
class Box:
    text: str
    confidence: float
    polygon: list[list[float]]        # 4 corner points [[x, y], ...]

    @property
    def top(self) -> float:
        return min(p[1] for p in self.polygon)

    @property
    def bottom(self) -> float:
        return max(p[1] for p in self.polygon)

    @property
    def left(self) -> float:
        return min(p[0] for p in self.polygon)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "confidence": round(float(self.confidence), 6),
                "polygon": [[round(float(x), 2), round(float(y), 2)] for x, y in self.polygon]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Box":
        return cls(text=d["text"], confidence=float(d["confidence"]), polygon=[list(p) for p in d["polygon"]])


def reading_order(boxes: Sequence[Box]) -> list[list[Box]]:
    """Group boxes into lines (vertical overlap >= half the smaller height); lines top to bottom,
    boxes left to right."""
    lines: list[list[Box]] = []
    spans: list[list[float]] = []            # [top, bottom] of each line
    for b in sorted(boxes, key=lambda b: ((b.top + b.bottom) / 2, b.left)):
        h = max(b.bottom - b.top, 1e-6)
        for line, span in zip(lines, spans):
            overlap = min(span[1], b.bottom) - max(span[0], b.top)
            if overlap >= 0.5 * min(h, max(span[1] - span[0], 1e-6)):
                line.append(b)
                span[0], span[1] = min(span[0], b.top), max(span[1], b.bottom)
                break
        else:
            lines.append([b])
            spans.append([b.top, b.bottom])
    order = sorted(range(len(lines)), key=lambda i: (spans[i][0] + spans[i][1]) / 2)
    return [sorted(lines[i], key=lambda b: b.left) for i in order]


def ocr_text(boxes: Sequence[Box]) -> str:
    """The raw OCR text in reading order (lines joined with a space)."""
    return " ".join(" ".join(b.text for b in line) for line in reading_order(boxes))


@dataclass
class Reading:
    """One engine's reading of one image, normalised, with a map from characters to boxes."""

    engine: str
    boxes: list[Box]
    raw_text: str = ""
    text: dict[str, str] = field(default_factory=dict)          # variant -> normalised text
    owner: list[int] = field(default_factory=list)              # lenient char index -> box index (-1: space)

    @classmethod
    def from_boxes(cls, engine: str, boxes: Sequence[Box]) -> "Reading":
        boxes = list(boxes)
        ordered = [b for line in reading_order(boxes) for b in line]
        index = {id(b): i for i, b in enumerate(boxes)}
        parts, owner = [], []
        for b in ordered:
            n = normalize(b.text, "lenient")
            if not n:
                continue
            if parts:
                owner.append(-1)
            parts.append(n)
            owner.extend([index[id(b)]] * len(n))
        return cls(engine=engine, boxes=boxes, raw_text=ocr_text(boxes),
                   text={"lenient": " ".join(parts), "strict": normalize(ocr_text(boxes), "strict")}, owner=owner)

    def confident_chars(self) -> int:
        return sum(1 for i, o in enumerate(self.owner) if o >= 0 and self.boxes[o].confidence >= CONFIDENT)


def count_occurrences(target: str, text: str) -> int:
    """Non-overlapping whole-word occurrences of the (normalised) target in the (normalised) text."""
    if not target:
        return 0
    return len(re.findall(r"(?<!\S)" + re.escape(target) + r"(?!\S)", text))


def target_result(target: str, reading: Reading) -> dict[str, Any]:
    """Similarity, outcome and matched span of one target in one reading (lenient and strict)."""
    out: dict[str, Any] = {"target": target, "engine": reading.engine}
    for v in VARIANTS:
        t = normalize(target, v)
        sim, s, e = best_window(t, reading.text[v])
        out[v] = {"similarity": round(sim, 6), "outcome": outcome(sim), "span": [s, e],
                  "window": reading.text[v][s:e]}
    t = normalize(target, "lenient")
    out["occurrences"] = count_occurrences(t, reading.text["lenient"])
    return out


def item_text_metrics(targets: Sequence[str], readings: Sequence[Reading]) -> tuple[dict[tuple[str, str], float], dict[str, Any]]:
    """Per-item text metrics from one or more engines' readings.

    With several engines, each target takes the engine that read it best (highest lenient
    similarity, first engine on ties); extra_text and ocr_chars come from the engine with the best
    mean similarity. Returns ({(metric, variant): value}, details).
    """
    if not readings:
        raise ValueError("no OCR readings")
    per_engine = [[target_result(t, r) for t in targets] for r in readings]
    chosen = []
    for ti in range(len(targets)):
        best = max(range(len(readings)), key=lambda ei: (per_engine[ei][ti]["lenient"]["similarity"], -ei))
        chosen.append((best, per_engine[best][ti]))
    values: dict[tuple[str, str], float] = {}
    if targets:
        for v in VARIANTS:
            sims = [res[v]["similarity"] for _, res in chosen]
            values[("text_exact", v)] = float(all(res[v]["outcome"] == EXACT for _, res in chosen))
            values[("text_similarity", v)] = sum(sims) / len(sims)
        values[("text_garbled", "lenient")] = sum(res["lenient"]["outcome"] == GARBLED for _, res in chosen) / len(chosen)
        # word recall: multiset of target words against the words of the engine chosen per target
        found = total = 0
        pools = {ei: Counter(r.text["lenient"].split()) for ei, r in enumerate(readings)}
        for (ei, _), t in zip(chosen, targets):
            words = normalize(t, "lenient").split()
            total += len(words)
            for w in words:
                if pools[ei][w] > 0:
                    pools[ei][w] -= 1
                    found += 1
        values[("word_recall", "lenient")] = found / total if total else 1.0
        asked = Counter(normalize(t, "lenient") for t in targets)
        values[("text_duplicated", "lenient")] = float(any(res["occurrences"] > asked[normalize(res["target"], "lenient")]
                                                        for _, res in chosen))
    # extra text and false positives from the engine with the best mean similarity (the first without targets)
    main = max(range(len(readings)), key=lambda ei: (
        sum(res["lenient"]["similarity"] for res in per_engine[ei]) / max(len(targets), 1), -ei))
    r = readings[main]
    # each matched target claims its own window (a target asked twice claims two), greedily in order
    matched: set[int] = set()
    masked = list(r.text["lenient"])
    for res in per_engine[main]:
        if res["lenient"]["outcome"] == GARBLED:
            continue
        sim, s, e = best_window(normalize(res["target"], "lenient"), "".join(masked))
        if sim >= NEAR_MISS_THRESHOLD:
            matched.update(range(s, e))
            masked[s:e] = ["\0"] * (e - s)
    confident = [i for i, o in enumerate(r.owner) if o >= 0 and r.boxes[o].confidence >= CONFIDENT]
    if targets:
        values[("extra_text", "lenient")] = (sum(i not in matched for i in confident) / len(confident)) if confident else 0.0
    values[("ocr_chars", "lenient")] = float(len(confident))
    details = {
        "targets": [dict(res, engine=readings[ei].engine) for ei, res in chosen],
        "main_engine": r.engine,
        "per_engine": {rd.engine: {"raw_text": rd.raw_text, "text": rd.text} for rd in readings},
    }
    return values, details


def verdict_label(accuracy_pct: float | None, ci_low_pct: float | None, garbled_share_pct: float | None) -> str | None:
    """'usually correct' (accuracy >= 70% and CI lower bound >= 50%), 'often garbled' (>= 40% of
    targets garbled), otherwise 'mixed'. None when there is no accuracy."""
    if accuracy_pct is None or (isinstance(accuracy_pct, float) and math.isnan(accuracy_pct)):
        return None
    if accuracy_pct >= 70 and ci_low_pct is not None and ci_low_pct >= 50:
        return "usually correct"
    if garbled_share_pct is not None and not math.isnan(garbled_share_pct) and garbled_share_pct >= 40:
        return "often garbled"
    return "mixed"


def boxes_from(items: Iterable[dict[str, Any]]) -> list[Box]:
    return [Box.from_dict(d) for d in items]
