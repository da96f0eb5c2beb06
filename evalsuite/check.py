"""`evalsuite check RUN_DIR [--repair]`: every problem of a run folder, and the repairs that can be made.

What `fsck` is to a disk. Checked: run.json (readable, valid), prompts.jsonl and plan.jsonl (every line),
every planned item's record (readable, valid, matching its plan entry), every ok item's image (present,
complete PNG, the sha256 its record names, decodable), records no plan line points at, and temporary files
left by a killed process. Repairs (--repair): a damaged record (and its image) or an ok record whose image is
missing or broken moves to RUN_DIR/quarantine/ with a note, so the next `evalsuite run` generates that item
again; a damaged plan.jsonl is rebuilt from its good lines plus the records no line points at; a damaged
run.json is rebuilt from the records (backend labels and specs, seeds; the resolved configs come back at the
next `evalsuite run` of those backends); temporary files are removed. Nothing finished and intact is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import __version__
from .errors import EvalsuiteError
from .prompts import Prompt
from .store.files import TMP_MARK, atomic_write_json
from .store.folder import (entry_from_record, image_problem, load_json_model, quarantine, records_on_disk, scan_jsonl,
                           write_jsonl)
from .store.records import BackendInfo, ItemRecord, PlanEntry, Problem, RunInfo


@dataclass
class CheckResult:
    path: Path
    problems: list[Problem] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    items: int = 0           # planned items
    ok_images: int = 0       # ok items whose image passed every check

    def summary(self) -> str:
        if not self.problems:
            return f"{self.path}: no problems ({self.items} planned item(s), {self.ok_images} image(s) verified)"
        head = f"{self.path}: {len(self.problems)} problem(s)"
        if self.repaired:
            head += f", {len(self.repaired)} repair(s) made; rerun `evalsuite run` with the same arguments to " \
                    "generate the quarantined items again"
        elif any(p.fix for p in self.problems):
            head += f"; `evalsuite check {self.path} --repair` fixes what can be fixed"
        return head


def rebuild_info(root: Path) -> RunInfo:
    """A run.json made from the item records found on disk (used when run.json is lost or damaged)."""
    from .backends import parse_spec

    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    backends: dict[str, BackendInfo] = {}
    seeds: set[int] = set()
    for rel, rec in records_on_disk(root):
        e = entry_from_record(rel, rec)
        if e is None:
            continue
        seeds.add(e.seed)
        if rec.backend not in backends:
            try:
                name = parse_spec(rec.spec).name
            except EvalsuiteError:
                name = rec.spec.split(":")[0].split("@")[0]
            backends[rec.backend] = BackendInfo(spec=rec.spec, name=name, config={}, key={},
                                                notes=["run.json rebuilt from the item records: config unknown "
                                                       "until the next `evalsuite run` of this backend"])
    prompts, _ = scan_jsonl(root / "prompts.jsonl", "prompts.jsonl", Prompt)
    return RunInfo(evalsuite_version=__version__, created=stamp, updated=stamp,
                   prompt_set={"name": root.name, "source": "rebuilt from the item records", "sha256": None,
                               "count": len(prompts)},
                   seeds=sorted(seeds), backends=backends, environment={"rebuilt": stamp})


def recovered_entries(root: Path, plan: list[PlanEntry]) -> list[PlanEntry]:
    """Plan entries for records on disk whose (backend, prompt, seed) no plan entry covers (a lost plan line).
    Records of an item whose settings changed since (same backend, prompt and seed, another key) stay out."""
    covered = {(e.backend, e.prompt_id, e.seed) for e in plan}
    out = []
    for rel, rec in records_on_disk(root):
        e = entry_from_record(rel, rec)
        if e is not None and (e.backend, e.prompt_id, e.seed) not in covered:
            covered.add((e.backend, e.prompt_id, e.seed))
            out.append(e)
    return out


@dataclass
class _Findings:
    """What check_run found, kept for the repairs."""

    info_prob: Problem | None = None                 # run.json missing or damaged
    prompt_probs: list[Problem] = field(default_factory=list)
    plan: list[PlanEntry] = field(default_factory=list)   # the good plan lines
    plan_probs: list[Problem] = field(default_factory=list)
    recovered: list[PlanEntry] = field(default_factory=list)   # plan lines to restore from records
    to_quarantine: list[tuple[str, str]] = field(default_factory=list)   # (path, note)
    tmps: list[Path] = field(default_factory=list)


def _require_run_folder(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise EvalsuiteError(f"{root} is a file, not a run folder")
    if not root.is_dir():
        raise EvalsuiteError(f"{root} is not a run folder (the directory does not exist)")
    if not (root / "run.json").exists() and not (root / "items").is_dir():
        raise EvalsuiteError(f"{root} is not a run folder (no run.json and no items/)")


def _check_files(root: Path, found: _Findings, probs: list[Problem]) -> None:
    """run.json, prompts.jsonl and plan.jsonl (every line), and records no plan line points at."""
    prob = Problem(path="run.json", what="missing") if not (root / "run.json").is_file() else \
        load_json_model(root / "run.json", RunInfo, "run.json")[1]
    if prob is not None:
        prob.fix = "rebuilt from the item records"
        probs.append(prob)
    found.info_prob = prob
    _, found.prompt_probs = scan_jsonl(root / "prompts.jsonl", "prompts.jsonl", Prompt)
    for p in found.prompt_probs:
        p.fix = "line dropped (the file is kept in quarantine/); rerun `evalsuite run` with the prompt set to " \
                "restore the prompt"
    probs.extend(found.prompt_probs)
    rows, found.plan_probs = scan_jsonl(root / "plan.jsonl", "plan.jsonl", PlanEntry)
    found.plan = [e for _, e in rows]
    recovered = recovered_entries(root, found.plan)
    for p in found.plan_probs:
        p.fix = "plan rebuilt from its good lines and the records"
    probs.extend(found.plan_probs)
    if recovered and (found.plan_probs or prob is not None or not (root / "plan.jsonl").is_file()):
        probs.append(Problem(path="plan.jsonl", what=f"{len(recovered)} item record(s) on disk have no plan line",
                             fix="their plan lines are restored"))
        found.recovered = recovered


def _check_item(root: Path, e: PlanEntry, found: _Findings, probs: list[Problem]) -> bool:
    """One planned item's record and image; True when it is an ok item whose image passed every check."""
    rp = root / e.record
    if not rp.is_file():
        return False
    rec, rprob = load_json_model(rp, ItemRecord, e.record)
    if rprob is not None:
        rprob.fix = "moved to quarantine/; `evalsuite run` generates the item again"
        probs.append(rprob)
        found.to_quarantine.append((e.record, f"damaged record: {rprob.what}"))
        if (root / e.image).is_file():
            found.to_quarantine.append((e.image, "image of a damaged record"))
        return False
    if (rec.backend, rec.prompt_id, rec.key) != (e.backend, e.prompt_id, e.key):
        probs.append(Problem(path=e.record, what="record does not match its plan entry (backend, prompt or key)",
                             fix="moved to quarantine/; `evalsuite run` generates the item again"))
        found.to_quarantine.append((e.record, "record does not match its plan entry"))
        return False
    why = image_problem(root, rec, full=True)
    if why is not None:
        probs.append(Problem(path=rec.image or e.image, what=why,
                             fix="record and image moved to quarantine/; `evalsuite run` generates it again"))
        found.to_quarantine.append((e.record, f"ok record whose image is unusable: {why}"))
        if (root / e.image).is_file():
            found.to_quarantine.append((e.image, why))
        return False
    return rec.status == "ok"


