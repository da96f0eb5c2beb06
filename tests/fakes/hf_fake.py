"""Fake Hugging Face Hub + Inference Providers router, for huggingface_hub.InferenceClient(provider=...).

Shapes and the documents (checked 2026-12-01) they come from (huggingface_hub 2.4.0 source and the
Inference Providers docs, huggingface.co/docs/inference-providers):
- GET /api/models/{owner}/{name}?expand=inferenceProviderMapping -> {id, inferenceProviderMapping:
  {PROVIDER: {status: live, providerId, task: text-to-image}}} (HfApi.model_info; ModelInfo parses the dict).
- router: https://router.huggingface.co/{provider} + the provider route, Authorization: Bearer hf_...
  fal-ai: POST /fal-ai/{providerId} {prompt, image_size: {width, height}, num_inference_steps, guidance_scale,
  seed} -> {images: [{url, width, height, content_type}], seed}; a moderated prompt -> 422 {detail: [{loc, msg,
  type: content_policy_violation, ...}]} (fal error reference, 2026-11-22).
  together: POST /together/v1/images/generations {prompt, model, width, height, steps, seed,
  response_format: base64} -> {data: [{b64_json}]}.
- errors: 429 with Retry-After; 402 {"error": "You have exceeded your monthly included credits ..."} for a
  spent balance (final).
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass, field

from .common import FakeService, Req, jsonr, make_png

MAPPING = {
    "black-forest-labs/FLUX.1-dev": {"fal-ai": "fal-ai/flux/dev", "together": "black-forest-labs/FLUX.1-dev"},
    "black-forest-labs/FLUX.1-schnell": {"fal-ai": "fal-ai/flux/schnell", "together": "black-forest-labs/FLUX.1-schnell"},
}


@dataclass
class HfFake(FakeService):
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    bodies: list = field(default_factory=list)
    credits_spent: bool = False

    def handle(self, req: Req):
        if req.method == "GET" and req.path.startswith("/api/models/"):
            repo = req.path[len("/api/models/"):]
            if repo not in MAPPING:
                return jsonr(404, {"error": "Repository not found"})
            self.hit("model_info")
            return jsonr(200, {"id": repo, "_id": "x", "inferenceProviderMapping": {
                p: {"status": "live", "providerId": pid, "task": "text-to-image"} for p, pid in MAPPING[repo].items()}})
        if req.headers.get("authorization") != f"Bearer {self.secret}":
            return jsonr(401, {"error": "Invalid credentials in Authorization header"})
        if req.method != "POST":
            return jsonr(404, {"error": "not found"})
        fault = self.hit("generate")
        if fault:
            return jsonr(fault[0], {"error": "Too many requests" if fault[0] == 429 else "Service unavailable"},
                         fault[1])
        if self.credits_spent:
            return jsonr(402, {"error": "You have exceeded your monthly included credits for Inference Providers."})
        body = req.json()
        self.bodies.append((req.path, body))
        if self.moderated(body["prompt"]):
            return jsonr(422, {"detail": [{"loc": ["body", "prompt"], "msg": "The content was flagged by a content checker.",
                                           "type": "content_policy_violation", "categories": ["violence"]}]})
        if req.path.startswith("/fal-ai/"):
            size = body.get("image_size") or {"width": 1024, "height": 1024}
            url = self.add_file(f"h{next(self.ids)}.png", make_png(body["prompt"], body.get("seed"), size["width"],
                                                                 size["height"]))
            return jsonr(200, {"images": [{"url": url, "width": size["width"], "height": size["height"],
                                           "content_type": "image/png"}], "seed": body.get("seed")})
        if req.path == "/together/v1/images/generations":
            png = make_png(body["prompt"], body.get("seed"), body.get("width", 1024), body.get("height", 1024))
            return jsonr(200, {"data": [{"b64_json": base64.b64encode(png).decode()}]})
        return jsonr(404, {"error": f"no route {req.path}"})
