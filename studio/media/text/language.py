"""Which language a prompt is written in, roughly: enough to warn when a model will not write it.

Two cheap tests, no model: the writing system of the prompt's letters (Chinese, Japanese, Korean,
Cyrillic, Arabic, ...: anything not Latin), and for Latin letters the short function words that
mark the common European languages (French "les", "une", "sur"; German "und", "der", ...), which
English prompts do not use.  Names and borrowed words in an English prompt do not trip it: a
language needs more of its own function words than English has in the prompt.
"""
from __future__ import annotations

import re
import unicodedata

# Unicode name prefixes of writing systems (the first word of a letter's Unicode name)
SCRIPTS = {"CJK": "Chinese", "HIRAGANA": "Japanese", "KATAKANA": "Japanese", "HANGUL": "Korean",
           "CYRILLIC": "Russian or another Cyrillic-script language", "ARABIC": "Arabic", "HEBREW": "Hebrew",
           "GREEK": "Greek", "DEVANAGARI": "Hindi or another Devanagari-script language", "THAI": "Thai",
           "BENGALI": "Bengali", "TAMIL": "Tamil", "GEORGIAN": "Georgian", "ARMENIAN": "Armenian",
           "ETHIOPIC": "Amharic or another Ethiopic-script language", "GUJARATI": "Gujarati",
           "TELUGU": "Telugu", "KANNADA": "Kannada", "MALAYALAM": "Malayalam", "KHMER": "Khmer",
           "LAO": "Lao", "MYANMAR": "Burmese", "SINHALA": "Sinhala", "TIBETAN": "Tibetan"}
# function words of each language that are not English words (so an English prompt has none of them)
FUNCTION_WORDS = {
    "French": "de le la les un une des du au aux sur dans avec est et qui que sous chez très mais",
    "Spanish": "un la de el los las una unos unas sobre para del y es por que muy pero como está",
    "German": "der das ein eine einen und über mit für ist von auf dem nicht ich sehr",
    "Italian": "un la il gli una sulla sul della delle che è di nel nella sono molto",
    "Portuguese": "de um uma sobre com para os da dos das é em não muito mas",
    "Dutch": "de het een voor en niet zijn ook maar naar",
}
ENGLISH = set("the a an of and to in on for with about is are at by from this that it its my your our "
              "their his her as be or not very but".split())
NON_LATIN_SHARE = 0.3  # this share of the letters in another script makes the prompt that script's language


def _script(char: str) -> str | None:
    try:
        return unicodedata.name(char).split(" ")[0]
    except ValueError:
        return None


def prompt_language(prompt: str) -> str | None:
    """The language a prompt seems to be written in when it is not English, else None."""
    letters = [c for c in prompt if c.isalpha()]
    if not letters:
        return None
    counts: dict[str, int] = {}
    for c in letters:
        script = _script(c)
        if script in SCRIPTS:
            counts[SCRIPTS[script]] = counts.get(SCRIPTS[script], 0) + 1
    if counts.get("Japanese"):  # kana: Japanese, even where kanji (counted as Chinese) outnumber them
        counts["Japanese"] += counts.pop("Chinese", 0)
    if counts:
        language, count = max(counts.items(), key=lambda item: item[1])
        if count >= NON_LATIN_SHARE * len(letters):
            return language
    words = re.findall(r"[^\W\d_]+", prompt.lower())
    english = sum(w in ENGLISH for w in words)
    best, best_count = None, 0
    for language, listed in FUNCTION_WORDS.items():
        vocabulary = set(listed.split()) - ENGLISH
        count = sum(w in vocabulary for w in words)
        if count > best_count:
            best, best_count = language, count
    if best and best_count > english and best_count >= min(2, len(words)):
        return best
    return None


CODES = {"Chinese": "zh", "Japanese": "ja", "Korean": "ko", "Russian or another Cyrillic-script language": "ru",
         "Arabic": "ar", "Hebrew": "he", "Greek": "el", "Hindi or another Devanagari-script language": "hi",
         "Thai": "th", "French": "fr", "Spanish": "es", "German": "de", "Italian": "it", "Portuguese": "pt",
         "Dutch": "nl"}


def language_warning(prompt: str, languages: tuple[str, ...] = ("en",), model: str = "this model") -> str | None:
    """One sentence when ``prompt`` is in a language that ``model`` (writing ``languages``, ISO 639-1 codes)
    does not write; None when it is English or one of them."""
    language = prompt_language(prompt)
    if language is None or CODES.get(language, "?") in languages:
        return None
    writes = "writes English only" if tuple(languages) == ("en",) else f"does not write {language}"
    return f"The prompt looks like {language}, but {model} {writes}, so expect English text that may miss what you asked."
