"""What the recogniser heard, kept beside the take and shown against the line with its mistakes marked.

The intelligibility scorer stores pocketsphinx's transcript as ``ID.heard.txt`` next to the take's WAV
(the store keeps every file named by a candidate's id), so the page reads it on every redraw without
running the recogniser again.  The marking aligns the words of the line and of the transcript (a
word-level Levenshtein alignment on the texts the character error rate compares) and marks runs of
words missing, wrong or extra.
"""
from __future__ import annotations

import html
from pathlib import Path

from .recognise import character_error_rate, normalise_text

SUFFIX = ".heard.txt"


def transcript_path(wav: str | Path) -> Path:
    wav = Path(wav)
    return wav.with_name(wav.name.split(".", 1)[0] + SUFFIX)


def store_transcript(wav: str | Path, heard: str) -> None:
    """Write the transcript beside the take (a read-only folder only costs the page its line)."""
    from ...fsutil import atomic_write_text

    path = transcript_path(wav)
    try:
        if not path.exists() or path.read_text(encoding="utf-8") != heard:
            atomic_write_text(path, heard)
    except OSError:
        pass


def stored_transcript(wav: str | Path) -> str | None:
    """The transcript the intelligibility scorer stored for this take, or None if it has not listened yet."""
    try:
        return transcript_path(wav).read_text(encoding="utf-8")
    except OSError:
        return None


def align_words(line: str, heard: str) -> list[tuple[str, list[str], list[str]]]:
    """The line against the transcript as runs ``(kind, said, heard)``: kind is ``same`` (the words match),
    ``missing`` (said, not heard), ``extra`` (heard, not said) or ``wrong`` (said, heard as other words).

    Words are compared as the character error rate compares text (lower case, no punctuation); an
    alignment with the fewest word edits, ties broken toward substitutions so a misheard word reads as
    wrong rather than as one missing and one extra.
    """
    said, got = normalise_text(line).split(), normalise_text(heard).split()
    # cost[i][j]: fewest edits turning said[:i] into got[:j]
    cost = [[i + j if i == 0 or j == 0 else 0 for j in range(len(got) + 1)] for i in range(len(said) + 1)]
    for i in range(1, len(said) + 1):
        for j in range(1, len(got) + 1):
            cost[i][j] = min(cost[i - 1][j - 1] + (said[i - 1] != got[j - 1]), cost[i - 1][j] + 1, cost[i][j - 1] + 1)
    steps: list[tuple[str, str | None, str | None]] = []
    i, j = len(said), len(got)
    while i or j:
        if i and j and cost[i][j] == cost[i - 1][j - 1] + (said[i - 1] != got[j - 1]):
            steps.append(("same" if said[i - 1] == got[j - 1] else "wrong", said[i - 1], got[j - 1]))
            i, j = i - 1, j - 1
        elif i and cost[i][j] == cost[i - 1][j] + 1:
            steps.append(("missing", said[i - 1], None))
            i -= 1
        else:
            steps.append(("extra", None, got[j - 1]))
            j -= 1
    runs: list[tuple[str, list[str], list[str]]] = []
    for kind, a, b in reversed(steps):
        kind_of_run = "same" if kind == "same" else "edit"
        if runs and (runs[-1][0] == "same") == (kind_of_run == "same"):
            run = runs[-1]
        else:
            run = (kind_of_run, [], [])
            runs.append(run)
        if a is not None:
            run[1].append(a)
        if b is not None:
            run[2].append(b)
    # an edit run is wrong words when both sides have some, else only missing or only extra
    return [(kind if kind == "same" else "wrong" if a and b else "missing" if a else "extra", a, b)
            for kind, a, b in runs]


TITLES = {"missing": "said in the line, not heard", "extra": "heard, not in the line",
          "wrong": "the line's words, heard as the next ones"}


def marked_html(line: str, heard: str) -> str:
    """The transcript against the line as escaped HTML: missing words struck (``<del>``), extra ones
    underlined (``<ins>``), a wrong run as the line's words struck then what was heard underlined."""
    runs = align_words(line, heard)
    parts = []
    for kind, said, got in runs:
        said_text, got_text = html.escape(" ".join(said)), html.escape(" ".join(got))
        if kind == "same":
            parts.append(said_text)
            continue
        title = html.escape(TITLES[kind])
        if said:
            parts.append(f'<del class="heard-{kind}" title="{title}">{said_text}</del>')
        if got:
            parts.append(f'<ins class="heard-{kind}" title="{title}">{got_text}</ins>')
    verdict = ("every word" if all(kind == "same" for kind, _, _ in runs)
               else f"character error rate {character_error_rate(line, heard):.2f}")
    body = " ".join(parts) if parts else "(nothing)"
    return (f'<div class="heard" title="What the recogniser heard against the line: struck words were not heard '
            f'or misheard, underlined words were heard instead or extra">'
            f'<span class="heard-label">heard ({html.escape(verdict)}):</span> {body}</div>')
