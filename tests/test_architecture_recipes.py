"""docs/architecture.md's recipes, followed literally: the code blocks are taken from the document.

"Add a backend": the PixelPost service file goes on evalsuite.backends' search path (a temporary folder),
its registry line into REGISTRY; then a real evalsuite.run against a local fake PixelPost server."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

import evalsuite
from evalsuite import backends
from evalsuite.backends import REGISTRY, RegistryEntry, availability, remote
from evalsuite.runfolder import RunFolder
from tests.fakes.common import FakeServer, FakeService, Req, jsonr, make_png

DOC = Path(__file__).resolve().parent.parent / "docs" / "architecture.md"
KEY = "pp-SECRET-0123456789abcdef"


def _section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    nxt = text.find("\n## ", start + 1)
    return text[start: nxt if nxt != -1 else len(text)]


def _python_blocks(section: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", section, re.S)


class PixelPostFake(FakeService):
    def handle(self, req: Req):
        if req.headers.get("authorization") != f"Bearer {self.secret}":
            return jsonr(401, {"error": "bad key"})
        if req.method != "POST" or req.path != "/v1/images":
            return jsonr(404, {"error": "no such route"})
        fault = self.hit("create")
        if fault:
            return jsonr(fault[0], {"error": "busy"}, fault[1])
        b = req.json()
        if "fail" in b["prompt"]:
            return jsonr(200, {"error": "cannot draw that"})
        name = f"{b['seed']}-{abs(hash(b['prompt'])) % 10**8}.png"
        return jsonr(200, {"url": self.add_file(name, make_png(b["prompt"], b["seed"], b["width"], b["height"]))})


@pytest.fixture
def pixelpost(tmp_path, monkeypatch):
    """Step 1 and step 2 of the recipe, from the document's own code blocks."""
    file_block, registry_line = _python_blocks(_section("Add a backend"))
    assert "class PixelPostBackend(RemoteService)" in file_block and registry_line.strip().startswith('"pixelpost"')
    pkg_dir = tmp_path / "recipe"
    pkg_dir.mkdir()
    (pkg_dir / "pixelpost.py").write_text(file_block, encoding="utf-8")
    monkeypatch.setattr(backends, "__path__", list(backends.__path__) + [str(pkg_dir)])
    entry = eval("{" + registry_line + "}", {"RegistryEntry": RegistryEntry, "_R": "evalsuite.backends."})
    for name, e in entry.items():
        monkeypatch.setitem(REGISTRY, name, e)
    yield
    sys.modules.pop("evalsuite.backends.pixelpost", None)
    from evalsuite.backends import base, services

    for k in [k for k in base.SERVICE_CLASSES if k.startswith("evalsuite.backends.pixelpost.")]:
        del base.SERVICE_CLASSES[k]
    services.DECLARED.pop("pixelpost", None)
    services.table.cache_clear()


def test_add_a_backend_recipe_runs_against_a_fake(pixelpost, tmp_path, monkeypatch):
    monkeypatch.delenv("PIXELPOST_API_KEY", raising=False)
    assert availability.availability("pixelpost") == (False, "missing key: set PIXELPOST_API_KEY")
    monkeypatch.setenv("PIXELPOST_API_KEY", KEY)
    monkeypatch.setenv(remote.LOOPBACK_ENV, "1")
    assert availability.availability("pixelpost") == (True, "")
    # the new service's secret joins redaction without any other list to edit
    assert "PIXELPOST_API_KEY" in remote.SECRET_ENV
    assert remote.redact(f"echo {KEY} back") == "echo *** back"
    assert availability.SERVICE_NEEDS["pixelpost"] == (("PIXELPOST_API_KEY",), "httpx")

    svc = PixelPostFake(secret=KEY)
    svc.fail("create", 503)                        # one transient failure: retried by the shared machinery
    with FakeServer(svc) as server:
        spec = f"pixelpost:pp-1,base_url={server.url},retry_base=0.01"
        b = evalsuite.backends.make_backend(spec)
        assert b.estimate_cost(3, (512, 512)) == 0.03
        lines: list[str] = []
        res = evalsuite.run(spec, "smoke", run_dir=tmp_path / "run", limit=2, seeds=[0], progress=False,
                            log=lines.append, yes=True, score=False)
    assert res.total("generated") == 2 and res.total("failed") == 0
    assert svc.count("create") == 3
    assert any("pixelpost" in ln and "$0.02" in ln for ln in lines), lines
    for p in (tmp_path / "run").rglob("*"):
        if p.is_file():
            assert KEY.encode() not in p.read_bytes(), p
    folder = RunFolder(tmp_path / "run")
    recs = [r for _, r in folder.records() if r is not None and r.status == "ok"]
    assert len(recs) == 2 and all((tmp_path / "run" / r.image).exists() for r in recs)


def test_remote_service_must_declare_its_secrets():
    from evalsuite.backends.base import RemoteService

    with pytest.raises(TypeError, match="declares `service`"):
        type("NoName", (RemoteService,), {})
    with pytest.raises(TypeError, match="missing from secret_env"):
        type("Leaky", (RemoteService,), {"service": "leaky", "key_env": ("A_KEY",), "secret_env": ("B",)})
    importlib.invalidate_caches()
