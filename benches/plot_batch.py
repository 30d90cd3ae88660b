#!/usr/bin/env python3
"""Durable throughput against batch size: runs `semel bench` for each batch size and
draws benches/batch.svg (no plotting library needed).

    cargo build --release -p semel && python3 benches/plot_batch.py [--workload counter]
"""
import argparse
import json
import math
import pathlib
import subprocess

HERE = pathlib.Path(__file__).resolve().parent
SEMEL = HERE.parent / "target" / "release" / "semel"
BATCHES = [1, 4, 16, 64, 256]


def measure(workload, batch, txs):
    out = subprocess.run(
        [str(SEMEL), "--json", "bench", "--workload", workload, "--txs", str(txs), "--batch", str(batch)],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)


def svg(points, workload):
    w, h, left, bottom, top, right = 640, 400, 70, 50, 30, 20
    xs = [math.log2(b) for b, _ in points]
    ymax = max(r["tx_per_s"] for _, r in points) * 1.15
    def px(x):
        return left + (x - xs[0]) / (xs[-1] - xs[0]) * (w - left - right)
    def py(y):
        return h - bottom - y / ymax * (h - bottom - top)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
             f'<rect width="{w}" height="{h}" fill="white"/>',
             f'<text x="{w/2}" y="18" text-anchor="middle" font-size="14">Durable {workload} throughput against batch size (fsync per batch)</text>',
             f'<line x1="{left}" y1="{h-bottom}" x2="{w-right}" y2="{h-bottom}" stroke="black"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h-bottom}" stroke="black"/>']
    for i in range(6):
        y = ymax * i / 5
        parts.append(f'<line x1="{left-4}" y1="{py(y):.1f}" x2="{w-right}" y2="{py(y):.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left-8}" y="{py(y)+4:.1f}" text-anchor="end">{y/1000:.0f}k</text>')
    for (b, r), x in zip(points, xs):
        parts.append(f'<text x="{px(x):.1f}" y="{h-bottom+18}" text-anchor="middle">{b}</text>')
    path = " ".join(f"{'M' if i == 0 else 'L'}{px(x):.1f},{py(r['tx_per_s']):.1f}" for i, ((_, r), x) in enumerate(zip(points, xs)))
    parts.append(f'<path d="{path}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
    for (b, r), x in zip(points, xs):
        parts.append(f'<circle cx="{px(x):.1f}" cy="{py(r["tx_per_s"]):.1f}" r="4" fill="#1f77b4"/>')
        parts.append(f'<text x="{px(x):.1f}" y="{py(r["tx_per_s"])-10:.1f}" text-anchor="middle">{r["tx_per_s"]:.0f}</text>')
    parts.append(f'<text x="{w/2}" y="{h-12}" text-anchor="middle">transactions per batch (log scale)</text>')
    parts.append(f'<text x="16" y="{h/2}" transform="rotate(-90 16 {h/2})" text-anchor="middle">transactions per second</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workload", default="counter")
    ap.add_argument("--txs", type=int, default=20000)
    args = ap.parse_args()
    points = []
    for b in BATCHES:
        r = measure(args.workload, b, min(args.txs, 2000 * b))
        print(json.dumps(r))
        points.append((b, r))
    (HERE / "batch.json").write_text(json.dumps([{"batch": b, **r} for b, r in points], indent=1) + "\n")
    (HERE / "batch.svg").write_text(svg(points, args.workload) + "\n")
    print(f"wrote {HERE / 'batch.svg'}")


if __name__ == "__main__":
    main()
