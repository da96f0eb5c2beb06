"""Fake fal queue API (served over TLS): POST /{app} -> request urls; status 202/200; result; Key auth.

Shapes and the documents (checked 2026-12-01) they come from:
- queue flow: POST https://queue.fal.run/{app} -> {request_id, response_url, status_url, cancel_url};
  GET .../requests/{id}/status -> IN_QUEUE | IN_PROGRESS | COMPLETED; GET response_url -> the app's output
  (fal queue docs, and fal-client 1.0.3's SyncClient.submit / SyncRequestHandle.status, read 2026-12-01).
- output of the FLUX apps: {images: [{url, width, height, content_type}], seed, has_nsfw_concepts: [bool],
  timings, prompt} (fal model pages of fal-ai/flux/dev, fal-ai/flux-pro/v1.1).
- moderation: HTTP 422 with {"detail": [{"loc": ["body", "prompt"], "msg": "The content was flagged by a
  content checker.", "type": "content_policy_violation", "url": "https://docs.fal.ai/errors#content_policy_violation",
  "input": ..., "categories": [...]}]} (fal error reference as quoted 2026-11-22); here on the response_url.
- unknown parameters answer 422 with a detail list of type extra_forbidden (FastAPI validation shape): so a
  parameter an app does not take (guidance_scale for FLUX1.1 [pro]) fails here as it would have no effect there.
- FLUX1.1 [pro] ultra takes aspect_ratio (21:9..9:21) and raw, delivering about 4 MP at that ratio.
Fault injection: `fail("submit", 429, times, retry_after)` answers 429 with Retry-After (fal-client would
retry these itself, 10 times, 0.1 s base, ignoring the header).
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field

from .common import FakeService, Req, jsonr, make_png, wait_done

TAKES = {
    "fal-ai/flux/schnell": {"prompt", "image_size", "num_inference_steps", "seed", "num_images",
                            "enable_safety_checker", "output_format", "sync_mode"},
    "fal-ai/flux/dev": {"prompt", "image_size", "num_inference_steps", "guidance_scale", "seed", "num_images",
                        "enable_safety_checker", "output_format", "sync_mode"},
    "fal-ai/flux-pro/v1.1": {"prompt", "image_size", "seed", "num_images", "enable_safety_checker",
                             "safety_tolerance", "output_format", "sync_mode", "enhance_prompt"},
    "fal-ai/flux-pro/v1.1-ultra": {"prompt", "aspect_ratio", "raw", "seed", "num_images", "enable_safety_checker",
                                   "safety_tolerance", "output_format", "sync_mode", "enhance_prompt"},
}
ULTRA = {"21:9": (3136, 1344), "16:9": (2752, 1536), "4:3": (2368, 1792), "3:2": (2496, 1664), "1:1": (2048, 2048),
         "2:3": (1664, 2496), "3:4": (1792, 2368), "9:16": (1536, 2752), "9:21": (1344, 3136)}


@dataclass
class FalFake(FakeService):
    reqs: dict = field(default_factory=dict)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    reject: tuple[str, ...] = ()              # prompts containing one of these get the 422 content_policy_violation

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
            if any(w in a["prompt"] for w in self.reject):
                return jsonr(422, {"detail": [{"loc": ["body", "prompt"],
                                               "msg": "The content was flagged by a content checker.",
                                               "type": "content_policy_violation",
                                               "url": "https://docs.fal.ai/errors#content_policy_violation",
                                               "input": a["prompt"], "categories": ["sexual"]}]})
            if "aspect_ratio" in a:
                w, h = ULTRA[a["aspect_ratio"]]
            else:
                size = a.get("image_size") or {"width": 1024, "height": 1024}
                w, h = size["width"], size["height"]
            small = (max(8, w // 32), max(8, h // 32)) if "aspect_ratio" in a else (w, h)  # stand-in pixels
            png = make_png(a["prompt"], a.get("seed"), *small)
            url = self.add_file(f"{rid}.png", png)
            return jsonr(200, {"images": [{"url": url, "width": w, "height": h, "content_type": "image/png"}],
                               "seed": a.get("seed"), "has_nsfw_concepts": [self.moderated(a["prompt"])],
                               "timings": {"inference": 0.01}, "prompt": a["prompt"]})
        if req.method == "POST":
            fault = self.hit("submit")
            if fault:
                return jsonr(fault[0], {"detail": "Too many requests" if fault[0] == 429 else "error"}, fault[1])
            app = req.path.strip("/")
            args = req.json()
            extra = sorted(set(args) - TAKES.get(app, set(args)))
            if extra:
                return jsonr(422, {"detail": [{"loc": ["body", k], "msg": "Extra inputs are not permitted",
                                               "type": "extra_forbidden"} for k in extra]})
            rid = f"r{next(self.ids):05d}"
            self.reqs[rid] = {"args": args, "created": time.monotonic(), "app": app}
            base = f"{self.base}/{app}/requests/{rid}"
            return jsonr(200, {"request_id": rid, "response_url": base, "status_url": base + "/status",
                               "cancel_url": base + "/cancel", "queue_position": 0})
        return jsonr(404, {"detail": "Not Found"})
