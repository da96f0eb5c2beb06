import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Tests never reach a model hub: set before any fixture (session fixtures run before autouse ones).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def cli_env(**extra):
    """Environment for subprocesses: this checkout's package first, offline hub, no secrets leaking in."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["HF_HUB_OFFLINE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_cli(*args, cwd=None, env=None, timeout=300):
    """Run `python -m evalsuite ARGS` in a subprocess; returns CompletedProcess (text)."""
    return subprocess.run([sys.executable, "-m", "evalsuite", *map(str, args)], cwd=cwd or REPO,
                          env=env or cli_env(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(autouse=True)
def _offline_hub(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_flux_dir(tmp_path_factory):
    """The miniature FLUX pipeline saved in diffusers layout: the loading path real weights take."""
    from evalsuite.backends.tiny import save_tiny_flux

    return save_tiny_flux(tmp_path_factory.mktemp("weights") / "tiny-flux")


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """A generated (unscored) run folder: flux-tiny + reference over the smoke prompts, seeds 0 and 1."""
    import evalsuite

    d = tmp_path_factory.mktemp("runs") / "demo"
    evalsuite.run("flux-tiny,reference", "smoke", run_dir=d, progress=False, log=lambda m: None, score=False)
    return d


@pytest.fixture(scope="session")
def scored_demo_run(demo_run, tmp_path_factory):
    """A copy of demo_run scored with the defaults (CLIP ViT-L-14:openai is unavailable offline: missing; EasyOCR)."""
    import shutil

    import evalsuite

    d = tmp_path_factory.mktemp("runs") / "scored"
    shutil.copytree(demo_run, d)
    evalsuite.score(d, progress=False, log=lambda m: None)
    return d
