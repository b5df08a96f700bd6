"""The errors burstsr raises for bad input. Only ``cli.py`` catches them.

Every message names the file or option at fault and, where there is one, suggests the fix.
"""


class BurstsrError(Exception):
    """Base class: a problem the user can fix (bad input, bad option, unusable data)."""


class InputError(BurstsrError):
    """A file, folder or option that cannot be used as given."""


class OutputError(BurstsrError):
    """The output cannot be written where it was asked to go."""


class AlignmentError(BurstsrError):
    """The frames of a burst could not be aligned to the reference."""


class CheckpointError(BurstsrError):
    """A model checkpoint that is missing, corrupt or does not match the request."""
