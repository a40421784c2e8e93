"""A tiny CLIP tokenizer built from a word list: each known word is one token.

CLIP's tokenizer is byte-pair encoding: a word starts as characters (the last one marked
``</w>``) and merges are applied lowest rank first.  We add, word by word, the merges that
join what the merges so far leave of it, so every listed word ends as one token and an
unknown word still splits into known pieces (never an unknown token).
"""
from __future__ import annotations

import json
import string
from pathlib import Path

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
MAX_LENGTH = 16  # tokens per prompt, BOS and EOS included


def _pieces(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    """CLIP's BPE on one word with the merges so far (the same loop as the tokenizer's)."""
    parts = list(word[:-1]) + [word[-1] + "</w>"]
    while len(parts) > 1:
        pairs = [(ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
        rank, i = min(pairs)
        if rank == 1 << 30:
            break
        first, second = parts[i], parts[i + 1]
        merged, j = [], 0
        while j < len(parts):  # merge every occurrence, left to right, as the tokenizer does
            if j < len(parts) - 1 and parts[j] == first and parts[j + 1] == second:
                merged.append(first + second)
                j += 2
            else:
                merged.append(parts[j])
                j += 1
        parts = merged
    return parts


def build_files(words: list[str]) -> tuple[dict[str, int], list[str]]:
    """The vocabulary (token -> id) and the merges (``"a b"`` lines) for ``words``."""
    alphabet = string.ascii_lowercase + string.digits + ",.'-!?"
    tokens = list(alphabet) + [c + "</w>" for c in alphabet]
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}
    for word in words:
        parts = _pieces(word, ranks)
        while len(parts) > 1:
            pair = (parts[0], parts[1])
            ranks[pair] = len(merges)
            merges.append(pair)
            tokens.append(parts[0] + parts[1])
            parts = [parts[0] + parts[1]] + parts[2:]
    seen: dict[str, int] = {}
    for token in tokens + [BOS, EOS]:
        seen.setdefault(token, len(seen))
    return seen, [f"{a} {b}" for a, b in merges]


def save_tokenizer(words: list[str], out_dir: Path):
    """Write vocab.json and merges.txt and return the loaded ``CLIPTokenizer``."""
    from transformers import CLIPTokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab, merges = build_files(words)
    (out_dir / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (out_dir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return CLIPTokenizer(str(out_dir / "vocab.json"), str(out_dir / "merges.txt"),
                         model_max_length=MAX_LENGTH, pad_token=EOS)


def word_tokenizer(words: list[str], max_length: int):
    """A T5-style word-level tokenizer (``<pad>`` = 0, ``</s>`` appended) for models built from configs.

    Tests and benchmarks give a T5 encoder (SD3's and Flux's third and second encoder) this
    instead of a downloaded sentencepiece model; it is a fast tokenizer like T5's.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in words:
        vocab.setdefault(word, len(vocab))
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
                                   model_max_length=max_length)
