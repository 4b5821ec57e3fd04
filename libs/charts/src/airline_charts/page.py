"""The parts of a self-contained HTML report page both reports share: its style and tables."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

STYLE = ("body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}"
         "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
         "padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
         "pre{background:#f4f4f4;padding:.6em;overflow-x:auto}svg{display:block;"
         "margin:1em 0}")


def table(head: Sequence[str], rows: Sequence[Sequence[str]], attrs: str = "") -> str:
    """An HTML table of text cells (escaped); ``attrs`` go on the ``<table>`` element."""
    return (f"<table{' ' + attrs if attrs else ''}><thead><tr>"
            + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>"
                      for r in rows) + "</tbody></table>")
