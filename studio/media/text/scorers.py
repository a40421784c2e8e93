"""Built-in text scorers by name; each maps candidates to floats in [0, 1], higher is better.

style        semantic similarity (MiniLM) to ``options['style']``, to ``options['exemplars']``
             (the closest one), or else to the candidate's own prompt
topic        about the prompt's subject ("a haiku about the first snow" -> "the first snow"):
             MiniLM similarity mapped from [low, high] to [0, 1], in full once the text says
             ``own_words`` (3) words of its own beyond the subject's (the subject said back scores 0)
syllables    syllables per line against a pattern ("5-7-5"), by the CMU Pronouncing Dictionary
metre        stress on the beats of a metre (iambic, trochaic, ...), optionally so many feet a line
rhyme        the line endings that a rhyme scheme ("AABB", "ABAB", "ABCB") pairs do rhyme
lines        line count and words per line (count, min_words, max_words)
english      the share of words that are English dictionary words (no word salad, no other language)
constraints  the share of the asked constraints met: words/lines min/max, syllables per
             line ("5-7-5"), must / must_not words, a regular expression
fluency      the base model's per-token likelihood of the completion (geometric mean probability)
favourites   similarity to the closest accepted candidate
preference   a small logistic model on embeddings, fit on the artist's hand decisions

Every one of them then scales a text by one minus its share of three-word runs said before (option ``repetition``,
1; 0 = off; ``charging_repetition``): a loop is more of anything to any of these measures.
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Sequence

from ...errors import StudioError
from ...medium import Candidate, ScoringContext
from . import verse
from .embedding import candidate_text, embed_texts
from .language import ENGLISH
from .metrics import repeated_share

OWN_WORDS = 3  # topic: the words of its own a text needs for full credit (options["own_words"])
CONSTRAINT_KEYS = ("min_words", "max_words", "min_lines", "max_lines", "syllables", "must", "must_not", "regex")


def _clip(values) -> list[float]:
    return [float(min(1.0, max(0.0, v))) for v in values]


def style(ctx: ScoringContext):
    """Rewards closeness in meaning to a style text (else the prompt), by sentence embeddings: options['style'] (a
    text) or options['exemplars'] (a list of texts)."""
    options = _options(ctx, "style", ("style", "exemplars"))
    target = options.get("style")
    exemplars = options.get("exemplars")
    if exemplars is not None and (isinstance(exemplars, str) or not all(isinstance(e, str) for e in exemplars)):
        raise StudioError("The style scorer's 'exemplars' option must be a list of texts.")

    def score(candidates: Sequence[Candidate]) -> list[float]:
        if not candidates:
            return []
        texts = embed_texts([candidate_text(c) for c in candidates])
        if exemplars:
            similarity = (texts @ embed_texts(list(exemplars)).T).max(axis=1)
        elif target:
            similarity = texts @ embed_texts([str(target)])[0]
        else:
            similarity = (texts * embed_texts([c.prompt for c in candidates])).sum(axis=1)
        return _clip(similarity)

    return score


def count_syllables(word: str) -> int:
    """English syllables of a word (the CMU Pronouncing Dictionary, else spelling rules)."""
    return sum(verse.syllables(w) for w in verse.words(word))


def parse_pattern(pattern: Any, scorer: str) -> list[int]:
    """Syllables per line from "5-7-5" or [5, 7, 5]; a StudioError for anything else."""
    try:
        targets = [int(x) for x in pattern.split("-")] if isinstance(pattern, str) else [int(x) for x in pattern]
    except (TypeError, ValueError):
        targets = []
    if not targets or min(targets) < 1:
        raise StudioError(f"The {scorer} scorer's syllable pattern must look like '5-7-5' (positive counts per line).")
    return targets


def pattern_fit(lines: Sequence[str], targets: Sequence[int]) -> float:
    """Per line 1 - |syllables - target| / target, averaged over the longer of the poem and the pattern
    (a missing or an extra line scores 0)."""
    fits = [max(0.0, 1.0 - abs(verse.line_syllables(line) - t) / t) for line, t in zip(lines, targets)]
    return sum(fits) / max(len(lines), len(targets))


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
        parts.append(pattern_fit(verse.verse_lines(text), parse_pattern(options["syllables"], "constraints")))
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
    """Rewards meeting the asked form: words and lines per text, syllables per line, words to use or avoid
    (options['min_words'], options['max_words'], options['min_lines'], options['max_lines'], options['syllables'],
    options['must'], options['must_not'], options['regex'])."""
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
        parse_pattern(options["syllables"], "constraints")
    for key in ("min_words", "max_words", "min_lines", "max_lines"):
        if key in options and (not isinstance(options[key], int) or options[key] < 0):
            raise StudioError(f"The constraints option '{key}' must be a whole number of at least 0.")

    def score(candidates: Sequence[Candidate]) -> list[float]:
        return [constraint_score(candidate_text(c), options) for c in candidates]

    return score


def _options(ctx: ScoringContext, scorer: str, known: Sequence[str]) -> dict[str, Any]:
    options = dict(ctx.options)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise StudioError(f"Unknown {scorer} option '{unknown[0]}'; known: {', '.join(known)}.")
    return options


def _repetition(options: dict[str, Any], scorer: str) -> float:
    """The ``repetition`` option (1 unless given): how much of a text's repeated share of three-word runs comes off."""
    repetition = options.get("repetition", 1.0)
    if isinstance(repetition, bool) or not isinstance(repetition, (int, float)) or not 0 <= repetition <= 1:
        raise StudioError(f"The {scorer} option 'repetition' must be a number from 0 to 1, not {repetition!r}.")
    return float(repetition)


