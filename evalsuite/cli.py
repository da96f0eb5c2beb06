"""Command line: a thin layer over the Python API (evalsuite.run, ...). Exit codes: 0 ok, 2 bad input,
1 an unexpected internal error (one line; `evalsuite --debug ...` or EVALSUITE_DEBUG=1 shows the trace),
130 interrupted. Every message is one line and goes through the secret redaction."""

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
    p.add_argument("--config", metavar="FILE",
                   help="a .yaml or .toml file of run options (keys as the flags, e.g. backends, prompts, num-seeds); "
                        "recorded in run.json; flags given here override it")
    p.add_argument("--backends", "-b", action="append", required=True, metavar="SPEC[,SPEC...]",
                   help="backend specs NAME[@QUANT][:key=value,...], comma-separated or repeated, e.g. "
                        "flux-dev,flux-schnell or flux-dev:steps=20,guidance=3.5 or folder:PATH "
                        "(list them with `evalsuite backends`)")
    p.add_argument("--prompts", "-p", default="core",
                   help="prompt set: a shipped set name (`evalsuite prompts list`), a path to a .yaml/.jsonl "
                        "file, or FORMAT:PATH imported on the fly (parti:, drawbench:, geneval:, dpg:, "
                        "t2i-compbench:, text:, csv:)")
    p.add_argument("--category", action="append", metavar="NAME",
                   help="keep only prompts of this category (repeatable)")
    p.add_argument("--limit", type=int, help="keep only the first N prompts (after --category)")
    p.add_argument("--seeds", help="comma-separated seeds, e.g. 0,1,2 (default 0,1; use 4+ for publishable numbers)")
    p.add_argument("--num-seeds", type=int, help="use seeds 0..N-1")
    p.add_argument("--size", help="WIDTHxHEIGHT for every backend (default: each backend's own default)")
    p.add_argument("--run-dir", "--out", "-o", dest="run_dir",
                   help="run folder, where this command writes (default: results/<prompt-set name>)")
    p.add_argument("--retry-failed", action="store_true", help="generate items that failed before again")
    p.add_argument("--retry-filtered", action="store_true",
                   help="generate items a service's safety filter refused before again")
    p.add_argument("--concurrency", type=int, metavar="N",
                   help="requests in flight per remote backend (default: each backend's own, e.g. 4)")
    p.add_argument("--yes", "-y", action="store_true",
                   help="confirm paid remote calls above --max-calls-without-confirm")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (calls per backend, estimated cost) and exit without writing anything")
    p.add_argument("--rate-limit", type=float, metavar="PER_SECOND",
                   help="at most this many remote submissions per second, across all remote backends of the run")
    p.add_argument("--max-cost", type=float, metavar="USD",
                   help="stop submitting remote calls once their estimated cost reaches USD")
    p.add_argument("--max-calls-without-confirm", type=int, default=50, metavar="N",
                   help="more paid remote calls than this need --yes")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--no-score", action="store_true", help="generate only; score later with `evalsuite score`")
    p.add_argument("--no-report", action="store_true",
                   help="write no report at the end (tables, charts, report.html in RUN_DIR/report)")
    p.add_argument("--overlap", choices=("auto", "on", "off"), default="auto",
                   help="score finished images in a worker while generation goes on (same results); auto: on when "
                        "a backend generates on CUDA or remotely, off when generation uses the CPU scoring needs")
    p.add_argument("--protocol", choices=("geneval", "dpg"), default=None,
                   help="run a published benchmark by its own rules: its prompts, 4 images per prompt (seeds 0-3) "
                        "and its scorer; writes RUN_DIR/protocol/summary.md beside the published numbers "
                        "(docs/protocols.md)")
    _add_score_options(p)
    p.set_defaults(handler=_cmd_run)


