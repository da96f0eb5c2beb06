"""Remote backends as the services are on 2026-12-01: the dated model tables (evalsuite/data/services),
lifecycle errors, per-model parameters, errors and retries as each service means them, against the fakes
of tests/fakes driven by the real client libraries."""

from __future__ import annotations

import pytest

import evalsuite
from evalsuite.backends import make_backend, services
from evalsuite.errors import EvalsuiteError
from evalsuite.runfolder import RunFolder
from tests.test_remote import FAST, _no_secret_in, _run, fakes, tls  # noqa: F401 - fixtures



def _cli(capsys, *args) -> tuple[int, str, str]:
    """The CLI in this process (`evalsuite.cli.main`): exit code, stdout, stderr."""
    from evalsuite.cli import main

    capsys.readouterr()
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


# ---- the tables ----


def test_tables_are_dated_and_well_formed():
    for svc in ("openai", "bfl", "fal", "replicate", "comfyui", "hf"):
        t = services.table(svc)
        assert t["checked"] == "2026-12-01" and t["sources"], svc
        for name, info in services.models(svc).items():
            assert info.status in services.STATUSES, (svc, name)
            if info.status == "shut_down":
                assert info.shutdown_date and info.replacement, (svc, name)
    o = services.model_info("openai", "gpt-image-2")
    assert o.status == "active" and o.price is None and o.rules["sizes"]["multiple_of"] == 16
    assert services.model_info("openai", "gpt-image-9").status == "unknown"


def test_malformed_table_is_one_line_naming_file_and_field(tmp_path, monkeypatch):
    (tmp_path / "openai.yaml").write_text("service: openai\nchecked: '2026-12-01'\nmodels:\n  x: {status: gone}\n")
    monkeypatch.setattr(services, "DATA", tmp_path)
    services.table.cache_clear()
    try:
        with pytest.raises(EvalsuiteError, match=r"openai.yaml: models.x: field 'status' must be one of"):
            services.table("openai")
    finally:
        services.table.cache_clear()


# ---- OpenAI ----


@pytest.mark.parametrize("spec,date", [("openai:dall-e-3", "2026-05-12"), ("openai-gpt-image-1", "2026-10-23"),
                                       ("openai:gpt-image-1.5", "2026-12-01")])
def test_shut_down_model_fails_at_plan_time(fakes, tmp_path, spec, date):
    url = fakes["servers"]["openai"].url
    d = tmp_path / "dead"
    with pytest.raises(EvalsuiteError) as e:
        _run(f"{spec}{',' if ':' in spec else ':'}base_url={url}/v1", d)
    msg = str(e.value)
    assert "\n" not in msg and f"shut down on {date}" in msg and "use openai:gpt-image-2" in msg and "folder:" in msg
    assert not d.exists() and fakes["svc"]["openai"].count("create") == 0


def test_shut_down_preset_through_cli_is_one_line_exit_2(fakes, tmp_path, capsys):
    rc, out, err = _cli(capsys, "run", "-b", "openai-dall-e-3", "--limit", "1", "-o", tmp_path / "x", "--yes")
    assert rc == 2 and "shut down on 2026-05-12" in err and "folder:PATH" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_gpt_image_2_sizes_divisible_by_16_sent_as_asked(fakes, tmp_path):
    oa = fakes["svc"]["openai"]
    res = _run(fakes["specs"]["openai"], tmp_path / "a", limit=1, seeds="0", size="1536x864")
    assert res.total("generated") == 1 and oa.bodies[-1]["size"] == "1536x864"
    rec = next(r for _, r in RunFolder(tmp_path / "a").records())
    assert rec.applied["size"] == "1536x864" and rec.applied["output_format"] == "png"
    assert "style" not in rec.applied and "response_format" not in oa.bodies[-1]
    # off the 16-grid: rounded to the nearest multiple of 16 and the size sent is recorded
    _run(fakes["specs"]["openai"], tmp_path / "b", limit=1, seeds="0", size="1010x1010")
    assert oa.bodies[-1]["size"] == "1008x1008"
    assert next(r for _, r in RunFolder(tmp_path / "b").records()).applied["size"] == "1008x1008"
    # outside the model's sizes (ratio 4:1): the item fails with one line, nothing sent
    n = oa.count("create")
    res = _run(fakes["specs"]["openai"], tmp_path / "c", limit=1, seeds="0", size="2048x512")
    rec = next(r for _, r in RunFolder(tmp_path / "c").records())
    assert rec.status == "failed" and "ratio <= 3.0:1" in rec.error and oa.count("create") == n


