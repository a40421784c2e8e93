"""The one exception a user ever sees: its message is a single clear sentence."""
from __future__ import annotations

import errno
import json
import re
from typing import Callable, TypeVar

T = TypeVar("T")

# Exceptions that mean a file the user gave (a model, an adapter, a media file) is damaged or
# unreachable, not a bug in studio: they become one sentence.
# What torch and transformers say when weights and config.json disagree on a size (a model folder's mistake).
_MISMATCH_WORDS = ("size mismatch", "mismatched_sizes", "mismatched sizes")
_DAMAGED_NAMES = ("SafetensorError", "HeaderTooLarge", "DecompressionBombError", "UnidentifiedImageError")


class StudioError(Exception):
    """A user's mistake or an unusable input; the CLI prints the message, never a traceback."""


class NothingToLearn(StudioError):
    """A tune from a tuned version found no kept candidate that version has not learned (the medium's relearn
    setting off); ``left_out`` counts the new keeps left out as copies of earlier ones.  A loop's round goes on
    with the version it has."""

    def __init__(self, message: str, left_out: int = 0):
        super().__init__(message)
        self.left_out = left_out


def one_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message, short, without a trailing period."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return text.rstrip(".")


def hub_reason(exc: BaseException) -> str:
    """Why a model id did not load, in a few plain words: the model hub's and the loaders' own messages
    run to several sentences of library advice (``local_files_only``, cache folders)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    text = str(exc)
    if names & {"LocalEntryNotFoundError", "OfflineModeIsEnabled"} or any(
            words in text for words in ("outgoing traffic has been disabled", "couldn't connect", "not fully cached")):
        return "it is not on this machine and the model hub cannot be reached (offline)"
    if "GatedRepoError" in names or "gated" in text.lower():
        return "the model hub asks for a login before it gives this model"
    if "RepositoryNotFoundError" in names or "is not a valid model identifier" in text:
        return "the model hub has no model of that name"
    if "HFValidationError" in names or "Repo id must" in text:
        return "it is neither a folder on this machine nor a hub id (owner/name)"
    first = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0] if text.strip() else type(exc).__name__
    return (first if len(first) <= 120 else first[:117] + "...").rstrip(".")


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