def _add_score_options(p) -> None:
    p.add_argument("--scorers", default="clip,ocr", help="scorers to run, comma-separated: clip, ocr, blank, vqa, geneval")
    p.add_argument("--ocr", default=None,
                   help="OCR engine(s): rapidocr (default), easyocr, or easyocr,rapidocr (per target the best of both)")
    p.add_argument("--clip-model", default=None,
                   help="open_clip model NAME:PRETRAINED (default ViT-L-14:openai), NAME:/path/ckpt.pt or "
                        "CONFIG.json:/path/ckpt.pt")
    p.add_argument("--judge", default=None,
                   help="VQA judge of the vqa scorer: hf:MODEL_ID[,revision=R,path=DIR,dtype=bf16,device=cuda,"
                        "offload=model|sequential,batch=N] (default hf:Qwen/Qwen2.5-VL-7B-Instruct) or "
                        "openai:BASE_URL[,model=NAME,key_env=VAR,concurrency=N,timeout=S]")


def _cmd_run(args) -> int:
    from .cliconfig import rank_log
    from .runner import run

    quiet_rank = rank_log(getattr(args, "verbose", False)) is not None

    from .runopts import RunOptions

    record = _protocol_args(args)
    result = run(args.backends, options=RunOptions.from_cli(args, argv=sys.argv[1:]),
                 **({"log": rank_log(False)} if quiet_rank else {}))
    if quiet_rank:   # rank 0 prints the totals, the scores and the report
        return 0
    print(result.summary())
    if result.scores is not None:
        print(result.scores.summary(reasons=False))
        print(result.scores.text())
    if getattr(result, "report", None) is not None:
        print(result.report.summary())
    if record is not None and not args.dry_run:
        _protocol_summary(args.run_dir, record)
    return 0


def _protocol_args(args):
    """`run --protocol NAME`: the protocol's prompts, seeds and scorers set on args (protocols.apply_protocol)."""
    if not getattr(args, "protocol", None):
        return None
    from .protocols import apply_protocol

    return apply_protocol(args.protocol, args, getattr(args, "argv", None) or sys.argv[1:])


def _protocol_summary(run_dir, record) -> None:
    from .protocol_tables import markdown, write_summary
    from .protocols import write_record

    write_record(run_dir, record)
    summary, path = write_summary(run_dir, record["protocol"])
    print(markdown(summary), end="")
    print(f"protocol table: {path}")


def _add_protocol(sub) -> None:
    p = sub.add_parser("protocol", help="a run's GenEval / DPG-Bench figures beside the published numbers",
                       description="Compute the protocol's figures of a run folder (per tag / per category, with 95% "
                                   "intervals), put them beside the published values and say which settings match; "
                                   "writes RUN_DIR/protocol/summary.md and summary.json.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--protocol", choices=("geneval", "dpg"), default=None,
                   help="which protocol (default: the one recorded by `run --protocol`)")
    p.set_defaults(handler=_cmd_protocol)


def _cmd_protocol(args) -> int:
    from .protocol_tables import markdown, write_summary

    summary, path = write_summary(args.run_dir, args.protocol)
    print(markdown(summary), end="")
    print(f"protocol table: {path}")
    return 0


def _add_report(sub) -> None:
    p = sub.add_parser(
        "report", help="tables, charts and a self-contained report.html for one or several run folders",
        description="Write the comparison tables (CSV + Markdown), charts (PNG + SVG) and one self-contained "
                    "HTML file (summary, charts, gallery with backends side by side, worst items) from run "
                    "folders. Several runs over the same prompt set merge into one comparison; different "
                    "prompt sets are compared on the prompts they share (the rest is listed).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folder(s) written by `evalsuite run`")
    p.add_argument("-o", "--out", default=None, help="output folder (default: FIRST_RUN_DIR/report)")
    p.add_argument("--embed", choices=("auto", "yes", "no"), default="auto",
                   help="thumbnails inside report.html (yes), in OUT/thumbs/ (no), or embedded up to 400 images (auto)")
    p.add_argument("--thumb-size", type=int, default=192, help="thumbnail long side in pixels")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=_cmd_report)


def _cmd_report(args) -> int:
    from .report import write_report

    embed = {"auto": "auto", "yes": True, "no": False}[args.embed]
    rep = write_report(args.run_dirs, args.out, embed=embed, thumb_size=args.thumb_size,
                       progress=not args.no_progress)
    print(rep.text())
    print(rep.summary())
    return 0


