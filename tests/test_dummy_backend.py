"""The torch-free `dummy` backend: deterministic pattern images, failures on demand, labelled as noise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import evalsuite
from evalsuite.backends import make_backend
from evalsuite.backends.dummy import pattern
from evalsuite.runfolder import RunFolder

ROOT = Path(__file__).resolve().parent.parent


def test_pattern_is_deterministic_and_differs_by_item():
    a = pattern("a red sign", 0, 32, 24)
    assert a.size == (32, 24) and a.mode == "RGB"
    assert a.tobytes() == pattern("a red sign", 0, 32, 24).tobytes()
    assert a.tobytes() != pattern("a red sign", 1, 32, 24).tobytes()
    assert a.tobytes() != pattern("a blue sign", 0, 32, 24).tobytes()
    assert len(set(a.tobytes()[i:i + 3] for i in range(0, 32 * 24 * 3, 3))) > 4          # not a flat colour


def test_dummy_run_resumes_and_fails_on_demand(tmp_path):
    b = make_backend("dummy:fail=smoke-001")
    assert b.labelled_noise and not b.remote and b.default_size == (64, 64)
    d = tmp_path / "run"
    res = evalsuite.run("dummy:fail=smoke-001", "smoke", run_dir=d, limit=3, seeds=[0, 1], progress=False,
                        log=lambda m: None, score=False)
    first = [p.id for p in evalsuite.prompts.load_prompt_set("smoke", limit=3).prompts]
    failed = 2 if "smoke-001" in first else 0
    assert res.total("generated") == 6 - failed and res.total("failed") == failed
    info = json.loads((d / "run.json").read_text())
    assert next(iter(info["backends"].values()))["labelled_noise"] is True
    again = evalsuite.run("dummy:fail=smoke-001", "smoke", run_dir=d, limit=3, seeds=[0, 1], progress=False,
                          log=lambda m: None, score=False)
    assert again.total("generated") == 0         # content-addressed: nothing is made twice
    oks = [r for _, r in RunFolder(d).records() if r is not None and r.status == "ok"]
    assert len(oks) == 6 - failed and all((d / r.image).is_file() for r in oks)


def test_dummy_never_imports_torch(tmp_path):
    # the backend itself (not run.json's environment probe, which asks torch for the GPU) needs no torch
    code = ("import sys; from evalsuite.backends import GenRequest, make_backend; "
            "from evalsuite.prompts import load_prompt_set; b = make_backend('dummy'); b.prepare(); b.load(); "
            "p = load_prompt_set('smoke').prompts[0]; r = b.generate([GenRequest(p, 0, 16, 16)])[0]; "
            "assert r.status == 'ok' and r.image.size == (16, 16); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "r")], capture_output=True, text=True,
                         cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_dummy_delay_slows_each_image_and_leaves_the_key_alone():
    import time

    import pytest

    from evalsuite.backends import GenRequest
    from evalsuite.errors import EvalsuiteError

    slow, fast = make_backend("dummy:delay=0.05,batch_size=1"), make_backend("dummy")
    assert slow.key() == fast.key() and slow.config()["delay_s"] == 0.05 and "delay_s" not in fast.config()
    assert (slow.max_batch_size, fast.max_batch_size) == (1, 16)
    p = evalsuite.prompts.load_prompt_set("smoke").prompts[0]
    t = time.perf_counter()
    a = slow.generate([GenRequest(p, 0, 16, 16), GenRequest(p, 1, 16, 16)])
    assert time.perf_counter() - t >= 0.1
    assert a[0].image.tobytes() == fast.generate([GenRequest(p, 0, 16, 16)])[0].image.tobytes()
    for bad, opt in (("dummy:delay=-1", "delay"), ("dummy:delay=nan", "delay"), ("dummy:delay=soon", "delay"),
                     ("dummy:batch_size=0", "batch_size")):
        with pytest.raises(EvalsuiteError, match=f"option '{opt}'"):
            make_backend(bad)
