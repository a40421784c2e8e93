"""The ``studio`` command (the contract in DESIGN.md: names and JSON shapes are stable).

Every command takes ``--workspace DIR`` and, where it reports, ``--json`` (one JSON object on
stdout, nothing else there).  A user's mistake is one sentence on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any



def _param(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"'{text}' is not KEY=VALUE")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


SETTING_HELP = ("a tune setting, e.g. epochs=8, prior_weight=0.25, anchor=0.5 or goldfish=4 "
                "(README: Variety and copies); repeat")
ADAPTER_FROM_HELP = ("image: the share of denoising steps the base runs before a version's adapter joins, "
                     "0 to 1 (default: the medium's)")


def _generation_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--param", action="append", type=_param, default=[], metavar="KEY=VALUE",
                   help="a generation setting for both sides, e.g. steps=20; repeat")
    p.add_argument("--adapter-from", type=_finite_or_nan, metavar="F", help=ADAPTER_FROM_HELP)


def _params(args: argparse.Namespace) -> dict[str, Any]:
    params = dict(args.param)
    if args.adapter_from is not None:
        params["adapter_from"] = args.adapter_from
    return params


def _finite_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line on stderr (no usage block), exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        message = message[:1].upper() + message[1:] if message else "Bad arguments"
        sys.stderr.write(f"error: {self.prog}: {message.rstrip('.')}; see {self.prog} --help.\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--workspace", metavar="DIR",
                        help="workspace folder (default: $STUDIO_HOME, else ~/.local/share/studio)")
    common.add_argument("--json", action="store_true", help="print one JSON object on stdout and nothing else")
    rule = _Parser(add_help=False)
    rule.add_argument("--scorer", action="append", default=[], metavar="S",
                      help="built-in scorer name or module:function, optionally =WEIGHT; repeat to combine")
    rule.add_argument("--threshold", type=_finite_or_nan, metavar="X",
                      help="acceptance threshold in [0, 1] (default: the base's upper quartile)")
    rule.add_argument("--temperature", type=_finite_or_nan, default=0.05, metavar="T",
                      help="rule temperature; 0 is a hard threshold (default 0.05)")
    rule.add_argument("--keep", choices=("spread", "all"), default="spread",
                      help="among what the rule keeps: spread drops near-duplicates of a better candidate, "
                           "all keeps them (default spread; compare ignores it)")

    parser = _Parser(
        prog="studio", description="Generate, curate by rejection sampling, fine-tune (LoRA) and compare: "
                                   "image, text and music.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", parents=[common], help="open the studio app in the browser")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--auth", metavar="USER:PASSWORD", help="require this login; needed for a non-local --host "
                                                           "(shows in ps: prefer --auth-file or $STUDIO_AUTH)")
    p.add_argument("--auth-file", metavar="FILE", help="read USER:PASSWORD from the first line of FILE")

    p = sub.add_parser("generate", parents=[common], help="generate candidates")
    p.add_argument("medium", metavar="MEDIUM", help="image, text or music")
    p.add_argument("--prompt", required=True, help="what to make")
    p.add_argument("-n", type=int, default=8, help="number of candidates (default 8)")
    p.add_argument("--seed", type=int, default=0, help="first seed; candidate i uses seed+i (default 0)")
    p.add_argument("--version", default="base", help="base or vN (default base)")
    p.add_argument("--model", metavar="ID_OR_PATH", help="base model: local folder or hub id (default: embedded)")
    p.add_argument("--param", action="append", type=_param, default=[], metavar="KEY=VALUE",
                   help="a generation setting, e.g. steps=20 or temperature=0.9; repeat")
    p.add_argument("--strength", type=_finite_or_nan, metavar="S",
                   help="adapter strength for a version, 0 (the base) to 1.5 (default 1: as tuned)")
    p.add_argument("--adapter-from", type=_finite_or_nan, metavar="F",
                   help=ADAPTER_FROM_HELP)

    p = sub.add_parser("curate", parents=[common, rule], help="accept or reject the latest batch")
    p.add_argument("medium", metavar="MEDIUM")
    p.add_argument("--best-of", type=int, metavar="K", help="keep the top K per prompt instead of the threshold rule")
    p.add_argument("--accept", nargs="+", action="extend", default=[], metavar="ID",
                   help="hand-accept one or more candidates (the flag may repeat)")
    p.add_argument("--reject", nargs="+", action="extend", default=[], metavar="ID",
                   help="hand-reject one or more candidates (the flag may repeat)")
    p.add_argument("--batch", type=int, help="the batch to curate (default: the latest)")

    p = sub.add_parser("tune", parents=[common], help="fine-tune a LoRA on the curated set")
    p.add_argument("medium", metavar="MEDIUM")
    p.add_argument("--from", dest="from_version", default="base", help="version to start from (default base)")
    p.add_argument("--steps", type=int, help="optimisation steps (default: the medium's)")
    p.add_argument("--rank", type=int, help="LoRA rank (default: the medium's)")
    p.add_argument("--lr", type=_finite_or_nan, help="learning rate (default: the medium's)")
    p.add_argument("--setting", action="append", type=_param, default=[], metavar="KEY=VALUE",
                   help=SETTING_HELP)
    p.add_argument("--detach", action="store_true", help="start the tune and return its job id at once")

    p = sub.add_parser("compare", parents=[common, rule], help="before/after on the same held-out seeds")
    p.add_argument("medium", metavar="MEDIUM")
    p.add_argument("--after", required=True, help="the version to judge, vN")
    p.add_argument("--before", default="base", help="the version to judge against (default base)")
    p.add_argument("--prompt", required=True, help="the prompt both sides get")
    p.add_argument("-n", type=int, default=16, help="candidates per side (default 16)")
    p.add_argument("--seed", type=int, default=0, help="first seed; seeds a tune learned from are skipped")
    p.add_argument("--strength", type=_finite_or_nan, default=1.0, metavar="S",
                   help="adapter strength, 0 (the base) to 1.5 (default 1: as tuned)")
    _generation_flags(p)

    p = sub.add_parser("loop", parents=[common, rule], help="rounds of generate, curate, tune; then compare")
    p.add_argument("medium", metavar="MEDIUM")
    p.add_argument("--prompt", required=True, help="what to make; compared on held-out seeds at the end")
    p.add_argument("--rounds", type=int, default=1, help="rounds (default 1)")
    p.add_argument("-n", type=int, default=32, help="candidates per round (default 32)")
    p.add_argument("--steps", type=int, help="tune steps per round (default: the medium's)")
    p.add_argument("--seed", type=int, default=0,
                   help="first training seed; the comparison uses held-out seeds from 1000000 + SEED")
    p.add_argument("--strength", type=_finite_or_nan, default=1.0, metavar="S",
                   help="adapter strength in the comparison, 0 (the base) to 1.5 (default 1)")
    _generation_flags(p)
    p.add_argument("--setting", action="append", type=_param, default=[], metavar="KEY=VALUE",
                   help=SETTING_HELP)

    p = sub.add_parser("export", parents=[common], help="export a version's adapter or the curated set")
    p.add_argument("medium", metavar="MEDIUM")
    p.add_argument("--version", required=True, help="vN (or base, for the curated set only)")
    p.add_argument("--format", required=True, dest="fmt", metavar="FORMAT",
                   help="image: diffusers, kohya, imagefolder; text: peft, merged, jsonl; music: peft, dataset")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write into")

    p = sub.add_parser("versions", parents=[common], help="list a medium's versions and rounds")
    p.add_argument("medium", metavar="MEDIUM")

    p = sub.add_parser("jobs", parents=[common], help="list tune jobs and their state")
    p = sub.add_parser("resume", parents=[common], help="continue an interrupted tune from its last checkpoint")
    p.add_argument("job", help="job id (see studio jobs)")
    p = sub.add_parser("cancel", parents=[common], help="cancel a running tune (a checkpoint is kept)")
    p.add_argument("job", help="job id (see studio jobs)")

    p = sub.add_parser("train-defaults", parents=[common], help="retrain a medium's embedded default model")
    p.add_argument("medium", metavar="MEDIUM")
    p.add_argument("--out", metavar="DIR", help="where to write it (default: the model cache, MEDIUM-built-in; use it with --model)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when there is one)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    return parser


def _emit(args: argparse.Namespace, result: dict[str, Any], human: str) -> None:
    if args.json:
        json.dump(result, sys.stdout, default=str)
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
    return line


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


def run(args: argparse.Namespace) -> int:
    from . import media, runner
    from .engine import Studio
    from .errors import StudioError

    if args.command == "serve":
        from .app import security

        auth = security.read_auth(args.auth, args.auth_file)
        security.check_host(args.host, auth and security.parse_auth(auth))
        security.check_address(args.host, args.port)
        from .engine import Studio as _Open

        _Open(args.workspace).store.close()  # an unusable workspace: one sentence before the app starts
        from .app import serve

        serve(workspace=args.workspace, host=args.host, port=args.port, auth=auth)
        return 0

    if args.command == "train-defaults":
        import importlib
        from pathlib import Path

        ref = media.reference(args.medium)
        try:
            trainer = importlib.import_module(ref.split(":")[0] + ".defaults")
        except ModuleNotFoundError:
            raise StudioError(f"The {args.medium} medium has no embedded default model to train.") from None
        from .paths import model_cache

        out = Path(args.out) if args.out else model_cache(f"{args.medium}-built-in")
        device = _device(args.device)
        if args.seed < 0 or args.seed > 2**32 - 1:
            raise StudioError(f"The seed must be between 0 and {2**32 - 1}, not {args.seed}.")
        if out.exists() and not out.is_dir():
            raise StudioError(f"The output {out} is a file, not a folder.")
        result = trainer.train(out, device=device, seed=args.seed)
        _emit(args, {"medium": args.medium, "out": str(out), **(result or {})}, f"wrote {out}")
        return 0

    studio = Studio(args.workspace, allow_code_scorers=True)
    medium = getattr(args, "medium", None)
    if medium is not None:
        media.reference(medium)  # unknown medium: one sentence naming the available ones

    if args.command == "generate":
        if args.model:
            studio.use_model(medium, args.model)
        cands = studio.generate(medium, args.prompt, n=args.n, seed=args.seed, version=args.version,
                                params=_params(args), strength=args.strength)
        result = {"candidates": [c.summary() for c in cands]}
        _emit(args, result, "\n".join(f"{c.id}  seed {c.seed}  {c.path}" for c in cands))
    elif args.command == "curate":
        result = studio.curate(medium, args.scorer, args.threshold, args.temperature, args.best_of,
                               args.accept, args.reject, batch=args.batch, keep=args.keep)
        _emit(args, result, f"accepted {len(result['accepted'])}, rejected {len(result['rejected'])}, "
                            f"acceptance rate {result['acceptance_rate']:.2f}; "
                            f"{result['curated_total']} curated in all"
                            + (f"\nwarning: {result['warning']}" if result.get("warning") else ""))
    elif args.command == "tune":
        job = studio.start_tune(medium, args.from_version, args.steps, args.rank, args.lr, dict(args.setting))
        if args.detach:
            result = {"job": job, "version": studio.store.job(job)["version"], "status": "running"}
            _emit(args, result, f"started {result['version']} as job {job}")
            return 0
        info = studio.wait_tune(job, None if args.json else _progress(args))
        version = studio.store.version(medium, info["version"])
        result = {"version": info["version"], "parent": args.from_version, "job": job, "steps": info["steps"],
                  "loss": info["loss"], "seconds": info["result"]["seconds"], "curated": len(version.curated),
                  "path": version.path}
        _emit(args, result, f"made {result['version']} from {args.from_version} on {result['curated']} curated "
                            f"candidates in {result['seconds']:.0f}s (final loss {result['loss']:.4f})")
    elif args.command == "compare":
        result = studio.compare(medium, after=args.after, before=args.before, prompt=args.prompt, n=args.n,
                                seed=args.seed, scorers=args.scorer, threshold=args.threshold,
                                temperature=args.temperature, strength=args.strength, params=_params(args))
        _emit(args, result, "\n".join([_side("before", result["before"]), _side("after", result["after"])]))
    elif args.command == "loop":
        result = studio.loop(medium, args.prompt, args.scorer, args.threshold, args.temperature,
                             rounds=args.rounds, n=args.n, steps=args.steps, seed=args.seed, strength=args.strength,
                             keep=args.keep, params=_params(args), settings=dict(args.setting),
                             on_event=None if args.json else _progress(args))
        _emit(args, result, "\n".join([_side("before", result["before"]), _side("after", result["after"])]))
    elif args.command == "export":
        result = studio.export(medium, args.version, args.fmt, args.out)
        _emit(args, result, "\n".join(result["files"]))
    elif args.command == "versions":
        versions = [{"name": "base", "model": studio.current_model(medium)}] + [
            {"name": v.name, "parent": v.parent, "model": v.model, "curated": len(v.curated),
             "settings": v.settings, "metrics": v.metrics, "path": v.path} for v in studio.store.versions(medium)]
        result = {"versions": versions, "rounds": studio.store.rounds(medium)}
        _emit(args, result, "\n".join(f"{v['name']}  {v.get('parent') or ''}" for v in versions))
    elif args.command == "jobs":
        jobs = [runner.status(studio.store, j["id"]) for j in studio.store.jobs()]
        for j in jobs:
            j.pop("losses", None)
        _emit(args, {"jobs": jobs}, "\n".join(f"{j['job']}  {j['medium']}  {j['version']}  {j['status']}  "
                                              f"{j['step']}/{j['steps']}" for j in jobs))
    elif args.command == "resume":
        runner.resume(studio.store, args.job)
        info = studio.wait_tune(args.job, None if args.json else _progress(args))
        _emit(args, {"job": args.job, "version": info["version"], "steps": info["steps"], "loss": info["loss"]},
              f"finished {info['version']}")
    elif args.command == "cancel":
        info = runner.cancel(studio.store, args.job)
        info.pop("losses", None)
        _emit(args, info, f"{args.job}: {info['status']}")
    return 0


def _quiet_libraries() -> None:
    """Library progress bars are for a person at a terminal; elsewhere stderr holds only studio's lines."""
    if sys.stderr.isatty():
        return
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:  # imported already (in-process callers): switch its bars off too
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import sqlite3

    _quiet_libraries()

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
