"""The repository stands alone: its docs and comments cite only files it has."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Spelled in pieces, so that this file does not match itself.
OUTSIDE = re.compile("|".join([r"REFERENCE(?:\.md| §)", "API" + "-CONTRACT", r"SECURITY\.md",
                               r"\.\./" + "shared", "/work/" + "shared", "json-api-" + "seed"]))
GATEWAY_CITATION = re.compile(r"docs/gateway\.md §(\d+(?:\.\d+)?)((?:, §\d+(?:\.\d+)?)*)")
SECURITY_CITATION = re.compile(r"docs/security\.md (\d+)")


def tracked_files() -> list[Path]:
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                                check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in listed.decode().split("\0") if name]


def texts() -> dict[str, str]:
    found = {}
    for path in tracked_files():
        if path.is_symlink() or not path.is_file():
            continue
        try:
            found[str(path.relative_to(ROOT))] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:  # images and the like
            continue
    return found


def test_no_tracked_file_cites_a_document_the_repository_does_not_have():
    offending = {name: sorted(set(OUTSIDE.findall(text))) for name, text in texts().items()
                 if OUTSIDE.search(text)}
    assert offending == {}


def test_every_gateway_citation_names_a_section_of_docs_gateway_md():
    headings = re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ",
                          (ROOT / "docs" / "gateway.md").read_text(encoding="utf-8"),
                          flags=re.MULTILINE)
    cited = {}
    for name, text in texts().items():
        for first, more in GATEWAY_CITATION.findall(text):
            for section in [first, *re.findall(r"§(\d+(?:\.\d+)?)", more)]:
                cited.setdefault(section, name)
    assert cited  # the code does cite it
    assert {section: name for section, name in cited.items() if section not in headings} == {}


def test_every_security_citation_names_a_requirement_of_docs_security_md():
    items = re.findall(r"^(\d+)\. ", (ROOT / "docs" / "security.md").read_text(encoding="utf-8"),
                       flags=re.MULTILINE)
    cited = {number: name for name, text in texts().items()
             for number in SECURITY_CITATION.findall(text)}
    assert cited
    assert {number: name for number, name in cited.items() if number not in items} == {}