def _add_score(sub) -> None:
    p = sub.add_parser(
        "score", help="(re)score a run folder, doing only work not already done",
        description="Score every finished item of a run folder (CLIP alignment, prompt following, OCR text "
                    "accuracy) and print a per-backend table with 95% CIs over prompts. Scores are cached by "
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
                       clip_batch_size=args.clip_batch_size, progress=not args.no_progress, judge=args.judge)
    print(result.summary(reasons=False))
    print(result.text())
    return 0


def _add_backends(sub) -> None:
    p = sub.add_parser("backends", help="list the backends and what each needs")
    p.add_argument("--check", action="store_true",
                   help="also ask each service with a key set for its live model list and compare it with the "
                        "dated model tables (OpenAI: GET /v1/models with shutdown_date)")
    p.set_defaults(handler=_cmd_backends)


def _cmd_backends(args) -> int:
    from .backends import describe_backends
    from .backends.availability import availability, check_live, facts

    for name, summary in describe_backends():
        ok, why = availability(name)
        more = facts(name)
        print(f"{name:<24} {'usable' if ok else 'not usable':<10} {summary}" + (f"  ({more})" if more else "")
              + ("" if ok else f"  [{why}]"))
    if getattr(args, "check", False):
        print()
        return 1 if check_live() else 0
    return 0


def _add_prompts(sub) -> None:
    p = sub.add_parser("prompts", help="list, show, validate and import prompt sets; draft their questions",
                       description="Prompt sets: list the shipped ones, show one, validate files, import public formats, "
                                   "draft atomic questions with an LLM.")
    ps = p.add_subparsers(dest="prompts_command", required=True, metavar="ACTION")
    q = ps.add_parser("list", help="every prompt set with its counts per category")
    q.set_defaults(handler=_cmd_prompts_list)
    q = ps.add_parser("show", help="print the prompts of a set (name, path or FORMAT:PATH)")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--category", action="append", metavar="NAME", help="keep only this category (repeatable)")
    q.add_argument("--limit", type=int, help="keep only the first N prompts")
    q.add_argument("--jsonl", action="store_true", help="one JSON object per prompt instead of text")
    q.set_defaults(handler=_cmd_prompts_show)
    q = ps.add_parser("validate", help="check prompt files; exit 0 with warnings printed, 2 on errors")
    q.add_argument("paths", nargs="+", metavar="PATH", help="file, set name or FORMAT:PATH")
    q.set_defaults(handler=_cmd_prompts_validate)
    from .importers import IMPORTERS

    q = ps.add_parser("import", help="convert a public prompt file into an evalsuite prompt set",
                      description="Formats: " + ", ".join(IMPORTERS) + ". Quoted text becomes target_text; "
                                  "ids are slug + short hash of the prompt.")
    q.add_argument("format", choices=list(IMPORTERS), metavar="FORMAT", help=" | ".join(IMPORTERS))
    q.add_argument("path", metavar="PATH", help="the file (t2i-compbench: a file or a folder of .txt files)")
    q.add_argument("-o", "--out", required=True, metavar="OUT", help="output .yaml or .jsonl file")
    q.add_argument("--name", help="set name stored in the file (default FORMAT-<file stem>)")
    q.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    q.set_defaults(handler=_cmd_prompts_import)
    _add_prompts_questions(ps)


def _add_prompts_questions(ps) -> None:
    q = ps.add_parser("questions", help="draft atomic yes/no questions for a prompt set with an LLM (DSG's recipe)",
                      description="Drafts questions for every prompt without them through an OpenAI-compatible "
                                  "chat endpoint (vLLM, Ollama, OpenAI, ...): tuples, then one question per tuple, "
                                  "then their dependencies. Key from EVALSUITE_LLM_API_KEY or OPENAI_API_KEY (none "
                                  "needed for keyless local servers). Answers are cached: a rerun makes no calls.")
    q.add_argument("source", metavar="FILE", help="prompt file, set name or FORMAT:PATH")
    q.add_argument("--llm", required=True, metavar="ENDPOINT", help="base URL, e.g. http://localhost:8000/v1")
    q.add_argument("--model", help="model name at the endpoint (default: its only model)")
    q.add_argument("-o", "--out", required=True, metavar="OUT", help="output .yaml or .jsonl prompt file")
    q.add_argument("--cache", metavar="DIR", help="draft cache (default ~/.cache/evalsuite/questiongen)")
    q.add_argument("--replace", action="store_true", help="redraft prompts that already have questions")
    q.add_argument("--concurrency", type=int, default=4, metavar="N", help="prompts drafted at a time (default 4)")
    q.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q.set_defaults(handler=_cmd_prompts_questions)


