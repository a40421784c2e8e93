"""The ``studio`` command (the contract in DESIGN.md: names and JSON shapes are stable).

Every command takes ``--workspace DIR`` and, where it reports, ``--json`` (one JSON object on
stdout, nothing else there).  A user's mistake is one sentence on stderr and exit code 2.

Each option is declared once (``OPTIONS``); each command is one handler registered with the
options it takes (``@command``).  The media and their words come from the registry, never from here.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from typing import Any, Callable

from .settings import HELD_OUT_SEED, TUNE_FROM

def _param(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"'{text}' is not KEY=VALUE")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _scorer_option(text: str) -> tuple[str, str, Any]:
    """``SCORER.KEY=VALUE`` (VALUE as JSON when it reads as JSON, else the text) -> (scorer, key, value)."""
    name, value = _param(text)
    scorer, dot, key = name.rpartition(".")  # a module:function scorer may hold dots; the key does not
    if not dot or not scorer or not key:
        raise argparse.ArgumentTypeError(f"'{text}' is not SCORER.KEY=VALUE (e.g. palette.colors='[\"red\"]')")
    return scorer, key, value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None


@dataclasses.dataclass(frozen=True)
class Option:
    flags: tuple[str, ...]
    kwargs: dict[str, Any]

    def add(self, parser: argparse.ArgumentParser, **override: Any) -> None:
        parser.add_argument(*self.flags, **{**self.kwargs, **override})


def _opt(*flags: str, **kwargs: Any) -> Option:
    return Option(flags, kwargs)


def _media_words() -> tuple[str, dict[str, type]]:
    """The installed media's names for help texts, from the registry (cheap: no torch)."""
    from . import media

    try:
        classes = media.classes()
    except Exception:  # a broken plugin must not break --help
        classes = {}
    return ", ".join(classes) or "none installed", classes


