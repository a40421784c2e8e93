"""The History tab: every medium's versions, newest first, from the store.

Per version: a few of the candidates it learned from (pictures, first lines or players), the
prompt, how many were kept, the last compare's figures, and the actions use / compare / export.
An action is a ``click`` event of the History component itself, fired by its own script with the
action as the event's data (``trigger``, gr.HTML's script API: the same channel culling's
``server.decide`` uses; no hidden widgets); it moves the page to that step.
"""
from __future__ import annotations

import html
import time
from collections import Counter
from typing import Any

import gradio as gr

from ..engine import Studio
from . import cards, gallery
from .context import event_value

THUMBS = 4  # candidates shown per version
ACTIONS = (("use", "Use for generating"), ("compare", "Compare"), ("export", "Export"))
HISTORY_JS = """
element.addEventListener("click", (e) => {
  const button = e.target.closest("button[data-history-action]");
  if (button) trigger("click", { action: button.dataset.historyAction });
});
"""


def version_html(studio: Studio, medium: str, version: Any | None) -> str:
    """One version's entry; ``version`` None is base (the loaded model)."""
    name = "base" if version is None else version.name
    if version is None:
        model = studio.current_model(medium)
        embedded = model == studio.medium(medium).default_model()
        pool, about = [], ("The built-in model, as shipped" if embedded
                           else f"The model as loaded: {html.escape(model)}")
    else:
        pool = [c for c in studio.store.candidates(medium, ids=list(version.curated)) if c is not None]
        loss, rewards = version.metrics.get("loss"), version.metrics.get("rewards")
        about = (f"from {html.escape(version.parent or 'base')} · learned from <b>{len(version.curated)}</b> kept"
                 + ("" if loss is None else f" · final loss {loss:.4f}")
                 + f" · {time.strftime('%Y-%m-%d %H:%M', time.localtime(version.created_at))}"
                 + (f"<br>{html.escape(cards.rewards_words(rewards))}" if rewards else ""))
    prompts = Counter(c.prompt for c in pool).most_common(2)
    prompt = "" if not prompts else "Prompt: <i>" + html.escape(prompts[0][0]) + "</i>" + (
        " and others" if len(prompts) > 1 else "")
    thumbs = "".join(f'<div class="history-thumb">{gallery.media_html(cards.card(c, None))}</div>'
                     for c in pool[:THUMBS])
    buttons = "".join(f'<button data-history-action="{key} {medium} {name}">{label}</button>'
                      for key, label in ACTIONS if not (key == "compare" and version is None))
    return (f'<div class="history-version" data-medium="{medium}" data-version="{name}"><h4>{name}</h4>'
            f'<div><div>{about}</div><div>{prompt}</div><div class="history-thumbs">{thumbs}</div>'
            f'{metrics_html(version.metrics if version else {})}<div class="history-actions">{buttons}</div></div></div>')


def metrics_html(metrics: dict[str, Any]) -> str:
    """The figures of the version's last compare, in plain words (empty before any compare)."""
    after, before = metrics.get("after"), metrics.get("before")
    if not isinstance(after, dict):
        return '<div class="history-metrics">Not compared yet.</div>'
    parts = []
    for key, value in after.items():
        if key in cards.SKIPPED or key == "n" or not isinstance(value, (int, float)):
            continue
        word, tip = cards.metric_words(key)
        was = (before or {}).get(key)
        share = key in cards.SHARES
        change = f" (before {cards.fmt(float(was), share)})" if isinstance(was, (int, float)) else ""
        parts.append(f'<abbr title="{html.escape(tip)}">{html.escape(word)}</abbr> '
                     f'{cards.fmt(float(value), share)}{change}')
    now, was = after.get("acceptance_rate"), (before or {}).get("acceptance_rate")
    if isinstance(now, (int, float)) and isinstance(was, (int, float)):
        parts.append("kept share" + cards.change_words(was, now))
    verdict = f'<p class="verdict">{html.escape(metrics["verdict"])}</p>' if metrics.get("verdict") else ""
    return f'<div class="history-metrics">{verdict}Last compare: ' + " · ".join(parts) + "</div>"


def medium_html(studio: Studio, medium: str) -> str:
    versions = list(reversed(studio.store.versions(medium)))
    entries = "".join(version_html(studio, medium, v) for v in versions) + version_html(studio, medium, None)
    rounds = studio.store.rounds(medium)
    summary = (f"{len(versions)} tuned version{'s' if len(versions) != 1 else ''}, "
               f"{len(rounds)} round{'s' if len(rounds) != 1 else ''}")
    return f'<h3>{studio.medium(medium).title()} <small>({summary})</small></h3>{entries}'


def build(studio: Studio, names: list[str]) -> tuple[Any, Any]:
    """The History tab's component and its refresh function; an action is ``page.click`` (its ``action``)."""
    gr.Markdown("Every version made so far, newest first. **Use** picks it for generating, **Compare** and "
                "**Export** open those steps with it.")
    page = gr.HTML("", js_on_load=HISTORY_JS, elem_classes=["history"])

    def load() -> str:
        return "".join(medium_html(studio, name) for name in names) or "No media are available."

    return page, load


MOVES = {"use": ("version", "curate"), "compare": ("compare_after", "compare"), "export": ("export_version", "export")}


def mover(studio: Studio, contexts: dict[str, Any], media_tabs: Any, targets: dict[tuple[str, str], Any]):
    """The handler of a History click: ``use|compare|export MEDIUM VERSION`` moves the page to that step.

    ``targets`` maps (medium, component name) to the tab's version pickers and steps."""

    def act(event: gr.EventData) -> dict[Any, Any]:
        parts = event_value(event, "action").split()  # use|compare|export MEDIUM VERSION
        if len(parts) < 3 or parts[0] not in MOVES or parts[1] not in contexts \
                or parts[2] not in studio.versions(parts[1]):
            return {}
        key, medium, version = parts[:3]
        picker, step = MOVES[key]
        if key == "use":
            contexts[medium].remember(version=version)
        return {media_tabs: gr.update(selected=medium), targets[(medium, picker)]: gr.update(value=version),
                targets[(medium, "steps")]: gr.update(selected=step)}

    return act
