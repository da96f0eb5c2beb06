"""Run options as types: the CLI's flags and evalsuite.run's keyword arguments build the same RunOptions."""

from __future__ import annotations

import pytest

import evalsuite
from evalsuite.cli import build_parser
from evalsuite.plan import PlannedItem
from evalsuite.runopts import Output, RunOptions, Scoring, Selection, Spending


def test_cli_flags_and_keywords_give_the_same_options(tmp_path):
    args = build_parser().parse_args(["run", "-b", "dummy", "--prompts", "smoke", "--limit", "2", "--seeds", "0,1",
                                      "--max-cost", "1.5", "--no-score", "--run-dir", str(tmp_path / "r")])
    cli = RunOptions.from_cli(args, argv=["run"])
    kw = RunOptions.from_kwargs(prompts="smoke", limit=2, seeds=args.seeds, max_cost=1.5, score=False,
                                run_dir=str(tmp_path / "r"), argv=["run"], progress=cli.output.progress,
                                scorers=args.scorers, report=cli.scoring.report)
    assert cli.selection == kw.selection == Selection(prompts="smoke", seeds=args.seeds, limit=2)
    assert cli.spending == kw.spending == Spending(max_cost=1.5)
    assert cli.scoring.score is False and kw.scoring == Scoring(score=False, scorers=args.scorers,
                                                               report=cli.scoring.report)


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="unexpected keyword argument 'seed'"):
        RunOptions.from_kwargs(seed=3)


def test_run_with_options_equals_run_with_keywords(tmp_path):
    opts = RunOptions(selection=Selection(prompts="smoke", limit=2, seeds=[0]),
                      scoring=Scoring(score=False, report=False), output=Output(run_dir=tmp_path / "a", progress=False))
    a = evalsuite.run("dummy", options=opts, log=lambda m: None)
    b = evalsuite.run("dummy", "smoke", limit=2, seeds=[0], score=False, report=False, run_dir=tmp_path / "b",
                      progress=False, log=lambda m: None)
    assert a.total("generated") == b.total("generated") == 2
    pa = sorted(p.name for p in (tmp_path / "a" / "items").rglob("*.png"))
    pb = sorted(p.name for p in (tmp_path / "b" / "items").rglob("*.png"))
    assert pa == pb and len(pa) == 2                       # the same content-addressed items


def test_planned_item_is_typed_and_unpacks_like_the_old_tuples():
    from evalsuite.backends import make_backend
    from evalsuite.plan import Plan
    from evalsuite.prompts import load_prompt_set

    plan = Plan(None, [make_backend("dummy")], load_prompt_set("smoke", limit=2), [0, 1], None)
    rows = plan.entries["dummy"]
    assert len(rows) == 4 and all(isinstance(r, PlannedItem) for r in rows)
    entry, prompt, w, h = rows[0]
    assert (w, h) == (rows[0].width, rows[0].height) == (64, 64) and entry.prompt_id == prompt.id
