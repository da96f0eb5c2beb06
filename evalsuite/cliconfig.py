"""Command-line polish kept out of cli.py's command definitions: one default per help text, examples,
`run --config FILE` (YAML or TOML holding any `run` option), a quiet end when stdout is closed."""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from pathlib import Path
from typing import Any

from .errors import EvalsuiteError

EXAMPLES = {
    "run": """examples:
  evalsuite run --backends flux-tiny,reference --prompts smoke          # the offline demo
  evalsuite run -b flux-dev:steps=20,guidance=3.5 -p core --num-seeds 4
  evalsuite run -b flux-dev,replicate-flux-dev --dry-run                 # plan and price, no GPU or keys needed
  evalsuite run -b folder:exports/mj,label=midjourney -p core            # images made elsewhere
  evalsuite run --config run.yaml --num-seeds 8                          # a file of options; flags override it""",
    "score": """examples:
  evalsuite score results/core
  evalsuite score results/core --ocr easyocr,rapidocr --clip-model ViT-B-32:laion2b_s34b_b79k""",
    "report": """examples:
  evalsuite report results/core
  evalsuite report results/core results/core-int8 -o reports/int8 --embed no""",
    "backends": """examples:
  evalsuite backends""",
    "prompts": """examples:
  evalsuite prompts list
  evalsuite prompts show core --jsonl | head -3
  evalsuite prompts validate my-set.yaml           # every error of the file in one pass
  evalsuite prompts import parti PartiPrompts.tsv -o parti.yaml""",
    "compare": """examples:
  evalsuite compare results/regress/flux-dev results/regress/flux-dev@int8
  evalsuite compare BASE CAND --margin clip_score=1.0 -o compare-out""",
    "regress": """examples:
  evalsuite regress --backend flux-dev --quant int8 --prompts core --num-seeds 4
  evalsuite regress -b flux-tiny --candidate flux-tiny@int8 -p smoke -o regress-out""",
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' layout; adds '(default: X)' only where the help does not state its default and
    there is one worth saying (not None, not False)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.required and "(required" not in text:
            text += " (required)"
        if "default" in text or action.default is None or action.default is False or \
                action.default == argparse.SUPPRESS or action.option_strings == [] or isinstance(action.default, list):
            return text
        return text + " (default: %(default)s)"


def polish_help(parser: argparse.ArgumentParser, top: bool = True) -> None:
    """One default per option, examples under each command (nested ones too), `-v/--verbose` on each."""
    parser.formatter_class = HelpFormatter
    if not top and not any("--verbose" in a.option_strings for a in parser._actions):
        parser.add_argument("-v", "--verbose", action="store_true",
                            help="show more: third-party library messages, every rank's messages under torchrun")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if name in EXAMPLES and not sub.epilog:
                    sub.epilog = EXAMPLES[name]
                polish_help(sub, top=False)


def rank_log(verbose: bool):
    """Under torchrun / accelerate launch our messages come from rank 0 only (all ranks with -v): a log
    function that drops them on the other ranks, or None (the default: print to stderr)."""
    from .distributed import env_world

    rank, _, world = env_world()
    if world > 1 and rank > 0 and not verbose:
        return lambda msg: None
    return None


# ---- run --config FILE ----

NOT_IN_CONFIG = {"help", "config", "handler", "verbose"}


def _run_actions(run_parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in run_parser._actions if a.option_strings and a.dest not in NOT_IN_CONFIG}


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A mapping of `run` options from a .yaml/.yml or .toml file (keys as on the command line, '-' or '_')."""
    path = Path(path)
    if not path.is_file():
        raise EvalsuiteError(f"--config {path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise EvalsuiteError(f"--config {path}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start}); "
                             "save the file as UTF-8") from None
    except OSError as e:
        raise EvalsuiteError(f"--config {path}: cannot be read ({e.strerror or type(e).__name__})") from None
    if path.suffix == ".toml":
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise EvalsuiteError(f"{path}: not valid TOML ({e})") from None
    elif path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark else ""
            raise EvalsuiteError(f"{path}: {where}not valid YAML ({getattr(e, 'problem', e)})") from None
    else:
        raise EvalsuiteError(f"--config {path}: expected a .yaml, .yml or .toml file")
    if data is None:
        data = {}
    if isinstance(data, dict) and set(data) == {"run"} and isinstance(data["run"], dict):
        data = data["run"]   # a [run] table (TOML) or run: mapping (YAML) is the same thing
    if not isinstance(data, dict):
        raise EvalsuiteError(f"{path}: expected a mapping of run options (e.g. backends: flux-dev)")
    return data


def _convert(path: Path, key: str, value: Any, action: argparse.Action) -> Any:
    where = f"{path}: option '{key}'"
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if not isinstance(value, bool):
            raise EvalsuiteError(f"{where}: expected true or false, got {value!r}")
        return value if isinstance(action, argparse._StoreTrueAction) else not value
    if isinstance(action, argparse._AppendAction):
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in items):
            raise EvalsuiteError(f"{where}: expected a string or a list of strings, got {value!r}")
        return [str(v) for v in items]
    if isinstance(value, list) and action.dest == "seeds":
        value = ",".join(str(v) for v in value)
    if isinstance(value, (dict, list)) or isinstance(value, bool):
        raise EvalsuiteError(f"{where}: expected a single value, got {value!r}")
    if action.type in (int, float):
        ok = isinstance(value, (int, str)) if action.type is int else isinstance(value, (int, float, str))
        try:
            if not ok:
                raise ValueError
            value = action.type(value)
        except ValueError:
            raise EvalsuiteError(f"{where}: {value!r} is not a valid {action.type.__name__}") from None
    else:
        value = str(value)
    if action.choices is not None and value not in action.choices:
        raise EvalsuiteError(f"{where}: must be one of {', '.join(map(str, action.choices))}, got {value!r}")
    return value


def config_values(path: str | Path, run_parser: argparse.ArgumentParser) -> dict[str, Any]:
    """Validated run options of a config file, by argparse dest; one-line errors naming the file and key."""
    path = Path(path)
    actions = _run_actions(run_parser)
    out: dict[str, Any] = {}
    for raw_key, value in load_config_file(path).items():
        key = str(raw_key).replace("-", "_")
        if key not in actions:
            close = difflib.get_close_matches(key, list(actions), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise EvalsuiteError(f"{path}: '{raw_key}' is not a run option{hint} (see `evalsuite run --help`)")
        out[key] = _convert(path, str(raw_key), value, actions[key])
    return out


class _PreParseError(Exception):
    pass


class _SilentParser(argparse.ArgumentParser):
    """Finds --config before the real parse; its errors are left to the real parser (nothing printed here)."""

    def error(self, message):
        raise _PreParseError(message)


def apply_run_config(parser: argparse.ArgumentParser, argv: list[str]) -> dict[str, Any] | None:
    """When `run --config FILE` is given: make the file's options the parser's defaults (so command-line
    flags override them) and return {path, options} for run.json; None without --config."""
    i = next((k for k, a in enumerate(argv) if not a.startswith("-")), None)   # after top-level flags (--debug)
    if i is None or argv[i] != "run":
        return None
    pre = _SilentParser(add_help=False)
    pre.add_argument("--config")
    try:
        known, _ = pre.parse_known_args(argv[i + 1:])
    except _PreParseError:   # `--config` without a value: the real parser says so, in one line
        return None
    if not known.config:
        return None
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    run_parser = sub.choices["run"]
    values = config_values(known.config, run_parser)
    actions = _run_actions(run_parser)
    defaults = {}
    for dest, value in values.items():
        action = actions[dest]
        if isinstance(action, argparse._AppendAction):
            continue   # appended to by the command line: merged after parsing (flags replace the file's list)
        defaults[dest] = value
    run_parser.set_defaults(**defaults)
    if "backends" in values:
        actions["backends"].required = False
    return {"path": str(Path(known.config).resolve()), "options": values}


def merge_appends(args: argparse.Namespace, config: dict[str, Any] | None) -> None:
    """List options (--backends, --category) from the config file where the command line gave none."""
    if not config:
        return
    for dest, value in config["options"].items():
        if isinstance(value, list) and getattr(args, dest, None) is None:
            setattr(args, dest, value)


def closed_pipe() -> int:
    """stdout's reader went away (`| head`): stop quietly, like a tool killed by SIGPIPE (exit 141)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())   # the interpreter's final flush must not fail again
    except (OSError, ValueError):
        pass
    return 141
