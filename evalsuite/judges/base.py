"""What every VQA judge shares: the question templates, the yes/no normalisation and the answer record.

A judge answers yes/no questions about images. Per (image, question) it returns an `Answer`:

    p_yes    P(yes) normalised over yes and no: p_yes = P_yes / (P_yes + P_no), where P_yes sums the
             probabilities of the answer's first token being a spelling of yes and P_no the same for no (a local
             model: the token ids of YES_SPELLINGS; an endpoint: any top token that token_word reads as "yes",
             e.g. " Yes", "▁Yes", "ĠYes", "Yes."). 1.0 / 0.0 when the answer was parsed from text.
    answer   "yes" when p_yes >= 0.5 (metrics/questions.py), else "no"
    source   "scores" (a local model's next-token scores), "logprobs" (an endpoint's top log-probabilities) or
             "text" (the endpoint returned no usable yes/no log-probabilities: its answer text was parsed),
             "error" (the request failed: `note` says why; the item fails, is not cached, a rerun asks again)

None of p_yes/answer when the judge gave neither yes nor no (`note` says what it said): that question's
metrics are missing, never guessed.

The whole-prompt question is GenAI-Bench/VQAScore's, character for character as t2v_metrics asks it
(linzhiqiu/t2v_metrics, t2v_metrics/models/vqascore_models/, default question_template):
'Does this figure show "{prompt}"? Please answer Yes or No.' Atomic questions (DSG, TIFA, DPG-Bench) are
asked as "{question} Please answer yes or no.". Changing a template changes TEMPLATE_VERSION, which is part
of every judge's identity (and so of the cache key).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from ..errors import EvalsuiteError

TEMPLATE_VERSION = "vqa-yn/v2"   # v2: the VQAScore question is t2v_metrics' exactly (double quotes, "Yes or No")
VQA_TEMPLATE = 'Does this figure show "{prompt}"? Please answer Yes or No.'
QUESTION_TEMPLATE = "{question} Please answer yes or no."
YES_SPELLINGS = ("Yes", "yes", " Yes", " yes", "YES", " YES")
NO_SPELLINGS = ("No", "no", " No", " no", "NO", " NO")


class JudgeUnavailable(Exception):
    """The judge cannot run here (weights not found, no CUDA for an offload, endpoint package missing); the
    message is the stored missing reason."""


@dataclass(frozen=True)
class Answer:
    p_yes: float | None
    answer: str | None          # "yes" | "no" | None
    source: str                 # "scores" | "logprobs" | "text"
    note: str | None = None     # what the judge said when it was neither yes nor no

    def record(self) -> dict[str, Any]:
        d: dict[str, Any] = {"p_yes": self.p_yes, "answer": self.answer, "source": self.source}
        if self.note:
            d["note"] = self.note
        return d


def vqa_question(prompt: str) -> str:
    return VQA_TEMPLATE.format(prompt=prompt)


def atomic_question(question: str) -> str:
    return QUESTION_TEMPLATE.format(question=question.strip())


def normalised(p_yes_mass: float, p_no_mass: float) -> float | None:
    """P(yes) normalised over yes and no; None when neither has any mass."""
    total = p_yes_mass + p_no_mass
    if not total > 0 or not math.isfinite(total):
        return None
    return p_yes_mass / total


def answer_from_p(p_yes: float | None, source: str, note: str | None = None) -> Answer:
    from ..metrics.questions import is_yes

    if p_yes is None:
        return Answer(None, None, source, note)
    return Answer(float(p_yes), "yes" if is_yes(p_yes) else "no", source, note)


_PUNCT = ".,!?;:'\")]"


def token_word(token: Any) -> str:
    """A token as a word: surrounding whitespace, sentencepiece's "▁" and byte-level BPE's "Ġ" stripped, trailing
    punctuation dropped, lower-cased (" Yes", "▁Yes", "ĠYes", "Yes." and "YES" are all "yes")."""
    w = str(token or "").strip().lstrip("\u2581\u0120").strip()
    return w.rstrip(_PUNCT).strip().lower()


def is_yes_token(token: Any) -> bool:
    return token_word(token) == "yes"


def is_no_token(token: Any) -> bool:
    return token_word(token) == "no"


def finite_logprob(lp: Any) -> float | None:
    """An entry's log-probability as a float, or None when the endpoint sent null, a non-number or a non-finite value;
    a positive one (rounding, or a broken server) is read as 0 (probability 1), never overflowing exp."""
    try:
        v = float(lp)
    except (TypeError, ValueError):
        return None
    return min(v, 0.0) if math.isfinite(v) else None


def answer_from_logprobs(top: Mapping[str, Any] | Iterable[tuple[str, Any]], chosen: str | None) -> Answer:
    """An endpoint's first answer token: its top log-probabilities {token: logprob} (the spellings of yes and
    no that appear, matched by token_word, are summed, then normalised; an entry whose logprob is null or not
    finite is skipped). When neither appears, the chosen token's text decides and the answer's source is
    "text" (it counts in judge_text_answers)."""
    pairs = top.items() if isinstance(top, Mapping) else top
    y = n = 0.0
    for tok, lp in pairs:
        v = finite_logprob(lp)
        if v is None:
            continue
        if is_yes_token(tok):
            y += math.exp(v)
        elif is_no_token(tok):
            n += math.exp(v)
    p = normalised(y, n)
    if p is not None:
        return answer_from_p(p, "logprobs")
    word = token_word(chosen)
    parsed = word if word in ("yes", "no") else parse_answer_text(chosen or "")
    return answer_from_p(None if parsed is None else float(parsed == "yes"), "text",
                         None if parsed is not None else f"answered {chosen!r}")


_WORD = re.compile(r"[A-Za-z]+")


def parse_answer_text(text: str) -> str | None:
    """"yes" / "no" from an answer's text (its first word, case-insensitive); None for anything else."""
    m = _WORD.search(text or "")
    if not m:
        return None
    w = m.group(0).lower()
    return w if w in ("yes", "no") else None


def answer_from_text(text: str) -> Answer:
    parsed = parse_answer_text(text)
    if parsed is None:
        return Answer(None, None, "text", f"answered {text[:80]!r}")
    return answer_from_p(1.0 if parsed == "yes" else 0.0, "text")


class Judge:
    """A VQA judge. Subclasses set `kind`, `identity()` (everything that changes answers: it goes into the vqa
    scorer's identity and so into every cache key), `load()` (raise JudgeUnavailable), `answer()`."""

    kind = ""
    batch = 8                 # (image, question) pairs per answer() call a caller should aim for

    @property
    def model(self) -> str:
        raise TypeError(f"judge kind {self.kind!r} defines no model")

    def identity(self) -> dict[str, Any]:
        raise TypeError(f"judge kind {self.kind!r} defines no identity")

    def load(self) -> None:
        return None

    def answer(self, images: Sequence[Any], questions: Sequence[str]) -> list[Answer]:
        """One Answer per (image, question) pair (images[i] with questions[i])."""
        raise TypeError(f"judge kind {self.kind!r} defines no answer")

    def facts(self) -> dict[str, Any]:
        """What the details record besides the identity once loaded (a resolved revision, the device)."""
        return {}


def bad_spec(raw: str, why: str) -> EvalsuiteError:
    return EvalsuiteError(f"--judge '{raw}': {why}")
