"""Remote backends against local fake servers that follow each service's HTTP shapes, driven by the REAL
client libraries (replicate, fal-client over TLS with a trustme CA, openai) and httpx (BFL, ComfyUI)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import evalsuite
from evalsuite.backends import remote
from evalsuite.errors import EvalsuiteError
from evalsuite.runfolder import RunFolder
from tests.conftest import cli_env, run_cli
from tests.fakes.bfl_fake import BflFake
from tests.fakes.comfyui_fake import ComfyUIFake
from tests.fakes.common import FakeServer
from tests.fakes.fal_fake import FalFake
from tests.fakes.openai_fake import OpenAIFake
from tests.fakes.replicate_fake import ReplicateFake

SECRETS = {"REPLICATE_API_TOKEN": "r8_SECRETreplicate0123456789", "FAL_KEY": "fal-SECRET-key-0123:abcdef987654",
           "BFL_API_KEY": "bfl-SECRET-0123456789abcdef", "OPENAI_API_KEY": "sk-SECRETopenai0123456789"}
FAST = "poll_interval=0.02,retry_base=0.02"


@pytest.fixture
def tls(tmp_path):
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ctx = __import__("ssl").create_default_context(__import__("ssl").Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return ctx, ca_file


@pytest.fixture
def fakes(tls, monkeypatch):
    """All five fake services running; env set for this process (secrets, loopback http, the fal CA)."""
    ctx, ca_file = tls
    svcs = {"replicate": ReplicateFake(secret=SECRETS["REPLICATE_API_TOKEN"]), "fal": FalFake(secret=SECRETS["FAL_KEY"]),
            "bfl": BflFake(secret=SECRETS["BFL_API_KEY"]), "openai": OpenAIFake(secret=SECRETS["OPENAI_API_KEY"]),
            "comfyui": ComfyUIFake()}
    servers = {k: FakeServer(v, ctx if k == "fal" else None).start() for k, v in svcs.items()}
    env = {**SECRETS, remote.LOOPBACK_ENV: "1", "SSL_CERT_FILE": str(ca_file),
           "FAL_QUEUE_RUN_HOST": f"127.0.0.1:{servers['fal'].port}"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    import fal_client.client

    # fal-client read its hosts at import: in this process point its URL format at the TLS fake.
    monkeypatch.setattr(fal_client.client, "QUEUE_URL_FORMAT", f"https://127.0.0.1:{servers['fal'].port}/")
    specs = {
        "replicate": f"replicate:black-forest-labs/flux-schnell,base_url={servers['replicate'].url},{FAST}",
        "replicate-pro": f"replicate-flux-pro:base_url={servers['replicate'].url},{FAST}",
        "fal": f"fal:fal-ai/flux/schnell,{FAST}",
        "bfl": f"bfl:flux-dev,base_url={servers['bfl'].url},{FAST}",
        "openai": f"openai:gpt-image-2,base_url={servers['openai'].url}/v1,{FAST}",
        "comfyui": f"comfyui:{servers['comfyui'].url},{FAST}",
    }
    yield {"svc": svcs, "servers": servers, "env": env, "specs": specs}
    for s in servers.values():
        s.stop()


def _run(spec, d, **kw):
    kw.setdefault("limit", 2)
    kw.setdefault("size", "64x64")
    kw.setdefault("score", False)  # the CLI test below scores remote images like local ones
    return evalsuite.run(spec, "smoke", run_dir=d, progress=False, log=kw.pop("log", lambda m: None), **kw)


def _no_secret_in(root: Path, *texts: str) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            for s in SECRETS.values():
                assert s.encode() not in data, f"secret found in {p}"
    for t in texts:
        for s in SECRETS.values():
            assert s not in t


@pytest.mark.parametrize("which", ["replicate", "replicate-pro", "fal", "bfl", "openai", "comfyui"])
def test_backend_against_fake(fakes, tmp_path, which):
    d = tmp_path / which
    res = _run(fakes["specs"][which], d)
    label = next(iter(res.backends))
    c = res.backends[label]
    assert (c.generated, c.failed, c.filtered) == (4, 0, 0)
    rf = RunFolder(d)
    recs = [r for _, r in rf.records()]
    assert len(recs) == 4 and all(r.status == "ok" and (d / r.image).is_file() for r in recs)
    svc = fakes["svc"][which.split("-")[0]]
    if which != "comfyui":  # the fakes answer 401/403 without the right key, so ok items prove the auth header
        assert svc.count("create") + svc.count("submit") == 4
    for r in recs:
        a = r.applied
        assert a["source_sha256"] and a["width"] == r.width and a["retries"] == 0
        if which == "openai":   # gpt-image-2: no seed, no prompt rewriting; the size sent is recorded
            assert r.applied["seed"] is None and "revised_prompt" not in a and a["size"] == "64x64"
        else:
            assert r.applied["seed"] == r.seed
    if which == "replicate":
        assert recs[0].applied["input"]["go_fast"] is False and recs[0].applied["predict_time_s"] == 0.01
    if which == "replicate-pro":
        assert recs[0].applied["input"]["prompt_upsampling"] is False
    _no_secret_in(d)
    # resume: the same call generates nothing and calls nothing
    before = dict(svc.counts)
    res2 = _run(fakes["specs"][which], d)
    assert res2.total("reused") == 4 and res2.total("generated") == 0 and svc.counts == before


def test_transient_errors_retried_and_bounded(fakes, tmp_path):
    rep = fakes["svc"]["replicate"]
    rep.fail("create", 429, times=2, retry_after="0.1")   # the replicate client does not retry creates itself
    rep.fail("get", 500, times=1)
    t = time.perf_counter()
    res = _run(fakes["specs"]["replicate"] + ",concurrency=1", tmp_path / "a", limit=1, seeds="0")
    assert res.total("generated") == 1 and rep.count("create") == 3
    assert time.perf_counter() - t >= 0.2                 # Retry-After honoured twice
    rec = next(r for _, r in RunFolder(tmp_path / "a").records())
    assert rec.applied["retries"] >= 2 and "429" in rec.applied["transient_errors"][0]
    # a service down for good: exactly retries+1 attempts, then failed with the message; the run goes on
    oa = fakes["svc"]["openai"]
    oa.fail("create", 503, times=100)
    logs: list[str] = []
    res = _run(fakes["specs"]["openai"] + ",retries=2", tmp_path / "b", limit=1, seeds="0", log=logs.append)
    assert res.total("failed") == 1 and oa.count("create") == 3
    rec = next(r for _, r in RunFolder(tmp_path / "b").records())
    assert rec.status == "failed" and "gave up after 3 attempts" in rec.error and "503" in rec.error
    assert any("1 failed" in line for line in logs)


def test_moderation_filtered_and_run_goes_on(fakes, tmp_path):
    for k in ("openai", "bfl", "fal", "replicate"):
        fakes["svc"][k].moderate = ("neon sign",)
    specs = ",".join(fakes["specs"][k] for k in ("openai", "bfl", "fal", "replicate", "replicate-pro"))
    res = _run(specs, tmp_path / "m", seeds="0")
    for label, c in res.backends.items():
        assert (c.filtered, c.generated, c.failed) == (1, 1, 0), label
    recs = {(r.backend, r.prompt_id): r for _, r in RunFolder(tmp_path / "m").records()}
    msgs = {b: r.error for (b, p), r in recs.items() if p == "neon-open-24"}
    assert "moderation_blocked" in next(v for k, v in msgs.items() if k.startswith("openai"))
    assert any("Content Moderated" in v for v in msgs.values())
    assert any("has_nsfw_concepts" in v for v in msgs.values())
    assert any("NSFW" in v for v in msgs.values()) and any("no image returned" in v for v in msgs.values())
    assert all(r.image is None for (b, p), r in recs.items() if p == "neon-open-24")
    # filtered items are not retried by --retry-failed, only by --retry-filtered
    n = fakes["svc"]["openai"].count("create")
    res = _run(fakes["specs"]["openai"], tmp_path / "m", seeds="0", retry_failed=True)
    assert fakes["svc"]["openai"].count("create") == n and res.total("filtered") == 1
    fakes["svc"]["openai"].moderate = ()
    res = _run(fakes["specs"]["openai"], tmp_path / "m", seeds="0", retry_filtered=True)
    assert fakes["svc"]["openai"].count("create") == n + 1 and res.total("generated") == 1


def test_expired_url_failed_then_retry_failed(fakes, tmp_path):
    bfl = fakes["svc"]["bfl"]
    bfl.expire_images = True
    d = tmp_path / "e"
    res = _run(fakes["specs"]["bfl"], d, limit=1)
    assert res.total("failed") == 2
    rec = next(r for _, r in RunFolder(d).records())
    assert "expired" in rec.error and "404" in rec.error and "SIGNATURE" not in rec.error
    creates = bfl.count("create")
    res = _run(fakes["specs"]["bfl"], d, limit=1)            # no --retry-failed: nothing attempted
    assert bfl.count("create") == creates and res.total("failed") == 2
    bfl.expire_images = False
    res = _run(fakes["specs"]["bfl"], d, limit=1, retry_failed=True)
    assert res.total("generated") == 2 and bfl.count("create") == creates + 2


def test_cost_guard_dry_run_and_max_cost(fakes, tmp_path):
    env = cli_env(**fakes["env"])
    spec = fakes["specs"]["replicate-pro"]
    d = tmp_path / "c"
    r = run_cli("run", "-b", spec, "--limit", "3", "--size", "64x64", "-o", d, "--max-calls-without-confirm", "5",
                "--no-progress", env=env)
    assert r.returncode == 2 and "--yes" in r.stderr and "6 paid remote calls" in r.stderr
    assert "$0.24" in r.stderr and not d.exists()
    assert fakes["svc"]["replicate"].count("create") == 0
    r = run_cli("run", "-b", spec, "--limit", "3", "-o", d, "--dry-run", env=env)
    assert r.returncode == 0 and "dry run: 6 item(s)" in r.stdout and not d.exists()
    # --max-cost 0.10 at $0.04 an image: 2 submitted, the rest not attempted
    r = run_cli("run", "-b", spec + ",concurrency=1", "--limit", "3", "--size", "64x64", "-o", d, "--yes",
                "--max-cost", "0.10", "--no-progress", env=env)
    assert r.returncode == 0, r.stderr
    assert "not attempted 4" in r.stdout and fakes["svc"]["replicate"].count("create") == 2
    _no_secret_in(d, r.stdout, r.stderr)


def test_concurrency_speeds_up(fakes, tmp_path):
    oa = fakes["svc"]["openai"]
    oa.latency = 0.5
    t = time.perf_counter()
    _run(fakes["specs"]["openai"] + ",concurrency=1", tmp_path / "s", limit=2, seeds="0,1")
    serial = time.perf_counter() - t
    t = time.perf_counter()
    _run(fakes["specs"]["openai"] + ",concurrency=4", tmp_path / "p", limit=2, seeds="0,1")
    concurrent = time.perf_counter() - t
    assert serial >= 2.0 and concurrent < serial * 0.6, (serial, concurrent)


def test_all_five_remote_plus_a_local_backend_cli(fakes, tmp_path):
    """The smoke set with all five remote backends against their fakes plus a local backend (the torch-free
    dummy: which local model does not matter here): every item ok or explained."""
    fakes["svc"]["openai"].moderate = ("neon sign",)
    env = cli_env(**fakes["env"])
    specs = ",".join([fakes["specs"][k] for k in ("replicate", "fal", "bfl", "openai", "comfyui")] + ["dummy"])
    d = tmp_path / "all"
    r = run_cli("run", "-b", specs, "--prompts", "smoke", "--size", "64x64", "-o", d, "--yes", "--scorers", "ocr",
                "--ocr", "rapidocr", env=env, timeout=240)
    assert r.returncode == 0, r.stderr
    rf = RunFolder(d)
    rows = list(rf.records())
    n_prompts = len(rf.prompts())
    assert len(rows) == 6 * n_prompts * 2
    for e, rec in rows:
        assert rec is not None
        assert rec.status == "ok" or (rec.status == "filtered" and rec.error), (e, rec.error)
    assert sum(rec.status == "filtered" for _, rec in rows) == 2       # openai refused the neon sign, 2 seeds
    assert "1 filtered" not in r.stderr and "2 filtered" in r.stderr
    # remote images are scored like local ones: every ok item with target text has OCR metrics
    scores = evalsuite.load_scores(d)
    text = scores[(scores.metric == "text_exact") & (scores.variant == "lenient")]
    for e, rec in rows:
        if rec.status == "ok" and rf.prompts()[e.prompt_id].target_text:
            got = text[(text.backend == e.backend) & (text.prompt_id == e.prompt_id) & (text.seed == e.seed)]
            assert len(got) == 1 and got.value.notna().all(), (e, got)
    _no_secret_in(d, r.stdout, r.stderr)


def test_redact_and_download_rules(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-abcdefghijklmnop")
    text = remote.redact("bad key sk-abcdefghijklmnop; Authorization: Bearer r8_zzzzzzzzzzzz x-key: abcd1234efgh")
    assert "abcdefghijklmnop" not in text and "r8_zzzz" not in text and "abcd1234efgh" not in text
    pol = remote.RetryPolicy(attempts=1)
    monkeypatch.delenv(remote.LOOPBACK_ENV, raising=False)
    with pytest.raises(remote.RemoteFailure, match="only https"):
        remote.fetch_image("http://127.0.0.1:9/x.png", None, max_bytes=10, policy=pol)
    with pytest.raises(remote.RemoteFailure, match="only https"):
        remote.fetch_image("ftp://example.com/x.png", None, max_bytes=10, policy=pol)
    with pytest.raises(remote.RemoteFailure, match="not an image"):
        remote.fetch_image("data:text/html;base64,PGh0bWw+", None, max_bytes=100, policy=pol)
    with pytest.raises(remote.RemoteFailure, match="cap"):
        remote.fetch_image("data:image/png;base64," + "A" * 400, None, max_bytes=100, policy=pol)
    with pytest.raises(remote.RemoteFailure, match="not a valid image"):
        remote.fetch_image("data:image/png;base64,AAAAAAAA", None, max_bytes=100, policy=pol)


def test_comfyui_user_workflow_and_mapping(fakes, tmp_path):
    wf = json.loads(remote.__loader__.get_data(str(Path(remote.__file__).parent.parent / "data/comfyui/flux_workflow.json")))
    wf = {str(int(k) + 100): v for k, v in wf.items()}                  # renumber nodes: a "user" workflow
    for n in wf.values():
        for k, v in n["inputs"].items():
            if isinstance(v, list):
                n["inputs"][k] = [str(int(v[0]) + 100), v[1]]
    p = tmp_path / "mine.json"
    p.write_text(json.dumps(wf))
    url = fakes["servers"]["comfyui"].url
    good = "prompt:104.text;seed:108.seed;steps:108.steps;width:107.width;height:107.height"
    res = _run(f"comfyui:{url},workflow={p},map={good},{FAST}", tmp_path / "w", limit=1, seeds="7")
    rec = next(r for _, r in RunFolder(tmp_path / "w").records())
    assert res.total("generated") == 1 and (rec.width, rec.height) == (64, 64) and rec.applied["seed"] == 7
    with pytest.raises(EvalsuiteError, match="node '108' .KSampler. has no input 'sed'"):
        _run(f"comfyui:{url},workflow={p},map=prompt:104.text;seed:108.sed", tmp_path / "x")
    with pytest.raises(EvalsuiteError, match="no node '5'"):
        _run(f"comfyui:{url},workflow={p},map=prompt:5.text;seed:108.seed", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_rate_limit_paces_submissions_across_remote_backends(fakes, tmp_path):
    """--rate-limit 10/s over two remote backends (8 submissions in all, 4 in flight each): the slots are
    0.1 s apart, so the last submission starts >= 0.7 s after the first; without the limit it is far quicker."""
    specs = [fakes["specs"]["openai"] + ",concurrency=4", fakes["specs"]["bfl"] + ",concurrency=4"]
    t = time.perf_counter()
    res = _run(specs, tmp_path / "limited", limit=2, seeds="0,1", rate_limit=10)
    limited = time.perf_counter() - t
    assert sum(c.generated for c in res.backends.values()) == 8
    t = time.perf_counter()
    _run(specs, tmp_path / "free", limit=2, seeds="0,1")
    free = time.perf_counter() - t
    assert limited >= 0.7 and limited > free, (limited, free)
    with pytest.raises(EvalsuiteError, match="--rate-limit must be > 0"):
        _run(specs, tmp_path / "bad", rate_limit=0)
