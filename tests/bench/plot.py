#!/usr/bin/env python3
"""Draw bench/results.json as one HTML page of SVG bar charts.

Run by `make bench-plot`.  Python 3 standard library only.

One chart per row: a bar per implementation at its median, a whisker from
min to max, tend's bars in a colour of their own, and the row's bars
(targets) with their PASS/FAIL under the title.
"""

import html
import json
import sys
from pathlib import Path

WIDTH = 760
LABEL_W = 300
BAR_H = 18
GAP = 6
TEND = "#2b6cb0"
PEER = "#a0aec0"


def fmt(v):
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    if abs(v) >= 0.1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def chart(row):
    """One row as an SVG string, or None when it has no figures."""
    cells = [(k, v) for k, v in row.get("results", {}).items() if "median" in v]
    if not cells:
        return None
    top = max(v["max"] for _, v in cells) or 1.0
    plot_w = WIDTH - LABEL_W - 90
    height = len(cells) * (BAR_H + GAP) + GAP
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           'font-family="sans-serif" font-size="12">']
    for i, (name, v) in enumerate(cells):
        y = GAP + i * (BAR_H + GAP)
        w = max(1.0, v["median"] / top * plot_w)
        lo, hi = v["min"] / top * plot_w, v["max"] / top * plot_w
        colour = TEND if name.startswith("tend") else PEER
        mid = y + BAR_H / 2
        out.append(f'<text x="{LABEL_W - 6}" y="{mid + 4}" text-anchor="end">{html.escape(name)}</text>')
        out.append(f'<rect x="{LABEL_W}" y="{y}" width="{w:.1f}" height="{BAR_H}" fill="{colour}"/>')
        out.append(f'<line x1="{LABEL_W + lo:.1f}" x2="{LABEL_W + hi:.1f}" y1="{mid}" y2="{mid}" '
                   'stroke="#1a202c" stroke-width="1"/>')
        out.append(f'<text x="{LABEL_W + max(w, hi) + 6:.1f}" y="{mid + 4}">{fmt(v["median"])}</text>')
    out.append("</svg>")
    return "\n".join(out)


def page(results):
    meta = results.get("meta", {})
    parts = [
        "<!doctype html><meta charset=utf-8><title>tend benchmarks</title>",
        "<style>body{font-family:sans-serif;max-width:800px;margin:2em auto}"
        "h2{font-size:15px;margin:1.6em 0 .3em}.bar{font-size:13px;margin:0}"
        ".PASS{color:#276749}.FAIL{color:#c53030}</style>",
        "<h1>tend benchmarks</h1>",
        f"<p>{html.escape(meta.get('date', ''))}, {meta.get('cpus', '?')} CPUs "
        f"({html.escape(meta.get('cpu', ''))}), kernel {html.escape(meta.get('kernel', ''))}. "
        "Bars are medians, whiskers min..max.</p>",
    ]
    for row in results.get("rows", []):
        better = "lower" if row.get("lower_is_better", True) else "higher"
        parts.append(f"<h2>{html.escape(row['title'])} [{html.escape(row['unit'])}, {better} is better]</h2>")
        for b in row.get("bars", []):
            v = b["verdict"]
            parts.append(f'<p class="bar"><b class="{v}">{v}</b> {html.escape(b["subject"])} '
                         f'{html.escape(b["bar"])}: {html.escape(b.get("detail", ""))}</p>')
        svg = chart(row)
        parts.append(svg if svg else f"<p>skipped: {html.escape(row.get('skipped', 'no figures'))}</p>")
    return "\n".join(parts) + "\n"


def main(argv):
    src = Path(argv[0] if argv else "bench/results.json")
    dst = Path(argv[1] if len(argv) > 1 else src.with_name("results.html"))
    try:
        results = json.loads(src.read_text())
    except (OSError, ValueError) as e:
        print(f"plot: cannot read {src}: {e} (run make bench first)", file=sys.stderr)
        return 1
    dst.write_text(page(results))
    print(f"wrote {dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
