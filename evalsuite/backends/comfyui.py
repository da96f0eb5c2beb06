"""`comfyui[:URL]`: a ComfyUI server (default http://127.0.0.1:8188, no auth) driven over HTTP with httpx.

The shipped template evalsuite/data/comfyui/flux_workflow.json (API format: UNETLoader, DualCLIPLoader
type flux, CLIPTextEncode, FluxGuidance, EmptySD3LatentImage, KSampler cfg 1.0, VAELoader, VAEDecode,
SaveImage) gets prompt, seed, steps, width, height and guidance injected.
Options: steps, guidance, size=WxH, unet=, clip_l=, t5=, vae=, sampler=, scheduler= (template file names),
workflow=PATH (your own API-format workflow) with map=VALUE:NODE.INPUT;... saying which node input takes
which value (values: prompt, seed, steps, width, height, guidance), plus the shared remote options.
Flow: POST /prompt -> prompt_id; poll GET /history/{prompt_id}; GET /view?filename=&subfolder=&type=.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import EvalsuiteError
from . import BackendSpec, GenRequest, GenResult, label_for, take_options
from . import remote
from .base import RemoteService

TEMPLATE = Path(__file__).resolve().parent.parent / "data" / "comfyui" / "flux_workflow.json"
DEFAULT_URL = "http://127.0.0.1:8188"
VALUES = ("prompt", "seed", "steps", "width", "height", "guidance")
TEMPLATE_MAP = {"prompt": ("4", "text"), "seed": ("8", "seed"), "steps": ("8", "steps"), "width": ("7", "width"),
                "height": ("7", "height"), "guidance": ("5", "guidance")}
TEMPLATE_FILES = {"unet": ("1", "unet_name"), "t5": ("2", "clip_name1"), "clip_l": ("2", "clip_name2"),
                  "vae": ("3", "vae_name"), "sampler": ("8", "sampler_name"), "scheduler": ("8", "scheduler")}
SCHEMA: dict[str, Any] = {**remote.COMMON_SCHEMA, "steps": int, "guidance": float, "size": "size",
                          "workflow": str, "map": str, **{k: str for k in TEMPLATE_FILES}}


def parse_map(text: str, where: str) -> dict[str, tuple[str, str]]:
    """'prompt:6.text;seed:3.seed' -> {'prompt': ('6', 'text'), 'seed': ('3', 'seed')}."""
    out: dict[str, tuple[str, str]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, _, target = part.partition(":")
        node, _, inp = target.partition(".")
        if name not in VALUES:
            raise EvalsuiteError(f"{where}: map entry '{part}': value '{name}' is not one of {', '.join(VALUES)}")
        if not node or not inp:
            raise EvalsuiteError(f"{where}: map entry '{part}' is not VALUE:NODE.INPUT")
        out[name] = (node.strip(), inp.strip())
    return out


def load_workflow(path: Path, mapping: dict[str, tuple[str, str]], where: str) -> dict[str, Any]:
    try:
        graph = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise EvalsuiteError(f"{where}: workflow file {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise EvalsuiteError(f"{where}: workflow file {path}: not JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(graph, dict) or not all(isinstance(v, dict) and "class_type" in v for v in graph.values()):
        raise EvalsuiteError(f"{where}: workflow file {path}: not an API-format workflow "
                             "(export it with 'Save (API Format)' in ComfyUI)")
    for name, (node, inp) in mapping.items():
        if node not in graph:
            raise EvalsuiteError(f"{where}: workflow file {path}: map '{name}': no node '{node}'")
        if inp not in graph[node].get("inputs", {}):
            raise EvalsuiteError(f"{where}: workflow file {path}: map '{name}': node '{node}' "
                                 f"({graph[node]['class_type']}) has no input '{inp}'")
    for need in ("prompt", "seed"):
        if need not in mapping:
            raise EvalsuiteError(f"{where}: workflow file {path}: map names no node for '{need}'")
    return graph


class ComfyUIBackend(RemoteService):
    service = "comfyui"
    package = "httpx"
    needs_note = "needs a running ComfyUI server (default {default_ref})"

    def __init__(self, spec: BackendSpec):
        self.spec = spec.raw
        self.name = spec.name
        self.label = label_for(spec.raw)
        where = f"backend '{spec.raw}'"
        if spec.quant:
            raise EvalsuiteError(f"{where}: ComfyUI takes no quantization here (choose it in the workflow)")
        url = (spec.ref or DEFAULT_URL).rstrip("/")
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise EvalsuiteError(f"{where}: expected comfyui:http://HOST:PORT, got '{url}'")
        self.url = url
        opts = take_options(spec, SCHEMA, {
            **remote.COMMON_DEFAULTS, "concurrency": 2, "steps": 20, "guidance": 3.5, "size": (1024, 1024),
            "workflow": None, "map": None, "price": 0.0, **{k: None for k in TEMPLATE_FILES},
        })
        remote.common_options(opts, spec.raw)
        if opts["workflow"]:
            if not opts["map"]:
                raise EvalsuiteError(f"{where}: a workflow= file needs map=prompt:NODE.INPUT;seed:NODE.INPUT;...")
            if any(opts[k] for k in TEMPLATE_FILES):
                raise EvalsuiteError(f"{where}: {', '.join(TEMPLATE_FILES)} apply to the shipped template only")
            self.mapping = parse_map(opts["map"], where)
            self.workflow_path = Path(opts["workflow"]).expanduser()
        else:
            if opts["map"]:
                raise EvalsuiteError(f"{where}: map= needs a workflow= file")
            self.mapping = dict(TEMPLATE_MAP)
            self.workflow_path = TEMPLATE
        self.graph = load_workflow(self.workflow_path, self.mapping, where)
        for k, (node, inp) in TEMPLATE_FILES.items():
            if opts[k]:
                self.graph[node]["inputs"][inp] = opts[k]
        self.workflow_sha256 = hashlib.sha256(json.dumps(self.graph, sort_keys=True).encode()).hexdigest()
        self.opts = opts
        self.default_size = tuple(opts["size"])
        self.concurrency = opts["concurrency"]
        self.price_key = "comfyui"
        self.price_per_image = remote.price_per_image(self.price_key, opts["price"])
        self.http = None

    def build(self, req: GenRequest) -> dict[str, Any]:
        g = copy.deepcopy(self.graph)
        values = {"prompt": req.prompt.prompt, "seed": req.seed, "steps": self.opts["steps"], "width": req.width,
                  "height": req.height, "guidance": self.opts["guidance"]}
        for name, (node, inp) in self.mapping.items():
            g[node]["inputs"][inp] = values[name]
        return g

    def config(self) -> dict[str, Any]:
        return {"service": "comfyui", "url": self.url, "workflow": str(self.workflow_path),
                "workflow_sha256": self.workflow_sha256, "map": {k: ".".join(v) for k, v in self.mapping.items()},
                "steps": self.opts["steps"], "guidance": self.opts["guidance"], "size": list(self.default_size),
                **remote.common_config(self.opts, self.price_per_image)}

    def key(self) -> dict[str, Any]:
        return {"service": "comfyui", "workflow_sha256": self.workflow_sha256,
                "map": {k: ".".join(v) for k, v in sorted(self.mapping.items())},
                "steps": self.opts["steps"] if "steps" in self.mapping else None,
                "guidance": self.opts["guidance"] if "guidance" in self.mapping else None}

    def prepare(self) -> None:
        pass

    def load(self) -> None:
        if self.http is None:
            self.http = remote.http_client(self.opts["timeout"])
            self.policy = remote.policy_from(self.opts)
            self.client_id = uuid.uuid4().hex

    def close(self) -> None:
        if self.http is not None:
            self.http.close()

    def _json(self, method: str, path: str, **kw) -> Any:
        r = self.http.request(method, self.url + path, **kw)
        if r.status_code == 400 and path == "/prompt":
            body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
            err = body.get("error", {})
            msg = err.get("message") if isinstance(err, dict) else str(err)
            raise remote.RemoteFailure(f"comfyui: invalid workflow: {msg}{' (' + node_errors(body) + ')' if body.get('node_errors') else ''}")
        r.raise_for_status()
        return r.json()

    def _one(self, req: GenRequest, stats: dict[str, Any]) -> GenResult:
        graph = self.build(req)
        body = {"prompt": graph, "client_id": self.client_id}
        sub = remote.with_retry(lambda: self._json("POST", "/prompt", json=body), self.policy, remote.classify_any,
                                "queue", stats)
        pid = sub["prompt_id"]
        applied: dict[str, Any] = {"service": "comfyui", "prompt_id": pid, "steps": self.opts["steps"],
                                   "guidance": self.opts["guidance"], "workflow_sha256": self.workflow_sha256}
        deadline = time.monotonic() + self.opts["timeout"]
        while True:
            hist = remote.with_retry(lambda: self._json("GET", f"/history/{pid}"), self.policy, remote.classify_any,
                                     "history", stats)
            entry = hist.get(pid)
            if entry:
                st = entry.get("status") or {}
                if st.get("status_str") == "error" or st.get("completed") is False and st.get("status_str"):
                    msgs = [m[1].get("exception_message", "") for m in st.get("messages", [])
                            if isinstance(m, list) and len(m) > 1 and isinstance(m[1], dict)]
                    return GenResult(status="failed", error=f"comfyui: execution error {' '.join(filter(None, msgs))}",
                                     applied=applied, seed=req.seed)
                images = [im for out in (entry.get("outputs") or {}).values() for im in out.get("images", [])
                          if im.get("type", "output") == "output"]
                if images:
                    break
                if st.get("completed"):
                    raise remote.RemoteFailure("comfyui: finished without an output image (no SaveImage node?)")
            if time.monotonic() > deadline:
                raise remote.RemoteFailure(f"comfyui prompt {pid} not finished after {self.opts['timeout']} s")
            time.sleep(self.opts["poll_interval"])
        im = images[0]
        params = {"filename": im["filename"], "subfolder": im.get("subfolder", ""), "type": im.get("type", "output")}

        def view():
            r = self.http.get(self.url + "/view", params=params)
            if r.status_code == 404:
                raise remote.RemoteFailure(f"comfyui: output file {im['filename']} not found on the server")
            r.raise_for_status()
            if len(r.content) > self.opts["max_download_mb"] * 2**20:
                raise remote.RemoteFailure("comfyui: image exceeds the size cap")
            return r.content, r.headers.get("content-type")

        data, ctype = remote.with_retry(view, self.policy, remote.classify_any, "view", stats)
        img, facts = remote.decode_image(data, ctype, "comfyui /view")
        applied.update(facts)
        applied.update(width=img.width, height=img.height, filename=im["filename"])
        return GenResult(image=img, applied=applied, seed=req.seed)


def node_errors(body: dict[str, Any]) -> str:
    """ComfyUI's node_errors as one line, with each error's details (which name the input and value, e.g. the
    missing model file): "node 1 (UNETLoader): Value not in list: unet_name: 'x.safetensors' not in [...]"."""
    out = []
    for n, v in (body.get("node_errors") or {}).items():
        errs = []
        for e in (v or {}).get("errors", []):
            text = e.get("message", "") or e.get("type", "")
            if e.get("details"):
                text += f": {e['details']}"
            errs.append(text)
        cls = f" ({v['class_type']})" if isinstance(v, dict) and v.get("class_type") else ""
        out.append(f"node {n}{cls}: " + ", ".join(errs))
    return "; ".join(out)


def comfyui(spec: BackendSpec) -> ComfyUIBackend:
    return ComfyUIBackend(spec)