def _cmd_prompts_questions(args) -> int:
    from .prompts import check_prompt_set
    from .questiongen import draft_questions

    ps, rep = draft_questions(args.source, args.out, args.llm, model=args.model, cache_dir=args.cache,
                              replace=args.replace, force=args.force, progress=not args.no_progress,
                              concurrency=args.concurrency)
    index = {p.id: i for i, p in enumerate(ps.prompts)}
    for pid, why in rep.failed.items():
        print(f"warning: {ps.source}: entry {index[pid] + 1} (id {pid!r}): no questions drafted: {why}",
              file=sys.stderr)
    for w in check_prompt_set(ps):
        print(f"warning: {w}", file=sys.stderr)
    n_q = sum(len(p.questions) for p in ps.prompts if p.id in set(rep.drafted))
    print(f"drafted {n_q} questions for {len(rep.drafted)} of {len(ps.prompts)} prompts ({len(rep.kept)} kept, "
          f"{len(rep.failed)} without drafts); {rep.calls} LLM calls, {rep.cached} answers from the cache "
          f"-> {args.out}")
    return 0


def _cmd_prompts_list(args) -> int:
    from .prompts import list_prompt_sets

    rows, errors = list_prompt_sets()
    width = max((len(name) for name, *_ in rows), default=4)
    for name, ps, path in rows:
        cats = ", ".join(f"{c} {n}" for c, n in ps.categories().items())
        print(f"{name:<{width}}  {len(ps.prompts):>4} prompts  {cats}")
    for msg in errors:
        print(f"error: {msg}", file=sys.stderr)
    return 2 if errors else 0


def _cmd_prompts_show(args) -> int:
    import json

    from .prompts import format_prompt, load_prompt_set

    ps = load_prompt_set(args.name, categories=args.category, limit=args.limit)
    if args.jsonl:
        for p in ps.prompts:
            print(json.dumps(p.model_dump(), ensure_ascii=False))
        return 0
    cats = ", ".join(f"{c} {n}" for c, n in ps.categories().items())
    print(f"{ps.name}: {len(ps.prompts)} prompts ({cats})\nsource: {ps.source}")
    if ps.description:
        print(ps.description.strip())
    for p in ps.prompts:
        print()
        print(format_prompt(p))
    return 0


def _cmd_prompts_validate(args) -> int:
    from .prompts import validate_all

    failed = 0
    for src in args.paths:
        ps, errors, warnings = validate_all(src)
        if errors:
            for e in errors:
                print(f"error: {e}", file=sys.stderr)
            if len(errors) > 1:   # one error stays one line
                print(f"failed: {src}: {len(errors)} error(s)", file=sys.stderr)
            failed += 1
            continue
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)
        print(f"ok: {ps.source}: {len(ps.prompts)} prompts in {len(ps.categories())} categories"
              + (f", {len(warnings)} warning(s)" if warnings else ""))
    return 2 if failed else 0


def _cmd_prompts_import(args) -> int:
    from .importers import import_file
    from .prompts import check_output_path, check_prompt_set, write_prompt_set

    check_output_path(args.out, args.force)
    ps = import_file(args.format, args.path)
    if args.name:
        ps = ps.model_copy(update={"name": args.name})
    out = write_prompt_set(ps, args.out, force=args.force)
    for w in check_prompt_set(ps):
        print(f"warning: {w}", file=sys.stderr)
    cats = ", ".join(f"{c} {n}" for c, n in ps.categories().items())
    targets = sum(1 for p in ps.prompts if p.target_text)
    negs = sum(1 for p in ps.prompts if p.negatives)
    print(f"imported {len(ps.prompts)} prompts ({cats}); {targets} with target text, {negs} with negatives -> {out}")
    return 0


