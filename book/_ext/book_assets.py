"""Sphinx extension of the book: each inline script included once, author-year reference labels.

Sphinx 7.4 (the series jupyter-book 1.x requires) includes every inline script that an
extension registers after the builder started twice: ``Sphinx.add_js_file(None, body=...)``
hands the builder a script whose file name is ``None``, and ``prepare_writing`` adds the
registry's copy again with the name ``''``; the two differ only in that name, so the
builder's duplicate check misses them (sphinx-doc/sphinx#13402, fixed in Sphinx 8.2). The
visible effect is sphinx-thebe's ``const THEBE_JS_URL = ...`` declared twice, a
``SyntaxError`` in the console of every page. :func:`drop_duplicate_scripts` removes the
second copy before each page is written.

The text cites author-year ("Kob and Andersen, 1995", ``bibtex_reference_style:
author_year``), while sphinxcontrib-bibtex labels the reference list with alpha keys
("[KA95]") by default. The pybtex style ``author_year_labels`` (``bibtex_default_style``)
labels each entry as the text cites it and sorts by author and year.
"""

from __future__ import annotations

import pybtex.plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle


def _key(script) -> tuple:
    return (script.filename or "", script.priority, tuple(sorted(script.attributes.items())))


def _unique(scripts: list) -> list:
    seen, kept = set(), []
    for script in scripts:
        if _key(script) not in seen:
            seen.add(_key(script))
            kept.append(script)
    return kept


def drop_duplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    """Remove repeated scripts from the page's script list (the builder's list, in place)."""
    builder = app.builder
    for name in ("_js_files", "_orig_js_files"):
        scripts = getattr(builder, name, None)
        if scripts is not None:
            scripts[:] = _unique(scripts)


def _last_name(person) -> str:
    return " ".join(part.render_as("text") for part in person.rich_last_names)


class AuthorYearLabels(BaseLabelStyle):
    """"Kob and Andersen, 1995", "Ciarella et al., 2023": the label the text cites."""

    def format_labels(self, sorted_entries):
        for entry in sorted_entries:
            people = entry.persons.get("author") or entry.persons.get("editor") or []
            names = [_last_name(p) for p in people]
            if "others" in names:   # "A and others" in BibTeX: more authors than listed
                names = names[:1] + ["", ""]
            if not names:
                who = entry.key
            elif len(names) == 1:
                who = names[0]
            elif len(names) == 2:
                who = f"{names[0]} and {names[1]}"
            else:
                who = f"{names[0]} et al."
            yield f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearStyle(UnsrtStyle):
    default_label_style = "author_year_labels"
    default_sorting_style = "author_year_title"


pybtex.plugin.register_plugin("pybtex.style.labels", "author_year_labels", AuthorYearLabels)
pybtex.plugin.register_plugin("pybtex.style.formatting", "author_year_labels", AuthorYearStyle)


def setup(app):
    # Early (priority 100): before the mathjax and theme handlers add per-page scripts.
    app.connect("html-page-context", drop_duplicate_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
