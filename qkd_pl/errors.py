"""The exception and warning types the command line turns into one-line messages.

Raised instead of generic exceptions so the CLI can tell user errors, which deserve a short
message and exit status 2, from bugs, which deserve a traceback.
"""


class QkdError(Exception):
    """A problem the user can fix (bad option, missing data, incompatible checkpoint): exit status 2."""

    exit_code = 2


class QkdInterrupted(QkdError):
    """Ctrl-C during a run: the run folder keeps every finished epoch; exit status 130, as a shell would."""

    exit_code = 130


class QkdWarning(UserWarning):
    """Something the user should know that does not stop the run (printed as one line by the CLI)."""