def _whole(options: dict[str, Any], key: str, scorer: str, low: int = 0) -> int | None:
    value = options.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
        raise StudioError(f"The {scorer} option '{key}' must be a whole number of at least {low}, not {value!r}.")
    return value


def prompt_subject(prompt: str) -> str:
    """What a prompt is about: "a haiku about the first snow" -> "the first snow"; else the whole prompt.

    The text after the last "about", else after the last "for", else after the last "on".
    """
    for word in ("about", "for", "on"):
        found = re.match(rf".*\b{word}\s+(.+)$", prompt, re.IGNORECASE | re.DOTALL)
        if found and found.group(1).strip(" .,:;!?"):
            return found.group(1).strip(" .,:;!?")
    return prompt.strip()


# words that say nothing of their own: a text made of the subject and these says the subject back
SMALL_WORDS = ENGLISH | set("i me we us you he him she they them was were been being am has have had do does did "
                            "will would can could shall should may might must so if then than there here all only "
                            "one some such no nor just too also into over under up down out when where what which "
                            "who how like".split())


def own_words(text: str, subject: str) -> int:
    """How many words a text says beyond its subject's: its distinct words that are neither the subject's nor
    SMALL_WORDS ("The first snow is the first snow." has none for "the first snow")."""
    return len(set(verse.words(text)) - set(verse.words(subject)) - SMALL_WORDS)


def topic(ctx: ScoringContext):
    """Rewards text about the prompt's subject (or options['topic']), by sentence-embedding similarity, at full
    credit once it says options['own_words'] words of its own (a text that only says its subject back is not about
    it); similarity options['low'] scores 0 and options['high'] 1."""
    options = _options(ctx, "topic", ("topic", "low", "high", "own_words"))
    low, high = float(options.get("low", 0.2)), float(options.get("high", 0.7))
    if not -1 <= low < high <= 1:
        raise StudioError(f"The topic options need -1 <= low < high <= 1, not low={low}, high={high}.")
    needed = _whole(options, "own_words", "topic") if "own_words" in options else OWN_WORDS
    fixed = options.get("topic")
    if fixed is not None and (not isinstance(fixed, str) or not fixed.strip()):
        raise StudioError("The topic option 'topic' must be a non-empty text.")

    def score(candidates: Sequence[Candidate]) -> list[float]:
        if not candidates:
            return []
        subjects = [fixed or prompt_subject(c.prompt) for c in candidates]
        texts = [candidate_text(c) for c in candidates]
        similarity = (embed_texts(texts) * embed_texts(subjects)).sum(axis=1)
        said = [min(1.0, own_words(t, s) / needed) if needed else 1.0 for t, s in zip(texts, subjects)]
        return [v * share for v, share in zip(_clip((similarity - low) / (high - low)), said)]

    return score


