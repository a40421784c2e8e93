"""The docs stay true: a short README, links that lead somewhere, generated pages that match the code.

All fast: text reading, the CLI's parser (no command runs) and the numpy example of docs/acceptance.md.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, ROOT / "CONTRIBUTING.md", *sorted(DOCS.glob("*.md"))]
README_MAX_LINES = 150  # a front door; measurements and internals live in docs/

FENCED = re.compile(r"^```.*?^```", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
MD_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
HTML_LINK = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']+)["']""")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def links(page: Path) -> list[str]:
    """The link targets of a markdown page, code blocks and inline code left out."""
    text = INLINE_CODE.sub("", FENCED.sub("", page.read_text(encoding="utf-8")))
    return [m.group(1) for pattern in (MD_LINK, REF_LINK, HTML_LINK) for m in pattern.finditer(text)]


def relative_targets(page: Path) -> list[str]:
    """The targets that name a file in this checkout (no scheme, not a bare #anchor)."""
    return [t for t in links(page) if not SCHEME.match(t) and not t.startswith("#")]


def test_readme_is_a_front_door():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines; keep it to {README_MAX_LINES} and move the rest to docs/.")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_at_a_file(page):
    missing = []
    for target in relative_targets(page):
        path = target.split("#", 1)[0].split("?", 1)[0]
        if path and not (page.parent / path).exists():
            missing.append(target)
    assert not missing, f"{page.relative_to(ROOT)} links to files that do not exist: {missing}"


def test_the_link_reader_finds_every_kind_and_skips_code(tmp_path):
    page = tmp_path / "page.md"
    page.write_text('[a](x.md) ![b](img/y.png "title") <img src="z.png"> [ref]: w.md\n'
                    "[c](https://example.org) [d](#top) `[e](no.md)`\n```\n[f](no-either.md)\n```\n")
    assert relative_targets(page) == ["x.md", "img/y.png", "z.png"]
    page.write_text("[ref]: w.md\n")
    assert relative_targets(page) == ["w.md"]


def test_readme_links_every_docs_page():
    linked = {(README.parent / t.split("#", 1)[0]).resolve() for t in relative_targets(README)}
    unlinked = [p.name for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked]
    assert not unlinked, f"README.md does not link these docs/ pages: {unlinked}"


def _cli_docs():
    path = ROOT / "scripts" / "cli-docs"
    loader = importlib.machinery.SourceFileLoader("cli_docs", str(path))
    spec = importlib.util.spec_from_loader("cli_docs", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_cli_docs_and_settings_docs_match_the_code():
    """``scripts/cli-docs --check`` in a process of its own: media registered by other tests (the fake one) and
    the tests' STUDIO_TEXT_MODEL must not change what it renders."""
    import os
    import subprocess

    current = (DOCS / "cli.md").read_text(encoding="utf-8")
    made_with = re.search(r"prints it \(Python (\d+\.\d+)\)", current)
    assert made_with, "docs/cli.md has no generated part: run scripts/cli-docs."
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if made_with.group(1) != here:
        pytest.skip(f"docs/cli.md was made with Python {made_with.group(1)}; argparse lays help out "
                    f"differently on {here}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_")}
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "cli-docs"), "--check"], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| `rank` |" in (DOCS / "settings.md").read_text(encoding="utf-8")


def test_cli_docs_lists_every_command():
    from studio.cli import build_parser

    cli_docs = _cli_docs()
    names = [p.prog for p in cli_docs.commands(build_parser())]
    assert names[0] == "studio" and "studio generate" in names and "studio serve" in names
    assert len(names) == len(set(names))


# Environment variables: read through os.environ / getenv, or named as a string of the studio's own
# prefixes (a constant such as AUTH_ENV = "STUDIO_AUTH"); in shell scripts, $NAME not assigned there.
PY_ENV = re.compile(r"""(?:environ(?:\.get|\.setdefault|\.pop)?\(|environ\[|getenv\()\s*["']([A-Z][A-Z0-9_]*)["']""")
PY_NAMED = re.compile(r"""["']((?:STUDIO|HF|TRANSFORMERS|DIFFUSERS|GRADIO|XDG)_[A-Z0-9_]+)["']""")
SH_USE = re.compile(r"\$\{?([A-Z][A-Z0-9_]*)")
SH_EXPORT = re.compile(r"^\s*export\s+(.*)$", re.M)
SH_ASSIGN = re.compile(r"^\s*([A-Z][A-Z0-9_]*)=", re.M)


def environment_variables() -> dict[str, set[str]]:
    """Every variable the studio's code and scripts read or set, with the files that do."""
    found: dict[str, set[str]] = {}
    files = [*sorted((ROOT / "studio").rglob("*.py")), *sorted(p for p in (ROOT / "scripts").iterdir() if p.is_file())]
    for path in files:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".py" or text.startswith("#!/usr/bin/env python"):
            names = set(PY_ENV.findall(text)) | set(PY_NAMED.findall(text))
        else:
            exported = {n.split("=", 1)[0] for line in SH_EXPORT.findall(text) for n in line.split()}
            names = (set(SH_USE.findall(text)) - set(SH_ASSIGN.findall(text))) | exported
        for name in names:
            found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def test_configuration_lists_every_environment_variable():
    found = environment_variables()
    assert {"STUDIO_HOME", "STUDIO_CACHE", "STUDIO_AUTH", "HF_HUB_OFFLINE"} <= set(found)
    documented = (DOCS / "configuration.md").read_text(encoding="utf-8")
    missing = {name: sorted(files) for name, files in found.items() if f"`{name}`" not in documented}
    assert not missing, f"docs/configuration.md does not list these environment variables: {missing}"


def test_acceptance_example_runs():
    text = (DOCS / "acceptance.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)
    assert blocks, "docs/acceptance.md lost its runnable example"
    for block in blocks:
        exec(compile(block, "docs/acceptance.md", "exec"), {"__name__": "docs_example"})
