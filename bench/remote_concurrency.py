"""Serial vs concurrent wall time of a remote backend against a local fake with 0.5 s latency per image.

    python bench/remote_concurrency.py [--items 16] [--latency 0.5] [--concurrency 4]

Uses the fake Replicate server of the tests (create -> poll -> download, the real `replicate` client) and
evalsuite.run with concurrency=1, then concurrency=N, each into a fresh run folder. Prints both wall
times and the ratio. No network beyond 127.0.0.1, no keys beyond a throwaway one.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import evalsuite  # noqa: E402
from evalsuite.backends import remote  # noqa: E402
from evalsuite.envinfo import cpu_name  # noqa: E402
from tests.fakes.common import FakeServer  # noqa: E402
from tests.fakes.replicate_fake import ReplicateFake  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=16, help="at least this many items (smoke prompts x enough seeds)")
    ap.add_argument("--latency", type=float, default=0.5)
    ap.add_argument("--concurrency", type=int, default=4)
    a = ap.parse_args()
    secret = "bench-throwaway-token-0000"
    os.environ.update({"REPLICATE_API_TOKEN": secret, remote.LOOPBACK_ENV: "1"})
    svc = ReplicateFake(secret=secret, latency=a.latency)
    from evalsuite.prompts import load_prompt_set

    n_prompts = len(load_prompt_set("smoke").prompts)
    seeds = max(1, -(-a.items // n_prompts))
    with FakeServer(svc) as srv, tempfile.TemporaryDirectory() as tmp:
        spec = f"replicate:black-forest-labs/flux-schnell,base_url={srv.url},poll_interval=0.05"
        times = {}
        for conc in (1, a.concurrency):
            t = time.perf_counter()
            res = evalsuite.run(f"{spec},concurrency={conc}", "smoke", seeds=list(range(seeds)), size="64x64",
                                run_dir=Path(tmp) / f"c{conc}", progress=False, score=False,
                                log=lambda m: None)
            times[conc] = time.perf_counter() - t
            assert res.total("generated") == n_prompts * seeds, res.summary()
        n = n_prompts * seeds
    print(f"machine: {cpu_name()} ({os.cpu_count()} cores), Python {platform.python_version()}")
    print(f"{n} items, fake latency {a.latency} s per image")
    print(f"serial (concurrency=1):        {times[1]:.2f} s")
    print(f"concurrent (concurrency={a.concurrency}):    {times[a.concurrency]:.2f} s")
    print(f"speed-up: {times[1] / times[a.concurrency]:.2f}x")


if __name__ == "__main__":
    main()
