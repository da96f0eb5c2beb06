"""`openai:BASE_URL`: a judge behind any OpenAI-compatible chat-completions endpoint (vllm serve, SGLang,
Ollama, OpenAI, other providers' compatible endpoints), through the `openai` client (imported lazily).

Each (image, question) is one request: the image as a base64 PNG data URI, the question as text,
`max_tokens=1`, `temperature=0`, `logprobs=True`, `top_logprobs=20`. P(yes) sums the yes spellings' and the no
spellings' probabilities among the top 20 and normalises (judges/base.py); when the endpoint returns no
log-probabilities (or none that read as yes/no) the answer text is parsed (source "text", p_yes 1.0 / 0.0) and
the report counts those. A request that fails (after retries, or with a malformed response) fails only its item,
with the reason (key redacted); it is not cached, so a rerun asks again.
Requests run `concurrency` at a time (many replicas behind one URL take many), transient failures (429, 5xx,
timeouts, connection errors) are retried with backoff as the remote backends do (backends/remote.py).

Key: the environment variable `key_env`; without it OPENAI_API_KEY, sent only to OpenAI's own hosts (never to a
third-party or local server); a local server without auth needs none
(the client then sends the placeholder "EMPTY"). Never written anywhere. Plain http only to a server on this
machine or without a key. Identity (part of the cache key): the served model name, `revision` (what the user
says the server runs), the template version; never the URL (replicas of one model answer alike).
"""

from __future__ import annotations

import base64
import io
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence
from urllib.parse import urlsplit

from . import DEFAULT_JUDGE, JudgeSpec, take_judge_options
from .base import TEMPLATE_VERSION, Answer, Judge, JudgeUnavailable, answer_from_logprobs, answer_from_text, bad_spec

SCHEMA = {"model": str, "key_env": str, "concurrency": int, "timeout": float, "retries": int, "retry_base": float,
          "revision": str}
DEFAULTS = {"model": DEFAULT_JUDGE.partition(":")[2], "key_env": None, "concurrency": 8, "timeout": 60.0,
            "retries": 4, "retry_base": 1.0, "revision": None}
TOP_LOGPROBS = 20
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def data_uri(image) -> str:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


class OpenAIJudge(Judge):
    kind = "openai"

    def __init__(self, spec: JudgeSpec):
        self.spec = spec
        self.opts = take_judge_options(spec, SCHEMA, DEFAULTS)
        self.base_url = spec.ref.rstrip("/")
        self.batch = 4 * self.opts["concurrency"]
        self.client = None
        self._secret: str | None = None
        self.texts_parsed = 0

    @classmethod
    def check_spec(cls, spec: JudgeSpec) -> None:
        opts = take_judge_options(spec, SCHEMA, DEFAULTS)
        u = urlsplit(spec.ref)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise bad_spec(spec.raw, "expected openai:BASE_URL, e.g. openai:http://127.0.0.1:8000/v1")
        if opts["concurrency"] > 256:
            raise bad_spec(spec.raw, "option 'concurrency' is at most 256")
        name = _key_name(opts, spec.ref)
        if u.scheme == "http" and u.hostname not in LOCAL_HOSTS and name and os.environ.get(name):
            raise bad_spec(spec.raw, "a key is only sent over https (or to a server on this machine)")

    @property
    def model(self) -> str:
        return self.opts["model"]

    def identity(self) -> dict[str, Any]:
        return {"kind": "openai", "model": self.opts["model"], "endpoint_model": self.opts["model"],
                "revision": self.opts["revision"], "template": TEMPLATE_VERSION, "top_logprobs": TOP_LOGPROBS}

    def facts(self) -> dict[str, Any]:
        return {"concurrency": self.opts["concurrency"]}

    def load(self) -> None:
        if self.client is not None:
            return
        try:
            import openai
        except ImportError:
            raise JudgeUnavailable("judge openai: the openai package is not installed (pip install 'evalsuite[remote]')") \
                from None
        from ..backends import remote

        name = _key_name(self.opts, self.base_url)
        key = os.environ.get(name) if name else None
        if self.opts["key_env"] and not key:
            raise JudgeUnavailable(f"judge openai: the environment variable {self.opts['key_env']} is not set")
        self._secret = key
        self.client = openai.OpenAI(base_url=self.base_url, api_key=key or "EMPTY", max_retries=0,
                                    timeout=self.opts["timeout"])
        self.policy = remote.RetryPolicy(attempts=self.opts["retries"] + 1, base=self.opts["retry_base"])

    def answer(self, images: Sequence[Any], questions: Sequence[str]) -> list[Answer]:
        self.load()
        uris: dict[int, str] = {}
        for im in images:
            if id(im) not in uris:
                uris[id(im)] = data_uri(im)
        jobs = [(uris[id(im)], q) for im, q in zip(images, questions)]
        with ThreadPoolExecutor(max_workers=min(self.opts["concurrency"], len(jobs)) or 1) as pool:
            return list(pool.map(lambda j: self.ask_one(*j), jobs))

    def ask_one(self, uri: str, question: str) -> Answer:
        from ..backends import remote
        from ..backends.openai_images import classify

        messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": uri}},
                                                 {"type": "text", "text": question}]}]
        try:
            resp = remote.with_retry(lambda: self.client.chat.completions.create(
                model=self.opts["model"], messages=messages, max_tokens=1, temperature=0, logprobs=True,
                top_logprobs=TOP_LOGPROBS), self.policy, classify, "judge", None)
            return read_choice(resp)
        except remote.RemoteFailure as e:   # this item fails (not cached: a rerun asks again); the others go on
            return Answer(None, None, "error", self.redact(e.message))
        except Exception as e:  # noqa: BLE001 - a malformed response or client error: this item fails, not the batch
            first = str(e).splitlines()[0][:160] if str(e) else ""
            return Answer(None, None, "error", self.redact(f"{type(e).__name__}: {first}"))

    def redact(self, message: str) -> str:
        return message.replace(self._secret, "[redacted]") if self._secret else message


def read_choice(resp) -> Answer:
    """The Answer of a one-token chat completion: from its log-probabilities, else from its text."""
    choice = (getattr(resp, "choices", None) or [None])[0]
    if choice is None:
        return Answer(None, None, "text", "the endpoint returned no choice")
    logprobs = getattr(choice, "logprobs", None)
    content = getattr(logprobs, "content", None) if logprobs is not None else None
    if content:
        first = content[0]
        top = [(t.token, t.logprob) for t in (first.top_logprobs or [])] or [(first.token, first.logprob)]
        return answer_from_logprobs(top, first.token)
    message = getattr(choice, "message", None)
    return answer_from_text(getattr(message, "content", None) or "")


def _key_name(opts: dict[str, Any], base_url: str) -> str | None:
    """The variable whose key is sent: `key_env` when given; else OPENAI_API_KEY, but only to OpenAI's own hosts
    (an OpenAI key in the environment never reaches a third-party or local server); else none."""
    if opts["key_env"]:
        return opts["key_env"]
    host = (urlsplit(base_url).hostname or "").lower()
    return "OPENAI_API_KEY" if host == "openai.com" or host.endswith(".openai.com") else None
