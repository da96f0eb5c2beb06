"""Fake OpenAI Images API: POST /v1/images/generations, Bearer auth, content_policy_violation, b64_json/url."""

from __future__ import annotations

import base64
import itertools
import time
from dataclasses import dataclass, field

from .common import FakeService, Req, jsonr, make_png


@dataclass
class OpenAIFake(FakeService):
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def handle(self, req: Req):
        if req.headers.get("authorization") != f"Bearer {self.secret}":
            return jsonr(401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                                         "param": None, "code": "invalid_api_key"}})
        if req.method != "POST" or req.path != "/v1/images/generations":
            return jsonr(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
        fault = self.hit("create")
        if fault:
            return jsonr(fault[0], {"error": {"message": "The server is overloaded" if fault[0] != 429 else
                                              "Rate limit reached for images", "type": "server_error"}}, fault[1])
        body = req.json()
        if self.latency:
            time.sleep(self.latency)
        if self.moderated(body["prompt"]):
            return jsonr(400, {"error": {"message": "Your request was rejected as a result of our safety system.",
                                         "type": "invalid_request_error", "param": None,
                                         "code": "content_policy_violation"}})
        w, h = (int(x) for x in body.get("size", "1024x1024").split("x"))
        png = make_png(body["prompt"], next(self.ids), w // 8, h // 8)   # small stand-in pixels, fast tests
        item = {}
        if body.get("model") == "dall-e-3":
            item["revised_prompt"] = "A detailed, vivid illustration: " + body["prompt"]
        if body.get("response_format") == "url":
            item["url"] = self.add_file(f"img{len(self.files)}.png", png)
        else:
            item["b64_json"] = base64.b64encode(png).decode()
        return jsonr(200, {"created": int(time.time()), "data": [item]})
