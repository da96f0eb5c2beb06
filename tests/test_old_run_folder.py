"""A run folder written by the code before issue 16's restructuring (main at 4f0ec16: `evalsuite.run(
'reference:size=64x64', 'smoke', limit=3, seeds=[0, 1], score=False, report=False)`) still reads, checks clean,
resumes without regenerating anything, extends, and compares through the typed result. Only run.json's
prompt_set.source was made relative (it held the absolute path of the checkout that wrote it)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import evalsuite
from evalsuite.check import check_run
from evalsuite.compare import CompareResult, compare, exit_code
from evalsuite.runfolder import RunFolder

OLD = Path(__file__).resolve().parent / "data" / "run_written_by_4f0ec16"
SPEC = "reference:size=64x64"


def _copy(tmp_path: Path) -> Path:
    d = tmp_path / "old"
    shutil.copytree(OLD, d)
    return d


def test_old_folder_reads_and_checks_clean(tmp_path):
    d = _copy(tmp_path)
    rf = RunFolder(d)
    recs = [r for _, r in rf.records()]
    assert len(recs) == 6 and all(r is not None and r.status == "ok" for r in recs)
    assert rf.info.evalsuite_version and list(rf.info.backends) == ["reference_size-64x64"]
    res = check_run(d)
    assert not res.problems and res.items == 6 and res.ok_images == 6


def test_old_folder_resumes_and_extends(tmp_path):
    d = _copy(tmp_path)
    before = {p.relative_to(d): p.read_bytes() for p in (d / "items").rglob("*") if p.is_file()}
    res = evalsuite.run(SPEC, "smoke", run_dir=d, limit=3, seeds=[0, 1], progress=False, log=lambda m: None,
                        score=False, report=False)
    assert res.total("generated") == 0 and res.total("reused") == 6
    assert {p.relative_to(d): p.read_bytes() for p in (d / "items").rglob("*") if p.is_file()} == before   # nothing rewritten
    res = evalsuite.run(SPEC, "smoke", run_dir=d, limit=4, seeds=[0, 1], progress=False, log=lambda m: None,
                        score=False, report=False)
    assert res.total("reused") == 6 and res.total("generated") + res.total("failed") <= 2


def test_old_folder_compares_through_the_typed_result(tmp_path):
    a = _copy(tmp_path)
    res = compare(OLD, a, fidelity_clip=False)
    assert isinstance(res, CompareResult)
    pair = res.pairs[0]
    assert pair.n_pairs == 6 and pair["hard_gates"]["decision"] == "pass"
    assert pair.fidelity["psnr"]["all_identical"] is True            # the same images: identical pairs
    assert res["pairs"][0]["metrics"]["clip_score"]["decision"] == "missing"   # never scored: missing, not filled
    assert exit_code(res) == 3                                       # inconclusive: gated metrics are missing
    js = res.to_json()
    assert json.loads(json.dumps(js)) == js and js["pairs"][0]["fidelity"]["psnr"]["median_item"] == "inf"
