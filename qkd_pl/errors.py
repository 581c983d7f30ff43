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


def one_line_warnings() -> None:
    """Show QkdWarnings as one ``Warning: ...`` line on stderr, and hide the deprecation notices of
    plugins (meant for their developers); the CLI and every grid worker process call this."""
    import sys
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
    show = warnings.showwarning
    if getattr(show, "one_line", False):
        return

    def one_line(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, QkdWarning):
            print(f"Warning: {message}", file=sys.stderr, flush=True)
        else:
            show(message, category, filename, lineno, file, line)

    one_line.one_line = True
    warnings.showwarning = one_line


def first_line(exc: BaseException, width: int = 200) -> str:
    """The first line of an exception's message, at most ``width`` characters: what a one-line
    refusal quotes of a user's code that failed."""
    return (str(exc).strip().splitlines() or [""])[0][:width]
