"""Text to phoneme ids: espeak-ng (Debian's ``espeak-ng``, called as a program) writes IPA.

The id sequence interleaves a pause symbol between phonemes (``^ _ p1 _ p2 _ ... $``), the layout
Piper voices read, so the teacher's per-id durations line up one to one with the student's ids.
The inventory is the studio's own: IPA letters, stress and length marks, a space and clause
punctuation; a character outside it is dropped.
"""
from __future__ import annotations

import functools
import re
import shutil
import subprocess

from ...errors import StudioError

PAD, BOS, EOS = "_", "^", "$"
PUNCTUATION = ",.;:!?"
# every IPA character espeak-ng's en-us voice writes, plus a few from other English voices
IPA = (  # (no ascii g and no ɝ: espeak-ng writes ɡ and ɜː, and Piper voices lack them)
       "abcdefhijklmnopqrstuvwxyz"
       "æçðøħŋœɐɑɒɓɔɕɖɗɘəɚɛɜɞɟɠɡɢɣɤɥɦɧɪɫɬɭɮɯɰɱɲɳɴɵɶɸɹɺɻɽɾʀʁʂʃʄʈʉʊʋʌʍʎʏʐʑʒʔʕʘʙʛʜʝʟʡʢʰʲ"
       "ˈˌːˑ̩̃ᵻ")
SYMBOLS = [PAD, BOS, EOS, " "] + list(PUNCTUATION) + list(IPA)
SYMBOL_ID = {symbol: index for index, symbol in enumerate(SYMBOLS)}
CLAUSE = re.compile(r"([,.;:!?])")


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


@functools.lru_cache(maxsize=4096)
def _espeak(chunk: str, voice: str = "en-us") -> str:
    if not espeak_available():
        raise StudioError("Voice needs the espeak-ng program to read text (Debian/Ubuntu: apt-get install espeak-ng).")
    out = subprocess.run(["espeak-ng", "-q", "--ipa", "-v", voice, "--", chunk], capture_output=True,
                         text=True, check=True).stdout
    return " ".join(out.split())


def phonemize(text: str) -> str:
    """IPA for a line, clause by clause, keeping the clause punctuation (pauses and intonation)."""
    parts = CLAUSE.split(text)
    out: list[str] = []
    for part in parts:
        if not part.strip():
            continue
        if CLAUSE.fullmatch(part):
            if out:
                out[-1] = out[-1] + part
            continue
        ipa = _espeak(part.strip())
        if ipa:
            out.append(ipa)
    phones = " ".join(out)
    if phones and phones[-1] not in PUNCTUATION:
        phones += "."
    return phones


UNVOICED = set("ptkfθsʃhxçʔ") | set(PUNCTUATION) | {" ", BOS, EOS}  # read without the voice sounding


def voiced(ids: list[int]) -> list[bool]:
    """Per id, whether the voice sounds through it: a vowel, a voiced consonant or a mark on one; a pause
    between two phonemes when both sound (inside a word's voiced stretch), else not."""
    sounds = [SYMBOLS[i] not in UNVOICED and SYMBOLS[i] != PAD for i in ids]
    out = list(sounds)
    for j, i in enumerate(ids):
        if SYMBOLS[i] == PAD:
            out[j] = 0 < j < len(ids) - 1 and sounds[j - 1] and sounds[j + 1]
    return out


def ids_for_phonemes(phones: str) -> list[int]:
    ids = [SYMBOL_ID[BOS], SYMBOL_ID[PAD]]
    for char in phones:
        if char in SYMBOL_ID and char not in (PAD, BOS, EOS):
            ids += [SYMBOL_ID[char], SYMBOL_ID[PAD]]
    ids.append(SYMBOL_ID[EOS])
    return ids


def text_to_ids(text: str) -> list[int]:
    phones = phonemize(text)
    if not phones.strip(". "):
        raise StudioError("The line to speak has no words espeak-ng can read; type a sentence.")
    return ids_for_phonemes(phones)
