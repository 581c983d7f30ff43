"""Every `qkd ...` line the README and the site's pages show parses as the command line would
parse it: its command exists, its options exist and take the values given (choices, ranges).
Nothing runs: the lines are full-size runs, and a renamed or removed option would otherwise rot
in the docs unnoticed."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from qkd_pl.cli import cli

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
         *sorted(p for d in ("start", "tutorials", "howto", "explanation", "reference", "results")
                 for p in (ROOT / "docs" / d).glob("*.md"))]
# a line with a placeholder (<backend>, ..., $(hostname), an upper-case word such as DS or PATH)
# stands for a family of commands; the rest are commands a reader can paste
PLACEHOLDER = re.compile(r"\.\.\.|<|\$\(|(?:^|\s)[A-Z][A-Z_]+(?:\s|$)")


def documented_commands() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for block in re.findall(r"```(?:bash|console|shell)\n(.*?)```", page.read_text(), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                for part in re.split(r"&&|\|\||;|\|", line.split(" #")[0]):
                    part = part.strip()
                    if re.match(r"^(\w+=\S+\s+)*qkd\s", part) and not PLACEHOLDER.search(part):
                        found.append((str(page.relative_to(ROOT)), part))
    return found


COMMANDS = documented_commands()


def test_the_docs_show_commands():
    assert len(COMMANDS) > 30 and any(p.startswith("docs/tutorials") for p, _ in COMMANDS)


@pytest.mark.parametrize("page, line", COMMANDS, ids=[f"{p}:{i}" for i, (p, _) in enumerate(COMMANDS)])
def test_a_documented_command_line_parses(page, line):
    args = shlex.split(line)
    while "=" in args[0]:  # RAY_ADDRESS=... qkd grid ...
        args = args[1:]
    args = args[1:]
    command = cli.get_command(click.Context(cli), args[0])
    assert command is not None, f"{page}: no command {args[0]!r} in {line!r}"
    try:
        command.make_context(args[0], args[1:])
    except click.exceptions.Exit:  # --help, --keys
        pass
    except click.UsageError as exc:
        pytest.fail(f"{page}: {line!r}: {exc.format_message()}")
