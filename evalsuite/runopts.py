"""The options of a run, grouped and typed: what to generate (Selection), what may be spent (Spending), what
happens to the items (Resume), scoring and the report (Scoring), and the run's output (Output). `RunOptions`
holds the groups; the CLI builds it from its flags (`RunOptions.from_cli(args)`), `evalsuite.run(...)`
builds it from its keyword arguments (the same names as always), and the runner reads only these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable


@dataclass(frozen=True)
class Selection:
    """Which prompts, seeds and size: every prompt x seed is one item per backend."""

    prompts: str = "core"
    seeds: Iterable[int] | str | None = None
    num_seeds: int | None = None
    categories: list[str] | None = None
    limit: int | None = None
    size: str | tuple[int, int] | None = None


@dataclass(frozen=True)
class Spending:
    """Limits on remote calls: --max-cost (USD), --rate-limit (calls per second), the confirmation above
    max_calls_without_confirm paid calls (yes), in-flight requests per remote backend, and a dry run."""

    max_cost: float | None = None
    rate_limit: float | None = None
    max_calls_without_confirm: int = 50
    yes: bool = False
    concurrency: int | None = None
    dry_run: bool = False


@dataclass(frozen=True)
class Resume:
    """What a rerun regenerates beside missing items."""

    retry_failed: bool = False
    retry_filtered: bool = False


@dataclass(frozen=True)
class Scoring:
    """Scoring after (or overlapped with) generation, then the report."""

    score: bool = True
    scorers: str | Iterable[str] | None = ("clip", "ocr")
    ocr: str | Iterable[str] | None = None
    clip_model: str | None = None
    judge: str | None = None         # the vqa scorer's judge (evalsuite/judges)
    overlap: bool | None = None      # None: on when generation does not compete with scoring for the CPU
    report: bool = True


@dataclass(frozen=True)
class Output:
    run_dir: str | Path | None = None
    progress: bool = True
    argv: list[str] | None = None
    config: dict[str, Any] | None = None   # {path, options} of `run --config FILE`, recorded in run.json


GROUPS = {"selection": Selection, "spending": Spending, "resume": Resume, "scoring": Scoring, "output": Output}


@dataclass(frozen=True)
class RunOptions:
    selection: Selection = field(default_factory=Selection)
    spending: Spending = field(default_factory=Spending)
    resume: Resume = field(default_factory=Resume)
    scoring: Scoring = field(default_factory=Scoring)
    output: Output = field(default_factory=Output)

    @classmethod
    def from_kwargs(cls, **kw: Any) -> "RunOptions":
        """The flat keyword arguments of evalsuite.run (prompts=, seeds=, max_cost=, scorers=, ...) grouped;
        an unknown name is a TypeError, as for any function."""
        groups: dict[str, dict[str, Any]] = {g: {} for g in GROUPS}
        where = {f.name: g for g, t in GROUPS.items() for f in fields(t)}
        for k, v in kw.items():
            if k not in where:
                raise TypeError(f"run() got an unexpected keyword argument '{k}'")
            groups[where[k]][k] = v
        return cls(**{g: GROUPS[g](**vals) for g, vals in groups.items()})

    @classmethod
    def from_cli(cls, args: Any, argv: list[str] | None = None) -> "RunOptions":
        """The `evalsuite run` flags (an argparse namespace) as options."""
        return cls(
            selection=Selection(prompts=args.prompts, seeds=args.seeds, num_seeds=args.num_seeds,
                                categories=args.category, limit=args.limit, size=args.size),
            spending=Spending(max_cost=args.max_cost, rate_limit=args.rate_limit,
                              max_calls_without_confirm=args.max_calls_without_confirm, yes=args.yes,
                              concurrency=args.concurrency, dry_run=args.dry_run),
            resume=Resume(retry_failed=args.retry_failed, retry_filtered=args.retry_filtered),
            scoring=Scoring(score=not args.no_score, scorers=args.scorers, ocr=args.ocr, clip_model=args.clip_model,
                            judge=getattr(args, "judge", None),
                            overlap={"auto": None, "on": True, "off": False}[args.overlap],
                            report=not args.no_report),
            output=Output(run_dir=args.run_dir, progress=not args.no_progress, argv=argv,
                          config=getattr(args, "run_config", None) or None),
        )
