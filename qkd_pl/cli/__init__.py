"""The ``qkd`` command line: ``app`` holds the commands, ``options`` the options generated
from the configuration schema. ``main`` is the installed entry point."""

from .app import cli, main

__all__ = ["cli", "main"]
