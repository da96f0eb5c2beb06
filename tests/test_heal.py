"""Damaged run folders heal: damaged files go to quarantine/ with a note, their items are generated again,
nothing intact is touched; `evalsuite check` lists every problem and --repair fixes what it can. Also: a
bad image fails only its item while scoring, the plan is a union of invocations, files honour the umask,
and a report replaces its charts only once the new ones exist."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import evalsuite
from evalsuite.runfolder import RunFolder
from tests.test_scoring_clip import tiny_clip  # noqa: F401 - the fixture

QUIET = dict(progress=False, log=lambda m: None, score=False)
ARGS = dict(seeds=[0, 1], limit=3)


def _run(d, **kw):
    logs: list[str] = []
    res = evalsuite.run("reference", "smoke", run_dir=d, progress=False, log=logs.append, score=False,
                        **{**ARGS, **kw})
    return res, logs


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    d = tmp_path_factory.mktemp("heal") / "clean"
    _run(d)
    return d


def _images(d: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(d)): (p.read_bytes(), p.stat().st_ino) for p in sorted((d / "items").rglob("*.png"))}


def test_run_heals_damaged_records_plan_lines_and_images(finished, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(finished, d)
    plan = RunFolder(d).plan()
    assert len(plan) == 6
    e_rec, e_missing, e_trunc, e_plan = plan[0], plan[1], plan[2], plan[3]
    rec = d / e_rec.record
    rec.write_text(rec.read_text()[:40])                          # a truncated record
    (d / e_missing.image).unlink()                                # a finished image lost
    img = d / e_trunc.image
    img.write_bytes(img.read_bytes()[:200])                       # a truncated image
    lines = (d / "plan.jsonl").read_text().splitlines()
    lines[3] = lines[3][:25]                                      # a broken plan line
    (d / "plan.jsonl").write_text("\n".join(lines) + "\n")
    before = _images(d)

    res, logs = _run(d)
    c = res.backends["reference"]
    assert (c.generated, c.reused, c.failed) == (3, 3, 0)         # exactly the three damaged items
    assert any("plan.jsonl line 4" in m for m in logs) and any(e_rec.record in m for m in logs)
    after = _images(d)
    for rel, (data, ino) in before.items():                       # intact images untouched (same inode)
        if rel not in (e_rec.image, e_trunc.image):
            assert after[rel] == (data, ino), rel
    assert {k: v[0] for k, v in after.items()} == {k: v[0] for k, v in _images(finished).items()}
    q = d / "quarantine"
    notes = [json.loads(x) for x in (q / "NOTES.jsonl").read_text().splitlines()]
    moved = {n["file"] for n in notes}
    assert {e_rec.record, e_trunc.record, e_trunc.image, e_missing.record, "plan.jsonl"} <= moved
    assert all(n["why"] for n in notes)
    assert len(RunFolder(d).plan()) == 6 and not RunFolder(d).problems
    res, _ = _run(d)
    assert res.total("generated") == 0 and res.total("reused") == 6


def test_damaged_run_json_rebuilt_by_run_and_by_check(finished, tmp_path, capsys):
    from evalsuite.cli import main

    d = tmp_path / "run"
    shutil.copytree(finished, d)
    (d / "run.json").write_text('{"schema_version": 1, "evalsu')
    assert main(["check", str(d)]) == 2
    out = capsys.readouterr().out
    assert "run.json: not valid JSON" in out and "--repair" in out
    assert main(["check", str(d), "--repair"]) == 0
    info = RunFolder(d).info
    assert list(info.backends) == ["reference"] and info.seeds == [0, 1]
    assert (d / "quarantine" / "run.json").is_file()
    assert main(["check", str(d)]) == 0 and "no problems" in capsys.readouterr().out
    # run heals it by itself too, reusing every item
    (d / "run.json").write_text("garbage")
    res, logs = _run(d)
    assert res.total("generated") == 0 and res.total("reused") == 6
    assert any("run.json: damaged" in m for m in logs)
    assert RunFolder(d).info.backends["reference"].config            # the full config is back
    # run.json lost altogether: rebuilt from the records
    (d / "run.json").unlink()
    res, _ = _run(d)
    assert res.total("generated") == 0 and res.total("reused") == 6


def test_check_lists_every_problem_and_repair_fixes_them(finished, tmp_path, capsys):
    from evalsuite.cli import main

    d = tmp_path / "run"
    shutil.copytree(finished, d)
    plan = RunFolder(d).plan()
    (d / plan[0].record).write_text("{")
    img = d / plan[1].image
    data = bytearray(img.read_bytes())
    data[100] ^= 0xFF                                             # a flipped byte: only the hash can tell
    img.write_bytes(bytes(data))
    (d / plan[2].image).unlink()
    (d / "items" / "x.png.tmp-abc").write_bytes(b"partial")
    lines = (d / "plan.jsonl").read_text().splitlines()
    (d / "plan.jsonl").write_text("\n".join(lines[:4] + ["{not json"] + lines[5:]) + "\n")
    assert main(["check", str(d)]) == 2
    out = capsys.readouterr().out
    for needle in (f"{plan[0].record}: not valid JSON", "sha256 mismatch", "image file missing",
                   "plan.jsonl line 5: not valid JSON", "temporary file", "record(s) on disk have no plan line"):
        assert needle in out, (needle, out)
    assert main(["check", str(d), "--repair"]) == 0
    capsys.readouterr()
    assert main(["check", str(d)]) == 0
    assert len(RunFolder(d).plan()) == 6                          # the lost plan line restored from its record
    res, _ = _run(d)
    assert res.total("generated") == 3 and res.total("reused") == 3
    assert {k: v[0] for k, v in _images(d).items()} == {k: v[0] for k, v in _images(finished).items()}


def test_damaged_record_does_not_stop_score_or_report(finished, tmp_path, tiny_clip):  # noqa: F811
    cfg, ckpt = tiny_clip
    d = tmp_path / "run"
    shutil.copytree(finished, d)
    plan = RunFolder(d).plan()
    (d / plan[0].record).write_text('{"schema_version": 1')
    img = d / plan[1].image
    img.write_bytes(img.read_bytes()[:300])                       # truncated: scoring fails this item only
    (d / plan[2].image).unlink()                                  # missing: likewise
    logs: list[str] = []
    r = evalsuite.score(d, "clip", clip_model=f"{cfg}:{ckpt}", progress=False, log=logs.append)
    c = list(r.counts.values())[0]
    assert (c.scored, c.errors) == (3, 2)
    assert any(plan[0].record in m for m in logs)
    df = evalsuite.load_scores(d)
    reasons = set(df.loc[df.value.isna(), "missing_reason"])
    assert any("image file missing" in x for x in reasons) and any("unreadable" in x for x in reasons)
    from evalsuite.report import write_report

    rep = write_report([d], progress=False, log=lambda m: None)
    assert rep.html.is_file()


def test_plan_is_a_union_of_invocations(finished, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(finished, d)
    before = (d / "plan.jsonl").read_text().splitlines()
    res, logs = _run(d, limit=1)
    assert res.total("reused") == 2 and res.total("generated") == 0
    assert any("4 item(s) of earlier invocations" in m and "all 6 planned items" in m for m in logs), logs
    assert RunFolder(d).info.prompt_set["planned_items"] == 6
    assert sorted((d / "plan.jsonl").read_text().splitlines()) == sorted(before)
    from evalsuite.report.data import load_runs

    notes = load_runs([d]).notes        # the report says which subset it shows: the whole union
    assert any("the whole plan, 6 item(s)" in n and "4 of them come from earlier invocations" in n for n in notes)
    _run(d, seeds=[0])
    assert sorted((d / "plan.jsonl").read_text().splitlines()) == sorted(before)
    res, _ = _run(d, seeds=[0, 1, 2], limit=1)                    # a wider rerun adds
    assert res.total("generated") == 1 and len((d / "plan.jsonl").read_text().splitlines()) == 7
    # changed pixel settings (here the run-wide size) replace the backend's old entries instead of mixing
    evalsuite.run("reference", "smoke", run_dir=tmp_path / "other", seeds=[0, 1], limit=2, size="256x256", **QUIET)
    evalsuite.run("reference", "smoke", run_dir=tmp_path / "other", seeds=[0], limit=1, **QUIET)
    assert len(RunFolder(tmp_path / "other").plan()) == 1


def test_files_honour_the_umask(tmp_path):
    old = os.umask(0o002)
    try:
        evalsuite.run("reference", "smoke", run_dir=tmp_path / "r", seeds=[0], limit=1, **QUIET)
    finally:
        os.umask(old)
    modes = {oct(p.stat().st_mode & 0o777) for p in (tmp_path / "r").rglob("*") if p.is_file()}
    assert modes == {"0o664"}, modes


def test_report_keeps_old_charts_until_the_new_ones_exist(finished, tmp_path, monkeypatch):
    from evalsuite.report import html as H
    from evalsuite.report import write_report

    d = tmp_path / "run"
    shutil.copytree(finished, d)
    out = tmp_path / "rep"
    (out / "charts").mkdir(parents=True)
    stale = out / "charts" / "old_chart.png"
    stale.write_bytes(b"old")

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(H, "write_html", killed)
    import evalsuite.report as R

    monkeypatch.setattr(R, "write_html", killed, raising=False)
    with pytest.raises(KeyboardInterrupt):
        write_report([d], out, progress=False, log=lambda m: None)
    assert stale.is_file()                                        # the old report is still whole
    monkeypatch.undo()
    rep = write_report([d], out, progress=False, log=lambda m: None)
    assert not stale.exists() and rep.html.is_file()
    assert not list(out.rglob("*.tmp-*"))


def test_score_table_follows_the_records_when_nothing_is_newly_scored(finished, tmp_path, tiny_clip):  # noqa: F811
    """A damaged record (or new items whose details an overlapped worker already wrote) changes the table's
    inputs although no item is newly scored: the table is rebuilt, never left stale."""
    cfg, ckpt = tiny_clip
    d = tmp_path / "run"
    shutil.copytree(finished, d)
    evalsuite.score(d, "clip", clip_model=f"{cfg}:{ckpt}", progress=False, log=lambda m: None)
    df = evalsuite.load_scores(d)
    e = RunFolder(d).plan()[0]
    assert df.loc[df.prompt_id.eq(e.prompt_id) & df.seed.eq(e.seed) & df.backend.eq(e.backend), "value"].notna().all()
    (d / e.record).write_text('{"status": "ok", "ima', encoding="utf-8")          # truncated record
    r = evalsuite.score(d, "clip", clip_model=f"{cfg}:{ckpt}", progress=False, log=lambda m: None)
    assert sum(c.scored for c in r.counts.values()) == 0                          # nothing newly scored ...
    df = evalsuite.load_scores(d)
    rows = df[df.prompt_id.eq(e.prompt_id) & df.seed.eq(e.seed) & df.backend.eq(e.backend)]
    assert rows["value"].isna().all() and rows["missing_reason"].notna().all()    # ... yet the table follows
    mtime = (d / "scores" / "scores.parquet").stat().st_mtime_ns
    evalsuite.score(d, "clip", clip_model=f"{cfg}:{ckpt}", progress=False, log=lambda m: None)
    assert (d / "scores" / "scores.parquet").stat().st_mtime_ns == mtime           # unchanged inputs: not rewritten
