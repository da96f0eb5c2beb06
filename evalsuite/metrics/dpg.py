"""DPG-Bench's scoring (Hu et al. 2024, ELLA, `dpg_bench/compute_dpg_bench.py`, Apache-2.0) as pure functions over
a prompt's questions (Prompt.questions: id = proposition_id, depends_on = its parents, category = category_broad,
subcategory = category_detailed) and a judge's yes/no answers.

    image_score(questions, answers)    one image: questions in prompt order; a question scores 0 when a parent's
                                       score so far is 0 (a parent zeroed by its own parent zeroes its children
                                       too, as the original's in-place loop does), else 1 for "yes"; the mean
                                       over every question of the prompt
    prompt_score(per_image)            the mean of the prompt's image scores (the original: the 4 crops of its
                                       2x2 grid; here: its 4 seeds, one image each)
    overall(prompt_scores)             the mean over prompts, x 100
    category_scores(items)             L2 (category - subcategory) and L1 (category) scores, x 100: the mean over
                                       every (prompt, question) of the RAW answer (no gating) on each prompt's
                                       LAST image, as the original's returned qid2scores_orig
"""

from __future__ import annotations

from typing import Mapping, Sequence


def _yes(answer) -> bool:
    if isinstance(answer, str):
        return answer.strip().lower() == "yes"
    return bool(answer)


def gated_scores(questions: Sequence, answers: Mapping[str, object]) -> dict[str, float]:
    """Per question id: 0/1 after DPG's in-order gating. Every question needs an answer (KeyError otherwise)."""
    scores = {q.id: float(_yes(answers[q.id])) for q in questions}
    for q in questions:
        if any(scores.get(p, 1.0) == 0 for p in q.depends_on):
            scores[q.id] = 0.0
    return scores


def image_score(questions: Sequence, answers: Mapping[str, object]) -> float | None:
    if not questions:
        return None
    s = gated_scores(questions, answers)
    return sum(s.values()) / len(s)


def prompt_score(per_image: Sequence[float]) -> float | None:
    vals = [float(v) for v in per_image if v is not None]
    return sum(vals) / len(vals) if vals else None


def overall(prompt_scores: Sequence[float]) -> float | None:
    vals = [float(v) for v in prompt_scores if v is not None]
    return 100.0 * sum(vals) / len(vals) if vals else None


def l2_name(q) -> str:
    return f"{q.category} - {q.subcategory}" if q.subcategory else q.category


def category_scores(items: Sequence[tuple[Sequence, Mapping[str, object]]]) -> tuple[dict[str, float], dict[str, float]]:
    """(L1 scores, L2 scores), each x 100, from (questions, raw answers of the prompt's last image) per prompt."""
    l1: dict[str, list[float]] = {}
    l2: dict[str, list[float]] = {}
    for questions, answers in items:
        for q in questions:
            v = float(_yes(answers[q.id]))
            l2.setdefault(l2_name(q), []).append(v)
            l1.setdefault(q.category, []).append(v)
    mean = {k: 100.0 * sum(v) / len(v) for k, v in l1.items()}
    return mean, {k: 100.0 * sum(v) / len(v) for k, v in sorted(l2.items())}
