"""How well each VQA judge (the vqa scorer) agrees with human labels, for `evalsuite agree` (agree.py).

A label line (keyed like the text labels: backend + prompt_id + seed, image_sha256 or image) may carry
    prompt_following   0/1 (or true/false): a person's per-image verdict that the image follows the whole prompt
    questions          {question id: "yes" | "no" (or 1/0, true/false)}: a person's answer to atomic questions
The judge's per-image prediction is prompt_following_vqa (every question yes after gating) where the prompt has
questions, else its answer to the whole-prompt question; per question, the judge's own answer (before gating:
agreement is about what it saw). Per category the accuracy over the labelled questions shows blind spots
(negation answered "yes" regardless, counting, text reading).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .errors import EvalsuiteError
from .metrics.agreement import agreement_summary

YES_NO = {"yes": 1, "no": 0, True: 1, False: 0, 1: 1, 0: 0}


def vqa_labels(raw: dict[str, Any], where: str) -> tuple[int | None, dict[str, int]]:
    """(per-image prompt_following label, {question id: 0/1}) of one label line; a bad value is a one-line error
    naming the file, line and field (`where`: "FILE: line N")."""
    pf = raw.get("prompt_following")
    if pf is not None:
        if pf not in (0, 1) or isinstance(pf, float):
            raise EvalsuiteError(f"{where}: field 'prompt_following': expected 0 or 1, got {pf!r}")
        pf = int(pf)
    qs = raw.get("questions")
    if qs is None:
        return pf, {}
    if not isinstance(qs, dict):
        raise EvalsuiteError(f"{where}: field 'questions': expected {{question id: yes|no}}")
    out = {}
    for qid, v in qs.items():
        key = v.lower() if isinstance(v, str) else v
        if isinstance(key, float) or key not in YES_NO:
            raise EvalsuiteError(f"{where}: field 'questions.{qid}': expected yes or no, got {v!r}")
        out[str(qid)] = YES_NO[key]
    return pf, out


def has_vqa_labels(raw: dict[str, Any]) -> bool:
    return raw.get("prompt_following") is not None or bool(raw.get("questions"))


def _judge_rows(df) -> dict[str, str]:
    v = df[df["scorer"] == "vqa"]
    return dict(zip(v["scorer_id"], v["model"]))


def _prediction(df, root: Path, sid: str, rec) -> tuple[int | None, dict[str, dict[str, Any]]]:
    """(the judge's per-image verdict, {question id: its question record}) for one item."""
    from .scoring import load_detail

    rows = df[(df.scorer_id == sid) & (df.backend == rec.backend) & (df.prompt_id == rec.prompt_id)
              & (df.seed == rec.seed)]
    key = next((k for k in rows.cache_key if isinstance(k, str)), None)
    det = (load_detail(root, sid, key) or {}).get("details", {}) if key else {}
    pf = rows[rows.metric == "prompt_following_vqa"].value
    if len(pf) and not math.isnan(pf.iloc[0]):
        verdict = int(pf.iloc[0] == 1.0)
    else:
        ans = (det.get("vqa") or {}).get("answer")
        verdict = None if ans is None else int(ans == "yes")
    return verdict, {q["id"]: q for q in det.get("questions", [])}


def judge_agreement(root: Path, df, matched: list[tuple[Any, Any]], n_resamples: int, rng_seed: int) -> list[dict]:
    """Per vqa scorer identity: image-level and question-level agreement, accuracy per question category.
    `matched`: (Label, ItemRecord) of every label line that names an item of the run and carries vqa labels."""
    out = []
    for sid, model in _judge_rows(df).items():
        img_h, img_p, q_h, q_p, cats, misses = [], [], [], [], {}, []
        for lab, rec in matched:
            pf, qlabels = lab.vqa
            verdict, qrec = _prediction(df, root, sid, rec)
            item = f"{rec.backend}/{rec.prompt_id}/s{rec.seed}"
            if pf is not None and verdict is not None:
                img_h.append(pf)
                img_p.append(verdict)
            for qid, h in qlabels.items():
                q = qrec.get(qid)
                if q is None or q.get("answer") is None:
                    continue
                p = int(q["answer"] == "yes")
                q_h.append(h)
                q_p.append(p)
                c = cats.setdefault(q.get("category") or "other", [0, 0])
                c[0] += int(h == p)
                c[1] += 1
                if h != p:
                    misses.append({"item": item, "question": q["text"], "category": q.get("category"),
                                   "human": "yes" if h else "no", "judge": q["answer"], "p_yes": q.get("p_yes"),
                                   "image": str(root / rec.image)})
        summ = lambda h, p: agreement_summary(h, p, n_resamples=n_resamples, rng_seed=rng_seed) if h else None  # noqa: E731
        out.append({"scorer_id": sid, "model": model, "images": summ(img_h, img_p), "questions": summ(q_h, q_p),
                    "by_category": {c: {"n": n, "accuracy": k / n} for c, (k, n) in sorted(cats.items())},
                    "disagreements": misses})
    return out


def format_judges(judges: list[dict]) -> list[str]:
    """The judges' lines of the CLI table."""
    lines = []
    for j in judges:
        def acc(s):
            return "-" if not s else f"{s['accuracy']['value']:.2f} [{s['accuracy']['low']:.2f}, " \
                                     f"{s['accuracy']['high']:.2f}] (n={s['n']})"
        cats = ", ".join(f"{c} {v['accuracy']:.2f} (n={v['n']})" for c, v in j["by_category"].items())
        lines.append(f"judge {j['model']}: per image {acc(j['images'])}; per question {acc(j['questions'])}"
                     + (f"; by category: {cats}" if cats else ""))
    return lines


def judges_html(judges: list[dict]) -> str:
    import html

    if not judges:
        return ""
    parts = ["<h2>VQA judges</h2><table><tr><th>judge</th><th>level</th><th>n</th><th>accuracy [95% CI]</th>"
             "<th>kappa</th></tr>"]
    for j in judges:
        for level in ("images", "questions"):
            s = j[level]
            if not s:
                continue
            a, k = s["accuracy"], s["kappa"]
            kap = "-" if k["value"] is None or math.isnan(k["value"]) else f"{k['value']:.2f}"
            parts.append(f"<tr><td>{html.escape(j['model'])}</td><td>{level}</td><td>{s['n']}</td>"
                         f"<td>{a['value']:.2f} [{a['low']:.2f}, {a['high']:.2f}]</td><td>{kap}</td></tr>")
        for c, v in j["by_category"].items():
            parts.append(f"<tr><td>{html.escape(j['model'])}</td><td>questions: {html.escape(c)}</td>"
                         f"<td>{v['n']}</td><td>{v['accuracy']:.2f}</td><td></td></tr>")
    parts.append("</table>")
    for j in judges:
        if j["disagreements"]:
            parts.append(f"<h3>{html.escape(j['model'])}: questions answered unlike the person</h3><ul>")
            parts += [f"<li>{html.escape(d['item'])}: {html.escape(d['question'])} [{html.escape(str(d['category']))}]"
                      f" person {d['human']}, judge {d['judge']} (p={d['p_yes']:.2f})</li>" for d in j["disagreements"]]
            parts.append("</ul>")
    return "\n".join(parts)
