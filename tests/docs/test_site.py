"""The documentation site: it builds without a warning, its links resolve, every page is in a
toctree, and the code its tutorials show is the code the tests run.

The build is the slow part (``make docs`` runs the same command); the other checks read the
Markdown sources only, so a broken link fails in a second, on GitHub's reading of the files as
much as on the site's.
"""

import ast
import fnmatch
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
EXAMPLES = ROOT / "examples"
EXAMPLE_TESTS = ROOT / "tests/examples/test_examples.py"
PAGE_TESTS = ROOT / "tests/test_readme.py"

FENCE = re.compile(r"^(```+|~~~+)(.*)$")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def pages(docs: Path = DOCS) -> list[Path]:
    """Every Markdown source of the site (all of them are pages: the build has no exclusions but _build)."""
    return sorted(p for p in docs.rglob("*.md") if "_build" not in p.relative_to(docs).parts)


def prose_lines(text: str):
    """(line number, line) outside fenced code blocks, with inline code spans blanked."""
    fence = None
    for n, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line.strip())
        if m:
            if fence is None:
                fence = m.group(1)
            elif m.group(1).startswith(fence[0]) and len(m.group(1)) >= len(fence) and not m.group(2).strip():
                fence = None
            continue
        if fence is None:
            yield n, re.sub(r"`[^`]*`", "``", line)


def slug(heading: str) -> str:
    """GitHub's (and myst's) anchor for a heading."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(m.group(2)) for _, line in prose_lines(path.read_text()) if (m := HEADING.match(line))}


def broken_links(path: Path) -> list[str]:
    """Every relative link or image of a Markdown file that names a missing file or heading."""
    broken = []
    for n, line in prose_lines(path.read_text()):
        for target in LINK.findall(line):
            if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto:
                continue
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if not dest.exists():
                broken.append(f"{path.relative_to(ROOT)}:{n}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{path.relative_to(ROOT)}:{n}: {target} (no such heading)")
    return broken


def toctree_entries(page: Path, docs: Path = DOCS) -> set[str]:
    """The docnames a page's toctrees name (globs expanded), relative to the docs root, no suffix."""
    names = {str(p.relative_to(docs).with_suffix("")) for p in pages(docs)}
    found, text = set(), page.read_text()
    for block in re.findall(r"```\{toctree\}\n(.*?)```", text, re.S):
        glob = ":glob:" in block
        for entry in block.splitlines():
            entry = entry.strip()
            if not entry or entry.startswith(":"):
                continue
            base = Path("/") if entry.startswith("/") else Path("/") / page.parent.relative_to(docs)
            target = str((base / entry.lstrip("/")).resolve()).lstrip("/").removesuffix(".md")
            found |= set(fnmatch.filter(names, target)) if glob else {target}
    return found


def includes(page: Path) -> list[Path]:
    return [(page.parent / m).resolve() for m in re.findall(r"```\{literalinclude\}\s+(\S+)", page.read_text())]


def literals_of(path: Path) -> set[str]:
    """What a test file names in its string literals, whole: each literal, and the module of a
    ``module:attribute`` one (so an example is named by ``"own_dataset"`` or ``"my_data:load"``,
    not by any word that happens to contain its name)."""
    literals = {n.value for n in ast.walk(ast.parse(path.read_text()))
                if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    return literals | {v.split(":")[-2].rsplit(" ", 1)[-1] for v in literals if ":" in v}


# ---------------------------------------------------------------- the checks


def test_every_relative_link_of_the_pages_and_the_readme_resolves():
    checked = [README, *pages()]
    assert len(checked) > 30
    broken = [b for path in checked for b in broken_links(path)]
    assert not broken, "\n".join(broken)


def test_every_page_is_in_a_toctree_and_every_toctree_entry_is_a_page():
    names = {str(p.relative_to(DOCS).with_suffix("")) for p in pages()}
    entries = set().union(*(toctree_entries(p) for p in pages()))
    assert names - entries == {"index"}, f"in no toctree: {sorted(names - entries - {'index'})}"
    assert entries <= names, f"toctree entries with no page: {sorted(entries - names)}"


def test_an_example_counts_as_run_only_where_a_test_names_it_whole(tmp_path):
    tests = tmp_path / "test_x.py"
    tests.write_text('run("py:my_data:load", "grid.toml")\nfolder = EXAMPLES / "own_dataset"  # own_qnode_student\n')
    named = literals_of(tests)
    assert {"my_data", "grid.toml", "own_dataset"} <= named
    assert not {"own_qnode_student", "own", "data", "grid"} & named  # a comment, or part of a word, names nothing


def test_the_tutorials_show_the_code_the_tests_run():
    tutorials = sorted((DOCS / "tutorials").glob("*.md"))
    shown = [(page, f) for page in tutorials for f in includes(page)]
    assert shown, "the tutorials include no example file"
    named = literals_of(EXAMPLE_TESTS)
    for page, f in shown:
        assert f.is_file(), f"{page.name} includes {f}, which does not exist"
        assert f.is_relative_to(EXAMPLES), f"{page.name} includes {f}, which is not an example the tests run"
        folder = f.parent.relative_to(EXAMPLES)
        name = f.stem if f.suffix == ".py" else f.name  # a module is imported by name, a data file by file name
        assert name in named and (not folder.parts or folder.as_posix() in named), \
            f"{page.name} includes {f.relative_to(ROOT)}, which {EXAMPLE_TESTS.relative_to(ROOT)} does not run"
    # the tutorials' own Python blocks are run by tests/test_readme.py, which names their pages
    runner = PAGE_TESTS.read_text()
    for page in tutorials:
        if "```python" in page.read_text():
            assert f"docs/tutorials/{page.name}" in runner, f"no test runs the Python of {page.name}"


@pytest.mark.slow
def test_the_site_builds_without_a_warning(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    out = tmp_path / "html"
    build = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                            "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)],
                           capture_output=True, text=True, cwd=ROOT)
    assert build.returncode == 0, build.stderr[-5000:]
    assert not build.stderr.strip(), build.stderr[-5000:]
    api = (out / "reference/api.html").read_text()
    assert 'id="qkd_pl.Distiller"' in api and 'id="qkd_pl.config.RunConfig"' in api  # autodoc ran
    assert "own_qnode_student" in (out / "tutorials/own-circuit.html").read_text()  # the example is included
