"""The user-facing Markdown links only to what exists: every relative link, its #anchor, and `X.md` names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = sorted({REPO / "README.md", *REPO.glob("deploy/**/*.md"), *REPO.glob("nfo_templates/*.md"),
               *REPO.glob("bench/*.md")})
LINK = re.compile(r"(?<!\\)\[(?P<text>[^\]]*)\]\((?P<target><[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE_NAME = re.compile(r"`([\w./-]+\.md)`")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def prose(path: Path) -> str:
    """The file's text without fenced code blocks (a link inside one is an example, not a link)."""
    return FENCE.sub("", path.read_text(encoding="utf-8"))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file (duplicates get -1, -2 as on GitHub)."""
    seen: dict[str, int] = {}
    out = set()
    for line in prose(path).splitlines():
        found = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not found:
            continue
        base = slug(found.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[str]:
    """The targets of every Markdown link outside code blocks."""
    return [m.group("target").strip("<>") for m in LINK.finditer(prose(path))]


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(REPO)) for d in DOCS])
def test_every_relative_link_resolves(doc: Path) -> None:
    """A relative link names a file or folder in the repository, and its #anchor a heading there."""
    broken = []
    for target in links(doc):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        where, _, anchor = target.partition("#")
        file = (doc.parent / where).resolve() if where else doc
        if not file.exists() or not file.is_relative_to(REPO):
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {file.relative_to(REPO)}")
    assert not broken, f"{doc.relative_to(REPO)}: " + "; ".join(broken)


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(REPO)) for d in DOCS])
def test_named_markdown_files_exist(doc: Path) -> None:
    """A document a page names as `NAME.md` exists beside it or at the repository root."""
    missing = [name for name in CODE_NAME.findall(prose(doc))
               if not (doc.parent / name).exists() and not (REPO / name).exists()]
    assert not missing, f"{doc.relative_to(REPO)} names {missing}, which the repository does not have"


def test_the_checks_catch_a_broken_link(tmp_path: Path) -> None:
    """The link reader finds links and anchors as GitHub does (a checker that finds nothing proves nothing)."""
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n## 1. Install\n\nSee [the guide](missing.md), [install](#1-install) and "
                    "[`api`](http://x/).\n\n```sh\n[not a link](nowhere.md)\n```\n", encoding="utf-8")
    assert links(page) == ["missing.md", "#1-install", "http://x/"]
    assert anchors(page) == {"title", "1-install"}
    assert slug("Who can reach the agent") == "who-can-reach-the-agent"
    assert slug("1a. Python venv") == "1a-python-venv"
    readme_links = links(REPO / "README.md")
    assert "deploy/README.md" in readme_links and "nfo_templates/README.md" in readme_links