def syllables(ctx: ScoringContext):
    """Rewards lines with the syllables of a pattern (options['pattern'], default "5-7-5", a haiku)."""
    options = _options(ctx, "syllables", ("pattern",))
    targets = parse_pattern(options.get("pattern", "5-7-5"), "syllables")

    def score(candidates: Sequence[Candidate]) -> list[float]:
        return [pattern_fit(verse.verse_lines(candidate_text(c)), targets) for c in candidates]

    return score


def metre(ctx: ScoringContext):
    """Rewards lines that keep a metre (options['metre'], default iambic; options['feet'] per line if given)."""
    options = _options(ctx, "metre", ("metre", "feet"))
    name = options.get("metre", "iambic")
    if name not in verse.METRES:
        raise StudioError(f"Unknown metre '{name}'; known: {', '.join(verse.METRES)}.")
    feet = _whole(options, "feet", "metre", 1)

    def score(candidates: Sequence[Candidate]) -> list[float]:
        out = []
        for c in candidates:
            lines = verse.verse_lines(candidate_text(c))
            out.append(sum(verse.metre_fit(line, name, feet) for line in lines) / len(lines) if lines else 0.0)
        return out

    return score


def scheme_pairs(scheme: str) -> list[tuple[int, int]]:
    """The line pairs a rhyme scheme asks to rhyme: each line with the previous line of its letter."""
    pairs, last = [], {}
    for i, letter in enumerate(scheme):
        if letter in last:
            pairs.append((last[letter], i))
        last[letter] = i
    return pairs


def rhyme_score(lines: Sequence[str], scheme: str) -> float:
    """The share of the scheme's rhyme pairs whose line endings rhyme, times how much of the text the
    scheme covers (four lines asked, six written: 4/6)."""
    pairs = scheme_pairs(scheme)
    endings = [verse.last_word(line) for line in lines]
    met = sum(1 for a, b in pairs if b < len(endings) and verse.rhymes(endings[a], endings[b]))
    return met / len(pairs) * min(1.0, len(scheme) / max(1, len(lines)))


def rhyme(ctx: ScoringContext):
    """Rewards line endings that rhyme as a scheme says (options['scheme'], default "AABB"; X = free)."""
    options = _options(ctx, "rhyme", ("scheme",))
    scheme = str(options.get("scheme", "AABB")).upper()
    if not re.fullmatch(r"[A-Z]+", scheme) or not scheme_pairs(scheme.replace("X", "")):
        raise StudioError(f"The rhyme scheme must be letters with at least one repeated, e.g. AABB or ABAB; "
                          f"not {options.get('scheme')!r}.")
    scheme = "".join(letter if letter != "X" else f"{i}" for i, letter in enumerate(scheme))  # X: never paired

    def score(candidates: Sequence[Candidate]) -> list[float]:
        return [rhyme_score(verse.verse_lines(candidate_text(c)), scheme) for c in candidates]

    return score


def lines_score(text: str, count: int | None, min_words: int | None, max_words: int | None,
                min_lines: int | None = None, max_lines: int | None = None) -> float:
    lines = verse.verse_lines(text)
    if not lines:
        return 0.0
    parts = []
    if count is not None:
        parts.append(max(0.0, 1.0 - abs(len(lines) - count) / count))
    if min_lines is not None or max_lines is not None:
        parts.append(_range_score(len(lines), min_lines, max_lines))
    if min_words is not None or max_words is not None:  # a line of no words ("4.", "***") is never in range
        parts.append(sum(_range_score(len(verse.words(line)), max(1, min_words or 0), max_words) == 1.0
                         for line in lines) / len(lines))
    return sum(parts) / len(parts)


