"""Command line: a thin layer over the Python API (evalsuite.run, ...). Exit codes: 0 ok, 2 bad input."""

from __future__ import annotations

import argparse
import sys

from .errors import EvalsuiteError


def _add_run(sub) -> None:
    p = sub.add_parser(
        "run", help="generate every prompt x seed with each backend into a run folder (resumable)",
        description="Generate every prompt x seed of a prompt set with each backend into one run folder. "
                    "Rerunning the same command generates only what is missing.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--backends", "-b", action="append", required=True, metavar="SPEC[,SPEC...]",
                   help="backend specs NAME[@QUANT][:key=value,...], comma-separated or repeated, e.g. "
                        "flux-dev,flux-schnell or flux-dev:steps=20,guidance=3.5 or folder:PATH "
                        "(list them with `evalsuite backends`)")
    p.add_argument("--prompts", "-p", default="smoke",
                   help="prompt set: a name under prompts/ or a path to a .yaml/.jsonl file")
    p.add_argument("--category", action="append", metavar="NAME",
                   help="keep only prompts of this category (repeatable)")
    p.add_argument("--limit", type=int, help="keep only the first N prompts (after --category)")
    p.add_argument("--seeds", help="comma-separated seeds, e.g. 0,1,2 (default 0,1; use 4+ for publishable numbers)")
    p.add_argument("--num-seeds", type=int, help="use seeds 0..N-1")
    p.add_argument("--size", help="WIDTHxHEIGHT for every backend (default: each backend's own default)")
    p.add_argument("--run-dir", "-o", help="run folder (default: results/<prompt-set name>)")
    p.add_argument("--retry-failed", action="store_true", help="generate items that failed before again")
    p.add_argument("--retry-filtered", action="store_true",
                   help="generate items a service's safety filter refused before again")
    p.add_argument("--concurrency", type=int, metavar="N",
                   help="requests in flight per remote backend (default: each backend's own, e.g. 4)")
    p.add_argument("--yes", "-y", action="store_true",
                   help="confirm paid remote calls above --max-calls-without-confirm")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (calls per backend, estimated cost) and exit without writing anything")
    p.add_argument("--max-cost", type=float, metavar="USD",
                   help="stop submitting remote calls once their estimated cost reaches USD")
    p.add_argument("--max-calls-without-confirm", type=int, default=50, metavar="N",
                   help="more paid remote calls than this need --yes")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=_cmd_run)


def _cmd_run(args) -> int:
    from .runner import run

    result = run(
        args.backends, args.prompts, seeds=args.seeds, num_seeds=args.num_seeds, categories=args.category,
        limit=args.limit, size=args.size, run_dir=args.run_dir, retry_failed=args.retry_failed,
        progress=not args.no_progress, argv=sys.argv[1:], retry_filtered=args.retry_filtered,
        concurrency=args.concurrency, yes=args.yes, dry_run=args.dry_run, max_cost=args.max_cost,
        max_calls_without_confirm=args.max_calls_without_confirm,
    )
    print(result.summary())
    return 0


def _add_backends(sub) -> None:
    p = sub.add_parser("backends", help="list the backends and what each needs")
    p.set_defaults(handler=_cmd_backends)


def _cmd_backends(args) -> int:
    from .backends import describe_backends
    from .backends.availability import availability

    for name, summary in describe_backends():
        ok, why = availability(name)
        print(f"{name:<24} {'usable' if ok else 'not usable':<10} {summary}" + ("" if ok else f"  [{why}]"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="evalsuite",
        description="Evaluate text-to-image models: prompt following, CLIP alignment and OCR text accuracy.",
    )
    parser.add_argument("--version", action="version", version=f"evalsuite {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(sub)
    _add_backends(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except EvalsuiteError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted: finished items are kept; rerun the same command to resume", file=sys.stderr)
        return 130
