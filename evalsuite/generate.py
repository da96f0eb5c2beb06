"""Generation: the local loop (one backend at a time in this thread, batches of its size, the first call alone
as the warm-up) and the remote loop (each remote backend in a background thread, `concurrency` requests in
flight, under the run's shared Budget), both storing every item atomically (image, then its record) as it
finishes; `generate_all` runs both and is the only entry point the runner uses."""

from __future__ import annotations

import io
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .backends import GenRequest, GenResult
from .errors import EvalsuiteError
from .backends.remote import Budget, one_line, redact, redact_obj
from .runfolder import ItemRecord, RunInfo, atomic_write_bytes, atomic_write_json


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class BackendCounts:
    planned: int = 0
    generated: int = 0
    reused: int = 0
    failed: int = 0
    filtered: int = 0
    skipped_prompts: int = 0
    not_attempted: int = 0           # remote items left unsubmitted (--max-cost reached, interrupted)


def _png_bytes(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _reset_peak_vram(device: str | None) -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
    except ImportError:
        pass


def _peak_vram_gb() -> float | None:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.max_memory_allocated() / 1024**3
    except ImportError:
        pass
    return None


def generate_all(objs, todos, run_dir: Path, info: RunInfo, counts_by, progress: bool, budget: Budget,
                  worker, dist) -> None:
    """Remote backends in background threads (remote loop), local ones here one at a time (local loop);
    run.json rewritten after each local backend and at the end; an interruption stops remote submissions,
    lets items in flight finish and be stored, then raises."""
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []
    threads = []
    on_item = worker.submit if worker else None
    for b in objs:
        if b.remote and todos[b.label]:
            t = threading.Thread(target=_generate_remote, name=f"remote-{b.label}", daemon=True,
                                 args=(b, todos[b.label], run_dir, info, counts_by[b.label], progress, budget,
                                       stop, lock, errors, on_item, dist))
            t.start()
            threads.append(t)
    try:
        for b in objs:
            if b.remote or not todos[b.label]:
                continue
            try:
                _generate_backend(b, todos[b.label], run_dir, info, counts_by[b.label], progress, on_item, dist)
            finally:
                if dist.is_main:
                    with lock:
                        atomic_write_json(run_dir / "run.json", info.model_dump())
                b.close()
        for t in threads:
            while t.is_alive():
                t.join(0.2)
        if worker is not None:
            worker.finish()
    except BaseException:
        stop.set()          # remote threads submit nothing more; items in flight finish and are stored
        if worker is not None:
            worker.cancel()
        for t in threads:
            t.join(60)
        raise
    if threads and dist.is_main:
        with lock:
            atomic_write_json(run_dir / "run.json", info.model_dump())
    if errors:
        raise errors[0]


def _write_record(b, entry, prompt, res: GenResult, run_dir: Path, counts: BackendCounts, lock: threading.Lock,
                  on_item=None, **timing: Any) -> None:
    """Store one item: the PNG (atomic), then its record (atomic; its presence marks the item finished);
    update the counts. `timing`: the ItemRecord's steps/guidance/latency/memory fields."""
    rec = ItemRecord(
        backend=b.label, spec=redact(b.spec), prompt_id=prompt.id, prompt=prompt.prompt, category=prompt.category,
        seed=entry.seed, key=entry.key, status=res.status, error=redact(res.error),
        applied=redact_obj({**res.applied, "seed": res.seed}), created=now(), **timing,
    )
    if res.status == "ok" and res.image is not None:
        data = _png_bytes(res.image)
        atomic_write_bytes(run_dir / entry.image, data)
        rec.image, rec.image_sha256 = entry.image, _sha256(data)
        rec.width, rec.height = res.image.width, res.image.height
    elif res.status != "filtered":
        rec.status = "failed"
        rec.error = rec.error or "no image returned"
    atomic_write_json(run_dir / entry.record, rec.model_dump())
    if on_item is not None and rec.status == "ok":
        on_item(entry)
    with lock:
        if rec.status == "ok":
            counts.generated += 1
        elif rec.status == "filtered":
            counts.filtered += 1
        else:
            counts.failed += 1


def _generate_remote(b, todo, run_dir: Path, info: RunInfo, counts: BackendCounts, progress: bool,
                     budget: "Budget", stop: threading.Event, lock: threading.Lock,
                     errors: list[BaseException], on_item=None, dist=None) -> None:
    """One remote backend in its own thread: b.concurrency requests in flight, each item stored as it lands."""
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), desc=b.label, unit="img", disable=not progress, file=sys.stderr, dynamic_ncols=True)

    def one(entry, prompt, w, h) -> None:
        if stop.is_set() or errors or not budget.take(b.estimate_cost(1, (w, h))):
            with lock:
                counts.not_attempted += 1
            return
        budget.wait_turn()
        t = time.perf_counter()
        res = b.generate_one(GenRequest(prompt=prompt, seed=entry.seed, width=w, height=h))
        _write_record(b, entry, prompt, res, run_dir, counts, lock, on_item, steps=cfg.get("steps"),
                      guidance=cfg.get("guidance"), latency_s=round(time.perf_counter() - t, 5), batch_size=1,
                      warmup=False, rank=dist.rank if dist is not None and dist.active else None)
        bar.update(1)

    try:
        t0 = time.perf_counter()
        b.load()
        with lock:
            info.backends[b.label].load_s = round(time.perf_counter() - t0, 4)
        cfg = b.config()
        with ThreadPoolExecutor(max_workers=b.concurrency, thread_name_prefix=b.label) as pool:
            futures = [pool.submit(one, *row) for row in todo]
            for f in futures:
                exc = f.exception()
                if exc is not None and not errors:
                    errors.append(exc)
                    stop.set()
    except BaseException as e:  # noqa: BLE001 - handed to the main thread, which raises it
        errors.append(e)
        stop.set()
    finally:
        bar.close()
        b.close()