def test_insufficient_quota_fails_at_once(fakes, tmp_path):
    oa = fakes["svc"]["openai"]
    oa.quota_exhausted = True
    res = _run(fakes["specs"]["openai"] + ",retries=4", tmp_path / "q", limit=1, seeds="0")
    rec = next(r for _, r in RunFolder(tmp_path / "q").records())
    assert res.total("failed") == 1 and oa.count("create") == 1
    assert "insufficient_quota" in rec.error and "exceeded your current quota" in rec.error and "\n" not in rec.error
    assert rec.applied["retries"] == 0 and rec.applied["attempts"] == 1


def test_rate_limit_429_is_retried_with_retry_after_and_counted(fakes, tmp_path):
    oa = fakes["svc"]["openai"]
    oa.fail("create", 429, times=2, retry_after="0.2")
    import time

    t = time.perf_counter()
    _run(fakes["specs"]["openai"], tmp_path / "r", limit=1, seeds="0")
    assert time.perf_counter() - t >= 0.4
    rec = next(r for _, r in RunFolder(tmp_path / "r").records())
    assert rec.status == "ok" and rec.applied["retries"] == 2 and rec.applied["attempts"] == 3


def test_unknown_price_cannot_be_bounded_by_max_cost(fakes, tmp_path, capsys):
    spec = fakes["specs"]["openai"]
    common = ("--limit", "1", "--size", "64x64", "-o", tmp_path / "u", "--yes", "--no-progress", "--no-score",
              "--no-report")
    rc, out, err = _cli(capsys, "run", "-b", spec, *common, "--max-cost", "1.00")
    assert rc == 2 and "--max-cost cannot bound" in err and "price=USD" in err
    assert "call(s) at an unknown price" in out + err and not (tmp_path / "u").exists()
    assert fakes["svc"]["openai"].count("create") == 0
    rc, out, err = _cli(capsys, "run", "-b", spec + ",price=0.05", *common, "--max-cost", "0.05")
    assert rc == 0, err
    assert "not attempted 1" in out and fakes["svc"]["openai"].count("create") == 1
    _no_secret_in(tmp_path / "u", out, err)


def test_backends_lists_lifecycle_and_price_and_check_asks_the_service(fakes, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", fakes["servers"]["openai"].url + "/v1")
    rc, out, err = _cli(capsys, "backends")
    assert rc == 0
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.strip()}
    assert "active, price unknown" in lines["openai-gpt-image-2"]
    assert "not usable" in lines["openai-dall-e-3"] and "shut down 2026-05-12 (use gpt-image-2)" in lines["openai-dall-e-3"]
    assert "active, $0.04/image (2025-06-01)" in lines["bfl-flux-pro-1.1"]
    assert "active, $0.06/image (2026-12-01)" in lines["bfl-flux-pro-ultra"] and "hf-flux-dev" in lines
    rc, out, err = _cli(capsys, "backends", "--check")
    assert rc == 0, out + err
    assert fakes["svc"]["openai"].count("models") == 1
    check = {ln.split()[0]: ln for ln in out.splitlines() if ln.startswith("openai:")}
    assert "not listed" in check["openai:dall-e-3"] and "differs" not in check["openai:dall-e-3"]
    assert "listed, no shutdown date" in check["openai:gpt-image-2"]
    assert fakes["env"]["OPENAI_API_KEY"] not in out + err
    # the service lists a model the table calls shut down: reported, exit 1
    from tests.fakes import openai_fake

    monkeypatch.setitem(openai_fake.LIVE, "gpt-image-1", None)
    rc, out, err = _cli(capsys, "backends", "--check")
    assert rc == 1 and "differs" in next(ln for ln in out.splitlines() if ln.startswith("openai:gpt-image-1 "))
    # without a key the check says it skipped the service
    monkeypatch.delenv("OPENAI_API_KEY")
    rc, out, err = _cli(capsys, "backends", "--check")
    assert rc == 0 and "openai: skipped (set OPENAI_API_KEY" in out


