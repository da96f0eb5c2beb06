"""Fake fal queue API (served over TLS): POST /{app} -> request urls; status 202/200; result; Key auth."""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field

from .common import FakeService, Req, jsonr, make_png, wait_done


@dataclass
class FalFake(FakeService):
    reqs: dict = field(default_factory=dict)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def handle(self, req: Req):
        if req.headers.get("authorization") != f"Key {self.secret}":
            return jsonr(401, {"detail": "Unauthorized"})
        m = re.fullmatch(r"/(.+)/requests/([^/]+)(/status)?", req.path)
        if req.method == "GET" and m:
            app, rid, is_status = m.groups()
            r = self.reqs.get(rid)
            if r is None:
                return jsonr(404, {"detail": "Request not found"})
            done = wait_done(r["created"], self.latency)
            if is_status:
                fault = self.hit("status")
                if fault:
                    return jsonr(fault[0], {"detail": "error"}, fault[1])
                if not done:
                    return jsonr(202, {"status": "IN_PROGRESS", "logs": [], "request_id": rid})
                return jsonr(200, {"status": "COMPLETED", "logs": [], "metrics": {"inference_time": 0.01},
                                   "request_id": rid})
            if not done:
                return jsonr(400, {"detail": "Request is still in progress"})
            a = r["args"]
            size = a.get("image_size") or {"width": 1024, "height": 1024}
            png = make_png(a["prompt"], a.get("seed"), size["width"], size["height"])
            url = self.add_file(f"{rid}.png", png)
            return jsonr(200, {"images": [{"url": url, "width": size["width"], "height": size["height"],
                                           "content_type": "image/png"}],
                               "seed": a.get("seed"), "has_nsfw_concepts": [self.moderated(a["prompt"])],
                               "timings": {"inference": 0.01}, "prompt": a["prompt"]})
        if req.method == "POST":
            fault = self.hit("submit")
            if fault:
                return jsonr(fault[0], {"detail": "error"}, fault[1])
            app = req.path.strip("/")
            rid = f"r{next(self.ids):05d}"
            self.reqs[rid] = {"args": req.json(), "created": time.monotonic(), "app": app}
            base = f"{self.base}/{app}/requests/{rid}"
            return jsonr(200, {"request_id": rid, "response_url": base, "status_url": base + "/status",
                               "cancel_url": base + "/cancel", "queue_position": 0})
        return jsonr(404, {"detail": "Not Found"})
