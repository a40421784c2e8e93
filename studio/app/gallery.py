"""Candidate cards as HTML: the culling gallery, compare pairs and History thumbnails.

One ``gr.HTML`` shows a whole batch, so the page stays fast with many candidates and the
keyboard culling (``culling.js``) can flip a card's flag at once, before the server has
stored it.  Every card carries ``data-candidate-id`` and ``data-decision`` (the page
contract).  Files are served by Gradio from the workspace's ``media/`` folder.
"""
from __future__ import annotations

import base64
import functools
import html
import io
import json
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import quote

from . import cards, plots

FLAGS = {  # decision -> (flag shown on the card, plain words)
    "hand_accepted": ("★ Kept by you", "kept by you"),
    "auto_accepted": ("✓ Kept by the rule", "kept by the rule"),
    "auto_rejected": ("✕ Dropped by the rule", "dropped by the rule"),
    "hand_rejected": ("✕ Dropped by you", "dropped by you"),
    "pending": ("• Undecided", "undecided"),
}


def file_url(path: str | Path) -> str:
    """The URL Gradio serves a workspace file at (relative, so it works under a root path too)."""
    return "gradio_api/file=" + quote(str(Path(path).resolve()))


@functools.lru_cache(maxsize=512)
def _roll_uri(midi_path: str, mtime: float) -> str:
    buffer = io.BytesIO()
    plots.piano_roll(midi_path, width=512, height=144).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def roll_uri(midi_path: str) -> str:
    """A piano roll picture of a MIDI file, inline (cached by path and modification time)."""
    try:
        mtime = Path(midi_path).stat().st_mtime
    except OSError:
        mtime = 0.0
    return _roll_uri(str(midi_path), mtime)


def media_html(card: dict[str, Any]) -> str:
    """The candidate itself: a picture, its text, or a player beside its piano roll."""
    files = card["files"]
    if card["kind"] == "picture":
        path = next(files[ext] for ext in cards.IMAGE_EXTS if ext in files)
        return (f'<img class="candidate-image" src="{html.escape(file_url(path))}" alt="seed {card["seed"]}" '
                f'loading="lazy" draggable="false">')
    if card["kind"] == "sound":
        parts = []
        picture = next((files[ext] for ext in cards.IMAGE_EXTS if ext in files), None)
        if "mid" in files:
            parts.append(f'<img class="piano-roll" src="{roll_uri(files["mid"])}" alt="piano roll">')
        elif picture is not None:  # a sound's picture of itself (a waveform, a spectrogram)
            parts.append(f'<img class="sound-picture" src="{html.escape(file_url(picture))}" alt="its picture">')
        audio = next((files[ext] for ext in cards.AUDIO_EXTS if ext in files), None)
        if audio is not None:
            parts.append(f'<audio class="candidate-audio" controls preload="metadata" '
                         f'src="{html.escape(file_url(audio))}"></audio>')
        return "".join(parts)
    return f'<div class="candidate-text">{html.escape(card["words"] or "")}</div>'


def details(card: dict[str, Any]) -> dict[str, Any]:
    """What the large view shows beside the candidate."""
    return {"prompt": card.get("prompt", ""), "seed": card["seed"], "version": card["version"],
            "model": card.get("model", ""),
            "settings": {cards.setting_label(card.get("medium"), k): setting_words(v)
                         for k, v in (card.get("params") or {}).items()},
            "score": card["score"], "scores": card["scores"], "p": card["p"]}


def setting_words(value: Any) -> str:
    """A generation setting as the large view says it: "none" for nothing, "yes"/"no", a list by commas
    (never "[]" or "false"), a line break as \\n (a stop at a blank line reads "\\n\\n", not nothing)."""
    if value is None or value == "" or value == [] or value == {}:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(setting_words(v) for v in value)
    if isinstance(value, str):
        return value.replace("\n", "\\n").replace("\t", "\\t")
    return f"{value:g}" if isinstance(value, float) else str(value)  # 8, not 8.0


