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
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--no-score", action="store_true", help="generate only; score later with `evalsuite score`")
    _add_score_options(p)
    p.set_defaults(handler=_cmd_run)


def _add_score_options(p) -> None:
    p.add_argument("--scorers", default="clip,ocr", help="scorers to run, comma-separated: clip, ocr")
    p.add_argument("--ocr", default="easyocr",
                   help="OCR engine(s): easyocr, rapidocr, or easyocr,rapidocr (per target the best of both)")
    p.add_argument("--clip-model", default=None,
                   help="open_clip model NAME:PRETRAINED (default ViT-L-14:openai), NAME:/path/ckpt.pt or "
                        "CONFIG.json:/path/ckpt.pt")


def _cmd_run(args) -> int:
    from .runner import run

    result = run(
        args.backends, args.prompts, seeds=args.seeds, num_seeds=args.num_seeds, categories=args.category,
        limit=args.limit, size=args.size, run_dir=args.run_dir, retry_failed=args.retry_failed,
        progress=not args.no_progress, argv=sys.argv[1:], score=not args.no_score, scorers=args.scorers,
        ocr=args.ocr, clip_model=args.clip_model,
    )
    print(result.summary())
    if result.scores is not None:
        print(result.scores.summary())
        print(result.scores.text())
    return 0


def _add_score(sub) -> None:
    p = sub.add_parser(
        "score", help="(re)score a run folder, doing only work not already done",
        description="Score every finished item of a run folder (CLIP alignment, prompt following, OCR text "
                    "accuracy) and print a per-backend table with 95% bootstrap CIs. Scores are cached by "
                    "scorer identity, image and prompt: a rescore with the same scorers computes nothing.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by `evalsuite run`")
    _add_score_options(p)
    p.add_argument("--clip-batch-size", type=int, default=None, help="images per CLIP batch (default 16)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=_cmd_score)


def _cmd_score(args) -> int:
    from .scoring import score_run

    result = score_run(args.run_dir, args.scorers, ocr=args.ocr, clip_model=args.clip_model,
                       clip_batch_size=args.clip_batch_size, progress=not args.no_progress)
    print(result.summary())
    print(result.text())
    return 0


def _add_backends(sub) -> None:
    p = sub.add_parser("backends", help="list the backends and what each needs")
    p.set_defaults(handler=_cmd_backends)


def _cmd_backends(args) -> int:
    from .backends import describe_backends

    for name, summary in describe_backends():
        print(f"{name:<16} {summary}")
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
    _add_score(sub)
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
