"""What a run folder already holds, merged with a new plan, read-only: run.json (rebuilt from the item
records when damaged or lost), the plan and prompts of earlier invocations (the plan is a union), and per
backend the items still to generate. Damaged files are listed in `heal` (path, why); the runner moves them to
quarantine/ once writing starts, never in a dry run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .check import rebuild_info, recovered_entries
from .errors import EvalsuiteError
from .generate import BackendCounts
from .plan import Plan
from .prompts import Prompt
from .store.files import stable_hash
from .store.folder import image_problem, load_json_model, scan_jsonl
from .store.records import ItemRecord, PlanEntry, RunInfo


@dataclass
class FolderState:
    """Step 2, what the folder already holds merged with the new plan (read-only until written)."""

    heal: list[tuple[str, str]]      # (path relative to run_dir, why) to quarantine before generating
    old_info: RunInfo | None
    old_plan: list[PlanEntry]
    old_prompts: dict[str, Prompt]
    new_entries: list[PlanEntry]
    kept: list[PlanEntry]            # entries of earlier invocations that stay planned
    widened: int                     # ... of which belong to these backends
    merged_prompts: dict[str, Prompt]

    @property
    def entries(self) -> list[PlanEntry]:
        return self.kept + self.new_entries


def read_old_info(run_dir: Path, heal: list[tuple[str, str]], log) -> RunInfo | None:
    """The folder's run.json; damaged or missing beside item records: rebuilt from them (and quarantined)."""
    if (run_dir / "run.json").exists():
        old_info, prob = load_json_model(run_dir / "run.json", RunInfo, "run.json")
        if prob is not None:
            log(f"{run_dir / 'run.json'}: damaged ({prob.what}); it goes to quarantine/ and is rebuilt from the "
                "item records")
            heal.append(("run.json", f"damaged run.json: {prob.what}"))
            old_info = rebuild_info(run_dir)
        return old_info
    if run_dir.exists() and (run_dir / "items").is_dir():
        log(f"{run_dir}: run.json is missing; rebuilding it from the item records")
        return rebuild_info(run_dir)
    if run_dir.exists() and any(run_dir.iterdir()):
        raise EvalsuiteError(f"{run_dir} exists and is not a run folder; use another --run-dir")
    return None


def read_old_plan(run_dir: Path, old_info: RunInfo | None, heal: list[tuple[str, str]], log):
    """(plan entries, prompts by id) already in the folder; damaged lines are listed for quarantine."""
    rows, plan_problems = scan_jsonl(run_dir / "plan.jsonl", "plan.jsonl", PlanEntry)
    old_plan = [e for _, e in rows]
    if plan_problems or (old_info is not None and not (run_dir / "run.json").is_file()) or heal:
        old_plan += recovered_entries(run_dir, old_plan)
    if plan_problems:
        for prob in plan_problems:
            log(f"{run_dir / prob.where()}: damaged plan line ({prob.what}); the plan is rebuilt from its good "
                "lines and the item records")
        heal.append(("plan.jsonl", "; ".join(str(x) for x in plan_problems[:5])))
    prows, prompt_problems = scan_jsonl(run_dir / "prompts.jsonl", "prompts.jsonl", Prompt)
    for prob in prompt_problems:
        log(f"{run_dir / prob.where()}: damaged prompt line ({prob.what}); dropped")
    if prompt_problems:
        heal.append(("prompts.jsonl", "; ".join(str(x) for x in prompt_problems[:5])))
    return old_plan, {d.id: d for _, d in prows}


def kept_entries(objs, plan: Plan, old_info: RunInfo | None, old_plan: list[PlanEntry], old_prompts,
                  new_prompts, new_entries: list[PlanEntry], size) -> list[PlanEntry]:
    """Entries of earlier invocations that stay planned (the plan is a union), except those the new plan
    replaces: the same (backend, prompt, seed), a backend whose pixel settings changed, or a changed prompt."""
    planned_now = {(e.backend, e.prompt_id, e.seed) for e in new_entries}
    same_settings = {b.label for b in objs if old_info is not None and b.label in old_info.backends
                     and stable_hash(old_info.backends[b.label].key) == stable_hash(b.key())
                     and old_info.size == (list(size) if size else None)}
    return [e for e in old_plan
            if e.backend not in plan.entries
            or (e.backend in same_settings and (e.backend, e.prompt_id, e.seed) not in planned_now
                and (e.prompt_id not in new_prompts or old_prompts.get(e.prompt_id) == new_prompts[e.prompt_id]))]


