"""The one exception a user ever sees: its message is a single clear sentence."""


class StudioError(Exception):
    """A user's mistake or an unusable input; the CLI prints the message, never a traceback."""
