"""Fake ComfyUI server: POST /prompt (graph validation), GET /history/{id}, GET /view. No auth.

Shapes and the documents (checked 2026-12-01) they come from (comfyanonymous/ComfyUI server.py and
execution.py, validate_prompt / validate_inputs):
- POST /prompt {prompt: API-format graph, client_id} -> {prompt_id, number, node_errors: {}}; a graph that
  fails validation -> 400 {error: {type: prompt_outputs_failed_validation, message: "Prompt outputs failed
  validation", details, extra_info}, node_errors: {ID: {errors: [{type, message, details, extra_info}],
  dependent_outputs, class_type}}}; a file name not on the server is type value_not_in_list, message
  "Value not in list", details "unet_name: 'x' not in [...]".
- GET /history/{id} -> {} until done, then {id: {outputs: {node: {images: [{filename, subfolder, type}]}},
  status: {status_str, completed, messages}}}; GET /view?filename=&subfolder=&type= -> the image bytes.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

from .common import FakeService, Req, jsonr, make_png, wait_done


@dataclass
class ComfyUIFake(FakeService):
    prompts: dict = field(default_factory=dict)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    unets: tuple[str, ...] | None = None          # model files the server has (None: any name is accepted)

    def handle(self, req: Req):
        if req.method == "POST" and req.path == "/prompt":
            fault = self.hit("create")
            if fault:
                return jsonr(fault[0], {"error": "busy"}, fault[1])
            graph = req.json().get("prompt") or {}
            kinds = {n["class_type"]: (nid, n) for nid, n in graph.items()}
            if "SaveImage" not in kinds or "KSampler" not in kinds:
                return jsonr(400, {"error": {"type": "prompt_outputs_failed_validation",
                                             "message": "Prompt outputs failed validation"},
                                   "node_errors": {"x": {"errors": [{"message": "no SaveImage/KSampler node"}]}}})
            for nid, n in graph.items():
                name = n["inputs"].get("unet_name")
                if n["class_type"] == "UNETLoader" and self.unets is not None and name not in self.unets:
                    return jsonr(400, {"error": {"type": "prompt_outputs_failed_validation",
                                                 "message": "Prompt outputs failed validation", "details": "",
                                                 "extra_info": {}},
                                       "node_errors": {nid: {"errors": [{
                                           "type": "value_not_in_list", "message": "Value not in list",
                                           "details": f"unet_name: '{name}' not in {list(self.unets)}",
                                           "extra_info": {"input_name": "unet_name", "received_value": name}}],
                                           "dependent_outputs": [kinds["SaveImage"][0]], "class_type": "UNETLoader"}}})
            texts = [n["inputs"].get("text") for n in graph.values() if n["class_type"] == "CLIPTextEncode"]
            latent = next((n for n in graph.values() if "Latent" in n["class_type"]), {"inputs": {}})
            ks = kinds["KSampler"][1]["inputs"]
            pid = f"c{next(self.ids):05d}"
            self.prompts[pid] = {"text": next((t for t in texts if t), ""), "seed": ks.get("seed"),
                                 "w": latent["inputs"].get("width", 1024), "h": latent["inputs"].get("height", 1024),
                                 "save": kinds["SaveImage"][0], "created": time.monotonic()}
            return jsonr(200, {"prompt_id": pid, "number": len(self.prompts), "node_errors": {}})
        if req.method == "GET" and req.path.startswith("/history/"):
            pid = req.path.rsplit("/", 1)[-1]
            p = self.prompts.get(pid)
            if p is None or not wait_done(p["created"], self.latency):
                return jsonr(200, {})
            name = f"evalsuite_{pid}.png"
            self.files[name] = make_png(p["text"], p["seed"], p["w"], p["h"])
            return jsonr(200, {pid: {"outputs": {p["save"]: {"images": [{"filename": name, "subfolder": "",
                                                                         "type": "output"}]}},
                                     "status": {"status_str": "success", "completed": True, "messages": []}}})
        if req.method == "GET" and req.path == "/view":
            name = (req.query.get("filename") or [""])[0]
            self.hit("download")
            if name not in self.files:
                return jsonr(404, {"error": "not found"})
            return 200, {"Content-Type": "image/png"}, self.files[name]
        return jsonr(404, {"error": "not found"})