def _add_compare_options(p) -> None:
    p.add_argument("--metrics", help="metrics to compare, comma-separated (default all: clip_score, prompt_following, "
                                     "text_exact, text_similarity, word_recall)")
    p.add_argument("--margin", action="append", metavar="METRIC=VALUE",
                   help="non-inferiority margin, repeatable (defaults: clip_score=0.5 points, prompt_following=3 and "
                        "text_exact=3 percentage points; a margin on another metric gates it too)")
    p.add_argument("--ceiling-margin-db", type=float, default=None,
                   help="fidelity gate: the candidate's PSNR must exceed the seed ceiling by this many dB "
                        "(default 3; 0 turns the gate off)")
    p.add_argument("--min-psnr", type=float, metavar="DB", help="fidelity gate: mean PSNR to the baseline at least DB")
    p.add_argument("--min-ssim", type=float, metavar="X", help="fidelity gate: mean SSIM to the baseline at least X")
    p.add_argument("--allow-missing", action="append", metavar="METRIC",
                   help="a gated metric that may be missing without making the verdict inconclusive (repeatable or "
                        "comma-separated; the verdict names it), e.g. clip_score,prompt_following offline")
    p.add_argument("--out", "-o", metavar="DIR", help="where compare.md/.json, deltas.png and regressed.html go "
                                                   "(default CANDIDATE_RUN/compare-<baseline name>/)")


def _compare_kwargs(args) -> dict:
    kw = dict(metrics=args.metrics, margins=args.margin, min_psnr=args.min_psnr, min_ssim=args.min_ssim,
              allow_missing=args.allow_missing)
    if args.ceiling_margin_db is not None:
        kw["ceiling_margin_db"] = args.ceiling_margin_db
    return kw


def _add_compare(sub) -> None:
    p = sub.add_parser(
        "compare", help="paired regression check of a candidate run against a baseline run (exit 0/1/3)",
        description="Pair the items of two run folders by (prompt, seed), check hard gates (failed or blank "
                    "candidate images), then per metric the paired delta with a CI over prompts and a "
                    "non-inferiority decision; fidelity (PSNR, SSIM) beside the seed ceiling; memory and speed. "
                    "Exit codes: 0 pass, 1 any fail, 3 inconclusive and none fail, 2 usage error. See docs/compare.md.",
    )
    p.add_argument("baseline_run", metavar="BASELINE_RUN")
    p.add_argument("candidate_run", metavar="CANDIDATE_RUN")
    p.add_argument("--pair", action="append", metavar="BASE_LABEL=CAND_LABEL",
                   help="which backends to compare (default: the only backend of each run, or the same labels)")
    _add_compare_options(p)
    p.add_argument("--clip-model", default=None, help="CLIP model for the image-image cosine (default ViT-L-14:openai)")
    p.add_argument("--no-clip", action="store_true", help="skip the CLIP image-image cosine")
    p.set_defaults(handler=_cmd_compare)


def _cmd_compare(args) -> int:
    from .compare import compare, default_out_dir, exit_code, format_verdict, write_outputs

    res = compare(args.baseline_run, args.candidate_run, pairs=args.pair, clip_model=args.clip_model,
                  fidelity_clip=not args.no_clip, progress=True, **_compare_kwargs(args))
    files = write_outputs(res, args.out or default_out_dir(args.baseline_run, args.candidate_run))
    print(format_verdict(res), end="")
    print(f"wrote {files['markdown']}, {files['json']}, {files['html']}" + (f", {files['chart']}" if "chart" in files else ""))
    return exit_code(res)


