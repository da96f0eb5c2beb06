"""VQA judges of prompt following (opt-in: `--scorers clip,ocr,vqa`, judge chosen with `--judge`; judges/).

Per item, with P(yes) normalised over yes/no (judges/base.py):

    vqa_score             P(yes) for 'Does this figure show "{prompt}"? Please answer Yes or No.' (GenAI-Bench /
                          VQAScore's question, as t2v_metrics asks it)
    question_score        share of the prompt's atomic questions scoring 1 after dependency gating (DSG,
                          DPG-Bench: a question whose parent is answered "no" scores 0; metrics/questions.py)
    prompt_following_vqa  1 when every question scores 1 (the per-image "prompt followed" judgement)
    question_acc/<cat>    share of the questions of category <cat> scoring 1
    judge_text_answers    share of the item's answers parsed from text (an endpoint without log-probabilities)

The question metrics exist only for prompts with questions (no row otherwise, as text metrics need target
text). A request that failed (an endpoint error after retries, a malformed response) fails the whole item,
every metric including vqa_score, with a reason naming the failed questions and why; it is not cached, so a
rerun asks again. A question the judge answered neither yes nor no makes the question metrics missing with that reason.
Details (the format DPG-Bench scoring reads):

    {"judge": {identity + facts}, "vqa": {question, p_yes, answer, source},
     "questions": [{id, text, category, subcategory, depends_on, p_yes, answer, source, gated, score}]}

The judge's identity (kind, model, revision, template version, dtype / endpoint model) is part of this scorer's
identity, so another judge adds rows beside the old ones and never reuses their cache.
"""

from __future__ import annotations

from typing import Any, Sequence

from .base import Scorer, ScoreOptions, ScorerUnavailable

VQA_SCORER_VERSION = "vqa/v1"


def judge_questions(prompt) -> list[str]:
    """The texts a judge is asked for one prompt: the whole-prompt question, then each atomic question."""
    from ..judges.base import atomic_question, vqa_question

    return [vqa_question(prompt.prompt)] + [atomic_question(q.text) for q in prompt.questions]


def failed_requests(prompt, answers: Sequence) -> str | None:
    """Why the item failed when any of its requests failed (source "error"): which questions, and why. One failed
    request fails the whole item, answered questions included (nothing partial is cached; a rerun asks again)."""
    labels = ["the prompt question"] + [f"question {q.id}" for q in prompt.questions]
    failed = [(label, a.note) for label, a in zip(labels, answers) if a.source == "error"]
    if not failed:
        return None
    notes = list(dict.fromkeys(note or "no reason given" for _, note in failed))
    which = ", ".join(label for label, _ in failed)
    return f"judge: {len(failed)} of {len(answers)} requests failed ({which}): {'; '.join(notes)}"[:600]


def item_result(prompt, answers: Sequence, judge_record: dict[str, Any]):
    """(values, details) of one item from its answers (judge_questions' order), or a string: why it failed."""
    from ..judges.base import vqa_question
    from ..metrics import questions as Q

    failed = failed_requests(prompt, answers)
    if failed:
        return failed
    head, rest = answers[0], list(answers[1:])
    values: dict[tuple[str, str], float] = {("vqa_score", ""): float("nan") if head.p_yes is None else head.p_yes,
                                            ("judge_text_answers", ""): sum(a.source == "text" for a in answers)
                                            / len(answers)}
    details: dict[str, Any] = {"judge": judge_record, "vqa": {"question": vqa_question(prompt.prompt), **head.record()}}
    reasons = [f"the judge gave no yes/no to the prompt question ({head.note})"] if head.p_yes is None else []
    qs = list(prompt.questions)
    rows = [{"id": q.id, "text": q.text, "category": q.category, "subcategory": q.subcategory,
             "depends_on": list(q.depends_on), **a.record()} for q, a in zip(qs, rest)]
    details["questions"] = rows
    if qs:
        unanswered = [r for r in rows if r["p_yes"] is None]
        if unanswered:
            reasons.append(f"the judge gave no yes/no to question {unanswered[0]['id']} ({unanswered[0].get('note')})")
            for m in ("question_score", "prompt_following_vqa"):
                values[(m, "")] = float("nan")
            for c in dict.fromkeys(q.category for q in qs):
                values[("question_acc", c)] = float("nan")
        else:
            p = {r["id"]: r["p_yes"] for r in rows}
            gated = Q.gated_answers(qs, p)
            for r in rows:
                r["gated"], r["score"] = gated[r["id"]][2], gated[r["id"]][1]
            values[("question_score", "")] = Q.question_score(qs, p)
            values[("prompt_following_vqa", "")] = Q.all_yes(qs, p)
            for c, v in Q.category_scores(qs, p).items():
                values[("question_acc", c)] = v
    if reasons:
        details["missing_reason"] = "; ".join(reasons)
    return values, details


class VqaScorer(Scorer):
    """VQAScore and atomic-question scores from one VQA judge (judges/)."""

    kind = "vqa"

    @classmethod
    def check_options(cls, opts: ScoreOptions) -> None:
        from ..judges import parse_judge

        parse_judge(opts.judge)

    @classmethod
    def from_options(cls, opts: ScoreOptions) -> list[Scorer]:
        from ..judges import make_judge

        judge = make_judge(opts.judge)
        ident = {"scorer": "vqa", "version": VQA_SCORER_VERSION, "judge": judge.identity()}
        s = cls("vqa", judge.model, VQA_SCORER_VERSION, ident, options=opts)
        s._judge = judge
        return [s]

    @property
    def batch_size(self) -> int:   # type: ignore[override]
        judge = getattr(self, "_judge", None)
        return max(1, judge.batch // 2) if judge is not None else 4

    def inputs(self, prompt) -> dict[str, Any]:
        return {"prompt": prompt.prompt, "questions": [q.model_dump() for q in prompt.questions]}

    def metrics_for(self, prompt) -> list[tuple[str, str]]:
        out = [("vqa_score", ""), ("judge_text_answers", "")]
        if prompt.questions:
            out += [("question_score", ""), ("prompt_following_vqa", "")]
            out += [("question_acc", c) for c in dict.fromkeys(q.category for q in prompt.questions)]
        return out

    def load(self, entry: dict[str, Any]) -> None:
        from ..judges import JudgeUnavailable

        try:
            self._judge.load()
        except JudgeUnavailable as e:
            raise ScorerUnavailable(str(e)) from None

    def score_batch(self, jobs, images, store) -> list:
        pair_images, texts, spans = [], [], []
        for job, image in zip(jobs, images):
            qs = judge_questions(job.prompt)
            spans.append((len(texts), len(texts) + len(qs)))
            pair_images += [image] * len(qs)
            texts += qs
        try:
            answers = self._judge.answer(pair_images, texts)
        except Exception as e:  # noqa: BLE001 - the batch's items fail with the reason; the pass goes on
            why = f"judge failed: {type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
            return [why] * len(jobs)
        record = {**self._judge.identity(), **self._judge.facts()}
        return [item_result(job.prompt, answers[a:b], record) for job, (a, b) in zip(jobs, spans)]
