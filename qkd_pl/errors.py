"""The one exception type that the command line turns into a one-line message and exit status 2."""


class QkdError(Exception):
    """A problem the user can fix (bad option, missing data, incompatible checkpoint).

    Raised instead of a generic exception so the CLI can tell user errors, which deserve a
    short message and exit status 2, from bugs, which deserve a traceback.
    """
