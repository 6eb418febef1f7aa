"""The one base class of the failures a command reports as a single `error:` line."""


class ToolkitError(Exception):
    """An expected failure (bad input, mismatched state, ...): the message says what to do."""