def _add_regress(sub) -> None:
    p = sub.add_parser(
        "regress", help="run baseline and candidate (e.g. a quantized variant) with identical settings, then compare",
        description="Generate and score the baseline BACKEND (reused when already in --results) and the candidate "
                    "BACKEND@QUANT (or --candidate SPEC) with identical prompts, seeds and size, then compare them. "
                    "Exit codes: 0 pass, 1 any fail, 3 inconclusive, 2 usage error. See docs/compare.md.",
    )
    p.add_argument("--backend", "-b", required=True, metavar="SPEC", help="the baseline, e.g. flux-dev or flux-dev:steps=20")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--quant", metavar="QUANT", help="candidate = BACKEND@QUANT (int8, int4, torchao-int8, fp8, nf4, ...)")
    g.add_argument("--candidate", metavar="SPEC", help="any candidate backend spec instead of --quant")
    p.add_argument("--prompts", "-p", default="core", help="prompt set (as for `evalsuite run`)")
    p.add_argument("--category", action="append", metavar="NAME", help="keep only prompts of this category")
    p.add_argument("--limit", type=int, help="keep only the first N prompts")
    p.add_argument("--seeds", help="comma-separated seeds (default 0,1)")
    p.add_argument("--num-seeds", type=int, help="use seeds 0..N-1")
    p.add_argument("--size", help="WIDTHxHEIGHT for both (default: the backend's)")
    p.add_argument("--results", default="results", help="results folder; run folders go to RESULTS/regress/")
    _add_compare_options(p)
    _add_score_options(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=_cmd_regress)


def _cmd_regress(args) -> int:
    from .compare import exit_code, format_verdict
    from .regress import regress

    res = regress(args.backend, quant=args.quant, candidate=args.candidate, prompts=args.prompts,
                  seeds=args.seeds, num_seeds=args.num_seeds, categories=args.category, limit=args.limit,
                  size=args.size, results=args.results, out_dir=args.out, scorers=args.scorers, ocr=args.ocr,
                  clip_model=args.clip_model, judge=args.judge, progress=not args.no_progress, argv=sys.argv[1:],
                  **{k: v for k, v in _compare_kwargs(args).items()})
    print(format_verdict(res), end="")
    print(f"wrote {res['files']['markdown']}, {res['files']['json']}, {res['files']['html']}")
    return exit_code(res)


