"""Run qkd-pl's command line from a checkout: ``python cli.py ...`` is ``qkd ...``.

The application lives in ``qkd_pl/cli/`` (installed as the ``qkd`` command); this file is
only a shim, so it is not installed into site-packages, where a top-level ``cli`` module
would collide with other packages' ``cli.py``.
"""

from qkd_pl.cli import cli, main

__all__ = ["cli", "main"]

if __name__ == "__main__":
    main()
