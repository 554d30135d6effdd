"""The report's one HTML page: sections of tables, figures (PNGs beside the page) and notes; no script, no network.

Every text is escaped; images are referenced by their path relative to the page, so the folder is
self-contained and can be moved or zipped as a whole. The page reads on any screen: figures shrink to the
column (each a link to its full-size PNG), long cells wrap and a table still too wide scrolls in its own box.
"""

from __future__ import annotations

import html
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from registry_core.report import ReportFigure

__all__ = ["Section", "Table", "render_page"]

#: A cell of one word longer than this may break inside it (escaping leaves ``.``, ``/`` and ``:`` as they are).
LONG_WORD = 30

_STYLE = """
*, *::before, *::after { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1400px; padding: 0 24px 48px; color: #222;
       overflow-wrap: break-word; }
@media (max-width: 900px) { body { padding: 0 10px 32px; } }
h1 { margin-top: 24px; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 4px; margin-top: 36px; }
nav { display: flex; flex-wrap: wrap; gap: 2px 14px; } .sub { color: #666; }
.scroll { overflow-x: auto; max-width: 100%; margin: 8px 0 18px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.code { overflow-wrap: anywhere; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: 4px 0; }
.figures { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
figure { margin: 0; max-width: 100%; min-width: 0; }
figure a { display: block; } figure img { display: block; max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 13px; max-width: 720px; } figcaption b { display: block; }
.finding { margin: 4px 0 0; padding-left: 8px; border-left: 3px solid #8a4b00; }
.legend { list-style: none; padding: 0; margin: 4px 0; display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 13px; }
.swatch { display: inline-block; width: 12px; height: 12px; border: 1px solid #555; margin-right: 5px; vertical-align: -1px; }
.note { color: #8a4b00; } code { font-size: 12px; }
"""


@dataclass
class Table:
    """A table: header row, rows of cells (numbers right-aligned), optional caption."""

    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    caption: str = ""


@dataclass
class Section:
    """A heading with its tables, figures and notes (lines shown in a warning colour), in order."""

    title: str
    tables: list[Table] = field(default_factory=list)
    figures: list[ReportFigure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: One line under the heading saying what the section holds.
    intro: str = ""

    @property
    def anchor(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.title.lower()).strip("-")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _is_number(cell: str) -> bool:
    try:
        float(cell.replace(",", ""))
    except ValueError:
        return False
    return True


def _cell(cell: str) -> str:
    """One ``<td>``: a number right-aligned; one long word (a dotted target, a path, a hash) allowed to break, after
    ``.``, ``/`` or ``:`` first, so that a narrow screen wraps it rather than the words of the other columns."""
    if _is_number(cell):
        return f'<td class="num">{_e(cell)}</td>'
    if len(cell) > LONG_WORD and not any(c.isspace() for c in cell):
        return '<td class="code">' + re.sub(r"([./:])", r"\1<wbr>", _e(cell)) + "</td>"
    return f"<td>{_e(cell)}</td>"


def _table(table: Table) -> str:
    out = ['<div class="scroll"><table>']
    if table.caption:
        out.append(f"<caption>{_e(table.caption)}</caption>")
    out.append("<tr>" + "".join(f"<th>{_e(h)}</th>" for h in table.headers) + "</tr>")
    for row in table.rows:
        out.append("<tr>" + "".join(_cell(str(c)) for c in row) + "</tr>")
    out.append("</table></div>")
    return "\n".join(out)


def _png_size(path: Path) -> tuple[int, int] | None:
    """A PNG's (width, height) from its header, so the page lays out before the images load; None if unreadable."""
    try:
        with path.open("rb") as fh:
            head = fh.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


def _figure(fig: ReportFigure, root: Path) -> str:
    """The image (a link to the full-size PNG: it may be shown smaller on a narrow screen), title, caption, what
    the numbers say and the colour legend."""
    src = fig.image.resolve().relative_to(root.resolve()).as_posix()
    size = _png_size(fig.image)
    dims = f' width="{size[0]}" height="{size[1]}"' if size else ""
    legend = ""
    if fig.legend:
        items = "".join(f'<li><span class="swatch" style="background:{_e(colour)}"></span>{_e(label)}</li>'
                        for label, colour in fig.legend)
        legend = f'<ul class="legend">{items}</ul>'
    finding = f'<p class="finding">{_e(fig.finding)}</p>' if fig.finding else ""
    return (f'<figure><a href="{_e(src)}" title="open the full-size image"><img src="{_e(src)}" '
            f'alt="{_e(fig.title)}"{dims}></a>'
            f"<figcaption><b>{_e(fig.title)}</b>{_e(fig.caption)}{finding}{legend}</figcaption></figure>")


def render_page(title: str, subtitle: str, sections: Sequence[Section], root: Path) -> str:
    """The whole page; figure images must lie inside ``root`` (the folder the page is written to)."""
    nav = " ".join(f'<a href="#{s.anchor}">{_e(s.title)}</a>' for s in sections)
    body = []
    for s in sections:
        body.append(f'<section id="{s.anchor}"><h2>{_e(s.title)}</h2>')
        if s.intro:
            body.append(f"<p>{_e(s.intro)}</p>")
        body += [f'<p class="note">{_e(n)}</p>' for n in s.notes]
        body += [_table(t) for t in s.tables]
        if s.figures:
            body.append('<div class="figures">' + "\n".join(_figure(f, root) for f in s.figures) + "</div>")
        body.append("</section>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{_e(title)}</title>\n'
            f"<style>{_STYLE}</style></head>\n<body>\n<h1>{_e(title)}</h1>\n<p class=\"sub\">{_e(subtitle)}</p>\n"
            f"<nav>{nav}</nav>\n" + "\n".join(body) + "\n</body></html>\n")