def test_openai_key_and_config_hold_only_applied_parameters(fakes):
    b = make_backend("openai:gpt-image-2,quality=high")
    assert b.key() == {"service": "openai", "model": "gpt-image-2", "quality": "high", "output_format": "png",
                       "moderation": "auto"}
    with pytest.raises(EvalsuiteError, match="quality' must be one of low, medium, high, auto for gpt-image-2"):
        make_backend("openai:gpt-image-2,quality=max")
    assert make_backend("openai:gpt-image-2.5-flare,quality=max").key()["quality"] == "max"
    with pytest.raises(EvalsuiteError, match="unknown option 'style'"):
        make_backend("openai:gpt-image-2,style=vivid")


# ---- fal ----


def test_fal_content_policy_422_is_filtered_one_line_and_not_paid_again(fakes, tmp_path):
    fal = fakes["svc"]["fal"]
    fal.reject = ("neon sign",)
    d = tmp_path / "f"
    res = _run(fakes["specs"]["fal"], d, seeds="0")
    recs = {r.prompt_id: r for _, r in RunFolder(d).records()}
    bad = recs["neon-open-24"]
    assert bad.status == "filtered" and res.total("filtered") == 1 and res.total("generated") == 1
    assert bad.error.startswith("fal: content_policy_violation: The content was flagged by a content checker.")
    assert "(prompt)" in bad.error and "categories: sexual" in bad.error and "[{" not in bad.error
    n = fal.count("submit")
    _run(fakes["specs"]["fal"], d, seeds="0", retry_failed=True)          # filtered is not failed: no new call
    assert fal.count("submit") == n


def test_fal_hidden_retries_off_retry_after_honoured_and_counted(fakes, tmp_path):
    fal = fakes["svc"]["fal"]
    fal.fail("submit", 429, times=3, retry_after="0.3")
    _run(fakes["specs"]["fal"], tmp_path / "r", limit=1, seeds="0")
    rec = next(r for _, r in RunFolder(tmp_path / "r").records())
    assert rec.status == "ok" and fal.count("submit") == 4
    gaps = [b - a for a, b in zip(fal.stamps["submit"], fal.stamps["submit"][1:])]
    assert min(gaps) >= 0.3, gaps                                         # fal-client alone: 0.05-0.15 s apart
    assert rec.applied["retries"] == 3 and rec.applied["attempts"] >= 4 + 1 + 1   # submits, status, result
    # retries are bounded by retries=: 2 retries, then failed with the service's message
    fal.fail("submit", 429, times=10, retry_after="0")
    _run(fakes["specs"]["fal"] + ",retries=2", tmp_path / "g", limit=1, seeds="0")
    rec = next(r for _, r in RunFolder(tmp_path / "g").records())
    assert rec.status == "failed" and "gave up after 3 attempts" in rec.error and "Too many requests" in rec.error
    assert fal.count("submit") == 4 + 3


def test_fal_pro_sends_records_and_keys_no_guidance(fakes, tmp_path):
    spec = f"fal-flux-pro:{FAST}"
    res = _run(spec, tmp_path / "p", limit=1, seeds="0")          # the fake answers 422 to a parameter not taken
    assert res.total("generated") == 1
    rec = next(r for _, r in RunFolder(tmp_path / "p").records())
    assert "guidance" not in rec.applied and "steps" not in rec.applied
    args = fakes["svc"]["fal"].reqs[rec.applied["request_id"]]["args"]
    assert "guidance_scale" not in args and "num_inference_steps" not in args and args["enhance_prompt"] is False
    key = make_backend(spec).key()
    assert "guidance" not in key and "steps" not in key
    with pytest.raises(EvalsuiteError, match="option 'guidance' is not taken by fal app fal-ai/flux-pro/v1.1"):
        make_backend("fal-flux-pro:guidance=3.5")
    assert make_backend("fal-flux-dev").key()["guidance"] == 3.5


def test_fal_ultra_aspect_ratio_from_run_size_and_delivered_size_recorded(fakes, tmp_path):
    spec = f"fal:fal-ai/flux-pro/v1.1-ultra,{FAST}"
    _run(spec, tmp_path / "sq", limit=1, seeds="0", size="1024x1024")
    _run(spec, tmp_path / "wide", limit=1, seeds="0", size="1536x864")
    sq = next(r for _, r in RunFolder(tmp_path / "sq").records())
    wide = next(r for _, r in RunFolder(tmp_path / "wide").records())
    assert sq.applied["aspect_ratio"] == "1:1" and wide.applied["aspect_ratio"] == "16:9"
    assert sq.applied["raw"] is False and sq.applied["requested_size"] == "1024x1024"
    assert abs(wide.width / wide.height - 16 / 9) < 0.05 and sq.width == sq.height
    assert make_backend(spec).key() != make_backend(spec + ",raw=true").key()


