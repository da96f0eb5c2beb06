"""Fake Replicate API: official-model and version predictions, polling, problem+json errors, Bearer auth.

Shapes and the documents (checked 2026-12-01) they come from:
- POST /v1/models/{owner}/{name}/predictions and POST /v1/predictions {version, input} -> 201 prediction
  {id, model, version, status, input, output, error, logs, metrics, urls}; GET /v1/predictions/{id}
  (Replicate HTTP API reference; the replicate 1.0.7 client's Predictions/Models resources).
- errors are application/problem+json {title, detail, status} (Replicate API reference, errors; the
  client's ReplicateError); input validation fails with 422 "Input validation failed".
- black-forest-labs/flux-1.1-pro-ultra input schema (replicate.com/black-forest-labs/flux-1.1-pro-ultra/api):
  aspect_ratio one of 21:9..9:21 (no 'custom'), raw, seed, safety_tolerance 1..6, output_format jpg|png;
  about 4 MP delivered at the ratio.
- flux-1.1-pro takes aspect_ratio 'custom' with width/height (multiples of 32, 256..1440).
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field

from .common import FakeService, Req, jsonr, make_png, wait_done

ASPECTS = {"1:1": (1, 1), "16:9": (16, 9), "9:16": (9, 16), "4:3": (4, 3), "3:4": (3, 4), "3:2": (3, 2), "2:3": (2, 3),
           "21:9": (21, 9), "9:21": (9, 21), "5:4": (5, 4), "4:5": (4, 5)}

ULTRA_RATIOS = ("21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16", "9:21")


def problem(status: int, title: str, detail: str, headers=None):
    return jsonr(status, {"title": title, "detail": detail, "status": status}, headers, "application/problem+json")


@dataclass
class ReplicateFake(FakeService):
    predictions: dict = field(default_factory=dict)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def _pred(self, pid: str) -> dict:
        p = self.predictions[pid]
        if p["status"] in ("starting", "processing") and wait_done(p["_created"], self.latency):
            inp = p["input"]
            if self.moderated(inp["prompt"]):
                if "pro" in p["model"]:
                    p.update(status="failed", error="Content flagged as sensitive (E005): NSFW content detected")
                else:
                    p.update(status="succeeded", output=[])
            else:
                if p["model"].endswith("-ultra"):
                    a, b = ASPECTS[inp.get("aspect_ratio", "1:1")]
                    h0 = int((4_000_000 * b / a) ** 0.5)
                    w, h = h0 * a // b // 32, h0 // 32          # small stand-in pixels at the ratio delivered
                elif inp.get("aspect_ratio") == "custom":
                    w, h = inp["width"], inp["height"]
                else:
                    a, b = ASPECTS.get(inp.get("aspect_ratio", "1:1"), (1, 1))
                    side = 512 if inp.get("megapixels") == "0.25" else 1024
                    w, h = (side, side * b // a) if a >= b else (side * a // b, side)
                url = self.add_file(f"{pid}.png", make_png(inp["prompt"], inp.get("seed"), w, h))
                p.update(status="succeeded", output=url if "pro" in p["model"] else [url],
                         logs=f"Using seed: {inp.get('seed')}\n", metrics={"predict_time": 0.01})
            p["completed_at"] = "2025-06-01T00:00:01Z"
        return {k: v for k, v in p.items() if not k.startswith("_")}

    def handle(self, req: Req):
        if req.headers.get("authorization") != f"Bearer {self.secret}":
            return problem(401, "Unauthenticated", "You did not pass a valid authentication token")
        m = re.fullmatch(r"/v1/models/([^/]+)/([^/]+)/predictions", req.path)
        if req.method == "POST" and (m or req.path == "/v1/predictions"):
            fault = self.hit("create")
            if fault:
                status, headers = fault
                detail = ("Request was throttled. Your rate limit resets in ~1s." if status == 429
                          else "Internal server error")
                return problem(status, "Request was throttled." if status == 429 else "Error", detail, headers)
            body = req.json()
            model = f"{m.group(1)}/{m.group(2)}" if m else "someone/pinned"
            if model.endswith("-ultra") and body["input"].get("aspect_ratio") not in (None, *ULTRA_RATIOS):
                return problem(422, "Input validation failed",
                               "- input.aspect_ratio: aspect_ratio must be one of the following: " + ", ".join(
                                   f'"{r}"' for r in ULTRA_RATIOS))
            pid = f"p{next(self.ids):05d}"
            self.predictions[pid] = {
                "id": pid, "model": model, "version": body.get("version", "official-v1"), "status": "starting",
                "input": body["input"], "output": None, "error": None, "logs": "", "metrics": {},
                "urls": {"get": f"{self.base}/v1/predictions/{pid}", "cancel": f"{self.base}/v1/predictions/{pid}/cancel"},
                "created_at": "2025-06-01T00:00:00Z", "started_at": None, "completed_at": None,
                "_created": time.monotonic(),
            }
            return jsonr(201, self._pred(pid))
        m = re.fullmatch(r"/v1/predictions/([^/]+)", req.path)
        if req.method == "GET" and m and m.group(1) in self.predictions:
            fault = self.hit("get")
            if fault:
                return problem(fault[0], "Error", "temporarily unavailable", fault[1])
            return jsonr(200, self._pred(m.group(1)))
        return problem(404, "Not found", f"no route {req.method} {req.path}")
