"""Atomic-question scores (DSG, DPG-Bench): pure functions over a prompt's questions and a judge's answers.

A judge answers each question with P(yes) (or a parsed yes/no). An answer is "yes" when P(yes) >= 0.5.
Dependency gating follows DSG (its scoring checks each question's direct parents' raw answers): a question whose
direct parent (`depends_on`) was answered "no" scores 0, whatever its own answer. A grandparent's "no" reaches a
grandchild only through a parent that is also answered "no". DPG-Bench's own script zeroes in place, in
question order, so a zeroed parent zeroes its children in a chain; the DPG protocol uses that rule
(metrics/dpg.py). Both divide by every question of the prompt, gated ones included.

    gated_answers(questions, p_yes)  -> {id: (answer_yes, score, gated)}
    question_score(questions, p_yes) -> share of questions scoring 1 (None without questions)
    all_yes(questions, p_yes)        -> 1.0 when every question scores 1 (the "prompt followed" judgement)
    category_scores(questions, p_yes)-> {category: share scoring 1}
"""

from __future__ import annotations

from typing import Mapping, Sequence

YES_THRESHOLD = 0.5


def is_yes(p_yes: float) -> bool:
    return float(p_yes) >= YES_THRESHOLD


def gated_answers(questions: Sequence, p_yes: Mapping[str, float]) -> dict[str, tuple[bool, float, bool]]:
    """Per question id: (its own answer is yes, its score after gating (0 or 1), gated by a parent's "no").
    Every question needs an answer in `p_yes` (KeyError otherwise: a missing answer is not a "no")."""
    raw = {q.id: is_yes(p_yes[q.id]) for q in questions}
    out: dict[str, tuple[bool, float, bool]] = {}
    for q in questions:
        gated = any(not raw[d] for d in q.depends_on)
        out[q.id] = (raw[q.id], 0.0 if gated or not raw[q.id] else 1.0, gated)
    return out


def question_score(questions: Sequence, p_yes: Mapping[str, float]) -> float | None:
    if not questions:
        return None
    g = gated_answers(questions, p_yes)
    return sum(s for _, s, _ in g.values()) / len(questions)


def all_yes(questions: Sequence, p_yes: Mapping[str, float]) -> float | None:
    if not questions:
        return None
    return float(all(s == 1.0 for _, s, _ in gated_answers(questions, p_yes).values()))


def category_scores(questions: Sequence, p_yes: Mapping[str, float], attr: str = "category") -> dict[str, float]:
    """Share of questions scoring 1 (after gating) per category (or per `subcategory` with attr=)."""
    g = gated_answers(questions, p_yes)
    sums: dict[str, list[float]] = {}
    for q in questions:
        key = getattr(q, attr)
        if key is None:
            continue
        sums.setdefault(key, []).append(g[q.id][1])
    return {k: sum(v) / len(v) for k, v in sums.items()}