def test_fal_timeout_is_honoured(fakes, tmp_path):
    import time

    fakes["svc"]["fal"].stall = 1.5
    t = time.perf_counter()
    _run(fakes["specs"]["fal"] + ",timeout=0.3,retries=0", tmp_path / "t", limit=1, seeds="0")
    rec = next(r for _, r in RunFolder(tmp_path / "t").records())
    assert rec.status == "failed" and "no answer within timeout=0.3 s" in rec.error
    assert rec.applied["wall_s"] < 1.2 and time.perf_counter() - t < 30   # 0.3 s, not the 1.5 s stall


# ---- BFL ----


def test_bfl_ultra_takes_aspect_ratio_and_raw_not_width_height(fakes, tmp_path):
    url = fakes["servers"]["bfl"].url
    spec = f"bfl-flux-pro-ultra:base_url={url},{FAST}"
    _run(spec, tmp_path / "sq", limit=1, seeds="0", size="1024x1024")
    _run(spec + ",raw=true", tmp_path / "wide", limit=1, seeds="0", size="1536x864")
    sq = next(r for _, r in RunFolder(tmp_path / "sq").records())
    wide = next(r for _, r in RunFolder(tmp_path / "wide").records())
    bodies = [t["body"] for t in fakes["svc"]["bfl"].tasks.values()]
    assert bodies[0]["aspect_ratio"] == "1:1" and bodies[0]["raw"] is False and bodies[1]["aspect_ratio"] == "16:9"
    assert bodies[1]["raw"] is True and "steps" not in bodies[0] and "guidance" not in bodies[0]
    assert sq.width == sq.height and abs(wide.width / wide.height - 16 / 9) < 0.05   # no 16:9 default in a square run
    assert sq.applied["aspect_ratio"] == "1:1" and sq.applied["requested_size"] == "1024x1024"
    assert "steps" not in sq.applied and "guidance" not in sq.applied
    assert make_backend(spec).key() != make_backend(spec + ",raw=true").key()
    with pytest.raises(EvalsuiteError, match="option 'guidance' is not taken by bfl:flux-pro-1.1"):
        make_backend("bfl-flux-pro-1.1:guidance=3")
    assert "guidance" not in make_backend("bfl-flux-pro-1.1").key()
    assert make_backend("bfl-flux-dev").key()["steps"] == 28


# ---- Replicate ----


def test_replicate_ultra_schema_aspect_ratio_not_custom(fakes, tmp_path):
    url = fakes["servers"]["replicate"].url
    spec = f"replicate-flux-pro-ultra:base_url={url},{FAST}"
    res = _run(spec, tmp_path / "u", limit=1, seeds="0", size="1536x864")   # the fake answers 422 to 'custom'
    assert res.total("generated") == 1
    rec = next(r for _, r in RunFolder(tmp_path / "u").records())
    inp = rec.applied["input"]
    assert inp["aspect_ratio"] == "16:9" and "width" not in inp and inp["raw"] is False
    assert "prompt_upsampling" not in inp and "num_inference_steps" not in inp
    assert abs(rec.width / rec.height - 16 / 9) < 0.05 and rec.applied["requested_size"] == "1536x864"
    with pytest.raises(EvalsuiteError, match="'output_format' must be one of jpg, png"):
        make_backend("replicate-flux-pro-ultra:output_format=webp")


def test_replicate_timeout_honoured_and_hidden_get_retries_counted(fakes, tmp_path):
    import time

    rep = fakes["svc"]["replicate"]
    rep.fail("get", 503, times=2, retry_after="0.2")          # the client's RetryTransport would retry these unseen
    rep.latency = 0.05
    _run(fakes["specs"]["replicate"] + ",concurrency=1", tmp_path / "g", limit=1, seeds="0")
    rec = next(r for _, r in RunFolder(tmp_path / "g").records())
    assert rec.status == "ok" and rec.applied["retries"] == 2 and "503" in rec.applied["transient_errors"][0]
    rep.latency = 0.0
    rep.stall = 1.5
    t = time.perf_counter()
    _run(fakes["specs"]["replicate"] + ",timeout=0.3,retries=0", tmp_path / "t", limit=1, seeds="0")
    rec = next(r for _, r in RunFolder(tmp_path / "t").records())
    assert rec.status == "failed" and "no answer within timeout=0.3 s" in rec.error
    assert rec.applied["wall_s"] < 1.2 and time.perf_counter() - t < 30   # 0.3 s, not the 1.5 s stall


