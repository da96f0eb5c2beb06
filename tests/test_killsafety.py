"""Crash safety, proven: `run`, `score` and `report` killed with SIGKILL at random moments (a seeded RNG)
leave a folder whose every file is whole, never regenerate a finished image, and end with the same images
and the same scores as a run that was never interrupted."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import evalsuite
from evalsuite.runfolder import TMP_MARK, ItemRecord
from tests.conftest import REPO, cli_env
from tests.test_scoring_clip import tiny_clip  # noqa: F401 - the fixture

KILLS = 10
# The model does not matter for crash safety: the torch-free dummy (0.1 s an image, one at a time, like a slow
# local model) goes through the same local generation loop as flux-tiny without loading diffusers in every process.
BACKENDS = "dummy:size=32x32,delay=0.1,batch_size=1,reference:size=64x64"


def _finished_images(d: Path) -> dict[str, tuple[int, str]]:
    """Every finished ok image: path -> (inode, sha256); asserts each record is whole and matches its image."""
    out = {}
    for p in sorted((d / "items").rglob("*.json")) if (d / "items").is_dir() else []:
        if TMP_MARK in p.name:
            continue
        rec = ItemRecord.model_validate_json(p.read_bytes())          # a half-written record would raise
        if rec.status == "ok":
            img = d / rec.image
            data = img.read_bytes()
            assert hashlib.sha256(data).hexdigest() == rec.image_sha256, img
            out[rec.image] = (img.stat().st_ino, rec.image_sha256)
    return out


def _whole(d: Path) -> None:
    """Every non-temporary file of the folder is complete: JSON parses, parquet reads, the report's links exist."""
    import pandas as pd

    for p in d.rglob("*"):
        if not p.is_file() or TMP_MARK in p.name:
            continue
        if p.suffix == ".json":
            json.loads(p.read_bytes())
        elif p.suffix == ".jsonl":
            for line in p.read_text().splitlines():
                json.loads(line)
        elif p.suffix == ".parquet":
            pd.read_parquet(p)
    html = d / "report" / "report.html"
    if html.is_file():
        text = html.read_text()
        assert text.rstrip().endswith("</html>")
        for link in re.findall(r'(?:href|src)="((?:charts|thumbs|tables)/[^"#]+)"', text):
            assert (d / "report" / link).is_file(), f"report.html links to missing {link}"


def _listing(d: Path) -> set[tuple[str, int]]:
    out = set()
    for p in d.rglob("*") if d.exists() else ():
        try:
            out.add((str(p), p.stat().st_mtime_ns))
        except FileNotFoundError:      # a temporary file renamed meanwhile
            pass
    return out


def _scores(d: Path):
    df = evalsuite.load_scores(d)
    cols = ["backend", "prompt_id", "seed", "scorer", "metric", "variant", "value"]
    return df[cols].sort_values(cols[:6]).reset_index(drop=True)


def test_sigkill_at_random_moments_of_run_score_and_report(tmp_path, tiny_clip):  # noqa: F811
    cfg, ckpt = tiny_clip
    clip = f"{cfg}:{ckpt}"
    common = ["--prompts", "smoke", "--num-seeds", "2", "--scorers", "clip", "--clip-model", clip]
    clean = tmp_path / "clean"
    env = cli_env(OMP_NUM_THREADS="1")
    # the uninterrupted reference run, in a process of its own on the other core while the kills go on
    clean_proc = subprocess.Popen([sys.executable, "-m", "evalsuite", "run", "-b", BACKENDS, *common, "--run-dir",
                                   str(clean), "--no-progress", "--no-report"], cwd=REPO, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    d = tmp_path / "killed"
    cmds = {
        "run": ["run", "-b", BACKENDS, *common, "--run-dir", str(d), "--no-progress"],
        "score": ["score", str(d), "--scorers", "clip", "--clip-model", clip, "--no-progress"],
        "report": ["report", str(d), "--no-progress", "--embed", "no"],
    }
    rng = random.Random(13)
    finished: dict[str, tuple[int, str]] = {}
    kills = 0
    mid_work = 0
    order = ["run", "run", "score", "report"]   # the run command also scores and reports: all three die
    attempts = 0
    # A command that finished before its random moment is not a kill: go on until KILLS kills landed (a no-op
    # rerun, or a score with nothing left to do, ends at once; deleting the scores gives the next ones work).
    while kills < KILLS and attempts < 4 * KILLS:
        i, what = attempts, order[attempts % len(order)]
        attempts += 1
        if what != "run" and not (d / "run.json").is_file():
            what = "run"
        before = _listing(d)
        proc = subprocess.Popen([sys.executable, "-m", "evalsuite", *cmds[what]], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # the random moment counts from when the process starts writing (start-up time varies with the load)
        deadline = time.monotonic() + 120
        while proc.poll() is None and _listing(d) == before and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 2.0))
        killed = proc.poll() is None
        if killed:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        err = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
        assert "Traceback" not in err, err
        mid_work += _listing(d) != before
        _whole(d) if d.exists() else None
        now = _finished_images(d) if d.exists() else {}
        for rel, (ino, sha) in finished.items():
            assert now.get(rel) == (ino, sha), f"finished image {rel} was regenerated or lost (kill {i}, {what})"
        finished = now
        if not killed and what != "report" and (d / "scores").is_dir():
            shutil.rmtree(d / "scores")   # the images stay: only the scoring work comes back
    assert kills >= 10, f"only {kills} processes were still running when killed"
    assert mid_work >= 3, "kills must land while files are being written"

    # finish everything without interruption (run generates what is missing, scores and writes the report)
    r = subprocess.run([sys.executable, "-m", "evalsuite", *cmds["run"]], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    now = _finished_images(d)
    for rel, (ino, sha) in finished.items():
        assert now[rel] == (ino, sha), f"finished image {rel} was regenerated"
    assert clean_proc.wait(timeout=300) == 0, clean_proc.stderr.read()
    clean_proc.stderr.close()
    assert {k: v[1] for k, v in now.items()} == {k: v[1] for k, v in _finished_images(clean).items()}
    assert not list(d.rglob(f"*{TMP_MARK}*"))
    _whole(d)
    a, b = _scores(d), _scores(clean)
    assert len(a) == len(b) > 0 and a.drop(columns="value").equals(b.drop(columns="value"))
    assert ((a.value - b.value).abs().fillna(0) < 1e-6).all() and (a.value.isna() == b.value.isna()).all()
    print(f"kill-safety: {kills} SIGKILLs ({mid_work} while the folder was changing), "
          f"{len(now)} images, {len(a)} score rows equal to the clean run")
