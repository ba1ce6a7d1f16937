#!/usr/bin/env python3
"""Reads the CSV of bench/side_by_side.sh; prints a Markdown table (Custodia beside OpenBao,
with the ratio of throughputs, per workload and connection count) and writes a plot of
throughput against concurrency as SVG beside the CSV. Standard library only.

Usage: bench/report_side_by_side.py RESULTS.csv [--svg OUT.svg]
"""
import csv
import math
import sys
from collections import defaultdict

WORKLOADS = ["create", "read", "batch-100", "mixed"]
COLOURS = {"custodia": "#1b6ca8", "openbao": "#c0392b"}


def load(path):
    rows = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            key = (r["system"], r["workload"], int(r["connections"]))
            rows[key] = r
    return rows


def number(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def mib(v):
    """A memory figure as a whole number of MiB (0 when absent)."""
    n = number(v)
    return int(n) if n == n else 0


def table(rows):
    counts = sorted({k[2] for k in rows})
    out = [
        "| workload | connections | Custodia items/s (p50 / p99 ms) | OpenBao items/s (p50 / p99 ms) | ratio |",
        "|---|---|---|---|---|",
    ]
    for w in WORKLOADS:
        for c in counts:
            ours, peer = rows.get(("custodia", w, c)), rows.get(("openbao", w, c))
            if not ours:
                continue

            def cell(r):
                if not r:
                    return "no peer workload"
                bad = f", {r['non_2xx']} non-2xx" if r["non_2xx"] not in ("0", "") else ""
                return f"{number(r['items_per_s']):,.0f} ({r['p50_ms']} / {r['p99_ms']}){bad}"

            ratio = ""
            if peer and number(peer["items_per_s"]) > 0:
                ratio = f"{number(ours['items_per_s']) / number(peer['items_per_s']):.2f}x"
            out.append(f"| {w} | {c} | {cell(ours)} | {cell(peer)} | {ratio} |")
    peaks = defaultdict(dict)
    for (system, _, c), r in rows.items():
        rss, anon = mib(r["peak_rss_mib"]), mib(r.get("peak_anon_mib"))
        old = peaks[system].get(c, (0, 0))
        peaks[system][c] = (max(old[0], rss), max(old[1], anon))
    out.append("")
    out.append(
        "| peak memory, MiB: resident (VmHWM) / anonymous (RssAnon) | "
        + " | ".join(f"{c} conn." for c in counts)
        + " |"
    )
    out.append("|---|" + "---|" * len(counts))
    for system in ("custodia", "openbao"):
        if system in peaks:
            cells = [f"{peaks[system][c][0]} / {peaks[system][c][1]}" if c in peaks[system] else "" for c in counts]
            out.append(f"| {system} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def svg(rows):
    """Four panels (one per workload): items/s against connections, log-scaled x."""
    counts = sorted({k[2] for k in rows})
    panel_w, panel_h, margin = 300, 220, 55
    width, height = 2 * panel_w + 3 * margin, 2 * panel_h + 3 * margin + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14">'
        "Throughput against concurrency (items/s; Custodia blue, OpenBao red)</text>",
    ]
    xs = [math.log2(c) for c in counts] or [0]
    x_lo, x_hi = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    for i, w in enumerate(WORKLOADS):
        ox = margin + (i % 2) * (panel_w + margin)
        oy = 30 + margin + (i // 2) * (panel_h + margin)
        series = {
            s: [(c, number(rows[(s, w, c)]["items_per_s"])) for c in counts if (s, w, c) in rows]
            for s in ("custodia", "openbao")
        }
        top = max([v for pts in series.values() for _, v in pts if v == v] or [1]) * 1.1
        parts.append(f'<text x="{ox + panel_w / 2}" y="{oy - 8}" text-anchor="middle" font-size="13">{w}</text>')
        parts.append(f'<rect x="{ox}" y="{oy}" width="{panel_w}" height="{panel_h}" fill="none" stroke="#888"/>')
        for k in range(5):
            v = top * k / 4
            y = oy + panel_h - panel_h * k / 4
            parts.append(f'<line x1="{ox}" x2="{ox + panel_w}" y1="{y}" y2="{y}" stroke="#eee"/>')
            parts.append(f'<text x="{ox - 4}" y="{y + 4}" text-anchor="end">{v:,.0f}</text>')

        def px(c):
            return ox + 10 + (panel_w - 20) * (math.log2(c) - x_lo) / (x_hi - x_lo)

        for c in counts:
            parts.append(f'<text x="{px(c)}" y="{oy + panel_h + 14}" text-anchor="middle">{c}</text>')
        parts.append(
            f'<text x="{ox + panel_w / 2}" y="{oy + panel_h + 28}" text-anchor="middle">connections</text>'
        )
        for s, pts in series.items():
            pts = [(c, v) for c, v in pts if v == v]
            if not pts:
                continue
            path = " ".join(f"{px(c):.1f},{oy + panel_h - panel_h * v / top:.1f}" for c, v in pts)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{COLOURS[s]}" stroke-width="2"/>')
            for c, v in pts:
                y = oy + panel_h - panel_h * v / top
                parts.append(f'<circle cx="{px(c):.1f}" cy="{y:.1f}" r="3" fill="{COLOURS[s]}"/>')
    parts.append("</svg>")
    return "\n".join(parts)


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    path = argv[1]
    out = argv[argv.index("--svg") + 1] if "--svg" in argv else path.rsplit(".", 1)[0] + ".svg"
    rows = load(path)
    if not rows:
        print(f"{path}: no results", file=sys.stderr)
        return 1
    print(table(rows))
    with open(out, "w") as f:
        f.write(svg(rows))
    print(f"\nplot: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