# ---- ComfyUI ----


def test_comfyui_validation_error_keeps_details(fakes, tmp_path):
    fakes["svc"]["comfyui"].unets = ("flux1-schnell.safetensors",)
    _run(fakes["specs"]["comfyui"], tmp_path / "c", limit=1, seeds="0")
    rec = next(r for _, r in RunFolder(tmp_path / "c").records())
    assert rec.status == "failed" and "node 1 (UNETLoader): Value not in list" in rec.error
    assert "unet_name: 'flux1-dev.safetensors' not in ['flux1-schnell.safetensors']" in rec.error
    res = _run(fakes["specs"]["comfyui"] + ",unet=flux1-schnell.safetensors", tmp_path / "ok", limit=1, seeds="0")
    assert res.total("generated") == 1


# ---- Hugging Face Inference Providers ----

HF_SECRET = "hf_SECRETtoken0123456789abcdef"


@pytest.fixture
def hf(monkeypatch):
    import huggingface_hub.constants as hc

    from tests.fakes.common import FakeServer
    from tests.fakes.hf_fake import HfFake

    svc = HfFake(secret=HF_SECRET)
    server = FakeServer(svc).start()
    monkeypatch.setenv("HF_TOKEN", HF_SECRET)
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", False)       # the fake Hub on 127.0.0.1 only
    monkeypatch.setattr(hc, "ENDPOINT", server.url)
    monkeypatch.setattr(hc, "INFERENCE_PROXY_TEMPLATE", hc.INFERENCE_PROXY_TEMPLATE)   # restored after the test
    from huggingface_hub import get_session

    before = get_session().timeout
    yield svc, server
    get_session().timeout = before             # load() set the shared session's default timeout
    server.stop()


def test_hf_one_token_reaches_flux_on_two_providers(hf, tmp_path):
    svc, server = hf
    specs = [f"hf-flux-dev:base_url={server.url},{FAST}", f"hf:together/black-forest-labs/FLUX.1-dev,base_url={server.url},{FAST}"]
    res = _run(specs, tmp_path / "h", limit=1, seeds="0,1")
    assert res.total("generated") == 4 and res.total("failed") == 0
    paths = [p for p, _ in svc.bodies]
    assert paths.count("/fal-ai/fal-ai/flux/dev") == 2 and paths.count("/together/v1/images/generations") == 2
    fal_body = next(b for p, b in svc.bodies if p.startswith("/fal-ai/"))
    tog_body = next(b for p, b in svc.bodies if p.startswith("/together/"))
    assert fal_body["guidance_scale"] == 3.5 and fal_body["image_size"] == {"width": 64, "height": 64}
    assert "guidance_scale" not in tog_body and "guidance" not in tog_body and tog_body["steps"] == 28
    recs = [r for _, r in RunFolder(tmp_path / "h").records()]
    assert all(r.status == "ok" and r.applied["seed"] == r.seed and r.width == 64 for r in recs)
    tog = next(r for r in recs if r.applied["provider"] == "together")
    assert "guidance" not in tog.applied and "guidance" not in make_backend("hf:together/black-forest-labs/FLUX.1-dev").key()
    _no_secret_in(tmp_path / "h")
    for p in (tmp_path / "h").rglob("*"):
        if p.is_file():
            assert HF_SECRET.encode() not in p.read_bytes()


