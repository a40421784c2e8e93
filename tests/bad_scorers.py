"""Scorers that misbehave, as an artist's or a plugin's code might (the audit's module:function cases)."""
from __future__ import annotations

import os


def leave(candidates):
    raise SystemExit(0)


def broken(candidates):
    return [1 / 0 for _ in candidates]


def raises_generator_exit(candidates):
    raise GeneratorExit


def exits_quietly(candidates):
    os._exit(0)  # ends the process at once: no exception, no atexit, exit code 0


def prints_and_scores(candidates):
    print("a chatty scorer")  # must not reach the --json output
    return [0.5] * len(candidates)


not_a_function = 3
