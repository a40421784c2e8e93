"""Built-in text scorers by name; each maps candidates to floats in [0, 1], higher is better.

style        semantic similarity (MiniLM) to ``options['style']``, to ``options['exemplars']``
             (the closest one), or else to the candidate's own prompt
constraints  the share of the asked constraints met: words/lines min/max, syllables per
             line ("5-7-5"), must / must_not words, a regular expression
fluency      the base model's per-token likelihood of the completion (geometric mean probability)
favourites   similarity to the closest accepted candidate
preference   a small logistic model on embeddings, fit on the artist's hand decisions
"""
from __future__ import annotations

import math
import re
from typing import Any, Sequence

from ...errors import StudioError
from ...medium import Candidate, ScoringContext
from .embedding import candidate_text, embed_texts

CONSTRAINT_KEYS = ("min_words", "max_words", "min_lines", "max_lines", "syllables", "must", "must_not", "regex")


def _clip(values) -> list[float]:
    return [float(min(1.0, max(0.0, v))) for v in values]


def style(ctx: ScoringContext):
    """Rewards closeness in meaning to a style text (else the prompt), by sentence embeddings."""
    target = ctx.options.get("style")
    exemplars = ctx.options.get("exemplars")
    if exemplars is not None and (isinstance(exemplars, str) or not all(isinstance(e, str) for e in exemplars)):
        raise StudioError("The style scorer's 'exemplars' option must be a list of texts.")

    def score(candidates: Sequence[Candidate]) -> list[float]:
        if not candidates:
            return []
        texts = embed_texts([candidate_text(c) for c in candidates])
        if exemplars:
            return _clip((texts @ embed_texts(list(exemplars)).T).max(axis=1))
        if target:
            return _clip(texts @ embed_texts([str(target)])[0])
        return _clip((texts * embed_texts([c.prompt for c in candidates])).sum(axis=1))

    return score


def count_syllables(word: str) -> int:
    """English syllables by vowel groups, a silent final e dropped; good enough for haiku checks."""
    word = re.sub(r"[^a-z]", "", word.lower())
    if not word:
        return 0
    groups = len(re.findall(r"[aeiouy]+", word))
    if word.endswith("e") and not word.endswith(("le", "ee")) and groups > 1:
        groups -= 1
    return max(1, groups)


def _range_score(value: int, low: int | None, high: int | None) -> float:
    if low is not None and value < low:
        return max(0.0, 1.0 - (low - value) / max(1, low))
    if high is not None and value > high:
        return max(0.0, 1.0 - (value - high) / max(1, high))
    return 1.0


def _words_of(value: Any, key: str) -> list[str]:
    words = [value] if isinstance(value, str) else value
    if not isinstance(words, (list, tuple)) or not all(isinstance(w, str) for w in words):
        raise StudioError(f"The constraints scorer's '{key}' option must be a word or a list of words.")
    return [w.lower() for w in words]


def constraint_score(text: str, options: dict[str, Any]) -> float:
    """The mean over the asked constraints of how well ``text`` meets each (1 = fully)."""
    lines = [line for line in text.splitlines() if line.strip()]
    words = re.findall(r"[A-Za-z']+", text.lower())
    parts = []
    if "min_words" in options or "max_words" in options:
        parts.append(_range_score(len(words), options.get("min_words"), options.get("max_words")))
    if "min_lines" in options or "max_lines" in options:
        parts.append(_range_score(len(lines), options.get("min_lines"), options.get("max_lines")))
    if "syllables" in options:
        pattern = options["syllables"]
        targets = [int(x) for x in pattern.split("-")] if isinstance(pattern, str) else [int(x) for x in pattern]
        per_line = [sum(count_syllables(w) for w in lines[i].split()) if i < len(lines) else 0
                    for i in range(len(targets))]
        fit = sum(max(0.0, 1.0 - abs(n - t) / t) for n, t in zip(per_line, targets)) / len(targets)
        parts.append(fit * (1.0 if len(lines) == len(targets) else 0.5))
    present = set(words)
    if "must" in options:
        must = _words_of(options["must"], "must")
        parts.append(sum(w in present for w in must) / max(1, len(must)))
    if "must_not" in options:
        banned = _words_of(options["must_not"], "must_not")
        parts.append(sum(w not in present for w in banned) / max(1, len(banned)))
    if "regex" in options:
        parts.append(1.0 if re.search(options["regex"], text) else 0.0)
    return sum(parts) / len(parts)