def card_html(card: dict[str, Any], index: int, decide: bool = True, label: str | None = None) -> str:
    """One card: the candidate, its flag, its numbers; with ``decide`` the keep/drop buttons."""
    decision = card["decision"]
    flag = FLAGS.get(decision, (decision, decision))[0]
    score = "not scored" if card["score"] is None else f"score {card['score']:.3f}"
    chance = "" if card["p"] is None else f" · rule keeps {card['p'] * 100:.0f}%"
    if card.get("near_copy"):  # the chance let it through; "Skip near-copies" dropped it for a better one
        chance += " · a near-copy of a better kept one"
    head = f"{html.escape(label)} · " if label else f"#{index + 1} · "
    buttons = ("" if not decide else
               '<div class="card-actions"><button class="keep-btn" data-action="hand_accepted" title="Keep (P)">'
               'Keep <kbd>P</kbd></button><button class="drop-btn" data-action="hand_rejected" title="Drop (X)">'
               'Drop <kbd>X</kbd></button><button class="clear-btn" data-action="clear" '
               'title="Clear your decision (U)">Clear <kbd>U</kbd></button></div>')
    return (f'<div class="card decision-{decision}" tabindex="-1" data-candidate-id="{card["id"]}" '
            f'data-decision="{decision}" data-rule="{card.get("rule") or "pending"}" data-index="{index}" '
            f'data-kind="{card["kind"]}" data-details="{html.escape(json.dumps(details(card)))}">'
            f'<div class="card-media">{media_html(card)}</div>'
            f'<div class="card-flag">{flag}</div>'
            f'<div class="card-caption">{head}seed {card["seed"]} · {score}{chance}</div>'
            + (f'<div class="card-detail">{card["detail"]}</div>' if card.get("detail") else "")
            + f'{buttons}</div>')


def batch_html(medium: str, shown_cards: Sequence[dict[str, Any]], summary: str, curated: str,
               warning: str | None = None, loaded: bool = True) -> str:
    """The culling gallery: a header with the counts and keys, then the cards.  ``loaded`` marks a gallery
    drawn from the store (not the page's first, empty one), so a test knows the page has caught up."""
    mark = ' data-loaded="1"' if loaded else ""
    if not shown_cards:
        return (f'<div class="gallery empty" data-medium="{medium}"{mark}><p class="gallery-empty">'
                'No candidates yet: write a prompt on the left and press <b>Generate</b>.</p></div>')
    body = "".join(card_html(c, i) for i, c in enumerate(shown_cards))
    return (f'<div class="gallery" data-medium="{medium}"{mark} tabindex="0">'
            f'<div class="gallery-head"><span class="acceptance">{summary}</span>'
            f'<span class="curated-size">{curated}</span>'
            '<span class="keys" title="Click a card or this gallery first">'
            '<kbd>←</kbd><kbd>→</kbd><kbd>↑</kbd><kbd>↓</kbd> move · <kbd>P</kbd> keep · <kbd>X</kbd> drop · '
            '<kbd>U</kbd> clear · <kbd>Enter</kbd> large view'
            + (' · <kbd>Space</kbd> play' if shown_cards[0]["kind"] == "sound" else "") +
            '</span></div>'
            + (f'<div class="separation-warning">⚠ {html.escape(warning)}</div>' if warning else "")
            + f'<div class="cards">{body}</div></div>')


def pairs_html(medium: str, pairs: Sequence[dict[str, Any]]) -> str:
    """Before and after on the same seed, side by side (a grid for pictures, columns for text, paired players)."""
    if not pairs:
        return '<div class="compare-pairs empty"></div>'
    rows = []
    for i, pair in enumerate(pairs):
        sides = []
        for side in ("before", "after"):
            c = pair[side]
            label = f"{'Before' if side == 'before' else 'After'} ({c['version']})"
            sides.append(f'<div class="compare-{side}">'
                         + card_html(c, i, decide=False, label=label) + "</div>")
        rows.append(f'<div class="compare-pair">{"".join(sides)}</div>')
    kind = pairs[0]["before"]["kind"]
    view = ""
    if kind == "picture":  # pictures: a dense grid of pairs, or each pair in one place flickering before/after
        group = f"compare-view-{html.escape(medium)}"
        view = ('<div class="compare-view" role="radiogroup" aria-label="How pairs are shown">'
                f'<label><input type="radio" name="{group}" class="view-side" checked> Side by side</label>'
                f'<label title="Each pair in one place, switching between before and after (hover to hold)">'
                f'<input type="radio" name="{group}" class="view-flicker"> Flicker</label></div>')
    return (f'<div class="gallery compare-pairs kind-{kind}" data-medium="{medium}" tabindex="0">{view}'
            f'{"".join(rows)}</div>')
