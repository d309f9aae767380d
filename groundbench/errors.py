"""The exceptions groundbench raises on bad input.

Every message says what is wrong, where (file, key path, sample id) and how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GroundbenchError(Exception):
    """Base class of every error groundbench raises on purpose."""


class ProtocolError(GroundbenchError):
    """A protocol YAML (or a ``--set`` override) is malformed or names an unknown key."""


class DataFormatError(GroundbenchError):
    """A dataset file, record, heatmap file or tensor is not in the expected format."""


class MethodError(GroundbenchError):
    """A method spec cannot be resolved, or a method returned unusable maps."""


class CheckpointError(GroundbenchError):
    """A checkpoint is corrupt, untrusted, or does not match the model it is loaded into."""


class UnknownNameError(GroundbenchError, KeyError):
    """A registry lookup named something that is not registered."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


def did_you_mean(word: object, options: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest option to ``word``, or ``""``.

    Example:
        >>> did_you_mean("lrr", ["lr", "seed"]), did_you_mean("zzz", ["lr"])
        ("; did you mean 'lr'?", '')
    """
    close = difflib.get_close_matches(str(word), list(options), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
