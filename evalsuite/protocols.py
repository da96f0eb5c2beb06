"""Published benchmark protocols, run by their own rules (docs/protocols.md): `run --protocol geneval|dpg` sets the
prompt set, 4 images per prompt (seeds 0-3) and the scorer; `protocol_summary(run_dir)` computes the protocol's
figures per backend and puts them beside the published values with the settings that match the original's.

    geneval   GenEval's 553 prompts (shipped, MIT), the geneval scorer (scoring/geneval.py); per-tag accuracy
              and overall = mean of the six tags (metrics/geneval.py), each with a 95% interval
    dpg       DPG-Bench's 1,065 prompts from its CSV (`--prompts dpg:PATH/dpg_bench.csv`: not shipped), questions
              answered by the vqa judge (its details: scores/details/<vqa slug>/...), DPG's scoring
              (metrics/dpg.py): overall, L1 and L2 category scores

Explicit flags that change what is measured (another prompt set, other scorers) are an error; flags that change
how much or how it is sampled (--seeds/--num-seeds, --limit, --category, --size) are allowed and recorded as
deviations in RUN_DIR/protocol.json, and the table says the row does not match the original.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .errors import EvalsuiteError

GENEVAL_METADATA = Path(__file__).resolve().parent / "data" / "protocols" / "geneval" / "evaluation_metadata.jsonl"
RECORD = "protocol.json"
SEEDS = (0, 1, 2, 3)


@dataclass(frozen=True)
class Published:
    model: str
    value: float
    source: str


@dataclass(frozen=True)
class Protocol:
    name: str
    title: str
    prompts: str | None            # the prompt source; None: the user gives it (format prefix in `prompt_format`)
    prompt_format: str
    scorers: tuple[str, ...]
    original: dict[str, str]       # setting -> what the original uses
    published: tuple[Published, ...] = field(default=())


PROTOCOLS: dict[str, Protocol] = {
    "geneval": Protocol(
        "geneval", "GenEval overall (0-1)", f"geneval:{GENEVAL_METADATA}", "geneval", ("geneval",),
        {"prompts": "GenEval's 553 prompts (evaluation_metadata.jsonl)", "samples per prompt": "4",
         "seeds": "not fixed by the benchmark (each paper its own)",
         "resolution": "the model's native resolution (FLUX.1 [dev]: 1024x1024)",
         "detector": "Mask2Former Swin-S COCO (mmdet checkpoint mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco)",
         "colour model": "CLIP ViT-L-14 (OpenAI)"},
        (Published("FLUX.1 [dev]", 0.66, "later papers' GenEval tables, e.g. the Qwen-Image technical report "
                                         "(arXiv:2508.02324); 0.67 in others"),
         Published("SDXL", 0.55, "GenEval paper, Ghosh et al. 2023 (arXiv:2310.11513), Table 2"))),
    "dpg": Protocol(
        "dpg", "DPG-Bench overall (0-100)", None, "dpg", ("vqa",),
        {"prompts": "DPG-Bench's 1,065 prompts (dpg_bench.csv)", "samples per prompt": "4 (a 2x2 grid)",
         "seeds": "not fixed by the benchmark", "resolution": "the model's native resolution",
         "judge": "mPLUG-large VQA (ModelScope damo/mplug_visual-question-answering_coco_large_en)"},
        (Published("FLUX.1 [dev]", 83.84, "later papers' DPG-Bench tables, e.g. the Qwen-Image technical report "
                                          "(arXiv:2508.02324); 84.0 in others"),
         Published("SDXL", 74.65, "ELLA paper, Hu et al. 2024 (arXiv:2403.05135), DPG-Bench table"))),
}


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise EvalsuiteError(f"--protocol: unknown protocol '{name}'; choose from {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def _given(args: Any, argv: Sequence[str], dest: str, *flags: str) -> bool:
    """The user set this option: a flag on the command line or a key of the `--config` file."""
    in_config = dest in ((getattr(args, "run_config", None) or {}).get("options") or {})
    return in_config or any(a == f or a.startswith(f + "=") for a in argv for f in flags)


def apply_protocol(name: str, args: Any, argv: Sequence[str]) -> dict[str, Any]:
    """Set the protocol's prompts, seeds and scorers on the `run` arguments (an argparse namespace); returns the
    record written to RUN_DIR/protocol.json (protocol, settings, deviations). Contradicting flags: one-line error."""
    from .importers import split_import_source

    proto = get_protocol(name)
    deviations: list[str] = []
    if proto.prompts is None:
        split = split_import_source(args.prompts) if _given(args, argv, "prompts", "--prompts", "-p") else None
        if split is None or split[0] != proto.prompt_format:
            raise EvalsuiteError(f"--protocol {name}: give the benchmark's file as --prompts {proto.prompt_format}:PATH "
                                 f"({proto.original['prompts']}; it is not shipped, see docs/protocols.md)")
    elif _given(args, argv, "prompts", "--prompts", "-p"):
        raise EvalsuiteError(f"--protocol {name} sets the prompts ({proto.original['prompts']}); leave out --prompts "
                             "(use --limit or --category for a subset, recorded as a deviation)")
    else:
        args.prompts = proto.prompts
    if _given(args, argv, "scorers", "--scorers") and tuple(s.strip() for s in args.scorers.split(",")) != proto.scorers:
        raise EvalsuiteError(f"--protocol {name} scores with {', '.join(proto.scorers)}; leave out --scorers")
    args.scorers = ",".join(proto.scorers)
    if args.seeds is None and args.num_seeds is None:
        args.seeds = ",".join(map(str, SEEDS))
    else:
        deviations.append(f"seeds: {args.seeds or f'--num-seeds {args.num_seeds}'} (protocol: 4 images per prompt, "
                          "seeds 0-3)")
    for flag, label in (("limit", "--limit"), ("category", "--category")):
        if getattr(args, flag):
            deviations.append(f"{label} {getattr(args, flag)}: a subset of the prompts, not the whole benchmark")
    if args.size:
        deviations.append(f"--size {args.size}")
    if not args.run_dir:
        args.run_dir = str(Path("results") / name)
    return {"protocol": name, "deviations": deviations, "seeds": args.seeds or f"0..{args.num_seeds - 1}"}


def write_record(run_dir: str | Path, record: dict[str, Any]) -> None:
    from .runfolder import atomic_write_json

    Path(run_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(run_dir) / RECORD, record)


def read_record(run_dir: str | Path) -> dict[str, Any] | None:
    import json

    try:
        d = json.loads((Path(run_dir) / RECORD).read_text(encoding="utf-8"))
        return d if isinstance(d, dict) else None
    except (OSError, ValueError):
        return None
