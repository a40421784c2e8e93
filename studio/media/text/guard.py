"""A tuned version that says a kept phrase in its own words: runs of a learned text it never writes again.

A tune on four short kept texts learns their style and their words; the second shows up as recital (a kept
line back with a word swapped, docs/copies.md).  With the tune setting ``copy_guard`` = n, the version's
adapter folder carries the texts it and the versions it grew from learned (``GUARD_FILE``), and sampling with
that adapter never picks a token that would complete a run of n tokens found in one of them: the next token
after each (n - 1)-token prefix of a learned text is ruled out, row by row, on the model's device, with no
look at the host (so a compiled step and a GPU run keep their pace).  A run that lies inside the prompt
("the first snow" for "a haiku about the first snow") stays allowed: the subject is the artist's, not a copy.
This acts on what the version writes, not what it learned; the copy test still judges what comes out, and
catches a kept line that comes back with its words swapped around the guard.  The file travels in a peft
export's folder (stock peft ignores it); a merged export writes without it.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Sequence

from ...errors import StudioError
from ...variety import words

GUARD_FILE = "copy_guard.json"
_cache: dict[tuple, Any] = {}
_cache_lock = threading.Lock()


def learned(texts: Sequence[str], parent_adapter: str | None) -> list[str]:
    """What a new version's guard holds: the texts its parent's guard held, then its own learned ones."""
    earlier = read(parent_adapter)
    return list(dict.fromkeys([*(earlier["texts"] if earlier else []), *texts]))


def write(out_dir: Path, tokens: int, texts: Sequence[str]) -> None:
    """The guard of a new version: ``texts`` (``learned``: its own and its parent's) at ``tokens`` per run (0: no
    file)."""
    if tokens <= 0:
        return
    (Path(out_dir) / GUARD_FILE).write_text(json.dumps({"tokens": int(tokens), "texts": list(texts)}, indent=1),
                                            encoding="utf-8")


def read(adapter: str | None) -> dict[str, Any] | None:
    """An adapter folder's guard ({"tokens": n, "texts": [...]}), or None without one; a StudioError for a
    guard file that cannot be read (never a version that silently writes unguarded)."""
    if not adapter:
        return None
    path = Path(adapter) / GUARD_FILE
    if not path.exists():
        return None
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        found = None
    if (not isinstance(found, dict) or not isinstance(found.get("tokens"), int) or found["tokens"] < 2
            or not isinstance(found.get("texts"), list) or not all(isinstance(t, str) for t in found["texts"])):
        raise StudioError(f"The copy guard at {path} cannot be read; tune the version again, or delete the file "
                          f"to write without the guard.")
    return found


def _words(text: str) -> str:
    return " " + " ".join(words(text)) + " "


class RunGuard:
    """Rules out, for each row, the tokens that would complete a learned run (``mask``).

    Runs are matched on word forms, not token ids: ``forms`` maps each token id to the id of its text lower-cased
    without its leading space, so "The" and " the" are one form and a run cannot be written again by gluing a word
    on without its space ("natureof") or by changing its case."""

    def __init__(self, prefixes: Any, nexts: Any, forms: Any, count: int):
        self.prefixes, self.nexts, self.forms, self.count = prefixes, nexts, forms, count  # (K, w), (K,), (vocab,)
        self.width = prefixes.shape[1]

    def mask(self, logits: Any, seen: Any, position: int) -> Any:
        """``logits`` (rows, vocab) with the tokens that would end a learned run at ``position`` set to -inf;
        ``seen`` (rows, >= position) holds each row's tokens so far."""
        import torch

        if position < self.width:
            return logits
        window = self.forms[seen[:, position - self.width:position]]
        hits = (window[:, None, :] == self.prefixes[None]).all(-1)  # (rows, K)
        banned = torch.zeros(len(logits), self.count, device=logits.device).scatter_add_(
            1, self.nexts.expand(len(logits), -1), hits.float())
        ruled_out = banned.index_select(1, self.forms[:logits.shape[-1]]) > 0
        if ruled_out.shape[1] < logits.shape[1]:  # ids past the tokenizer's (a padded output layer) end no run
            ruled_out = torch.nn.functional.pad(ruled_out, (0, logits.shape[1] - ruled_out.shape[1]))
        return logits.masked_fill(ruled_out, float("-inf"))


_forms: dict[int, tuple[Any, list[int], int]] = {}  # by id, beside the tokenizer itself (so the id stays its own)


def token_forms(tokenizer: Any) -> tuple[list[int], int]:
    """(each token id's form id, how many forms): a token's text lower-cased and stripped of surrounding space; a
    token of spaces or line breaks alone keeps its own form."""
    key = id(tokenizer)
    if key not in _forms:
        names: dict[str, int] = {}
        forms = []
        for text in tokenizer.batch_decode([[i] for i in range(len(tokenizer))]):
            forms.append(names.setdefault(text.strip().lower() or text, len(names)))
        _forms[key] = (tokenizer, forms, len(names))
    return _forms[key][1:]


def for_adapter(handle: Any, adapter: str | None, prompt: str) -> RunGuard | None:
    """The guard sampling with ``adapter`` on ``prompt`` follows, or None (no adapter, or no guard in it)."""
    if not adapter:
        return None
    path = Path(adapter) / GUARD_FILE
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        return None
    key = (id(handle.tokenizer), str(handle.device), str(path), stamp, prompt)
    with _cache_lock:
        if key in _cache:
            return _cache[key][1]
    found = read(adapter)
    guard = build(handle.tokenizer, found["texts"], found["tokens"], prompt, handle.device) if found else None
    with _cache_lock:
        if len(_cache) > 64:
            _cache.clear()
        _cache[key] = (handle.tokenizer, guard)  # the tokenizer held, so its id is not reused meanwhile
    return guard


def build(tokenizer: Any, texts: Sequence[str], tokens: int, prompt: str, device: Any = "cpu") -> RunGuard | None:
    """The runs of ``tokens`` tokens of the texts (as the model writes them, in word forms), less those inside
    the prompt's words."""
    import torch

    forms, count = token_forms(tokenizer)

    def windows(text: str) -> list[tuple[tuple[int, ...], list[int]]]:  # (its run in word forms, its token ids)
        ids = tokenizer.encode(text, add_special_tokens=False)
        return [(tuple(forms[j] for j in ids[i:i + tokens]), ids[i:i + tokens]) for i in range(len(ids) - tokens + 1)]

    inside, asked = _words(prompt), {run for run, _ in windows(prompt)}
    found = {run for text in texts for run, ids in windows(text)
             if run not in asked and _words(tokenizer.decode(ids)) not in inside}
    if not found:
        return None
    table = torch.tensor(sorted(found), dtype=torch.long, device=device)
    return RunGuard(table[:, :-1], table[:, -1], torch.tensor(forms, dtype=torch.long, device=device), count)