def _add_agree(sub) -> None:
    p = sub.add_parser(
        "agree", help="how well each text scorer agrees with human labels (accuracy, kappa, Spearman)",
        description="Compare each OCR scorer identity's lenient text_exact with human labels (JSONL keyed by "
                    "backend+prompt_id+seed, image_sha256 or image; verdict correct|minor-errors|garbled|no-text, "
                    "label 0/1 or rating). SOURCE is a scored run folder, or a folder of labelled images whose "
                    "labels carry file and target_text (read here with --ocr). Writes agreement.json and an HTML "
                    "page of the disagreements. Example: evalsuite agree results/smoke --labels my-labels.jsonl",
    )
    p.add_argument("source", metavar="RUN_DIR", help="a scored run folder, or a folder of labelled images")
    p.add_argument("--labels", required=True, metavar="FILE", help="JSONL labels file")
    p.add_argument("--ocr", default=None, help="OCR engine(s) for a folder of images (default: rapidocr)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default: RUN_DIR/agreement for a run, ./agreement for an image folder)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_agree)


def _cmd_agree(args) -> int:
    from .agree import agree, format_agreement

    res = agree(args.source, args.labels, ocr=args.ocr, out=args.out, progress=not args.no_progress)
    print(format_agreement(res))
    print(f"wrote {res['files']['json']}, {res['files']['html']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _OneLineParser(
        prog="evalsuite",
        description="Evaluate text-to-image models: prompt following, CLIP alignment and OCR text accuracy.",
    )
    parser.add_argument("--version", action="version", version=f"evalsuite {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full trace of an unexpected error (also EVALSUITE_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(sub)
    _add_score(sub)
    _add_report(sub)
    _add_backends(sub)
    _add_prompts(sub)
    _add_compare(sub)
    _add_regress(sub)
    _add_agree(sub)
    _add_check(sub)
    _add_protocol(sub)
    return parser


class _OneLineParser(argparse.ArgumentParser):
    """Usage errors in one line (what is wrong and where to look), exit code 2."""

    def error(self, message: str):
        from .backends.remote import redact

        self.exit(2, f"{self.prog}: error: {redact(' '.join(message.split()))} (see `{self.prog} --help`)\n")


def _add_check(sub) -> None:
    p = sub.add_parser(
        "check", help="list every problem of a run folder (damaged records, plan lines, run.json, images); --repair",
        description="Check a run folder the way fsck checks a disk: run.json, prompts.jsonl and plan.jsonl line by "
                    "line, every record, every finished image (present, complete, the hash its record names), and "
                    "temporary files of killed processes. With --repair, damaged items move to RUN_DIR/quarantine/ "
                    "(the next `evalsuite run` generates them again), the plan and run.json are rebuilt from the "
                    "records. Exit code 0: no problems (or all repaired), 2: problems found.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--repair", action="store_true", help="repair what can be repaired (nothing intact is touched)")
    p.set_defaults(handler=_cmd_check)


def _cmd_check(args) -> int:
    from .check import check_run

    res = check_run(args.run_dir, repair=args.repair)
    for prob in res.problems:
        print(f"{res.path / prob.where()}: {prob.what}" + (f" [{'repaired: ' if args.repair else 'repair: '}"
                                                             f"{prob.fix}]" if prob.fix else ""))
    print(res.summary())
    if not res.problems:
        return 0
    unrepaired = [p for p in res.problems if not p.fix]
    return 0 if args.repair and not unrepaired else 2


def _non_finite(args) -> str | None:
    """The first float option given as nan or inf (argparse's float() accepts both)."""
    import math

    for k, v in vars(args).items():
        if isinstance(v, float) and not math.isfinite(v):
            return f"--{k.replace('_', '-')} must be a finite number, got {v}"
    return None


def _guarded(fn, debug: bool) -> int:
    """Run a command; every failure becomes one line on stderr (the trace only with --debug)."""
    import os

    from .backends.remote import redact

    debug = debug or os.environ.get("EVALSUITE_DEBUG", "") not in ("", "0")
    try:
        return fn()
    except EvalsuiteError as e:
        print(f"error: {redact(' '.join(str(e).split()))}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted: finished items are kept; rerun the same command to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        from .cliconfig import closed_pipe

        return closed_pipe()
    except OSError as e:  # a file or folder that cannot be read or written: the user's to fix
        if debug:
            import traceback

            traceback.print_exc()
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"error: {redact(where)}{e.strerror or type(e).__name__}" + ("" if debug else
              " (rerun with `evalsuite --debug ...` for the trace)"), file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - the top-level guard: one line, never a trace unless asked
        if debug:
            import traceback

            traceback.print_exc()
        msg = redact(" ".join(f"{type(e).__name__}: {e}".split()))[:300]
        print(f"error: unexpected {msg}" + ("" if debug else
              "; rerun with `evalsuite --debug ...` for the trace and report it"), file=sys.stderr)
        return 1


def _quiet_third_party() -> None:
    """Hide known chatter of dependencies (torch/torchao/diffusers/easyocr on CPU), each by its exact message
    (evalsuite.quiet); `-v` shows it."""
    from .quiet import install

    install()


def main(argv: list[str] | None = None) -> int:
    from .cliconfig import apply_run_config, merge_appends, polish_help

    parser = build_parser()
    polish_help(parser)
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    if not ({"-v", "--verbose"} & set(argv)):
        _quiet_third_party()
    holder: dict = {}

    def load_config() -> int:
        holder["config"] = apply_run_config(parser, argv)
        return 0

    rc = _guarded(load_config, "--debug" in argv)   # one line for a bad config file, like every other error
    if rc:
        return rc
    run_config = holder.get("config")
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:   # usage errors (one line, code 2), --help and --version (0): returned, not raised
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    merge_appends(args, run_config)
    args.run_config = run_config
    args.argv = argv
    bad = _non_finite(args)
    if bad:
        print(f"error: {bad}", file=sys.stderr)
        return 2
    return _guarded(lambda: args.handler(args), getattr(args, "debug", False))