# every option, once: (flags, argparse keywords).  Help that names media is filled in from the registry.
OPTIONS: dict[str, Option] = {
    "workspace": _opt("--workspace", metavar="DIR",
                      help="workspace folder (default: $STUDIO_HOME, else ~/.local/share/studio)"),
    "json": _opt("--json", action="store_true", help="print one JSON object on stdout and nothing else"),
    "medium": _opt("medium", metavar="MEDIUM", help="{media}"),
    "prompt": _opt("--prompt", required=True, help="what to make (compare and loop: both sides get it)"),
    "n": _opt("-n", type=int, default=8, help="number of candidates (default %(default)s)"),
    "seed": _opt("--seed", type=int, default=0, help="first seed; candidate i uses seed+i (default 0)"),
    "version": _opt("--version", default="base", help="the version to generate with: base or vN (default base)"),
    "model": _opt("--model", metavar="ID_OR_PATH",
                  help="base model: a local folder, a single .safetensors checkpoint or a hub id in the cache "
                       "(default: the last one used, else the built-in; see studio models list)"),
    "series": _opt("--series", metavar="NAME",
                   help="the series (a project) to work in: new batches join it and a tune learns from its kept "
                        "set only; it stays the medium's current series (default: the current one, main at first)"),
    "lora": _opt("--lora", action="append", default=[], metavar="FILE[:STRENGTH]",
                 help="a community LoRA file (kohya or diffusers) at STRENGTH, -2 to 2 (default 1), the same as "
                      "--param loras=[...] ({loras}); repeat for several"),
    "param": _opt("--param", action="append", type=_param, default=[], metavar="KEY=VALUE",
                  help="a generation setting, e.g. steps=20 (see studio settings MEDIUM); repeat"),
    "setting": _opt("--setting", action="append", type=_param, default=[], metavar="KEY=VALUE",
                    help="a tune setting, e.g. epochs=8 or objective=sft (see studio settings MEDIUM); repeat"),
    "strength": _opt("--strength", type=_number, default=None, metavar="S",
                     help="a version's strength, 0 (the base) to 1.5 (default 1: as tuned)"),
    "adapter_from": _opt("--adapter-from", type=_number, metavar="F",
                         help="the same as --param adapter_from=F ({adapter_from})"),
    "scorer": _opt("--scorer", action="append", default=[], metavar="S",
                   help="built-in scorer name or module:function, optionally =WEIGHT; repeat to combine"),
    "scorer_option": _opt("--scorer-option", action="append", type=_scorer_option, default=[],
                          metavar="SCORER.KEY=VALUE",
                          help="an option of one of the --scorer scorers, e.g. palette.colors='[\"red\"]' or "
                               "key.key='D minor' (VALUE as JSON, else text; studio settings MEDIUM lists "
                               "each scorer's options); "
                               "repeat"),
    "threshold": _opt("--threshold", type=_number, metavar="X",
                      help="keep threshold in [0, 1] (default: the upper quarter of the base's scores)"),
    "temperature": _opt("--temperature", type=_number, default=0.05, metavar="T",
                        help="the keep rule's softness; 0 is a hard threshold, inf keeps everything (default 0.05)"),
    "keep": _opt("--keep", choices=("spread", "all"), default="spread",
                 help="among what the rule keeps: spread drops near-duplicates of a better candidate, "
                      "all keeps them (default spread; compare ignores it)"),
    "top": _opt("--top", type=_number, metavar="FRACTION",
                help="the threshold at the batch's top share instead of a fixed number (0.25 = the top quarter; "
                     "it still picks after a tune lifts every score; --temperature 0 keeps exactly that share, a "
                     "softer rule some just under it too)"),
    "best_of": _opt("--best-of", type=int, metavar="K", help="keep the top K per prompt instead of the threshold rule"),
    "accept": _opt("--accept", nargs="+", action="extend", default=[], metavar="ID",
                   help="keep one or more candidates by hand (the flag may repeat)"),
    "reject": _opt("--reject", nargs="+", action="extend", default=[], metavar="ID",
                   help="drop one or more candidates by hand (the flag may repeat)"),
    "batch": _opt("--batch", type=int, help="the batch to curate (default: the latest)"),
    "from": _opt("--from", dest="from_version", default="base",
                 help="version to start from: base, vN, or a LoRA .safetensors file (kohya or diffusers) whose "
                      "weights start the new version (default base)"),
    "steps": _opt("--steps", type=int, help="optimisation steps (default: follow the kept set, the medium's passes)"),
    "rank": _opt("--rank", type=int, help="LoRA rank (default: the medium's)"),
    "lr": _opt("--lr", type=_number, help="learning rate (default: the medium's)"),
    "detach": _opt("--detach", action="store_true", help="start the tune and return its job id at once"),
    "after": _opt("--after", required=True, help="the version to judge, vN"),
    "before": _opt("--before", default="base", help="the version to judge against (default base)"),
    "rounds": _opt("--rounds", type=int, default=1, help="rounds (default 1)"),
    "tune_from": _opt("--tune-from", choices=TUNE_FROM, default="last",
                      help="each round's tune starts from the version before (last, the default) or from the base "
                           "on everything kept so far (base)"),
    "export_version": _opt("--version", required=True, help="vN (or base, for the kept set only)"),
    "format": _opt("--format", required=True, dest="fmt", metavar="FORMAT", help="{formats}"),
    "out": _opt("--out", required=True, metavar="DIR", help="folder to write into"),
    "job": _opt("job", help="job id (see studio jobs)"),
    "host": _opt("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)"),
    "port": _opt("--port", type=int, default=7860, help="port (default 7860)"),
    "auth": _opt("--auth", metavar="USER:PASSWORD", help="require this login; needed for a non-local --host "
                                                          "(shows in ps: prefer --auth-file or $STUDIO_AUTH)"),
    "auth_file": _opt("--auth-file", metavar="FILE", help="read USER:PASSWORD from the first line of FILE"),
    "train_out": _opt("--out", metavar="DIR",
                      help="where to write it (default: the model cache, MEDIUM-built-in; use it with --model)"),
    "device": _opt("--device", default=None, help="cpu or cuda (default: cuda when there is one)"),
    "train_seed": _opt("--seed", type=int, default=0, help="training seed (default 0)"),
    "models_action": _opt("action", choices=("list", "pull", "add-folder", "remove"),
                          help="list: built-in, cached, added-folder and starter models (TARGET: a medium); "
                               "pull: download a hub model's safetensors (TARGET: OWNER/NAME; resumes, Ctrl-C "
                               "stops); add-folder: add a folder of checkpoints, LoRAs or models (TARGET: DIR); "
                               "remove: forget an added folder (its files stay) or delete a pulled model from "
                               "the cache (TARGET: DIR or OWNER/NAME)"),
    "models_target": _opt("target", nargs="?", metavar="TARGET", help="see ACTION"),
}
RULE = ("scorer", "scorer_option", "threshold", "temperature", "keep")