def merge_folder(run_dir: Path, objs, plan: Plan, prompt_set, size, log) -> FolderState:
    """The folder's run.json, plan and prompts merged with the new plan. Damaged files (run.json, plan or
    prompt lines) are listed in heal, to be moved to quarantine/ once writing starts (never in a dry run)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise EvalsuiteError(f"--run-dir {run_dir} is a file, not a directory; give a folder path")
    heal: list[tuple[str, str]] = []
    old_info = read_old_info(run_dir, heal, log)
    old_plan, old_prompts = read_old_plan(run_dir, old_info, heal, log)
    new_prompts = prompt_set.by_id()
    # The plan is a union: entries of earlier invocations stay (a narrower rerun with --limit, --category or
    # fewer seeds drops nothing), except those the new plan replaces: the same (backend, prompt, seed), or a
    # backend whose pixel settings changed (its old items must not mix with the new ones), or a changed prompt.
    new_entries = [row[0] for rows_ in plan.entries.values() for row in rows_]
    kept = kept_entries(objs, plan, old_info, old_plan, old_prompts, new_prompts, new_entries, size)
    widened = sum(e.backend in plan.entries for e in kept)
    if widened:
        log(f"plan: {widened} item(s) of earlier invocations of these backends stay planned (the plan is a union); "
            f"scores and reports cover all {len(kept) + len(new_entries)} planned items")
    kept_ids = {e.prompt_id for e in kept}
    for pid in kept_ids & set(new_prompts):
        if old_prompts.get(pid) is not None and old_prompts[pid] != new_prompts[pid]:
            raise EvalsuiteError(
                f"prompt '{pid}' differs from the one already in {run_dir} for other backends; "
                "use another --run-dir for the changed prompt set"
            )
    merged_prompts = {pid: old_prompts[pid] for pid in kept_ids if pid in old_prompts}
    merged_prompts.update(new_prompts)
    return FolderState(heal, old_info, old_plan, old_prompts, new_entries, kept, widened, merged_prompts)


def still_to_make(plan: Plan, run_dir: Path, retry_failed: bool, retry_filtered: bool,
                  heal: list[tuple[str, str]] | None = None, log=None):
    """Per backend: the items still to generate, and counts of what the folder already holds.

    A damaged record, or an ok record whose image is missing or truncated, makes its item one to generate;
    its files are added to `heal` (moved to quarantine/ once writing starts). Reads only."""
    todos: dict[str, list] = {}
    counts_by: dict[str, BackendCounts] = {}
    heal = heal if heal is not None else []
    for label, rows in plan.entries.items():
        counts = BackendCounts(planned=len(rows), skipped_prompts=plan.skipped[label])
        counts_by[label] = counts
        todo = []
        for entry, prompt, w, h in rows:
            rec_path = run_dir / entry.record
            if rec_path.is_file():
                rec, prob = load_json_model(rec_path, ItemRecord, entry.record)
                why = f"damaged record: {prob.what}" if prob is not None else image_problem(run_dir, rec)
                if why is not None:
                    if log is not None:
                        log(f"{run_dir / entry.record}: {why}; the item is generated again (old files go to "
                            "quarantine/)")
                    heal.append((entry.record, why))
                    if (run_dir / entry.image).is_file():
                        heal.append((entry.image, why))
                    todo.append((entry, prompt, w, h))
                    continue
                again = (retry_failed and rec.status == "failed") or (retry_filtered and rec.status == "filtered")
                if not again:
                    counts.reused += rec.status == "ok"
                    counts.failed += rec.status == "failed"
                    counts.filtered += rec.status == "filtered"
                    continue
            todo.append((entry, prompt, w, h))
        todos[label] = todo
    return todos, counts_by
