"""Loading one or several run folders into the frames the report is made of.

Runs over the same prompt set merge into one comparison: backends side by side, items matched on
prompt id + seed. Runs over different prompt sets are compared on the intersection (prompts with the
same id and the same content, seeds present in every run); what is left out is explained in `notes`.
A backend label used by more than one run becomes `LABEL@RUN` (RUN = the run folder's name).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EvalsuiteError
from ..prompts import Prompt
from ..store import RunFolder, RunInfo


@dataclass
class BackendMeta:
    """What the report needs to know about one backend of one run."""

    label: str                 # the label in the report (unique across runs)
    backend: str               # the label in its run folder
    name: str                  # registry name (flux-tiny, reference, ...)
    spec: str
    run: str                   # run name
    run_dir: Path
    labelled_noise: bool
    hardware: str | None
    load_s: float | None
    config: dict[str, Any]


@dataclass
class ReportData:
    runs: list[tuple[str, Path, RunInfo]]
    prompts: dict[str, Prompt]             # the prompts compared (intersection over runs)
    seeds: list[int]
    backends: dict[str, BackendMeta]       # by report label, in run order
    records: Any                           # DataFrame: one row per planned item (status 'missing' when not generated)
    scores: Any                            # DataFrame: load_scores rows of the compared items, backend relabelled
    notes: list[str] = field(default_factory=list)

    @property
    def noise_backends(self) -> list[str]:
        return [k for k, b in self.backends.items() if b.labelled_noise]


def _run_names(paths: list[Path]) -> list[str]:
    names = [p.resolve().name or str(p) for p in paths]
    if len(set(names)) != len(names):
        names = [f"run{i + 1}-{n}" for i, n in enumerate(names)]
    return names


def load_runs(run_dirs) -> ReportData:
    """Read run folders (nothing is written) and merge them into one comparison."""
    if isinstance(run_dirs, (str, Path)):
        run_dirs = [run_dirs]
    paths = [Path(p) for p in run_dirs]
    if not paths:
        raise EvalsuiteError("report: no run folder given")
    if len({p.resolve() for p in paths}) != len(paths):
        raise EvalsuiteError("report: the same run folder is given twice")
    folders = [RunFolder(p) for p in paths]          # EvalsuiteError when not a run folder
    names = _run_names(paths)
    infos = [f.info for f in folders]
    prompt_sets = [f.prompts() for f in folders]
    notes: list[str] = []
    common = _common_prompts(names, infos, prompt_sets, notes)
    seeds = _common_seeds(names, infos, notes)
    _plan_union_notes(names, infos, notes)
    backends, relabel = _backend_labels(names, paths, infos)
    records, scores = _frames(names, folders, relabel)
    if len(paths) > 1:
        keep = lambda df: df[df["prompt_id"].isin(common) & (df["seed"].isin(seeds) | df["seed"].isna())]  # noqa: E731
        records, scores = keep(records), keep(scores)
    prompts = {pid: prompt_sets[0][pid] for pid in prompt_sets[0] if pid in common}
    return ReportData(runs=list(zip(names, paths, infos)), prompts=prompts, seeds=seeds, backends=backends,
                      records=records.reset_index(drop=True), scores=scores.reset_index(drop=True), notes=notes)


def _plan_union_notes(names, infos, notes: list[str]) -> None:
    """Which subset a report shows when the last `run` was narrower than the plan (the plan is a union of
    every invocation: entries of earlier, wider runs stay planned and are reported)."""
    for n, info in zip(names, infos):
        ps = info.prompt_set or {}
        kept, planned = ps.get("kept_from_earlier_invocations"), ps.get("planned_items")
        if kept:
            notes.append(f"run {n}: the report shows the whole plan, {planned} item(s), the union of every "
                         f"invocation; {kept} of them come from earlier invocations wider than the last one "
                         f"(--limit, --category or seeds)")


def _common_prompts(names, infos, prompt_sets, notes: list[str]) -> set[str]:
    """The prompt ids every run holds with the same content; what is left out is said in `notes`."""
    common = set(prompt_sets[0])
    for ps in prompt_sets[1:]:
        common &= set(ps)
    differing = sorted(pid for pid in common if any(ps[pid] != prompt_sets[0][pid] for ps in prompt_sets[1:]))
    if differing:
        notes.append(f"{len(differing)} prompt(s) share an id but differ in content between runs and are left out: "
                     + ", ".join(differing[:20]) + (" ..." if len(differing) > 20 else ""))
    common -= set(differing)
    if len(prompt_sets) > 1:
        sets = {n: (i.prompt_set.get("name"), i.prompt_set.get("sha256")) for n, i in zip(names, infos)}
        for n, ps in zip(names, prompt_sets):
            only = sorted(set(ps) - common - set(differing))
            if only:
                notes.append(f"{len(only)} prompt(s) only in run {n} (prompt set {sets[n][0]}), not compared: "
                             + ", ".join(only[:20]) + (" ..." if len(only) > 20 else ""))
        if len({s for s in sets.values()}) > 1 and not notes:
            notes.append("the runs name different prompt sets ("
                         + ", ".join(f"{n}: {s[0]}" for n, s in sets.items()) + ") but hold the same prompts")
        if notes:
            notes.append(f"compared on the {len(common)} prompt(s) every run holds")
        if not common:
            raise EvalsuiteError("report: the runs share no prompt (" + "; ".join(
                f"{n}: prompt set {i.prompt_set.get('name')}, {len(ps)} prompts"
                for n, i, ps in zip(names, infos, prompt_sets)) + "); nothing to compare")
    return common


def _common_seeds(names, infos, notes: list[str]) -> list[int]:
    seeds = sorted(set(infos[0].seeds).intersection(*[set(i.seeds) for i in infos[1:]]))
    if len(infos) > 1:
        for n, i in zip(names, infos):
            extra = sorted(set(i.seeds) - set(seeds))
            if extra:
                notes.append(f"seed(s) {extra} only in run {n}, not compared (items are matched on prompt id + seed)")

    return seeds


def _backend_labels(names, paths, infos) -> tuple[dict[str, BackendMeta], dict[tuple[str, str], str]]:
    """Backend labels unique across runs (label@run where two runs share one), and (run, label) -> new label."""
    count: dict[str, int] = {}
    for i in infos:
        for label in i.backends:
            count[label] = count.get(label, 0) + 1
    backends: dict[str, BackendMeta] = {}
    relabel: dict[tuple[str, str], str] = {}
    for n, p, i in zip(names, paths, infos):
        hw = i.environment.get("hardware") or i.environment.get("gpu") or i.environment.get("cpu")
        for label, b in i.backends.items():
            new = label if count[label] == 1 else f"{label}@{n}"
            relabel[(n, label)] = new
            backends[new] = BackendMeta(label=new, backend=label, name=b.name, spec=b.spec, run=n, run_dir=p,
                                        labelled_noise=b.labelled_noise, hardware=hw, load_s=b.load_s,
                                        config=dict(b.config))

    return backends, relabel


def _frames(names, folders, relabel):
    """The records and score tables of all runs, one frame each, with the run name and unique labels."""
    import pandas as pd

    from ..scoring import load_scores

    rec_frames, score_frames = [], []
    for n, f in zip(names, folders):
        r = f.records_frame()
        if not r.empty:
            r.insert(0, "run", n)
            r["run_dir"] = str(f.path)
            r["backend"] = [relabel.get((n, b), b) for b in r["backend"]]
            rec_frames.append(r)
        s = load_scores(f.path)
        if not s.empty:
            s = s.copy()
            s.insert(0, "run", n)
            s["backend"] = [relabel.get((n, b), b) for b in s["backend"]]
            score_frames.append(s)
    records = pd.concat(rec_frames, ignore_index=True) if rec_frames else pd.DataFrame(
        columns=["run", "backend", "prompt_id", "seed", "status"])
    scores = pd.concat(score_frames, ignore_index=True) if score_frames else load_scores(folders[0].path).iloc[0:0]
    return records, scores
