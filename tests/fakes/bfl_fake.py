"""Fake Black Forest Labs API: POST /v1/{endpoint} -> {id, polling_url}; GET polling_url; x-key auth."""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field

from .common import FakeService, Req, jsonr, make_png, wait_done


@dataclass
class BflFake(FakeService):
    tasks: dict = field(default_factory=dict)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def handle(self, req: Req):
        if req.headers.get("x-key") != self.secret:
            return jsonr(403, {"detail": "Not authenticated - Invalid Authentication"})
        m = re.fullmatch(r"/v1/([a-z0-9.-]+)", req.path)
        if req.method == "POST" and m and m.group(1) != "get_result":
            fault = self.hit("create")
            if fault:
                return jsonr(fault[0], {"detail": "Too many active tasks" if fault[0] == 429 else "error"}, fault[1])
            body = req.json()
            for k in ("width", "height"):
                if k in body and (body[k] % 32 or not 256 <= body[k] <= 1440):
                    return jsonr(422, {"detail": [{"loc": ["body", k], "msg": "must be a multiple of 32 in 256..1440"}]})
            tid = f"t{next(self.ids):05d}"
            self.tasks[tid] = {"body": body, "created": time.monotonic()}
            return jsonr(200, {"id": tid, "polling_url": f"{self.base}/v1/get_result?id={tid}"})
        if req.method == "GET" and req.path == "/v1/get_result":
            tid = (req.query.get("id") or [""])[0]
            fault = self.hit("poll")
            if fault:
                return jsonr(fault[0], {"detail": "error"}, fault[1])
            t = self.tasks.get(tid)
            if t is None:
                return jsonr(200, {"id": tid, "status": "Task not found", "result": None})
            if not wait_done(t["created"], self.latency):
                return jsonr(200, {"id": tid, "status": "Pending", "result": None, "progress": 0.5})
            b = t["body"]
            if self.moderated(b["prompt"]):
                return jsonr(200, {"id": tid, "status": "Content Moderated", "result": None,
                                   "details": {"Moderation Reasons": ["Derivative Works Filter"]}})
            url = self.add_file(f"{tid}.png", make_png(b["prompt"], b.get("seed"), b.get("width", 1024) // 4,
                                                       b.get("height", 1024) // 4))
            return jsonr(200, {"id": tid, "status": "Ready", "progress": 1.0,
                               "result": {"sample": url + "?se=2025&sig=SIGNATURE", "prompt": b["prompt"],
                                          "seed": b.get("seed"), "duration": 0.01}})
        return jsonr(404, {"detail": "Not Found"})
