"""The one exception a user ever sees: its message is a single clear sentence."""
from __future__ import annotations

import errno
import json
from typing import Callable, TypeVar

T = TypeVar("T")

# Exceptions that mean a file the user gave (a model, an adapter, a media file) is damaged or
# unreachable, not a bug in studio: they become one sentence.
# What torch and transformers say when weights and config.json disagree on a size (a model folder's mistake).
_MISMATCH_WORDS = ("size mismatch", "mismatched_sizes", "mismatched sizes")
_DAMAGED_NAMES = ("SafetensorError", "HeaderTooLarge", "DecompressionBombError", "UnidentifiedImageError")


class StudioError(Exception):
    """A user's mistake or an unusable input; the CLI prints the message, never a traceback."""


def one_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message, short, without a trailing period."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return text.rstrip(".")


def disk_full(exc: BaseException) -> bool:
    return getattr(exc, "errno", None) == errno.ENOSPC or "disk is full" in str(exc) \
        or "No space left" in str(exc)


def os_error_sentence(exc: OSError, what: str) -> str:
    """One sentence for a failed file operation while doing ``what``."""
    if disk_full(exc):
        return f"The disk is full, so studio could not {what}; free some space and try again."
    reason = exc.strerror or one_line(exc)
    where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
    return f"Could not {what}: {reason}{where}."


def guarded(action: Callable[[], T], what: str) -> T:
    """Run ``action``; a damaged or unreachable file becomes one sentence, a bug stays a traceback."""
    try:
        return action()
    except StudioError:
        raise
    except OSError as exc:
        raise StudioError(os_error_sentence(exc, what)) from None
    except (json.JSONDecodeError, UnicodeDecodeError, EOFError) as exc:
        raise StudioError(f"Could not {what}: a file is damaged ({one_line(exc)}).") from None
    except Exception as exc:
        if type(exc).__name__ in _DAMAGED_NAMES:
            raise StudioError(f"Could not {what}: a file is damaged or truncated ({one_line(exc)}).") from None
        if isinstance(exc, RuntimeError) and any(word in str(exc) for word in _MISMATCH_WORDS):
            raise StudioError(f"Could not {what}: its weights do not fit its configuration (a size in "
                              "config.json, such as vocab_size, differs from the weights).") from None
        raise