def test_hf_moderation_retries_and_final_errors(hf, tmp_path):
    svc, server = hf
    spec = f"hf-flux-dev:base_url={server.url},{FAST}"
    svc.moderate = ("neon sign",)
    res = _run(spec, tmp_path / "m", seeds="0")
    recs = {r.prompt_id: r for _, r in RunFolder(tmp_path / "m").records()}
    assert res.total("filtered") == 1 and recs["neon-open-24"].status == "filtered"
    assert recs["neon-open-24"].error.startswith("hf: content_policy_violation") and "[{" not in recs["neon-open-24"].error
    svc.moderate = ()
    svc.fail("generate", 429, times=2, retry_after="0.2")
    _run(spec, tmp_path / "r", limit=1, seeds="0")
    rec = next(r for _, r in RunFolder(tmp_path / "r").records())
    # attempts: the provider-mapping lookup on the Hub, then 3 generation calls
    assert rec.status == "ok" and rec.applied["retries"] == 2 and rec.applied["attempts"] == 4
    gaps = [b - a for a, b in zip(svc.stamps["generate"][-3:], svc.stamps["generate"][-2:])]
    assert min(gaps) >= 0.2
    svc.credits_spent = True
    n = svc.count("generate")
    _run(spec, tmp_path / "q", limit=1, seeds="0")
    rec = next(r for _, r in RunFolder(tmp_path / "q").records())
    assert rec.status == "failed" and "402" in rec.error and "exceeded your monthly included credits" in rec.error
    assert svc.count("generate") == n + 1 and HF_SECRET not in rec.error
    with pytest.raises(EvalsuiteError, match="expected hf:PROVIDER/OWNER/MODEL"):
        make_backend("hf:FLUX.1-dev")
    with pytest.raises(EvalsuiteError, match="option 'guidance' is not taken by provider together"):
        make_backend("hf:together/black-forest-labs/FLUX.1-dev,guidance=3")


def test_hf_timeout_is_honoured(hf, tmp_path):
    import time

    svc, server = hf
    spec = f"hf-flux-dev:base_url={server.url},timeout=0.3,retries=0,{FAST}"
    _run(spec, tmp_path / "warm", limit=1, seeds="0")          # first use: imports and the shared session
    svc.stall = 1.5
    t = time.perf_counter()
    _run(spec, tmp_path / "t", limit=1, seeds="0")
    rec = next(r for _, r in RunFolder(tmp_path / "t").records())
    assert rec.status == "failed" and "tim" in rec.error.lower()
    assert rec.applied["wall_s"] < 1.2 and time.perf_counter() - t < 30   # 0.3 s, not the 1.5 s stall


# ---- every client honours timeout=; a model the service refuses is final ----


@pytest.mark.parametrize("which", ["openai", "bfl", "comfyui"])
def test_timeout_is_honoured_by_httpx_and_openai_clients(fakes, tmp_path, which):
    import time

    fakes["svc"][which].stall = 1.5
    t = time.perf_counter()
    _run(fakes["specs"][which] + ",timeout=0.3,retries=1", tmp_path / "t", limit=1, seeds="0")
    rec = next(r for _, r in RunFolder(tmp_path / "t").records())
    assert rec.status == "failed" and "gave up after 2 attempts" in rec.error and "tim" in rec.error.lower()
    assert rec.applied["attempts"] == 2 and rec.applied["wall_s"] < 1.4      # 2 x 0.3 s, not 2 x 1.5 s
    assert time.perf_counter() - t < 30


def test_model_the_service_refuses_fails_at_once_with_its_words(fakes, tmp_path):
    oa = fakes["svc"]["openai"]
    url = fakes["servers"]["openai"].url
    res = _run(f"openai:gpt-image-9,base_url={url}/v1,{FAST}", tmp_path / "n", limit=1, seeds="0")
    rec = next(r for _, r in RunFolder(tmp_path / "n").records())
    assert res.total("failed") == 1 and oa.count("create") == 1 and rec.applied["retries"] == 0
    assert "404 model_not_found" in rec.error and "does not exist or you do not have access" in rec.error


def test_plan_names_deprecated_and_unknown_models(fakes, tmp_path, monkeypatch):
    import shutil

    data = tmp_path / "services"
    shutil.copytree(services.DATA, data)
    text = (data / "openai.yaml").read_text().replace(
        "  gpt-image-2.5-flare:\n    status: active",
        "  gpt-image-2.5-flare:\n    status: deprecated\n    shutdown_date: \"2027-03-01\"\n    replacement: gpt-image-2.5-sunburst")
    (data / "openai.yaml").write_text(text)
    monkeypatch.setattr(services, "DATA", data)
    services.table.cache_clear()
    try:
        url = fakes["servers"]["openai"].url
        logs: list[str] = []
        _run([f"openai:gpt-image-2.5-flare,base_url={url}/v1", f"openai:gpt-image-9,base_url={url}/v1"],
             tmp_path / "d", limit=1, dry_run=True, log=logs.append)
        text = "\n".join(logs)
        assert "deprecated, shuts down 2027-03-01 (use gpt-image-2.5-sunburst)" in text
        assert "not in the openai table checked 2026-12-01" in text
    finally:
        services.table.cache_clear()
