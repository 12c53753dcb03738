"""The README is a newcomer's page (at most 400 lines, details in docs/), its data steps work as printed
(a folder is made before an archive is unpacked into it), every link between the README and docs/
points at a file and a heading that exist, and "When things go wrong" covers what a user meets."""

import re

import pytest

from .conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)    # a "# comment" in a code block is no heading
    return {slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.M)} | set(re.findall(r'id="([^"]+)"', text))


def test_the_readme_is_at_most_400_lines():
    assert len((REPO / "README.md").read_text(encoding="utf-8").splitlines()) <= 400


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_relative_link_points_at_a_file_and_heading_that_exist(doc):
    broken = []
    for target in LINK.findall(doc.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue   # https:, mailto:
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(target)
    assert not broken, f"{doc.name}: {broken}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_archive_is_unpacked_into_a_folder_made_first(doc):
    """`tar -C DIR` fails when DIR does not exist: each such step comes after a `mkdir -p DIR`."""
    text = doc.read_text(encoding="utf-8")
    for m in re.finditer(r"tar -x\S* +\S+ +-C +(\S+)", text):
        made = re.findall(r"mkdir -p +(\S+)", text[:m.start()])
        assert made and made[-1].rstrip(";&") == m.group(1).rstrip(";&"), f"{doc.name}: {m.group(0)}"


def test_the_readme_says_how_to_get_the_data_and_how_long_the_tests_take():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "cifar-10-python.tar.gz" in readme and "cifar10-jpeg.tar.gz" in readme
    assert re.search(r"make test .*minutes", readme)


def test_when_things_go_wrong_covers_the_new_cases():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## When things go wrong"):readme.index("## Development")]
    for phrase in ("--validation` at or above the training split", "--until-halfwidth inf", "--max-seeds",
                   "exactly one line on stderr", "runs planned of 40 in the folder", "no cursor codes",
                   "A workload's own dataset"):
        assert phrase in table, phrase