@dataclasses.dataclass(frozen=True)
class Command:
    name: str
    help: str
    options: tuple[str, ...]
    run: Callable[[argparse.Namespace], int]
    workspace: bool = True  # opens the workspace (a Studio) before the handler runs
    overrides: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, *options: str, workspace: bool = True, **overrides: dict[str, Any]):
    """Register ``fn(args, studio)`` (or ``fn(args)`` without a workspace) as ``studio NAME``."""
    def register(fn: Callable) -> Callable:
        COMMANDS[name] = Command(name, help, ("workspace", "json", *options), fn, workspace, overrides)
        return fn
    return register


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line on stderr (no usage block), exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        message = message[:1].upper() + message[1:] if message else "Bad arguments"
        sys.stderr.write(f"error: {self.prog}: {message.rstrip('.')}; see {self.prog} --help.\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    names, classes = _media_words()
    formats = "; ".join(f"{n}: {', '.join(c.export_formats)}" for n, c in classes.items()) or "see the medium"
    with_start = [n for n, c in classes.items() if "adapter_from" in c.generate_settings.names()]
    with_loras = [n for n, c in classes.items() if "loras" in c.generate_settings.names()]
    words = {"media": f"one of the installed media: {names}", "formats": formats,
             "adapter_from": ", ".join(with_start) or "no installed medium takes it",
             "loras": ", ".join(with_loras) or "no installed medium takes it"}
    parser = _Parser(prog="studio", description="Generate, keep the good ones by rejection sampling or by hand, "
                                                "fine-tune (LoRA) on them and compare: " + names + ".")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for cmd in COMMANDS.values():
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        for key in cmd.options:
            option = OPTIONS[key]
            extra = dict(cmd.overrides.get(key, {}))
            if "{" in option.kwargs.get("help", "") and "help" not in extra:
                extra["help"] = option.kwargs["help"].format(**words)
            option.add(p, **extra)
    return parser


def _json_safe(value: Any) -> Any:
    """``value`` with every number JSON cannot hold (inf, nan) as null, so any strict parser reads it.

    An infinite temperature (keep everything) is reported as null, as is a figure with no value."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _emit(args: argparse.Namespace, result: dict[str, Any], human: str) -> None:
    if args.json:
        json.dump(_json_safe(result), sys.stdout, default=str, allow_nan=False)
        sys.stdout.write("\n")
    else:
        print(human)


def _progress(args: argparse.Namespace):
    def show(info: dict[str, Any]) -> None:
        if info.get("event") in ("curated",):
            variety = info.get("kept_diversity")
            print(f"round {info['round']}: accepted {info['accepted']}/{info['n']}"
                  + (f", kept set's variety {variety:.3f}" if variety is not None else ""), file=sys.stderr)
            return
        loss = info.get("loss")
        left = info.get("seconds_left")
        print(f"tune {info.get('version', '')} step {info['step']}/{info['steps']}"
              + (f" loss {loss:.4f}" if loss is not None else "")
              + (f" ~{left:.0f}s left" if left is not None else ""), file=sys.stderr)
    return show


def _side(label: str, side: dict[str, Any]) -> str:
    line = (f"{label:>7}: acceptance {side['acceptance_rate']:.2f}  mean score {side['mean_score']:.3f}  "
            f"diversity {side['diversity']:.3f}")
    if side.get("variety_vs_kept") is not None:
        line += f"  variety vs kept {side['variety_vs_kept']:.2f}"
    if side.get("copies") is not None:
        line += f"  copies {side['copies']:.0%}"
    if side.get("unfinished") is not None:
        line += f"  cut off {side['unfinished']:.0%}"
    if side.get("looping") is not None:
        line += f"  loops {side['looping']:.0%}"
    return line


def _spread(result: dict[str, Any]) -> list[str]:
    """The word the tuned side holds most beyond the keeps and the base, as a line (none where not told)."""
    spread = result.get("spread")
    if not spread:
        return []
    return [f"   word: '{spread['word']}' in {spread['after']:.0%} after, {spread['before']:.0%} before, "
            f"{spread['kept']:.0%} of the keeps"]


def _device(name: str | None) -> str:
    """``cpu``, ``cuda`` or ``cuda:N`` that this machine has; one sentence otherwise."""
    import torch

    from .errors import StudioError

    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise StudioError(f"Unknown device '{name}'; use cpu or cuda.") from None
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise StudioError(f"This machine has no {name} device; use cpu.")
    if device.type not in ("cpu", "cuda"):
        raise StudioError(f"The device '{name}' is not supported; use cpu or cuda.")
    return str(device)


# -- the commands, one handler each ----------------------------------------------------------
@command("serve", "open the studio app in the browser", "host", "port", "auth", "auth_file", workspace=False)
def serve_command(args: argparse.Namespace) -> int:
    from .app import security
    from .engine import Studio

    auth = security.read_auth(args.auth, args.auth_file)
    security.check_host(args.host, auth and security.parse_auth(auth))
    security.check_address(args.host, args.port)
    Studio(args.workspace).store.close()  # an unusable workspace: one sentence before the app starts
    from .app import serve

    serve(workspace=args.workspace, host=args.host, port=args.port, auth=auth)
    return 0


def _choose(args: argparse.Namespace, studio) -> None:
    """``--model`` and ``--series`` become the medium's current ones before the command runs."""
    if getattr(args, "model", None):
        studio.use_model(args.medium, args.model)
    if getattr(args, "series", None) is not None:
        studio.use_series(args.medium, args.series)


@command("generate", "generate candidates", "medium", "prompt", "n", "seed", "version", "model", "series", "param",
         "strength", "adapter_from", "lora")
def generate_command(args: argparse.Namespace, studio) -> int:
    _choose(args, studio)
    warning = studio.prompt_warning(args.medium, args.prompt, version=args.version)
    if warning:  # e.g. a Chinese prompt to an English-only model: said before the wait, on stderr
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    cands = studio.generate(args.medium, args.prompt, n=args.n, seed=args.seed, version=args.version,
                            params=_params(args), strength=args.strength)
    result = {"candidates": [c.summary() for c in cands],
              "model": cands[0].model if cands else studio.current_model(args.medium),
              **({"warning": warning} if warning else {})}
    _emit(args, result, "\n".join(f"{c.id}  seed {c.seed}  {c.path}" for c in cands)
          + (f"\nmade by {result['model']}" if cands else ""))
    return 0


@command("curate", "keep or drop the latest batch, by the rule and by hand", "medium", *RULE, "top", "best_of",
         "accept", "reject", "batch", "series")
def curate_command(args: argparse.Namespace, studio) -> int:
    _choose(args, studio)
    result = studio.curate(args.medium, args.scorer, args.threshold, args.temperature, args.best_of,
                           args.accept, args.reject, batch=args.batch, keep=args.keep, top=args.top,
                           options=_scorer_options(args))
    _emit(args, result, f"kept {len(result['accepted'])}, dropped {len(result['rejected'])}, "
                        f"acceptance rate {result['acceptance_rate']:.2f}; "
                        f"{result['curated_total']} in the kept set of the series {result['series']}"
                        + (f"\nwarning: {result['warning']}" if result.get("warning") else ""))
    return 0


@command("tune", "fine-tune a LoRA on the kept set", "medium", "from", "model", "series", "steps", "rank", "lr",
         "setting", "detach")
def tune_command(args: argparse.Namespace, studio) -> int:
    _choose(args, studio)
    job = studio.start_tune(args.medium, args.from_version, args.steps, args.rank, args.lr, dict(args.setting))
    if args.detach:
        result = {"job": job, "version": studio.store.job(job)["version"], "status": "running"}
        _emit(args, result, f"started {result['version']} as job {job}")
        return 0
    result = studio.tune_result(args.medium, job, args.from_version,
                                studio.wait_tune(job, None if args.json else _progress(args)))
    left_out = (f"; left out {result['copies_left_out']} kept that copy an earlier kept one"
                if result["copies_left_out"] else "")
    dropped = f" and {result['dropped']} dropped ({result['objective']})" if result["dropped"] else ""
    note = f"\n{result['note']}" if result.get("note") else ""
    _emit(args, result, f"made {result['version']} from {args.from_version} on {result['curated']} kept{dropped} "
                        f"candidates in {result['seconds']:.0f}s (final loss {result['loss']:.4f}){left_out}{note}")
    return 0


@command("compare", "before/after on the same held-out seeds", "medium", "after", "before", "prompt", "n", "seed",
         "model", *RULE, "top", "strength", "param", "adapter_from", "lora",
         n={"default": 16}, seed={"default": HELD_OUT_SEED, "help": "first seed, as the page's Compare; seeds a tune "
                                                              "learned from are skipped (default %(default)s)"},
         top={"help": "judge both sides by the before side's top share instead of a fixed threshold (0.25 = its "
                      "top quarter: the page's 'top share of the batch')"})
def compare_command(args: argparse.Namespace, studio) -> int:
    _choose(args, studio)
    result = studio.compare(args.medium, after=args.after, before=args.before, prompt=args.prompt, n=args.n,
                            seed=args.seed, scorers=args.scorer, threshold=args.threshold,
                            temperature=args.temperature, strength=_strength(args), params=_params(args),
                            options=_scorer_options(args), top=args.top)
    _emit(args, result, "\n".join([result["verdict"], _side("before", result["before"]),
                                    _side("after", result["after"]), *_spread(result)]))
    return 0


@command("loop", "rounds of generate, keep, tune; then compare on held-out seeds", "medium", "prompt", *RULE, "top",
         "rounds", "tune_from", "n", "steps", "seed", "model", "series", "strength", "param", "adapter_from", "lora",
         "setting",
         n={"default": 32},
         seed={"help": "first training seed; the comparison uses held-out seeds from 1000000 + SEED (default 0)"},
         top={"help": "keep each round's top share of its own batch instead of a threshold fixed from the base's "
                      "first batch (0.25 = the top quarter); the comparison judges both sides by the base side's"})
def loop_command(args: argparse.Namespace, studio) -> int:
    _choose(args, studio)
    result = studio.loop(args.medium, args.prompt, args.scorer, args.threshold, args.temperature,
                         rounds=args.rounds, n=args.n, steps=args.steps, seed=args.seed, strength=_strength(args),
                         options=_scorer_options(args), top=args.top,
                         keep=args.keep, params=_params(args), settings=dict(args.setting), tune_from=args.tune_from,
                         on_event=None if args.json else _progress(args))
    notes = [f"round {r['round']}: {r['note']}" for r in result["rounds"] if r.get("note")]  # e.g. a look's stop
    _emit(args, result, "\n".join([*notes, result["verdict"], _side("before", result["before"]),
                                    _side("after", result["after"]), *_spread(result)]))
    return 0


@command("export", "export a version's adapter or the kept set", "medium", "export_version", "format", "out")
def export_command(args: argparse.Namespace, studio) -> int:
    result = studio.export(args.medium, args.version, args.fmt, args.out)
    _emit(args, result, "\n".join(result["files"]))
    return 0


@command("versions", "list a medium's versions and rounds", "medium")
def versions_command(args: argparse.Namespace, studio) -> int:
    medium = args.medium
    versions = [{"name": "base", "model": studio.current_model(medium)}] + [
        {"name": v.name, "parent": v.parent, "model": v.model, "curated": len(v.curated),
         "settings": v.settings, "metrics": v.metrics, "path": v.path} for v in studio.store.versions(medium)]
    result = {"versions": versions, "rounds": studio.store.rounds(medium)}
    _emit(args, result, "\n".join(f"{v['name']}  {v.get('parent') or ''}" for v in versions))
    return 0


@command("settings", "list a medium's generation and tune settings: default, range, help", "medium",
         workspace=False)
def settings_command(args: argparse.Namespace) -> int:
    from . import media, scoring

    the_medium = media.get(args.medium)
    result = {"generate": the_medium.generate_settings.describe(), "tune": the_medium.tune_settings.describe(),
              "scorers": scoring.describe(the_medium)}
    lines = []
    for part in ("generate", "tune"):
        lines.append(f"{part} (--{'param' if part == 'generate' else 'setting'} KEY=VALUE):")
        lines += [f"  {f['name']} = {json.dumps(f['default'])}  ({f['takes']}): {f['help']}" for f in result[part]]
    lines.append("scorers (--scorer NAME[=WEIGHT], --scorer-option NAME.KEY=VALUE):")
    lines += [f"  {s['name']}" + (f" [options: {', '.join(s['options'])}]" if s["options"] else "") + f": {s['help']}"
              for s in result["scorers"]]
    _emit(args, result, "\n".join(lines))
    return 0


@command("jobs", "list tune jobs and their state")
def jobs_command(args: argparse.Namespace, studio) -> int:
    from . import runner

    jobs = [runner.status(studio.store, j["id"]) for j in studio.store.jobs()]
    for j in jobs:
        j.pop("losses", None)
    _emit(args, {"jobs": jobs}, "\n".join(f"{j['job']}  {j['medium']}  {j['version']}  {j['status']}  "
                                          f"{j['step']}/{j['steps']}" for j in jobs))
    return 0


@command("resume", "continue an interrupted tune from its last checkpoint", "job")
def resume_command(args: argparse.Namespace, studio) -> int:
    from . import runner

    runner.resume(studio.store, args.job)
    info = studio.wait_tune(args.job, None if args.json else _progress(args))
    _emit(args, {"job": args.job, "version": info["version"], "steps": info["steps"], "loss": info["loss"]},
          f"finished {info['version']}")
    return 0


@command("cancel", "cancel a running tune (a checkpoint is kept)", "job")
def cancel_command(args: argparse.Namespace, studio) -> int:
    from . import runner

    info = runner.cancel(studio.store, args.job)
    info.pop("losses", None)
    _emit(args, info, f"{args.job}: {info['status']}")
    return 0


@command("train-defaults", "retrain a medium's built-in model (into the model cache)", "medium", "train_out",
         "device", "train_seed", workspace=False)
def train_defaults_command(args: argparse.Namespace) -> int:
    import importlib
    from pathlib import Path

    from . import media
    from .errors import StudioError
    from .paths import model_cache

    ref = media.reference(args.medium)
    try:
        trainer = importlib.import_module(ref.split(":")[0] + ".defaults")
    except ModuleNotFoundError:
        raise StudioError(f"The {args.medium} medium has no built-in model to train.") from None
    out = Path(args.out) if args.out else model_cache(f"{args.medium}-built-in")
    device = _device(args.device)
    if args.seed < 0 or args.seed > 2**32 - 1:
        raise StudioError(f"The seed must be between 0 and {2**32 - 1}, not {args.seed}.")
    if out.exists() and not out.is_dir():
        raise StudioError(f"The output {out} is a file, not a folder.")
    result = trainer.train(out, device=device, seed=args.seed)
    _emit(args, {"medium": args.medium, "out": str(out), **(result or {})}, f"wrote {out}")
    return 0


@command("models", "the model library: list, pull, add-folder, remove (docs/cli-models.md)", "models_action",
         "models_target", workspace=False)
def models_command(args: argparse.Namespace) -> int:
    import time

    from . import library, media
    from .errors import StudioError
    from .store import Store, default_workspace

    if args.action != "list" and not args.target:
        raise StudioError(f"studio models {args.action} needs its TARGET; see studio models --help.")
    if args.action == "pull":
        started, last = time.monotonic(), {"shown": -1, "at": 0.0}

        def show(done: int, total: int) -> None:  # a line when the share moves, else one every 10 s
            share = done * 100 // max(1, total)
            if share != last["shown"] or time.monotonic() - last["at"] > 10:
                last.update(shown=share, at=time.monotonic())
                print(library.progress_line(done, total, started), file=sys.stderr, flush=True)

        result = library.pull(args.target, on_progress=show)
        _emit(args, result, f"pulled {args.target} into {result['path']}; use it with --model {args.target}")
        return 0
    if args.action == "list" and args.target is not None and args.target != "scorer":
        media.reference(args.target)  # an unknown medium: one sentence naming the installed ones
    store = Store(args.workspace if args.workspace is not None else default_workspace())
    try:
        lib = library.Library(store)
        if args.action == "list":
            entries = lib.entries(args.target)
            _emit(args, {"models": [e.to_json() for e in entries], "folders": lib.folders()},
                  "\n".join(f"{e.medium or '?':<7} {e.kind:<9} {e.format or '-':<10} "
                            f"{'' if e.installed else '(not pulled) '}{e.id}" for e in entries))
        elif args.action == "add-folder":
            found = lib.add_folder(args.target)
            _emit(args, {"folders": lib.folders(), "found": [e.to_json() for e in found]},
                  f"added {args.target}: {len(found)} models")
        else:
            result = lib.remove(args.target)
            _emit(args, result, f"removed {result['removed']}"
                  + (f" ({result['freed_bytes'] / 1e6:,.0f} MB freed)" if result["freed_bytes"] else ""))
    finally:
        store.close()
    return 0


def _scorer_options(args: argparse.Namespace) -> dict[str, dict[str, Any]] | None:
    """``--scorer-option`` as the engine's options by scorer; one sentence for a scorer not among ``--scorer``."""
    if not args.scorer_option:
        return None
    from . import scoring
    from .errors import StudioError

    named = {scoring.ScorerSpec.parse(s).name for s in args.scorer}
    options: dict[str, dict[str, Any]] = {}
    for scorer, key, value in args.scorer_option:
        if scorer not in named:
            raise StudioError(f"--scorer-option {scorer}.{key} is for the scorer '{scorer}', which is not among the "
                              f"--scorer scorers ({', '.join(sorted(named)) or 'none given'}).")
        options.setdefault(scorer, {})[key] = value
    return options


def _params(args: argparse.Namespace) -> dict[str, Any]:
    params = dict(args.param)
    if getattr(args, "adapter_from", None) is not None:
        params["adapter_from"] = args.adapter_from
    if getattr(args, "lora", None):  # image: FILE[:STRENGTH] each, checked by the medium's settings
        params["loras"] = [*params.get("loras", []), *args.lora]
    return params


def _strength(args: argparse.Namespace) -> float:
    return 1.0 if args.strength is None else args.strength


def run(args: argparse.Namespace) -> int:
    from . import media
    from .engine import Studio

    cmd = COMMANDS[args.command]
    if not cmd.workspace:
        if getattr(args, "medium", None) is not None:
            media.reference(args.medium)
        return cmd.run(args)
    studio = Studio(args.workspace, allow_code_scorers=True)
    if getattr(args, "medium", None) is not None:
        media.reference(args.medium)  # unknown medium: one sentence naming the available ones
    return cmd.run(args, studio)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import sqlite3

    from .quiet import quiet_libraries

    quiet_libraries()

    from .errors import StudioError, disk_full, os_error_sentence

    try:
        code = run(args)
        sys.stdout.flush()  # a closed pipe shows here, where it is handled, not at exit
        return code
    except StudioError as exc:
        return _fail(str(exc), 2)
    except KeyboardInterrupt:
        return _fail("interrupted.", 130)
    except BrokenPipeError:  # `studio jobs | head`: the reader left; say nothing more on stdout
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141
    except UnicodeEncodeError:
        return _fail("An argument holds bytes that are not valid text (UTF-8); retype it.", 2)
    except OSError as exc:  # the machine said no: a full disk, a read-only folder, a missing permission
        return _fail(os_error_sentence(exc, f"finish {args.command}"), 1)
    except sqlite3.DatabaseError as exc:
        if disk_full(exc):
            return _fail(f"The disk is full, so studio could not save {args.command}'s work in the database; "
                         "free some space and try again.", 1)
        if getattr(exc, "sqlite_errorname", "").startswith("SQLITE_READONLY"):
            return _fail(f"The workspace is read-only, so studio could not save {args.command}'s work; make it "
                         "writable or give another --workspace.", 1)
        return _fail(f"The workspace database failed ({str(exc).rstrip('.')}); nothing was half-written.", 1)


def _fail(sentence: str, code: int) -> int:
    try:
        sys.stderr.write(f"error: {sentence}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    return code


if __name__ == "__main__":
    sys.exit(main())
