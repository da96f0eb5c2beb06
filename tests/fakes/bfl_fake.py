"""Fake Black Forest Labs API: POST /v1/{endpoint} -> {id, polling_url}; GET polling_url; x-key auth.

Shapes and the documents (checked 2026-12-01) they come from:
- POST /v1/{endpoint} -> {id, polling_url}; GET polling_url -> {id, status: Pending | Ready | Request Moderated |
  Content Moderated | Error | Task not found, result: {sample, prompt, seed, ...}} (BFL API reference,
  docs.bfl.ai, "Submitting requests" / get_result).
- width/height: multiples of 32 in 256..1440, else 422 {detail: [{loc, msg}]} (BFL endpoint schemas).
- /v1/flux-pro-1.1-ultra takes aspect_ratio (default "16:9") and raw, not width/height; width/height sent
  there are ignored, and the image is about 4 MP at the aspect ratio (docs.bfl.ai FLUX1.1 [pro] Ultra page;
  a 1024x1024 request without aspect_ratio got 2720x1536, issue 15).
"""

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
            if m.group(1) == "flux-pro-1.1-ultra":
                body = {k: v for k, v in body.items() if k not in ("width", "height")}
                a, b = (int(x) for x in body.get("aspect_ratio", "16:9").split(":"))
                h = int((4_000_000 * b / a) ** 0.5) // 32 * 32
                body.update(width=h * a // b // 32 * 32, height=h)
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
            div = 32 if self.tasks[tid]["body"].get("aspect_ratio") or b.get("width", 0) > 1440 else 4  # stand-in pixels
            url = self.add_file(f"{tid}.png", make_png(b["prompt"], b.get("seed"), b.get("width", 1024) // div,
                                                       b.get("height", 1024) // div))
            return jsonr(200, {"id": tid, "status": "Ready", "progress": 1.0,
                               "result": {"sample": url + "?se=2025&sig=SIGNATURE", "prompt": b["prompt"],
                                          "seed": b.get("seed"), "duration": 0.01}})
        return jsonr(404, {"detail": "Not Found"})
