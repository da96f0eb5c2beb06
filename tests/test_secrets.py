"""Secrets never reach disk or output, and transport options never change a label, a key or a folder.

Each of the five remote backends runs against its fake in echo mode: every request is answered 401 or 500
with a body that repeats the request's headers (the API key among them) and URL, after a filler whose
length sweeps the key across every cut point of the messages (200, 300 and 500 characters). No key, no URL
password and no credential query parameter, nor any 6-character fragment of one, may appear in a record,
run.json, plan, folder name, stdout or stderr.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import evalsuite
from evalsuite.backends import GenRequest, make_backend, remote
from evalsuite.prompts import Prompt
from tests.fakes.bfl_fake import BflFake
from tests.fakes.comfyui_fake import ComfyUIFake
from tests.fakes.common import FakeServer
from tests.fakes.fal_fake import FalFake
from tests.fakes.openai_fake import OpenAIFake
from tests.fakes.replicate_fake import ReplicateFake
from tests.test_remote import tls  # noqa: F401 - the fixture

_rng = random.Random(1313)
_ALPHABET = "GHJKLMNPQRSTUVWXYZghjkmnpqrstuvwxyz"   # no hex digits: a fragment can never occur inside a hash


def _secret(prefix: str, n: int = 30) -> str:
    return prefix + "".join(_rng.choice(_ALPHABET) for _ in range(n))


KEYS = {"REPLICATE_API_TOKEN": _secret("r8_"), "FAL_KEY": _secret("", 16) + ":" + _secret("", 24),
        "BFL_API_KEY": _secret("bfl"), "OPENAI_API_KEY": _secret("sk-")}
PASSWORD = _secret("pw", 16)          # in a URL's userinfo
TOKEN = _secret("tk", 20)             # in a URL's query
SECRETS = [*KEYS.values(), PASSWORD, TOKEN]
FRAGMENTS = sorted({s[i:i + 6] for s in SECRETS for i in range(len(s) - 5)})
FAST = "poll_interval=0.02,retry_base=0.01"
CUTS = (200, 300, 500)


def leaks(text: str) -> list[str]:
    return [f for f in FRAGMENTS if f in text]


@pytest.fixture
def services(tls, monkeypatch):  # noqa: F811
    ctx, ca_file = tls
    svcs = {"replicate": ReplicateFake(secret=KEYS["REPLICATE_API_TOKEN"]), "fal": FalFake(secret=KEYS["FAL_KEY"]),
            "bfl": BflFake(secret=KEYS["BFL_API_KEY"]), "openai": OpenAIFake(secret=KEYS["OPENAI_API_KEY"]),
            "comfyui": ComfyUIFake()}
    servers = {k: FakeServer(v, ctx if k == "fal" else None).start() for k, v in svcs.items()}
    for k, v in {**KEYS, remote.LOOPBACK_ENV: "1", "SSL_CERT_FILE": str(ca_file),
                 "FAL_QUEUE_RUN_HOST": f"127.0.0.1:{servers['fal'].port}"}.items():
        monkeypatch.setenv(k, v)
    import fal_client.client

    monkeypatch.setattr(fal_client.client, "QUEUE_URL_FORMAT", f"https://127.0.0.1:{servers['fal'].port}/")
    u = {k: s.url for k, s in servers.items()}
    specs = {
        "replicate": f"replicate:black-forest-labs/flux-schnell,base_url={u['replicate']}",
        "fal": "fal:fal-ai/flux/schnell",
        "bfl": f"bfl:flux-dev,base_url={u['bfl']}?token={TOKEN}",
        "openai": f"openai:gpt-image-2,base_url={u['openai']}/v1?api_key={TOKEN}",
        "comfyui": f"comfyui:{u['comfyui'].replace('http://', f'http://evaluser:{PASSWORD}@')}",
    }
    yield svcs, specs, servers
    for s in servers.values():
        s.stop()


def test_redact_before_cut_and_url_credentials():
    import os

    key = "sk-" + "Q" * 40
    os.environ["OPENAI_API_KEY"] = key
    try:
        for at in range(480, 505):
            msg = remote.one_line("x" * at + key + " tail")
            assert not leaks(msg.replace("Q" * 6, "")) and "QQQQQQ" not in msg, at
    finally:
        del os.environ["OPENAI_API_KEY"]
    assert remote.redact(f"http://u:{PASSWORD}@h:1/p?a=1&token={TOKEN}&sig=abc") == "http://u:***@h:1/p?a=1&token=***&sig=***"
    assert remote.redact_obj({"argv": [f"--x=https://h/?api_key={TOKEN}"]}) == {"argv": ["--x=https://h/?api_key=***"]}


@pytest.mark.parametrize("which", ["replicate", "fal", "bfl", "openai", "comfyui"])
def test_no_key_fragment_anywhere_whatever_the_cut(services, tmp_path, which, capsys):
    from evalsuite.cli import main

    svcs, specs, _ = services
    svc = svcs[which]
    # 1. the sweep: the echoed key lands before, across and after every cut point of every message
    for status, retries in ((401, 0), (500, 1)):
        svc.echo = status
        b = make_backend(f"{specs[which]},retries={retries},{FAST}")
        b.prepare()
        b.load()
        try:
            seen = 0
            for pad in range(0, 620, 9):
                svc.echo_pad = pad
                res = b.generate_one(GenRequest(prompt=Prompt(id="p", prompt="a red cube"), seed=0, width=64,
                                                height=64))
                assert res.status == "failed", (which, pad, res)
                text = (res.error or "") + json.dumps(res.applied, default=str)
                assert not leaks(text), (which, status, pad, leaks(text), text[:600])
                seen += len(text) > min(CUTS)
            assert seen, "the echoed messages must be long enough to reach the cuts"
        finally:
            if hasattr(b, "close"):
                b.close()
    # 2. whole runs through the CLI: every file, every folder name, stdout and stderr
    for status, pad in ((401, 171), (500, 283)):
        svc.echo, svc.echo_pad = status, pad
        d = tmp_path / f"run-{status}"
        capsys.readouterr()
        rc = main(["run", "-b", f"{specs[which]},retries=1,{FAST}", "--prompts", "smoke", "--limit", "1",
                   "--seeds", "0", "--size", "64x64", "--run-dir", str(d), "--no-score", "--no-report", "--yes",
                   "--no-progress"])
        out, err = capsys.readouterr()
        assert rc == 0, err
        assert "failed 1" in out and err.strip(), (out, err)
        assert not leaks(out + err), (which, leaks(out + err), err)
        for p in d.rglob("*"):
            assert not leaks(str(p.relative_to(d))), p
            if p.is_file():
                assert not leaks(p.read_text(encoding="utf-8", errors="replace")), (p, leaks(p.read_text()))


@pytest.mark.parametrize("which", ["replicate", "fal", "bfl", "openai", "comfyui"])
def test_transport_options_change_no_label_and_no_item(services, tmp_path, which, monkeypatch):
    svcs, specs, servers = services
    svc = svcs[which]
    d = tmp_path / "run"
    clean = specs[which].split("?")[0]          # the echo specs carry a token in the base URL: none here
    base = f"{clean},{FAST}"
    kw = dict(seeds=[0, 1], limit=2, size="64x64", run_dir=d, progress=False, log=lambda m: None, score=False,
              report=False, yes=True)
    first = evalsuite.run(base, "smoke", **kw)
    assert first.total("generated") == 4, first.failures
    labels = set(first.backends)
    calls = dict(svc.counts)
    url = servers[which].url
    changed = [f"{base},timeout=33", f"{base},retries=7", f"{base},concurrency=3", f"{base},price=0.5",
               f"{base},max_download_mb=5", f"{base},retry_base=0.5", f"{base},poll_interval=0.5"]
    if which in ("replicate", "bfl"):
        changed.append(base.replace(url, url.replace("127.0.0.1", "localhost")))      # another base URL
    if which in ("bfl", "openai"):
        changed.append(f"{clean}?token={TOKEN},{FAST}")                              # a credential in the URL
    if which == "comfyui":
        changed.append(base.replace(PASSWORD, "another-password"))                    # other credentials
    for spec in changed:
        res = evalsuite.run(spec, "smoke", concurrency=2, max_cost=9.0, **kw)
        assert set(res.backends) == labels, spec
        assert (res.total("generated"), res.total("reused")) == (0, 4), spec
    monkeypatch.setenv("REPLICATE_API_TOKEN", KEYS["REPLICATE_API_TOKEN"] + "x")       # another key: still no item
    res = evalsuite.run(base, "smoke", **kw)
    assert res.total("generated") == 0
    assert svc.counts == calls, "a rerun with other transport options must call nothing"
    assert sorted(p.name for p in (d / "items").iterdir()) == sorted(labels)
