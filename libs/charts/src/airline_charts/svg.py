"""Small SVG charts for the HTML reports, as plain strings (no dependency, no script).

Four kinds: points with error bars (a change with its interval), box plots (distributions),
lines by days before departure (booking curves) and lines on any x with an optional second y
axis (a dashboard's series over time). Each returns one ``<svg>`` element to inline in HTML;
:func:`standalone` makes it a valid ``.svg`` file.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from html import escape

WIDTH, ROW, PAD_L, PAD_R, PAD_T, PAD_B = 640, 30, 190, 30, 36, 40
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf",
           "#e377c2", "#7f7f7f", "#bcbd22")
FONT = 'font-family="sans-serif" font-size="12"'


def standalone(svg: str) -> str:
    """``svg`` (from this module) as the text of an ``.svg`` file: with its namespace."""
    return svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1) + "\n"


def _svg(height: int, body: list[str], title: str, width: int = WIDTH) -> str:
    return "\n".join([
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" {FONT}>', f"<title>{escape(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}'
        "</text>", *body, "</svg>"])


def _ticks(low: float, high: float, count: int = 6) -> list[float]:
    """Round tick values from at or below ``low`` to at or above ``high``."""
    raw = (high - low or 1.0) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if m * step >= raw)
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [round(k * step, 10) for k in range(first, max(last, first + 1) + 1)]


def _axis_x(low: float, high: float, top: int, bottom: int, fmt: str, label: str
            ) -> tuple[list[str], float, float]:
    """Vertical grid lines and labels of a horizontal value axis; (svg, low, high) padded."""
    ticks = _ticks(low, high)
    low, high = min(low, ticks[0]), max(high, ticks[-1])
    out = []
    for t in ticks:
        x = _x(t, low, high)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{bottom + 15}" text-anchor="middle">'
                   f"{format(t, fmt)}</text>")
    out.append(f'<text x="{(PAD_L + WIDTH - PAD_R) / 2}" y="{bottom + 32}" '
               f'text-anchor="middle">{escape(label)}</text>')
    return out, low, high


def _x(value: float, low: float, high: float) -> float:
    return PAD_L + (value - low) / ((high - low) or 1.0) * (WIDTH - PAD_L - PAD_R)


def error_bars(rows: Sequence[tuple[str, float, tuple[float, float] | None]], title: str,
               unit: str = "%") -> str:
    """One row per (label, value, (low, high)): a point and its interval, a line at zero."""
    height = PAD_T + ROW * max(1, len(rows)) + PAD_B
    bottom = height - PAD_B
    values = [0.0, *(v for _, v, _ in rows), *(b for _, _, ci in rows if ci for b in ci)]
    lo, hi = min(values), max(values)
    margin = (hi - lo) * 0.05 or 1.0
    body, lo, hi = _axis_x(lo - margin, hi + margin, PAD_T, bottom, "+g", f"change ({unit})")
    zero = _x(0.0, lo, hi)
    body.append(f'<line x1="{zero:.1f}" y1="{PAD_T}" x2="{zero:.1f}" y2="{bottom}" '
                'stroke="#444"/>')
    for k, (label, value, ci) in enumerate(rows):
        y = PAD_T + ROW * k + ROW / 2
        colour = COLOURS[k % len(COLOURS)]
        body.append(f'<text x="{PAD_L - 8}" y="{y + 4:.1f}" text-anchor="end">{escape(label)}'
                    "</text>")
        if ci is not None:
            a, b = _x(ci[0], lo, hi), _x(ci[1], lo, hi)
            body.append(f'<line x1="{a:.1f}" y1="{y:.1f}" x2="{b:.1f}" y2="{y:.1f}" '
                        f'stroke="{colour}" stroke-width="2"/>')
            for end in (a, b):
                body.append(f'<line x1="{end:.1f}" y1="{y - 6:.1f}" x2="{end:.1f}" '
                            f'y2="{y + 6:.1f}" stroke="{colour}" stroke-width="2"/>')
        body.append(f'<circle cx="{_x(value, lo, hi):.1f}" cy="{y:.1f}" r="4" '
                    f'fill="{colour}"><title>{escape(label)}: {value:+.3f} {unit}</title>'
                    "</circle>")
    return _svg(height, body, title)


def _quantile(ordered: Sequence[float], q: float) -> float:
    pos = q * (len(ordered) - 1)
    k = math.floor(pos)
    frac = pos - k
    return ordered[k] if k + 1 >= len(ordered) else ordered[k] * (1 - frac) + ordered[k + 1] * frac


def box_plots(rows: Sequence[tuple[str, Sequence[float]]], title: str, label: str,
              band: tuple[float, float] | None = None) -> str:
    """One box per (label, values): quartiles, median, whiskers at the 5th and 95th
    percentiles, the mean as a dot; ``band`` shaded."""
    height = PAD_T + ROW * max(1, len(rows)) + PAD_B
    bottom = height - PAD_B
    every = [v for _, vs in rows for v in vs] or [0.0, 1.0]
    lo, hi = min(every), max(every)
    if band:
        lo, hi = min(lo, band[0]), max(hi, band[1])
    body, lo, hi = _axis_x(lo, hi, PAD_T, bottom, "g", label)
    if band:
        a, b = _x(band[0], lo, hi), _x(band[1], lo, hi)
        body.insert(0, f'<rect x="{a:.1f}" y="{PAD_T}" width="{b - a:.1f}" '
                       f'height="{bottom - PAD_T}" fill="#e8f4e8"/>')
    for k, (name, values) in enumerate(rows):
        y = PAD_T + ROW * k + ROW / 2
        colour = COLOURS[k % len(COLOURS)]
        body.append(f'<text x="{PAD_L - 8}" y="{y + 4:.1f}" text-anchor="end">{escape(name)}'
                    "</text>")
        if not values:
            continue
        v = sorted(values)
        p5, q1, med, q3, p95 = (_x(_quantile(v, q), lo, hi) for q in (.05, .25, .5, .75, .95))
        mean = _x(sum(v) / len(v), lo, hi)
        body += [
            f'<line x1="{p5:.1f}" y1="{y:.1f}" x2="{p95:.1f}" y2="{y:.1f}" stroke="{colour}"/>',
            f'<rect x="{q1:.1f}" y="{y - 8:.1f}" width="{max(q3 - q1, 1):.1f}" height="16" '
            f'fill="white" stroke="{colour}" stroke-width="1.5"/>',
            f'<line x1="{med:.1f}" y1="{y - 8:.1f}" x2="{med:.1f}" y2="{y + 8:.1f}" '
            f'stroke="{colour}" stroke-width="2"/>',
            f'<circle cx="{mean:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>']
    return _svg(height, body, title)


def lines(series: Sequence[tuple[str, Sequence[float]]], title: str, x_label: str,
          y_label: str, note: str = "") -> str:
    """Line per (label, ys), ys[d] at x = d days before departure, drawn from the furthest day
    (left) to departure (right)."""
    height = 340
    left, right, top, bottom = 70, WIDTH - 150, PAD_T, height - PAD_B
    days = max((len(ys) for _, ys in series), default=1) - 1 or 1
    y_ticks = _ticks(0.0, max((y for _, ys in series for y in ys), default=1.0) or 1.0, 5)
    top_value = y_ticks[-1]

    def px(d: float) -> float:
        return right - d / days * (right - left)

    def py(v: float) -> float:
        return bottom - v / top_value * (bottom - top)

    body = []
    for t in y_ticks:
        body.append(f'<line x1="{left}" y1="{py(t):.1f}" x2="{right}" y2="{py(t):.1f}" '
                    'stroke="#ddd"/>')
        body.append(f'<text x="{left - 6}" y="{py(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    for t in _ticks(0.0, float(days), 8):
        body.append(f'<text x="{px(t):.1f}" y="{bottom + 15}" text-anchor="middle">{t:g}</text>')
    body += [f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#444"/>',
             f'<text x="{(left + right) / 2}" y="{bottom + 32}" text-anchor="middle">'
             f"{escape(x_label)}</text>",
             f'<text x="16" y="{(top + bottom) / 2}" text-anchor="middle" '
             f'transform="rotate(-90 16 {(top + bottom) / 2})">{escape(y_label)}</text>']
    if note:
        body.append(f'<text x="{(left + right) / 2}" y="{(top + bottom) / 2}" '
                    f'text-anchor="middle" fill="#888">{escape(note)}</text>')
    for k, (label, ys) in enumerate(series):
        colour = COLOURS[k % len(COLOURS)]
        points = " ".join(f"{px(d):.1f},{py(v):.1f}" for d, v in enumerate(ys))
        if points:
            dash = ' stroke-dasharray="5,4"' if k else ""
            body.append(f'<polyline points="{points}" fill="none" stroke="{colour}" '
                        f'stroke-width="2"{dash}/>')
        body.append(f'<line x1="{right + 12}" y1="{top + 14 + 18 * k}" x2="{right + 32}" '
                    f'y2="{top + 14 + 18 * k}" stroke="{colour}" stroke-width="2"/>')
        body.append(f'<text x="{right + 36}" y="{top + 18 + 18 * k}">{escape(label)}</text>')
    return _svg(height, body, title)


#: A series of :func:`xy_lines`: (label, [(x, y), ...]).
Series = tuple[str, Sequence[tuple[float, float]]]


def xy_lines(series: Sequence[Series], title: str, x_label: str, y_label: str, *,
             x_format: Callable[[float], str] = lambda v: f"{v:g}", reverse_x: bool = False,
             y_format: Callable[[float], str] = lambda v: f"{v:g}",
             right: Sequence[Series] = (), right_label: str = "",
             right_format: Callable[[float], str] = lambda v: f"{v:g}", note: str = "",
             x_ticks: Sequence[float] | None = None, width: int = 900) -> str:
    """A line per series, colour by label (the same label has the same colour on both axes);
    ``right`` series are drawn dashed as steps against a second y axis on the right.
    ``reverse_x`` draws the largest x on the left (e.g. time to departure counting down);
    ``x_ticks`` replaces the round ticks (e.g. midnights on a time axis)."""
    height, legend_w = 360, 190
    left, right_x, top, bottom = 70, width - legend_w - (50 if right else 10), PAD_T, 360 - PAD_B
    xs = [x for _, pts in (*series, *right) for x, _ in pts] or [0.0, 1.0]
    x_lo, x_hi = min(xs), max(xs)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1

    def px(x: float) -> float:
        share = (x - x_lo) / (x_hi - x_lo)
        return left + (1 - share if reverse_x else share) * (right_x - left)

    def axis(values: list[float]) -> tuple[list[float], Callable[[float], float]]:
        ticks = _ticks(min([0.0, *values]), max([*values, 0.0]) or 1.0, 5)

        def py(v: float) -> float:
            return bottom - (v - ticks[0]) / ((ticks[-1] - ticks[0]) or 1.0) * (bottom - top)
        return ticks, py

    y_ticks, py = axis([y for _, pts in series for _, y in pts])
    body = []
    for t in y_ticks:
        body.append(f'<line x1="{left}" y1="{py(t):.1f}" x2="{right_x}" y2="{py(t):.1f}" '
                    'stroke="#ddd"/>')
        body.append(f'<text x="{left - 6}" y="{py(t) + 4:.1f}" text-anchor="end">'
                    f"{escape(y_format(t))}</text>")
    for t in _ticks(x_lo, x_hi, 6) if x_ticks is None else x_ticks:
        if x_lo <= t <= x_hi:
            body.append(f'<text x="{px(t):.1f}" y="{bottom + 15}" text-anchor="middle">'
                        f"{escape(x_format(t))}</text>")
    mid = (top + bottom) / 2
    body += [f'<line x1="{left}" y1="{bottom}" x2="{right_x}" y2="{bottom}" stroke="#444"/>',
             f'<text x="{(left + right_x) / 2}" y="{bottom + 32}" text-anchor="middle">'
             f"{escape(x_label)}</text>",
             f'<text x="16" y="{mid}" text-anchor="middle" transform="rotate(-90 16 {mid})">'
             f"{escape(y_label)}</text>"]
    if note:
        body.append(f'<text x="{(left + right_x) / 2}" y="{mid}" text-anchor="middle" '
                    f'fill="#888">{escape(note)}</text>')
    labels = list(dict.fromkeys([label for label, _ in (*series, *right)]))
    colour = {label: COLOURS[k % len(COLOURS)] for k, label in enumerate(labels)}
    for label, pts in series:
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        if points:
            body.append(f'<polyline class="series" points="{points}" fill="none" '
                        f'stroke="{colour[label]}" stroke-width="2"><title>{escape(label)}'
                        "</title></polyline>")
    if right:
        r_ticks, ry = axis([y for _, pts in right for _, y in pts])
        for t in r_ticks:
            body.append(f'<text x="{right_x + 6}" y="{ry(t) + 4:.1f}">'
                        f"{escape(right_format(t))}</text>")
        rx = right_x + 44
        body.append(f'<text x="{rx}" y="{mid}" text-anchor="middle" '
                    f'transform="rotate(90 {rx} {mid})">{escape(right_label)}</text>')
        for label, pts in right:
            ordered = sorted(pts, reverse=reverse_x)
            steps = [f"{px(x):.1f},{ry(y):.1f}" for x, y in ordered[:1]]
            for (_, y0), (x1, y1) in itertools.pairwise(ordered):
                steps += [f"{px(x1):.1f},{ry(y0):.1f}", f"{px(x1):.1f},{ry(y1):.1f}"]
            if steps:
                body.append(f'<polyline class="series" points="{" ".join(steps)}" fill="none" '
                            f'stroke="{colour[label]}" stroke-width="1.5" '
                            f'stroke-dasharray="5,4"><title>{escape(label)}</title></polyline>')
    legend_x = width - legend_w + 8
    for k, label in enumerate(labels[:16]):
        y = top + 14 + 18 * k
        body.append(f'<line x1="{legend_x}" y1="{y}" x2="{legend_x + 20}" y2="{y}" '
                    f'stroke="{colour[label]}" stroke-width="2"/>')
        body.append(f'<text x="{legend_x + 24}" y="{y + 4}">{escape(label)}</text>')
    return _svg(height, body, title, width)
