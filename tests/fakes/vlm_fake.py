"""Fake OpenAI-compatible chat-completions endpoint for the VQA judge: POST /v1/chat/completions.

Shape (OpenAI API reference, Chat Completions, and vLLM's OpenAI-compatible server, which follow it):
request {model, messages: [{role: user, content: [{type: image_url, image_url: {url: data:...}},
{type: text, text}]}], max_tokens, temperature, logprobs, top_logprobs}; answer {id, object:
"chat.completion", created, model, choices: [{index, message: {role, content}, logprobs: {content: [{token,
logprob, bytes, top_logprobs: [{token, logprob, bytes}]}]} | null, finish_reason}], usage}.

The fake answers by rule, so tests can compute the expected numbers by hand: `rules` maps a substring of the
question to P(yes) (first match wins; `default_p` otherwise), spread over "Yes"/" yes" and "No"/" no" as
0.8/0.2 of each side's mass. `logprobs=False` answers with text only (as some endpoints do). `blind_negation`:
questions with a negation word are answered with P(yes) 0.9 whatever the rules say (a judge's known blind spot).
`dark_is_no`: an image whose mean level is below 60 gets P(yes) 0.1 for every question (the image decides).
`odd_tokens`: question substring -> the top tokens spelled as some servers send them ("Yes." / "▁No"
/ "Ġyes" ... in place of "Yes" / "No" / " yes"), plus an entry with `logprob: null`. `no_message`: question
substrings answered with `message: null` and no log-probabilities.
"""

from __future__ import annotations

import base64
import io
import math
import re
import time
from dataclasses import dataclass, field

from .common import FakeService, jsonr

NEGATION = re.compile(r"\b(no|not|without|none|never)\b", re.I)


def image_mean(uri: str) -> float:
    from PIL import Image, ImageStat

    data = base64.b64decode(uri.split(",", 1)[1])
    with Image.open(io.BytesIO(data)) as im:
        return sum(ImageStat.Stat(im.convert("RGB")).mean) / 3


@dataclass
class VlmFake(FakeService):
    rules: dict[str, float] = field(default_factory=dict)
    default_p: float = 0.8
    logprobs: bool = True
    blind_negation: bool = False
    dark_is_no: bool = False
    text_answers: dict[str, str] = field(default_factory=dict)   # question substring -> a non-yes/no reply
    odd_tokens: tuple[str, ...] = ()
    no_message: tuple[str, ...] = ()
    seen: list[dict] = field(default_factory=list)

    def p_yes(self, question: str, uri: str) -> float:
        if self.blind_negation and NEGATION.search(re.sub(r"Please answer yes or no\.", "", question, flags=re.I)):
            return 0.9
        if self.dark_is_no and image_mean(uri) < 60:
            return 0.1
        for k, p in self.rules.items():
            if k in question:
                return p
        return self.default_p

    def handle(self, req):
        if req.path != "/v1/chat/completions" or req.method != "POST":
            return jsonr(404, {"error": {"message": f"no route {req.path}", "type": "invalid_request_error"}})
        if req.headers.get("authorization") != f"Bearer {self.secret}":
            return jsonr(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                         "code": "invalid_api_key"}})
        fault = self.hit("chat")
        if fault:
            return jsonr(fault[0], {"error": {"message": "overloaded", "type": "server_error"}}, fault[1])
        if self.latency:
            time.sleep(self.latency)
        body = req.json()
        content = body["messages"][0]["content"]
        uri = next(c["image_url"]["url"] for c in content if c["type"] == "image_url")
        question = next(c["text"] for c in content if c["type"] == "text")
        self.seen.append({"question": question, "max_tokens": body.get("max_tokens"),
                          "top_logprobs": body.get("top_logprobs"), "model": body.get("model")})
        return jsonr(200, self.completion(body.get("model"), question, uri))

    def completion(self, model: str, question: str, uri: str) -> dict:
        odd = next((v for k, v in self.text_answers.items() if k in question), None)
        p = self.p_yes(question, uri)
        top = [("Yes", 0.8 * p), (" yes", 0.2 * p), ("No", 0.8 * (1 - p)), (" no", 0.2 * (1 - p))]
        top = sorted([(t, q) for t, q in top if q > 0], key=lambda x: -x[1])
        chosen = odd or top[0][0]
        lp = None
        if self.logprobs:
            entries = [{"token": t, "logprob": math.log(q), "bytes": list(t.encode())} for t, q in top] if not odd \
                else [{"token": odd, "logprob": -0.01, "bytes": list(odd.encode())}]
            lp = {"content": [{"token": chosen, "logprob": entries[0]["logprob"], "bytes": list(chosen.encode()),
                               "top_logprobs": entries}]}
        if lp and any(k in question for k in self.odd_tokens):
            spell = {"Yes": "Yes.", " yes": "\u0120yes", "No": "\u2581No", " no": " no!"}
            for e in lp["content"][0]["top_logprobs"]:
                e["token"] = spell.get(e["token"], e["token"])
            lp["content"][0]["top_logprobs"].append({"token": "Yes", "logprob": None, "bytes": None})
        message = None if any(k in question for k in self.no_message) else {"role": "assistant", "content": chosen}
        if message is None:
            lp = None
        return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "message": message, "logprobs": lp, "finish_reason": "length"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}}
