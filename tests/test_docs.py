"""The README stays short (details live in docs/), and every relative link resolves."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_readme_is_under_200_lines():
    assert len((ROOT / "README.md").read_text().splitlines()) < 200


def test_relative_links_in_readme_and_docs_resolve():
    pages = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert len(pages) >= 7
    broken = [f"{page.relative_to(ROOT)} -> {target}" for page in pages for target in LINK.findall(page.read_text())
              if "://" not in target and not (page.parent / target).exists()]
    assert broken == []


def test_the_ci_walkthrough_runs_the_readmes_own_data_commands():
    """Every `ordercast` command of the README's five steps is in .ci/walkthrough.sh, verbatim."""
    readme = (ROOT / "README.md").read_text()
    steps = readme.split("## Your own data in five steps")[1].split("\n## ")[0]
    script = (ROOT / ".ci" / "walkthrough.sh").read_text().replace("\\\n", " ")
    commands = [" ".join(line.split()) for line in re.findall(r"^\s*(ordercast \S.*?)$", steps.replace("\\\n", " "),
                                                              flags=re.MULTILINE)]
    assert len(commands) >= 4
    script_lines = {" ".join(line.split()) for line in script.splitlines()}
    missing = [command for command in commands if command not in script_lines and command != "ordercast worker"]
    assert missing == []
