"""Speed, memory and scale: sharding, timing fields, speed_table, per-item peak RSS, overlapped scoring, torchrun."""

import json
import shutil
import statistics
import subprocess
import sys

import pytest
import torch

import evalsuite
from evalsuite import timing
from evalsuite.distributed import shard
from evalsuite.runfolder import RunFolder

from conftest import REPO, cli_env

TINY_CLIP_CFG = {"embed_dim": 16, "quick_gelu": True,
                 "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
                 "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


def quiet(msg):
    pass


# -- sharding --

@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_shard_covers_every_item_exactly_once(world):
    for n in list(range(0, 12)) + [97]:
        items = [f"item{i}" for i in range(n)]
        parts = [shard(items, r, world) for r in range(world)]
        flat = [x for p in parts for x in p]
        assert sorted(flat) == sorted(items) and len(flat) == n          # none lost, none twice
        assert max(map(len, parts)) - min(map(len, parts)) <= 1           # balanced
        assert parts == [shard(list(items), r, world) for r in range(world)]  # stable


def test_shard_rejects_bad_rank():
    with pytest.raises(ValueError):
        shard([1, 2], 2, 2)
    with pytest.raises(ValueError):
        shard([1, 2], 0, 0)


# -- timing fields and speed_table --

def test_timing_fields_present_and_sane(demo_run):
    rf = RunFolder(demo_run)
    info = rf.info
    env = info.environment
    assert env["hardware"] and env["hardware"] == (env["gpu"] or env["cpu"])
    assert env["peak_rss_method"] == timing.rss_method()
    recs = [r for _, r in rf.records()]
    for label, n in (("flux-tiny", 12), ("reference", 6)):   # reference renders only prompts with target text
        mine = [r for r in recs if r.backend == label]
        assert len(mine) == n and all(r.status == "ok" for r in mine)
        assert sum(r.warmup for r in mine) == 1                   # one warm-up call per backend
        assert all(r.rank is None for r in mine)
        assert all(r.load_s == info.backends[label].load_s for r in mine)
        for r in mine:
            assert 0 < r.latency_s < 60
            assert 0.01 < r.peak_rss_gb < 64
    flux = [r for r in recs if r.backend == "flux-tiny"]
    for r in flux:
        assert r.steps == 4 and r.it_per_s == pytest.approx(4 / r.latency_s, rel=2e-3)
    assert all(r.it_per_s is None for r in recs if r.backend == "reference")   # no denoising steps


def test_speed_table_excludes_warmup(demo_run, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(demo_run, d)
    df = timing.speed_table(d).set_index("backend")
    rf = RunFolder(d)
    flux = [r for _, r in rf.records() if r.backend == "flux-tiny"]
    timed = [r.latency_s for r in flux if not r.warmup]
    row = df.loc["flux-tiny"]
    assert row["n_timed"] == 11 and row["n_warmup"] == 1
    assert row["median_s"] == pytest.approx(statistics.median(timed))
    assert row["it_per_s"] == pytest.approx(statistics.median(4 / x for x in timed), rel=2e-3)
    assert row["steps"] == 4 and (row["width"], row["height"]) == (64, 64)
    assert row["load_s"] == pytest.approx(rf.info.backends["flux-tiny"].load_s)
    assert row["peak_rss_gb"] == max(r.peak_rss_gb for r in flux)
    assert row["hardware"] == rf.info.environment["hardware"] and row["labelled_noise"]
    assert row["peak_vram_gb"] is None or torch.cuda.is_available()
    # make the warm-up absurdly slow: the median does not move; call it a timed item and it does
    warm = next((e, r) for e, r in rf.records() if r and r.backend == "flux-tiny" and r.warmup)
    rec = warm[1].model_copy(update={"latency_s": 1000.0})
    (d / warm[0].record).write_text(rec.model_dump_json())
    assert timing.speed_table(d).set_index("backend").loc["flux-tiny", "median_s"] == row["median_s"]
    assert timing.speed_table(d).set_index("backend").loc["flux-tiny", "warmup_s"] == 1000.0
    (d / warm[0].record).write_text(rec.model_copy(update={"warmup": False}).model_dump_json())
    moved = timing.speed_table(d).set_index("backend").loc["flux-tiny"]
    assert moved["n_timed"] == 12 and moved["median_s"] == pytest.approx(statistics.median(timed + [1000.0]))
    text = timing.format_speed_table(timing.speed_table(d))
    assert "flux-tiny (noise)" in text and "hardware:" in text


def test_peak_rss_is_per_block_not_lifetime(monkeypatch):
    import time

    for hwm in ([True, False] if timing.rss_method().startswith("VmHWM") else [False]):
        monkeypatch.setattr(timing, "_HWM_OK", hwm)
        with timing.PeakRSS() as big:
            buf = bytearray(300 * 1024 * 1024)
            buf[::4096] = b"x" * len(buf[::4096])   # touch every page
            time.sleep(0.05)
            del buf
        with timing.PeakRSS() as small:
            time.sleep(0.02)
        assert big.peak_gb - small.peak_gb > 0.25, (hwm, big.peak_gb, small.peak_gb)
        assert small.peak_gb > 0.01


# -- overlapped scoring --

@pytest.fixture(scope="module")
def tiny_clip_spec(tmp_path_factory):
    import open_clip

    d = tmp_path_factory.mktemp("tinyclip")
    cfg = d / "tiny-clip-scale.json"
    cfg.write_text(json.dumps(TINY_CLIP_CFG))
    open_clip.add_model_config(cfg)
    torch.manual_seed(0)
    torch.save(open_clip.create_model("tiny-clip-scale", pretrained=None).state_dict(), d / "tiny.pt")
    return f"{cfg}:{d / 'tiny.pt'}"


def test_overlapped_scores_equal_generate_then_score(tmp_path, tiny_clip_spec):
    kw = dict(seeds=[0, 1], progress=False, log=quiet, scorers="clip,ocr", ocr="easyocr", clip_model=tiny_clip_spec)
    a = evalsuite.run("flux-tiny", "smoke", run_dir=tmp_path / "overlap", overlap=True, **kw)
    assert a.scored_while_generating > 0                  # the worker scored during generation
    counts = a.scores.counts
    assert sum(c.cached for c in counts.values()) == 0       # all of it was scored by this run...
    assert sum(c.scored for c in counts.values()) >= a.scored_while_generating   # ...mostly by the worker
    assert sum(c.cached + c.scored for c in counts.values()) == 2 * 12   # clip + ocr for every item
    b = evalsuite.run("flux-tiny", "smoke", run_dir=tmp_path / "after", score=False, **kw)
    assert b.scored_while_generating == 0
    evalsuite.score(tmp_path / "after", "clip,ocr", ocr="easyocr", clip_model=tiny_clip_spec, progress=False,
                    log=quiet)
    cols = ["backend", "prompt_id", "seed", "key", "metric", "variant", "scorer_id", "cache_key", "missing_reason"]
    fa = evalsuite.load_scores(tmp_path / "overlap").sort_values(cols).reset_index(drop=True)
    fb = evalsuite.load_scores(tmp_path / "after").sort_values(cols).reset_index(drop=True)
    assert len(fa) == len(fb) > 0 and fa["missing_reason"].isna().all()
    assert fa[cols].equals(fb[cols])
    ocr = fa["scorer"] == "ocr"
    assert (fa.loc[ocr, "value"].to_numpy() == fb.loc[ocr, "value"].to_numpy()).all()
    assert fa.loc[~ocr, "value"].to_numpy() == pytest.approx(fb.loc[~ocr, "value"].to_numpy(), rel=1e-5, abs=1e-6)
    # a wider rerun whose new items the worker scores while generating: the final pass finds them all cached,
    # and the table still gains their rows (it follows the records, not only what the final pass scored)
    evalsuite.run("flux-tiny", "smoke", run_dir=tmp_path / "overlap", overlap=True, **{**kw, "seeds": [0, 1, 2]})
    fw = evalsuite.load_scores(tmp_path / "overlap")
    assert sorted(fw["seed"].unique()) == [0, 1, 2] and fw["missing_reason"].isna().all()
    assert len(fw) == len(fa) * 3 // 2


def test_overlap_off_and_worker_without_clip_weights(tmp_path):
    # default CLIP (ViT-L-14:openai) is not available offline: the worker skips it, the final pass stores it missing
    r = evalsuite.run("flux-tiny", "smoke", seeds=[0], limit=2, run_dir=tmp_path / "r", progress=False, log=quiet,
                      scorers="clip,ocr", overlap=True)
    assert r.scored_while_generating == 2                  # the OCR of both items
    # auto: flux-tiny generates on this CPU -> no overlap here (scoring would fight generation for the cores)
    r = evalsuite.run("flux-tiny", "smoke", seeds=[0], limit=2, run_dir=tmp_path / "auto", progress=False,
                      log=quiet, scorers="ocr")
    assert r.scored_while_generating == (2 if torch.cuda.is_available() else 0)
    assert r.scores.counts[r.scores.units[0].slug].scored == 2
    df = evalsuite.load_scores(tmp_path / "r")
    clip = df[df.scorer == "clip"]
    assert len(clip) and clip["missing_reason"].str.contains("unavailable").all()
    assert df[df.scorer == "ocr"]["missing_reason"].isna().all()


# -- torchrun: two processes, one run folder --

def torchrun(nproc, *args, timeout=240):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "evalsuite", *map(str, args)]
    return subprocess.run(cmd, cwd=REPO, env=cli_env(OMP_NUM_THREADS=1), capture_output=True, text=True,
                          timeout=timeout)


def why(p):
    """The lines of both ranks that tell what went wrong (torchrun prefixes them [rank0]/[rank1])."""
    lines = (p.stdout + p.stderr).splitlines()
    return "\n".join([ln for ln in lines if "error" in ln.lower() or "[rank1]" in ln][:40] + lines[-20:])


def items(run_dir, backend="dummy"):
    out = {}
    for e, r in RunFolder(run_dir).records():
        if e.backend == backend:
            out[e.record] = (r.status, r.image_sha256, r.rank) if r else None
    return out


def test_torchrun_two_processes_same_items_as_one(tmp_path):
    # the sharding, not the model, is under test: the torch-free dummy spares each rank loading diffusers
    one = tmp_path / "one"
    evalsuite.run("dummy", "smoke", run_dir=one, progress=False, log=quiet, score=False)
    d = tmp_path / "dist"
    args = ["run", "--backends", "dummy", "--prompts", "smoke", "--run-dir", d, "--no-score", "--no-progress"]
    p = torchrun(2, *args)
    assert p.returncode == 0, why(p)
    # our messages come from rank 0 only (issue 14); every rank's with -v (the rerun below)
    assert "generated 12, reused 0" in p.stdout and "rank 1:" not in p.stdout
    got, ref = items(d), items(one)
    assert set(got) == set(ref) and len(got) == 12                    # same plan, same item files
    assert {k: v[:2] for k, v in got.items()} == {k: v[:2] for k, v in ref.items()}   # same pixels
    assert sorted(v[2] for v in got.values()) == [0] * 6 + [1] * 6     # both ranks generated, each its half
    info = RunFolder(d).info
    ranks = info.environment["distributed"]["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1] and [r["generated"]["dummy"] for r in ranks] == [6, 6]
    recs = [r for _, r in RunFolder(d).records()]
    assert sum(r.warmup for r in recs) == 2                            # one warm-up per process
    assert timing.speed_table(d).iloc[0]["ranks"] == 2
    # resumable: lose three items, rerun: exactly those are made again, by the ranks that own them;
    # the others are left untouched (the merge is idempotent)
    lost = sorted(got)[:3]
    lost_stems = {rec[:-len(".json")] for rec in lost}
    kept = {p: p.stat().st_mtime_ns for p in (d / "items").rglob("*.*")
            if str(p.relative_to(d).with_suffix("")) not in lost_stems}
    for rec in lost:
        (d / rec).unlink()
    p = torchrun(2, *args, "-v")
    assert p.returncode == 0, why(p)
    assert "generated 3, reused 9" in p.stdout and "rank 1: generated" in p.stdout
    again = items(d)
    assert {k: v[:2] for k, v in again.items()} == {k: v[:2] for k, v in ref.items()}
    assert all(again[k][2] == got[k][2] for k in lost)               # stable sharding
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    assert len(json.loads((d / "run.json").read_text())["invocations"]) == 2


def test_gpu_check_cpu_dry_runs_every_cpu_section(tmp_path):
    out = tmp_path / "gc.json"
    p = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), "--cpu-dry", "--skip", "ocr,tiling,this device",
                        "--json", out], cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    rows = {r["section"]: r for r in json.loads(out.read_text())["rows"]}
    assert {r["status"] for r in rows.values()} == {"ok", "skipped"}
    cuda_only = [k for k in rows if "CUDA" in k or "offload" in k or "nf4" in k]
    assert len(cuda_only) == 5 and all(rows[k]["status"] == "skipped" for k in cuda_only)
    ok = [k for k, r in rows.items() if r["status"] == "ok"]
    assert len(ok) == 4 and any("torchao" in k for k in ok) and any("toy FLUX" in k for k in ok)
    assert any("VQA judge" in k for k in ok)
    assert "0 section(s) failed" in p.stdout and "summary (" in p.stdout