def lines(ctx: ScoringContext):
    """Rewards the asked shape: so many lines (options['count']), or from options['min_lines'] to
    options['max_lines'] lines (a poem, not a title: min_lines 3), each of options['min_words'] to
    options['max_words'] words."""
    options = _options(ctx, "lines", ("count", "min_lines", "max_lines", "min_words", "max_words"))
    count = _whole(options, "count", "lines", 1)
    fewest, most = _whole(options, "min_lines", "lines", 1), _whole(options, "max_lines", "lines", 1)
    low, high = _whole(options, "min_words", "lines"), _whole(options, "max_words", "lines", 1)
    if count is None and fewest is None and most is None and low is None and high is None:
        raise StudioError("The lines scorer needs at least one option: count, min_lines, max_lines, min_words or "
                          "max_words.")
    for key, (a, b) in {"words": (low, high), "lines": (fewest, most)}.items():
        if a is not None and b is not None and a > b:
            raise StudioError(f"The lines option min_{key} ({a}) is above max_{key} ({b}).")

    def score(candidates: Sequence[Candidate]) -> list[float]:
        return [lines_score(candidate_text(c), count, low, high, fewest, most) for c in candidates]

    return score


def english_share(text: str) -> float:
    found = verse.words(text)
    return sum(verse.known(w) for w in found) / len(found) if found else 0.0


def english(ctx: ScoringContext):
    """Rewards real English: the share of words found in the CMU Pronouncing Dictionary."""
    _options(ctx, "english", ())

    def score(candidates: Sequence[Candidate]) -> list[float]:
        return [english_share(candidate_text(c)) for c in candidates]

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
        raise StudioError("The favourites scorer needs at least one kept candidate.")
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
        raise StudioError("The preference scorer needs at least one candidate kept and one dropped by hand.")
    decided = [c for c in ctx.decided if c.decision in ("hand_accepted", "hand_rejected")]
    w, b = fit_logistic(embed_texts([candidate_text(c) for c in decided]) * 4.0, labels)

    def score(candidates: Sequence[Candidate]) -> list[float]:
        if not candidates:
            return []
        logits = embed_texts([candidate_text(c) for c in candidates]).astype(np.float64) * 4.0 @ w + b
        return _clip(1.0 / (1.0 + np.exp(-logits)))

    return score


def charging_repetition(name: str, factory):
    """``factory``'s scorer, each text's score then scaled by one minus options['repetition'] (1; 0 = off) times the
    share of its three-word runs that repeat one before them (``metrics.repeated_share``).

    A loop reads as more of whatever is measured, to every measure here: naming the subject again and again is "more
    about it" to ``topic`` (stop 73), "she wept for her son's death, and she wept for his love" five times is more of
    the style to ``style``, "I am lost, I am lost," twenty lines has the shape ``lines`` asks for (stop 74), and a
    model finds its own loops likely (``fluency``); a tune that learns from what a scorer ranks high then learns to
    loop (docs/objectives.md, "Text: room for a poem to end").
    """

    def build(ctx: ScoringContext):
        repetition = _repetition(ctx.options, name)
        score = factory(dataclasses.replace(ctx, options={k: v for k, v in ctx.options.items() if k != "repetition"}))
        if not repetition:
            return score

        def charged(candidates: Sequence[Candidate]) -> list[float]:
            values = score(candidates)
            return [v * (1.0 - repetition * repeated_share(candidate_text(c))) for v, c in zip(values, candidates)]

        return charged

    build.__doc__ = (f"{factory.__doc__.rstrip()} A text that says its words again is scaled by one minus "
                     f"options['repetition'] (1; 0 = off) times its share of three-word runs said before.")
    return build


SCORERS = {name: charging_repetition(name, factory) for name, factory in {
    "style": style, "topic": topic, "syllables": syllables, "metre": metre, "rhyme": rhyme, "lines": lines,
    "english": english, "constraints": constraints, "fluency": fluency, "favourites": favourites,
    "preference": preference}.items()}
