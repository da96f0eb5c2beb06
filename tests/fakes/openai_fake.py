"""Fake OpenAI API: POST /v1/images/generations and GET /v1/models, Bearer auth.

Shapes and the documents (checked 2026-12-01) they come from:
- error body {"error": {"message", "type", "param", "code"}}: OpenAI API reference, Errors; the installed
  `openai` 3.57.0 client parses it into APIStatusError.code/.body.
- a shut-down model answers 404 {"code": "model_not_found", "message": "The model `dall-e-3` has been
  deprecated. ..."}: the service's answer after the shutdown date, as quoted in migration guides of
  2026-05 (dev.to/flarecanary "DALL-E shuts down May 12") and seen in issue 15.
- a model the account cannot use answers 404 model_not_found "The model `x` does not exist or you do not have
  access to it." (OpenAI error codes guide).
- insufficient_quota is a 429 with code/type insufficient_quota (OpenAI error codes guide: "You exceeded
  your current quota"); a rate limit is a 429 with code rate_limit_exceeded and a Retry-After header.
- moderation: 400 with code moderation_blocked (gpt-image models) / content_policy_violation.
- gpt-image-2 sizes: WxH in multiples of 16, longest edge <= 3840, ratio <= 3:1, <= 8,294,400 pixels
  (third-party copies of OpenAI's image generation guide, 2026); other sizes answer 400 invalid_value.
- GET /v1/models: {"object": "list", "data": [{"id", "object": "model", "created", "owned_by",
  "shutdown_date"}]} (OpenAI API reference, List models, 2026).
"""

from __future__ import annotations

import base64
import itertools
import time
from dataclasses import dataclass, field

from .common import FakeService, Req, jsonr, make_png

LIVE = {"gpt-image-2": None, "gpt-image-2.5-flare": None, "gpt-image-2.5-sunburst": None}
SHUT_DOWN = {"dall-e-2", "dall-e-3", "gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5", "chatgpt-image-latest"}


def err(status: int, message: str, code: str | None, etype: str = "invalid_request_error", headers=None):
    return jsonr(status, {"error": {"message": message, "type": etype, "param": None, "code": code}}, headers)


@dataclass
class OpenAIFake(FakeService):
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    quota_exhausted: bool = False
    bodies: list = field(default_factory=list)

    def handle(self, req: Req):
        if req.headers.get("authorization") != f"Bearer {self.secret}":
            return err(401, "Incorrect API key provided.", "invalid_api_key")
        if req.method == "GET" and req.path == "/v1/models":
            self.hit("models")
            data = [{"id": m, "object": "model", "created": 1776729600, "owned_by": "system", "shutdown_date": d}
                    for m, d in LIVE.items()]
            return jsonr(200, {"object": "list", "data": data})
        if req.method != "POST" or req.path != "/v1/images/generations":
            return err(404, "not found", None)
        fault = self.hit("create")
        if fault:
            if fault[0] == 429:
                return err(429, "Rate limit reached for images per minute.", "rate_limit_exceeded", "requests",
                           fault[1])
            return err(fault[0], "The server is overloaded", None, "server_error", fault[1])
        body = req.json()
        self.bodies.append(body)
        model = body.get("model")
        if model in SHUT_DOWN:
            return err(404, f"The model `{model}` has been deprecated. Learn more: "
                            "https://platform.openai.com/docs/deprecations", "model_not_found")
        if model not in LIVE:
            return err(404, f"The model `{model}` does not exist or you do not have access to it.", "model_not_found")
        if self.quota_exhausted:
            return err(429, "You exceeded your current quota, please check your plan and billing details.",
                       "insufficient_quota", "insufficient_quota")
        if self.latency:
            time.sleep(self.latency)
        w, h = (int(x) for x in body.get("size", "1024x1024").split("x"))
        if model.startswith("gpt-image-2") and (w % 16 or h % 16 or max(w, h) > 3840 or max(w, h) / min(w, h) > 3):
            return err(400, f"Invalid size '{w}x{h}'. Width and height must be multiples of 16.", "invalid_value")
        if self.moderated(body["prompt"]):
            return err(400, "Your request was rejected by the safety system.", "moderation_blocked")
        png = make_png(body["prompt"], next(self.ids), max(8, w // 8), max(8, h // 8))   # small stand-in pixels
        return jsonr(200, {"created": int(time.time()), "data": [{"b64_json": base64.b64encode(png).decode()}],
                           "size": f"{w}x{h}", "quality": body.get("quality"), "output_format": "png"})
