"""Text-rendering metrics: pure functions over target strings and OCR boxes (definitions: docs/scores.md, "Text matching").

Normalisation (the same for targets and readings)
    lenient (default): Unicode NFKC, curly quotes and dashes to ASCII, letters NFKD leaves whole folded
        (ae, oe, o, ss, d, l, th, ...), accents folded (e with acute -> e), lowercase, OCR spacing around
        punctuation tightened (tighten_punctuation), everything but letters, digits and spaces dropped
        ("McDonald's" -> "mcdonalds"), the digit 0 read as the letter o, spaces collapsed.
    strict: Unicode NFC, whitespace collapsed, OCR punctuation spacing tightened; case, accents and
        punctuation count.

OCR text
    Boxes are grouped into lines (vertical overlap >= half the smaller height), lines top to bottom,
    boxes left to right; where a box overlaps the next one, characters read twice are trimmed
    (trimmed_lines); lines joined with a space.

Per target t over the normalised OCR text o
    NED(a, b) = Levenshtein(a, b) / max(len(a), len(b))  (0 when both are empty)
    windows: runs of whole consecutive words of o (word-aligned; "sale" never matches inside
        "wholesale"); lenient compares them with spaces removed from both sides.
    similarity(t) = max over windows w of 1 - NED(t, w) (best_span); 0 when o is empty.
    Targets are matched longest first; each takes a window of words no other target claimed, so a
    target asked for twice needs two renderings. A target with layout separators (" - ", ": ", ...)
    is also exact when each of its parts is exact in a window of its own (target_parts).
    outcome: "exact" (1.0), "near_miss" (>= 0.8), "garbled" (< 0.8 or not found).
    Targets without a letter or digit ("&", an emoji) are not scored (reported missing with the
    reason when no other target is left).

Per item: text_exact, text_similarity (lenient and strict), word_recall, text_duplicated,
extra_text, text_garbled (share of the item's targets garbled), ocr_chars (confidently read
characters: false positives on images that should show no text) and the published protocols'
figures (metrics/text_protocols.py). See item_text_metrics().
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from .edit import levenshtein, ned  # noqa: F401  (levenshtein: re-exported, as before)
from .text_protocols import PROTOCOL_METRICS, protocol_metrics

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
# letters that NFKD does not decompose, folded to their usual Latin transliteration (lenient only)
_FOLD_MAP = str.maketrans({
    "\u00e6": "ae", "\u00c6": "ae", "\u0153": "oe", "\u0152": "oe", "\u00f8": "o", "\u00d8": "o",
    "\u00df": "ss", "\u1e9e": "ss", "\u0111": "d", "\u0110": "d", "\u00f0": "d", "\u00d0": "d",
    "\u0142": "l", "\u0141": "l", "\u00fe": "th", "\u00de": "th", "\u0131": "i", "\u0127": "h",
    "\u0126": "h", "\u0138": "q", "\u014b": "ng", "\u014a": "ng", "\u0167": "t", "\u0166": "t",
})
# OCR spacing around punctuation: "128 . 50" -> "128.50", "bikes , com" -> "bikes, com", "( 24 )" -> "(24)"
_SPACE_BEFORE = re.compile(r"\s+(?=[.,:;!?%)\]}'\u2019\"\u201d])")
_SPACE_AFTER = re.compile(r"(?<=[(\[{$\u00a3\u20ac@#/])\s+")
_SPACED_JOINER = re.compile(r"(?<=\w)\s+([./@])\s+(?=\w)")
_SPACED_DIGITS = re.compile(r"(?<=\d)\s*([.,:])\s*(?=\d)")


def tighten_punctuation(text: str) -> str:
    """Remove the spaces OCR engines put around punctuation, the same way for targets and readings.

    No space before . , : ; ! ? % ) ] } and closing quotes, none after ( [ { $ £ € @ # /; a . / @
    with spaces on both sides between two words loses them ("www . site . com" -> "www.site.com"),
    and so does a . , : between two digits ("128 . 50" -> "128.50", "8, 000" -> "8,000"). A dash
    with spaces around it is a separator and keeps them."""
    s = _SPACED_DIGITS.sub(r"\1", _SPACED_JOINER.sub(r"\1", text))
    s = _SPACE_BEFORE.sub("", s)
    return _SPACE_AFTER.sub("", s)


def normalize(text: str, variant: str = "lenient") -> str:
    """Normalise a string for comparison; variant is 'lenient' or 'strict' (see the module docstring)."""
    if variant == "strict":
        s = unicodedata.normalize("NFC", text)
        return tighten_punctuation(_SPACES.sub(" ", s).strip())
    if variant != "lenient":
        raise ValueError(f"unknown normalisation variant {variant!r}")
    s = unicodedata.normalize("NFKC", text).translate(_ASCII_MAP).translate(_FOLD_MAP)
    s = "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))
    s = tighten_punctuation(_SPACES.sub(" ", s.lower()).strip())
    s = "".join(c if (c.isalnum() or c.isspace()) else "" for c in s).replace("0", "o")
    return _SPACES.sub(" ", s).strip()


# layout separators inside one target: a dash, bar, slash or bullet with spaces around it, or a colon
# or semicolon followed by a space ("GAME OVER - INSERT COIN", "SCORE: 2-1")
_SEPARATORS = re.compile(r"\s+[-\u2010-\u2015|/\u00b7\u2022]\s+|(?<=\S)[:;]\s+")


def target_parts(target: str) -> list[str]:
    """The parts of a target between layout separators (see _SEPARATORS); parts without a letter or
    digit are dropped. One part when the target has no separator."""
    return [p for p in _SEPARATORS.split(target) if scorable(p)]


def scorable(target: str) -> bool:
    """A target is scored only when it has a letter or a digit (its lenient form is not empty)."""
    return bool(normalize(target, "lenient"))


def word_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every word (run of non-space characters) of a normalised text."""
    return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]


def best_span(target: str, text: str, tolerance: float = WINDOW_TOLERANCE, *, ignore_spaces: bool = False,
              claimed: frozenset[int] | set[int] = frozenset()) -> tuple[float, int, int]:
    """(similarity, first word, end word) of the best word-aligned window of `text` for `target`.

    A window is a run of whole consecutive words of `text` (none of them in `claimed`); it is compared
    with the target by 1 - NED, with spaces removed from both when ignore_spaces. From each start
    word, windows grow word by word until they are longer than (1 + tolerance) * len(target) (the
    first word is always tried, so a long word is a window of its own). (0.0, 0, 0) when there is
    no window. One edit-distance column per start word gives every end at once.
    """
    t = target.replace(" ", "") if ignore_spaces else target
    L = len(t)
    spans = word_spans(text)
    if L == 0 or not spans:
        return (1.0 if L == 0 and not spans else 0.0), 0, 0
    hi = math.floor(L * (1 + tolerance) + 1e-9)
    best = (-1.0, 0, 0)
    for i in range(len(spans)):
        if i in claimed:
            continue
        col = list(range(L + 1))          # col[r] = distance(t[:r], window so far)
        k = 0
        for j in range(i, len(spans)):
            if j in claimed:
                break
            chars = text[spans[j][0]:spans[j][1]]
            if j > i and not ignore_spaces:
                chars = " " + chars
            for c in chars:
                k += 1
                new = [k]
                for r in range(1, L + 1):
                    new.append(min(col[r] + 1, new[r - 1] + 1, col[r - 1] + (t[r - 1] != c)))
                col = new
            sim = 1.0 - col[L] / max(L, k)
            if sim > best[0]:
                best = (sim, i, j + 1)
            if sim == 1.0 or k > hi:
                break
        if best[0] == 1.0:
            break
    return best if best[0] >= 0 else (0.0, 0, 0)


def best_window(target: str, text: str, tolerance: float = WINDOW_TOLERANCE, *,
                ignore_spaces: bool = False) -> tuple[float, int, int]:
    """(similarity, start, end) in characters of the best word-aligned window of `text` for `target`
    (both already normalised); see best_span()."""
    sim, i, j = best_span(target, text, tolerance, ignore_spaces=ignore_spaces)
    if j == 0:
        return sim, 0, 0
    spans = word_spans(text)
    return sim, spans[i][0], spans[j - 1][1]


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

    @property
    def right(self) -> float:
        return max(p[0] for p in self.polygon)

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


def trimmed_lines(boxes: Sequence[Box]) -> list[list[tuple[Box, str]]]:
    """reading_order() with each box's text, trimmed where neighbouring boxes overlap.

    A detector box that reaches into the next box of its line makes the recogniser read the
    neighbour's first characters twice ("OPEN2" + "24"). When a box overlaps the next one by o
    pixels, up to ceil(o / w) characters (w: the next box's width per character) that end this
    box's text and begin the next one's (case-insensitively) are dropped from this box."""
    out = []
    for line in reading_order(boxes):
        texts = [b.text for b in line]
        for i in range(len(line) - 1):
            a, b = line[i], line[i + 1]
            overlap = a.right - b.left
            nxt = texts[i + 1].strip()
            if overlap <= 0 or not nxt:
                continue
            width = max(b.right - b.left, 1e-6) / len(nxt)
            cur = texts[i].rstrip()
            for k in range(min(math.ceil(overlap / width), len(nxt), len(cur) - 1), 0, -1):
                if cur[-k:].lower() == nxt[:k].lower():
                    texts[i] = cur[:-k]
                    break
        out.append(list(zip(line, texts)))
    return out


def ocr_text(boxes: Sequence[Box]) -> str:
    """The raw OCR text in reading order (lines joined with a space; overlaps trimmed, trimmed_lines)."""
    return " ".join(" ".join(t for _, t in line) for line in trimmed_lines(boxes))


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
        ordered = [bt for line in trimmed_lines(boxes) for bt in line]
        index = {id(b): i for i, b in enumerate(boxes)}
        parts, owner = [], []
        for b, t in ordered:
            n = normalize(t, "lenient")
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


def _doubled(spans: list[tuple[int, int]], text: str, w0: int, w1: int) -> bool:
    """The word just before the window repeats its first word, or the one just after its last."""
    word = lambda i: text[spans[i][0]:spans[i][1]]  # noqa: E731
    return (w0 > 0 and word(w0 - 1) == word(w0)) or (w1 < len(spans) and word(w1) == word(w1 - 1))


def reading_results(targets: Sequence[str], reading: Reading) -> list[dict[str, Any]]:
    """Similarity, outcome and matched window of every target in one reading (lenient and strict).

    Each target needs its own rendering: targets are matched longest first (ties in the given
    order), each in the best word-aligned window of words no earlier target claimed; a target
    that is read (exact or near miss) claims its window's words. Lenient windows are compared with
    spaces removed (OCR engines split and join words at will); strict windows keep them.
    A target with layout separators (target_parts) that is not exact in one window is exact when
    every part is exact in a window of its own and no part's window sits beside a repeat of its
    edge word (a doubled word or line); otherwise its similarity is the better of the whole
    window's and the parts' length-weighted mean. Results come back in the targets' order.
    """
    out: list[dict[str, Any]] = [{"target": t, "engine": reading.engine} for t in targets]
    for v in VARIANTS:
        text = reading.text[v]
        spans = word_spans(text)
        claimed: set[int] = set()
        norm = [normalize(t, v) for t in targets]
        order = sorted(range(len(targets)), key=lambda i: -len(norm[i].replace(" ", "")))
        for i in order:
            sim, w0, w1 = best_span(norm[i], text, ignore_spaces=(v == "lenient"), claimed=claimed)
            windows = [(w0, w1)] if w1 > w0 else []
            parts = [normalize(p, v) for p in target_parts(targets[i])]
            if sim < 1.0 and len(parts) > 1:
                taken = set(claimed)
                found: list[tuple[float, int, int, int]] = []
                for pi in sorted(range(len(parts)), key=lambda k: -len(parts[k].replace(" ", ""))):
                    ps, p0, p1 = best_span(parts[pi], text, ignore_spaces=(v == "lenient"), claimed=taken)
                    if p1 > p0 and ps >= 1.0 and _doubled(spans, text, p0, p1):
                        ps = 1.0 - 1.0 / max(len(parts[pi].replace(" ", "")), 2)   # doubled: one edit short
                    found.append((ps, len(parts[pi].replace(" ", "")), p0, p1))
                    if p1 > p0:
                        taken.update(range(p0, p1))
                part_sim = sum(f[0] * f[1] for f in found) / sum(f[1] for f in found)
                if part_sim > sim:
                    sim, windows = part_sim, [(f[2], f[3]) for f in found if f[3] > f[2]]
            oc = outcome(sim)
            if oc != GARBLED:
                for w in windows:
                    claimed.update(range(*w))
            char_spans = [[spans[a][0], spans[b - 1][1]] for a, b in sorted(windows)]
            s, e = (char_spans[0][0], char_spans[-1][1]) if char_spans else (0, 0)
            out[i][v] = {"similarity": round(sim, 6), "outcome": oc, "span": [s, e],
                         "window": " | ".join(text[a:b] for a, b in char_spans)}
            if len(char_spans) > 1:
                out[i][v]["parts"] = char_spans
    for res, t in zip(out, targets):
        res["occurrences"] = count_occurrences(normalize(t, "lenient"), reading.text["lenient"])
    return out


def target_result(target: str, reading: Reading) -> dict[str, Any]:
    """reading_results() for one target."""
    return reading_results([target], reading)[0]


TEXT_METRICS = (("text_exact", "lenient"), ("text_exact", "strict"), ("text_similarity", "lenient"),
                ("text_similarity", "strict"), ("word_recall", "lenient"), ("text_duplicated", "lenient"),
                ("extra_text", "lenient"), ("text_garbled", "lenient"))


def _best_engine_per_target(n_targets: int, per_engine: list[list[dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
    """(engine index, result) per target: the engine that read it best (highest lenient similarity, the first
    engine on ties)."""
    chosen = []
    for ti in range(n_targets):
        best = max(range(len(per_engine)), key=lambda ei: (per_engine[ei][ti]["lenient"]["similarity"], -ei))
        chosen.append((best, per_engine[best][ti]))
    return chosen


def _word_recall(targets: Sequence[str], chosen, readings: Sequence[Reading]) -> float:
    """Multiset of target words against the words of the engine chosen per target."""
    found = total = 0
    pools = {ei: Counter(r.text["lenient"].split()) for ei, r in enumerate(readings)}
    for (ei, _), t in zip(chosen, targets):
        words = normalize(t, "lenient").split()
        total += len(words)
        for w in words:
            if pools[ei][w] > 0:
                pools[ei][w] -= 1
                found += 1
    return found / total if total else 1.0


def _target_values(targets: Sequence[str], chosen, readings: Sequence[Reading]) -> dict[tuple[str, str], float]:
    """text_exact, text_similarity (both variants), text_garbled, word_recall and text_duplicated."""
    values: dict[tuple[str, str], float] = {}
    for v in VARIANTS:
        sims = [res[v]["similarity"] for _, res in chosen]
        values[("text_exact", v)] = float(all(res[v]["outcome"] == EXACT for _, res in chosen))
        values[("text_similarity", v)] = sum(sims) / len(sims)
    values[("text_garbled", "lenient")] = sum(res["lenient"]["outcome"] == GARBLED for _, res in chosen) / len(chosen)
    values[("word_recall", "lenient")] = _word_recall(targets, chosen, readings)
    asked_n = Counter(normalize(t, "lenient") for t in targets)
    values[("text_duplicated", "lenient")] = float(any(res["occurrences"] > asked_n[normalize(res["target"], "lenient")]
                                                    for _, res in chosen))
    return values


def _main_engine(per_engine: list[list[dict[str, Any]]], n_targets: int) -> int:
    """The engine with the best mean similarity (the first without targets): extra text and false positives."""
    return max(range(len(per_engine)), key=lambda ei: (
        sum(res["lenient"]["similarity"] for res in per_engine[ei]) / max(n_targets, 1), -ei))


def _confident_chars(results: list[dict[str, Any]], r: Reading) -> tuple[list[int], set[int]]:
    """The confidently read characters of a reading, and those of the windows its targets claimed (each
    target its own window)."""
    matched: set[int] = set()
    for res in results:
        if res["lenient"]["outcome"] != GARBLED:
            for a, b in res["lenient"].get("parts", [res["lenient"]["span"]]):
                matched.update(range(a, b))
    confident = [i for i, o in enumerate(r.owner) if o >= 0 and r.boxes[o].confidence >= CONFIDENT]
    return confident, matched


def _item_details(chosen, readings: Sequence[Reading], main: Reading, unscored: list[str],
                  missing_reason: str | None) -> dict[str, Any]:
    details = {
        "targets": [dict(res, engine=readings[ei].engine) for ei, res in chosen],
        "main_engine": main.engine,
        "per_engine": {rd.engine: {"raw_text": rd.raw_text, "text": rd.text} for rd in readings},
    }
    if unscored:
        details["unscored_targets"] = [{"target": t, "reason": "no letter or digit"} for t in unscored]
    if missing_reason:
        details["missing_reason"] = missing_reason
    return details


def item_text_metrics(targets: Sequence[str], readings: Sequence[Reading]) -> tuple[dict[tuple[str, str], float], dict[str, Any]]:
    """Per-item text metrics from one or more engines' readings.

    Targets without a letter or digit ("&", an emoji) are not scored: they are listed in
    details["unscored_targets"]; when no target is left, the text metrics are NaN and
    details["missing_reason"] says why (ocr_chars is still measured).
    With several engines, each target takes the engine that read it best (highest lenient
    similarity, first engine on ties); extra_text and ocr_chars come from the engine with the best
    mean similarity. Returns ({(metric, variant): value}, details).
    """
    if not readings:
        raise ValueError("no OCR readings")
    asked = list(targets)
    targets = [t for t in asked if scorable(t)]
    unscored = [t for t in asked if not scorable(t)]
    per_engine = [reading_results(targets, r) for r in readings]
    chosen = _best_engine_per_target(len(targets), per_engine)
    values: dict[tuple[str, str], float] = {}
    missing_reason = None
    if unscored and not targets:
        missing_reason = ("target text has no letter or digit to read: "
                          + ", ".join(repr(t) for t in unscored))[:300]
        values.update({k: math.nan for k in TEXT_METRICS})
        values.update({(m, ""): math.nan for m in PROTOCOL_METRICS})
    if targets:
        values.update(_target_values(targets, chosen, readings))
    main = _main_engine(per_engine, len(targets))
    r = readings[main]
    confident, matched = _confident_chars(per_engine[main], r)
    if targets:
        values[("extra_text", "lenient")] = (sum(i not in matched for i in confident) / len(confident)) if confident else 0.0
    values[("ocr_chars", "lenient")] = float(len(confident))
    if targets:     # published protocols on the main engine's raw reading (their own normalisation)
        pv, protocol_reason = protocol_metrics(targets, r.raw_text)
        values.update(pv)
        missing_reason = missing_reason or protocol_reason
    return values, _item_details(chosen, readings, r, unscored, missing_reason)


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
