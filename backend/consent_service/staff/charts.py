"""Small SVG charts drawn on the server.

No script; readable with a screen reader (a title and a table accompany each); a hidden cell is
never drawn exactly, and a count that includes one is drawn from what is shown of it
(`masking.Count.drawn`).
"""

from __future__ import annotations

from html import escape

from consent_service.staff.masking import Count

COLORS = ["#00663a", "#e36c0a", "#1f77b4", "#9467bd", "#8c564b", "#d62728"]
WIDTH, HEIGHT, PAD = 720, 240, 40


def _count(value: Count | float) -> Count:
    """A plain number is one cell."""
    return value if isinstance(value, Count) else Count.cell(int(value))


def bars(
    title: str, labels: list[str], series: dict[str, list[Count]] | dict[str, list[float]]
) -> str:
    """Grouped bars: one group per label, one bar per series.

    Args:
        title: What the chart shows (also the SVG's accessible title).
        labels: The groups (e.g. days).
        series: Name → one value per label (a `Count`, or a plain number).

    Returns:
        An `<svg>` element.
    """
    counts = {name: [_count(v) for v in values] for name, values in series.items()}
    peak = max([v.drawn for values in counts.values() for v in values] + [1.0])
    group = (WIDTH - 2 * PAD) / max(1, len(labels))
    bar = group * 0.8 / max(1, len(series))
    parts = [f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">']
    parts.append(f"<title>{escape(title)}</title>")
    parts.append(f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
                 'stroke="#555"/>')  # fmt: skip
    for s, (name, values) in enumerate(counts.items()):
        for i, value in enumerate(values):
            height = (HEIGHT - 2 * PAD) * value.drawn / peak
            x = PAD + i * group + s * bar
            y = HEIGHT - PAD - height
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar * 0.9:.1f}" height="{height:.1f}" '
                f'fill="{COLORS[s % len(COLORS)]}"><title>{escape(name)} {escape(labels[i])}: '
                f"{escape(str(value))}</title></rect>"
            )
    step = max(1, len(labels) // 10)
    for i in range(0, len(labels), step):
        x = PAD + i * group
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - PAD + 16}" font-size="11">'
                     f"{escape(labels[i])}</text>")  # fmt: skip
    for s, name in enumerate(series):
        parts.append(f'<rect x="{PAD + s * 110}" y="6" width="12" height="12" '
                     f'fill="{COLORS[s % len(COLORS)]}"/>')  # fmt: skip
        parts.append(f'<text x="{PAD + s * 110 + 16}" y="17" font-size="12">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