def constraints(ctx: ScoringContext):
    """Rewards meeting the asked form: words and lines per text, syllables per line, words to use or avoid."""
    options = dict(ctx.options)
    unknown = sorted(set(options) - set(CONSTRAINT_KEYS))
    if unknown:
        raise StudioError(f"Unknown constraints option '{unknown[0]}'; known: {', '.join(CONSTRAINT_KEYS)}.")
    if not options:
        raise StudioError("The constraints scorer needs at least one option, e.g. max_words or syllables '5-7-5'.")
    if "regex" in options:
        try:
            re.compile(options["regex"])
        except re.error as exc:
            raise StudioError(f"The constraints regex is not valid: {exc}.") from None
    if "syllables" in options:
        pattern = options["syllables"]
        try:
            targets = [int(x) for x in pattern.split("-")] if isinstance(pattern, str) else [int(x) for x in pattern]
        except (TypeError, ValueError):
            targets = []
        if not targets or min(targets) < 1:
            raise StudioError("The syllables option must look like '5-7-5' (positive counts per line).")
    for key in ("min_words", "max_words", "min_lines", "max_lines"):
        if key in options and (not isinstance(options[key], int) or options[key] < 0):
            raise StudioError(f"The constraints option '{key}' must be a whole number of at least 0.")

    def score(candidates: Sequence[Candidate]) -> list[float]:
        return [constraint_score(candidate_text(c), options) for c in candidates]

    return score


def completion_likelihood(handle, pairs: Sequence[tuple[str, str]], batch: int = 16) -> list[float]:
    """exp(mean log-probability per completion token) under the base model, adapters off."""
    import torch

    from .model import active
    from .prompting import example_ids

    results = []
    pad = handle.tokenizer.pad_token_id
    with torch.inference_mode(), active(handle, None) as net:
        for start in range(0, len(pairs), batch):
            encoded = [example_ids(handle.tokenizer, p, c) for p, c in pairs[start:start + batch]]
            encoded = [(ids[:handle.context], mask[:handle.context]) for ids, mask in encoded]
            width = max(len(ids) for ids, _ in encoded)
            inputs = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in encoded])
            counted = torch.tensor([mask + [False] * (width - len(mask)) for _, mask in encoded])
            attention = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in encoded])
            logits = net(input_ids=inputs.to(handle.device), attention_mask=attention.to(handle.device)).logits
            logp = logits[:, :-1].float().log_softmax(-1).gather(2, inputs[:, 1:, None].to(handle.device))[..., 0]
            weight = counted[:, 1:].to(handle.device).float()
            mean = (logp * weight).sum(1) / weight.sum(1).clamp(min=1)
            results += [math.exp(v) for v in mean.cpu().tolist()]
    return results


def fluency(ctx: ScoringContext):
    """Rewards fluent text: the base model's average per-word probability of it."""
    if ctx.handle is None:
        raise StudioError("The fluency scorer needs the loaded model.")

    def score(candidates: Sequence[Candidate]) -> list[float]:
        pairs = [(c.prompt, candidate_text(c)) for c in candidates]
        return _clip(completion_likelihood(ctx.handle, pairs)) if pairs else []

    return score


def favourites(ctx: ScoringContext):
    """Rewards likeness to the closest candidate you kept, by sentence embeddings."""
    if not ctx.favourites:
        raise StudioError("The favourites scorer needs at least one accepted candidate.")
    liked = embed_texts([candidate_text(c) for c in ctx.favourites])

    def score(candidates: Sequence[Candidate]) -> list[float]:
        if not candidates:
            return []
        return _clip((embed_texts([candidate_text(c) for c in candidates]) @ liked.T).max(axis=1))

    return score


def fit_logistic(features, labels, l2: float = 1e-2, steps: int = 300, lr: float = 1.0):
    """Weights and bias of a logistic regression by full-batch gradient descent (numpy, < 1 s)."""
    import numpy as np

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    w = np.zeros(x.shape[1])
    b = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
        w -= lr * (x.T @ (p - y) / len(y) + l2 * w)
        b -= lr * float((p - y).mean())
    return w, b


def preference(ctx: ScoringContext):
    """Rewards what you kept by hand: a small model fit to your keep and drop decisions."""
    import numpy as np

    labels = [1.0 if c.decision == "hand_accepted" else 0.0 for c in ctx.decided
              if c.decision in ("hand_accepted", "hand_rejected")]
    if not (0 < sum(labels) < len(labels)):
        raise StudioError("The preference scorer needs at least one hand-accepted and one hand-rejected candidate.")
    decided = [c for c in ctx.decided if c.decision in ("hand_accepted", "hand_rejected")]
    w, b = fit_logistic(embed_texts([candidate_text(c) for c in decided]) * 4.0, labels)

    def score(candidates: Sequence[Candidate]) -> list[float]:
        if not candidates:
            return []
        logits = embed_texts([candidate_text(c) for c in candidates]).astype(np.float64) * 4.0 @ w + b
        return _clip(1.0 / (1.0 + np.exp(-logits)))

    return score


SCORERS = {"style": style, "constraints": constraints, "fluency": fluency, "favourites": favourites,
           "preference": preference}
