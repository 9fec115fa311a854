"""Small SVG bar charts for the dashboard, drawn on the server (no JavaScript, no library)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from html import escape

__all__ = ["bar_chart"]


def bar_chart(
    title: str,
    days: Sequence[date],
    values: Sequence[int],
    *,
    width: int = 520,
    height: int = 160,
    colour: str = "#3b7dd8",
) -> str:
    """One bar per day with its value on top; the SVG markup as a string (text escaped)."""
    pad_left, pad_bottom, pad_top = 8, 22, 22
    n = max(1, len(values))
    top = max(values, default=0) or 1
    slot = (width - pad_left * 2) / n
    bar = max(2.0, slot * 0.7)
    plot = height - pad_bottom - pad_top
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{pad_left}" y="14" class="chart-title">{escape(title)}</text>',
    ]
    for i, (day, value) in enumerate(zip(days, values, strict=True)):
        h = plot * value / top
        x = pad_left + i * slot + (slot - bar) / 2
        y = pad_top + plot - h
        label = f"{day:%d.%m}: {value}"
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
            f'fill="{colour}"><title>{escape(label)}</title></rect>'
        )
        if value:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{y - 3:.1f}" class="chart-value" '
                f'text-anchor="middle">{value}</text>'
            )
        if n <= 16 or i % max(1, n // 8) == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - 6}" class="chart-day" '
                f'text-anchor="middle">{day:%d.%m}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