def _generate_backend(b, todo, run_dir: Path, info: RunInfo, counts: BackendCounts, progress: bool,
                      on_item=None, dist=None) -> None:
    from tqdm.auto import tqdm

    from .timing import PeakRSS, its_per_s

    rank = dist.rank if dist is not None and dist.active else None
    lock = threading.Lock()  # _write_record's counts lock (local generation runs in this one thread)

    _reset_peak_vram(b.device)
    t0 = time.perf_counter()
    b.load()
    load_s = time.perf_counter() - t0
    info.backends[b.label].load_s = round(load_s, 4)
    cfg = b.config()
    info.backends[b.label].config = redact_obj(cfg)  # now with what load() measured (e.g. weight memory)
    # First call alone (the warm-up, excluded from medians), then batches of the backend's size.
    batches = [todo[:1]] + [todo[i:i + b.max_batch_size] for i in range(1, len(todo), b.max_batch_size)]
    desc = b.label if rank is None else f"{b.label} [rank {rank}]"
    bar = tqdm(total=len(todo), desc=desc, unit="img", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    try:
        for bi, batch in enumerate(batches):
            if not batch:
                continue
            reqs = [GenRequest(prompt=p, seed=e.seed, width=w, height=h) for e, p, w, h in batch]
            with PeakRSS() as mem:
                t = time.perf_counter()
                try:
                    results = b.generate(reqs)
                except EvalsuiteError:
                    raise
                except Exception as e:  # this batch fails; the run goes on
                    results = [GenResult(status="failed", error=one_line(f"{type(e).__name__}: {e}".splitlines()[0]))
                               for _ in reqs]
                per_item = (time.perf_counter() - t) / len(batch)
            vram = _peak_vram_gb()
            rss = mem.peak_gb
            ips = its_per_s(cfg.get("steps"), per_item)
            for (entry, prompt, w, h), res in zip(batch, results):
                _write_record(
                    b, entry, prompt, res, run_dir, counts, lock, on_item, steps=cfg.get("steps"),
                    guidance=cfg.get("guidance"), latency_s=round(per_item, 5), batch_size=len(batch),
                    warmup=bi == 0, load_s=round(load_s, 4), peak_vram_gb=round(vram, 4) if vram is not None else None,
                    peak_rss_gb=round(rss, 4), it_per_s=round(ips, 4) if ips is not None else None, rank=rank,
                )
                bar.update(1)
    finally:
        bar.close()
