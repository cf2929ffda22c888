"""Every chapter is a MyST notebook in sync with its paired .ipynb, with one parameters cell.

The notebooks themselves are executed by nbmake (`pytest --nbmake notebooks`).
"""

from pathlib import Path

import jupytext
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CHAPTERS = sorted(NOTEBOOKS.glob("*.md"))


def _cells(notebook):
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]


def test_there_are_chapters():
    assert CHAPTERS, "no chapters found in notebooks/"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_pair_in_sync(chapter):
    paired = chapter.with_suffix(".ipynb")
    assert paired.exists(), f"{paired.name} missing: run jupytext --sync {chapter}"
    source = jupytext.read(chapter)
    ipynb = jupytext.read(paired)
    assert _cells(source) == _cells(ipynb), f"{chapter.name} and {paired.name} differ: run jupytext --sync"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_one_parameters_cell(chapter):
    notebook = jupytext.read(chapter)
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{chapter.name} needs exactly one cell tagged 'parameters'"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_in_table_of_contents(chapter):
    toc = (NOTEBOOKS.parent / "_toc.yml").read_text()
    assert f"notebooks/{chapter.stem}" in toc, f"{chapter.name} is not in _toc.yml"
