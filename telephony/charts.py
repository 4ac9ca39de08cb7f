"""Small server-rendered SVG charts (pure, stdlib): bars for the wallboard and the reports.

Every label is XML-escaped: text that came from a call or a config file never becomes markup.
No script, no external reference: the SVG is safe inline in a page or a downloaded report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

WIDTH = 720
HEIGHT = 240
_PAD_LEFT, _PAD_RIGHT, _PAD_TOP, _PAD_BOTTOM = 40, 10, 28, 30
COLOURS = ("#1f6fb2", "#b0b7c0", "#d9822b", "#3a9d5d")


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[float]


def bars(title: str, categories: Sequence[str], series: Sequence[Series],
         *, width: int = WIDTH, height: int = HEIGHT) -> str:
    """Grouped bars: one group per category, one bar per series, a legend on top."""
    top = max((v for s in series for v in s.values), default=0.0)
    scale_max = _nice(top)
    inner_w = width - _PAD_LEFT - _PAD_RIGHT
    inner_h = height - _PAD_TOP - _PAD_BOTTOM
    group_w = inner_w / max(1, len(categories))
    bar_w = group_w * 0.8 / max(1, len(series))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}" '
           'font-family="sans-serif" font-size="11">',
           f'<title>{escape(title)}</title>']
    for step in range(5):
        value = scale_max * step / 4
        y = _PAD_TOP + inner_h - inner_h * step / 4
        out.append(f'<line x1="{_PAD_LEFT}" x2="{width - _PAD_RIGHT}" y1="{y:.1f}" '
                   f'y2="{y:.1f}" stroke="#e3e6ea"/>')
        out.append(f'<text x="{_PAD_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">'
                   f'{_number(value)}</text>')
    for index, name in enumerate(categories):
        x0 = _PAD_LEFT + group_w * index + group_w * 0.1
        for k, one in enumerate(series):
            value = one.values[index] if index < len(one.values) else 0.0
            h = inner_h * value / scale_max if scale_max else 0.0
            x = x0 + bar_w * k
            out.append(f'<rect x="{x:.1f}" y="{_PAD_TOP + inner_h - h:.1f}" '
                       f'width="{max(bar_w - 1, 1):.1f}" height="{h:.1f}" '
                       f'fill="{COLOURS[k % len(COLOURS)]}"><title>{escape(one.label)} '
                       f'{escape(name)}: {_number(value)}</title></rect>')
        out.append(f'<text x="{x0 + group_w * 0.4:.1f}" y="{height - _PAD_BOTTOM + 14}" '
                   f'text-anchor="middle">{escape(name)}</text>')
    x = _PAD_LEFT
    for k, one in enumerate(series):
        out.append(f'<rect x="{x}" y="8" width="10" height="10" '
                   f'fill="{COLOURS[k % len(COLOURS)]}"/>')
        out.append(f'<text x="{x + 14}" y="17">{escape(one.label)}</text>')
        x += 24 + 7 * len(one.label)
    out.append("</svg>")
    return "".join(out)


def _nice(top: float) -> float:
    """A round axis maximum at or above ``top`` (1, 2, 5 x 10^n)."""
    if top <= 0:
        return 1.0
    step = 1.0
    while step * 10 <= top:
        step *= 10
    for factor in (1, 2, 5, 10):
        if step * factor >= top:
            return step * factor
    return step * 10


def _number(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"