def _check_temps(root: Path, found: _Findings, probs: list[Problem]) -> None:
    """Temporary files of a killed process (outside quarantine/)."""
    found.tmps = [p for p in root.rglob(f"*{TMP_MARK}*")
                  if p.is_file() and "quarantine" not in p.relative_to(root).parts]
    if found.tmps:
        probs.append(Problem(path=str(found.tmps[0].relative_to(root)), what=f"{len(found.tmps)} temporary file(s) "
                             "left by an interrupted process", fix="removed"))


def _repair(root: Path, found: _Findings, fixed) -> None:
    """Quarantine what is broken, rewrite prompts.jsonl and plan.jsonl, rebuild run.json, remove temp files."""
    for rel, note in found.to_quarantine:
        if quarantine(root, rel, note) is not None:
            fixed(f"quarantined {rel}")
    pprobs, plan_probs, plan, recovered = found.prompt_probs, found.plan_probs, found.plan, found.recovered
    if pprobs:
        good, _ = scan_jsonl(root / "prompts.jsonl", "prompts.jsonl", Prompt)
        quarantine(root, "prompts.jsonl", f"{len(pprobs)} damaged line(s): " + "; ".join(str(p) for p in pprobs[:3]))
        write_jsonl(root / "prompts.jsonl", [d for _, d in good])
        fixed("prompts.jsonl rewritten without its damaged lines")
    if plan_probs or recovered:
        if (root / "plan.jsonl").is_file():
            quarantine(root, "plan.jsonl", f"{len(plan_probs)} damaged line(s): "
                       + "; ".join(str(p) for p in plan_probs[:3]))
        write_jsonl(root / "plan.jsonl", plan + recovered)
        fixed(f"plan.jsonl rebuilt ({len(plan)} good line(s), {len(recovered)} restored from records)")
    if found.info_prob is not None:
        if (root / "run.json").is_file():
            quarantine(root, "run.json", f"damaged run.json: {found.info_prob.what}")
        atomic_write_json(root / "run.json", rebuild_info(root).model_dump())
        fixed("run.json rebuilt from the item records")
    for p in found.tmps:
        p.unlink(missing_ok=True)
    if found.tmps:
        fixed(f"removed {len(found.tmps)} temporary file(s)")


def check_run(run_dir: str | Path, repair: bool = False, progress: bool = False) -> CheckResult:
    """Every problem of the run folder (CheckResult.problems); with repair=True the repairs are made too."""
    root = Path(run_dir)
    _require_run_folder(root)
    res = CheckResult(path=root)
    found = _Findings()
    _check_files(root, found, res.problems)
    res.items = len(found.plan)
    for e in found.plan:
        res.ok_images += _check_item(root, e, found, res.problems)
    _check_temps(root, found, res.problems)
    if repair:
        _repair(root, found, res.repaired.append)
    return res
