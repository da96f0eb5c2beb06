"""Fake OpenAI-compatible text LLM (what `vllm serve`, Ollama or OpenAI answer): POST /v1/chat/completions and
GET /v1/models, Bearer auth. Used by the question-drafting tests.

Shapes (OpenAI API reference, Chat Completions and List models, as the installed `openai` 3.57.0 client parses
them; vLLM's and Ollama's OpenAI-compatible servers answer the same fields): the answer
{"id", "object": "chat.completion", "created", "model", "choices": [{"index", "message": {"role", "content"},
"finish_reason"}], "usage"}; errors {"error": {"message", "type", "param", "code"}}; models
{"object": "list", "data": [{"id", "object": "model", "created", "owned_by"}]}.

`answers[(step, prompt)]` is the content returned for a request: the step is told from the system message
(the drafting recipe's three tasks), the prompt is the first line of the last user message. An unknown request
answers "I cannot help with that." (an LLM that ignores the format).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .common import FakeService, Req, jsonr

STEP_WORDS = (("rewrite each tuple", "questions"), ("parent tuples", "dependencies"), ("list the atomic facts", "tuples"))


def err(status: int, message: str, code: str | None, etype: str = "invalid_request_error"):
    return jsonr(status, {"error": {"message": message, "type": etype, "param": None, "code": code}})


def step_of(messages: list[dict]) -> str:
    system = next((m["content"] for m in messages if m.get("role") == "system"), "")
    return next((step for words, step in STEP_WORDS if words in system), "unknown")


@dataclass
class ChatLLMFake(FakeService):
    models: tuple[str, ...] = ("tiny-drafter",)
    answers: dict = field(default_factory=dict)
    bodies: list = field(default_factory=list)
    fail_at: dict = field(default_factory=dict)     # chat request number (1-based) -> HTTP status

    def handle(self, req: Req):
        if req.headers.get("authorization") != f"Bearer {self.secret}":
            return err(401, "Incorrect API key provided.", "invalid_api_key")
        if req.method == "GET" and req.path == "/v1/models":
            self.hit("models")
            return jsonr(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 1776729600, "owned_by": "fake"} for m in self.models]})
        if req.method != "POST" or req.path != "/v1/chat/completions":
            return err(404, "not found", None)
        self.hit("chat")
        body = req.json()
        self.bodies.append(body)
        status = self.fail_at.get(self.count("chat"))
        if status:
            return err(status, "The server had an error processing your request.", None, "server_error")
        if self.latency:                                # answers take this long (failures above come at once)
            time.sleep(self.latency)
        if body.get("model") not in self.models:
            return err(404, f"The model `{body.get('model')}` does not exist.", "model_not_found")
        msgs = body["messages"]
        prompt = msgs[-1]["content"].split("\n", 1)[0]
        content = self.answers.get((step_of(msgs), prompt), "I cannot help with that.")
        return jsonr(200, {"id": f"chatcmpl-{self.count('chat')}", "object": "chat.completion",
                           "created": int(time.time()), "model": body["model"],
                           "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                        "finish_reason": "stop"}],
                           "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}})
