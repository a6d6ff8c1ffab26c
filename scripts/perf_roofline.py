#!/usr/bin/env python3
"""Roofline of gembed's kernels on this machine, from bench_kernels' own measured peaks.

Runs <build>/bin/bench_kernels --benchmark_format=json (or reads --json FILE),
then
  * prints a markdown table: GMAC/s and % of the measured peak per kernel,
    shape, M (tokens) and thread count (Q8 GEMMs vs the int8 vpdpbusd peak,
    attention vs the fp32 FMA peak), plus the weight bandwidth;
  * draws docs/roofline.png: achieved GMAC/s against operational intensity
    (MACs per byte of weights streamed; for attention per byte of Q/K/V/O),
    under the measured int8 and fp32 compute roofs and the measured memory
    read bandwidth (1 and 2 threads).

matplotlib is a benchmark-only dependency (requirements-bench.txt, not the
test requirements): pip install -r requirements-bench.txt, or pass --install to
have this script install it into the running interpreter.

Usage: scripts/perf_roofline.py [--build-dir build] [--json bench.json]
       [--out docs/roofline.png] [--table-out FILE.md] [--min-time 0.2] [--install]
"""
from __future__ import annotations

import argparse
import json
import pathlib
import re
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
FILTER = ("Peak|MatMulQ8/avx512vnni/.*/M(1|12|128|512|2048)/|ModelMatMulsQ8/avx512vnni|"
          "LayerMatMulsQ8/avx512vnni|Attention/avx512vnni")


def ensure_matplotlib(install: bool):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        if not install:
            sys.exit("matplotlib is missing: pip install -r requirements-bench.txt (or rerun with --install)")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", str(REPO / "requirements-bench.txt")],
                       check=True)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def run_bench(build_dir: pathlib.Path, min_time: float) -> dict:
    exe = build_dir / "bin" / "bench_kernels"
    if not exe.exists():
        sys.exit(f"{exe} not found: build first")
    r = subprocess.run([str(exe), f"--benchmark_filter={FILTER}", "--benchmark_format=json",
                        f"--benchmark_min_time={min_time}"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"bench_kernels failed: {r.stderr[-2000:]}")
    return json.loads(r.stdout)


def threads_of(name: str) -> int:
    m = re.search(r"/t(\d+)", name)
    return int(m.group(1)) if m else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=str(REPO / "build"))
    ap.add_argument("--json", help="use an existing bench_kernels JSON instead of running it")
    ap.add_argument("--save-json", help="also write the raw bench_kernels JSON here")
    ap.add_argument("--out", default=str(REPO / "docs" / "roofline.png"))
    ap.add_argument("--table-out", help="write the markdown table here too")
    ap.add_argument("--min-time", type=float, default=0.2)
    ap.add_argument("--install", action="store_true", help="pip install matplotlib if missing")
    args = ap.parse_args(argv)
    plt = ensure_matplotlib(args.install)

    data = json.loads(pathlib.Path(args.json).read_text()) if args.json else run_bench(pathlib.Path(args.build_dir),
                                                                                        args.min_time)
    if args.save_json:
        pathlib.Path(args.save_json).write_text(json.dumps(data, indent=1))
    ctx = data["context"]
    int8_peak = float(ctx.get("int8_peak_gmacs_per_core", 0))
    f32_peak = float(ctx.get("f32_peak_gmacs_per_core", 0))
    mem_peak = {1: float(ctx.get("mem_read_peak_gbs", 0))}
    l3_peak = {}
    rows = []
    points = []
    for b in data["benchmarks"]:
        name = b["name"]
        if name.startswith("PeakMemoryRead") or name.startswith("PeakL3Read"):
            v = b["GB/s"] / 1e9 if b["GB/s"] > 1e6 else b["GB/s"]
            (l3_peak if name.startswith("PeakL3Read") else mem_peak)[threads_of(name)] = v
            continue
        if "GMAC/s" not in b or name.startswith("Peak"):
            continue
        gmacs = b["GMAC/s"] / 1e9 if b["GMAC/s"] > 1e6 else b["GMAC/s"]  # rate counters are per second
        wgbs = b.get("wGB/s", 0)
        wgbs = wgbs / 1e9 if wgbs > 1e6 else wgbs
        th = threads_of(name)
        attention = name.startswith("Attention")
        peak = (f32_peak if attention else int8_peak) * th
        intensity = gmacs / wgbs if wgbs else None
        rows.append((name, th, gmacs, 100 * gmacs / peak if peak else None, wgbs, intensity,
                     "fp32" if attention else "int8"))
        points.append((name, th, gmacs, intensity, attention))

    lines = [f"measured peaks (per core): int8 vpdpbusd {int8_peak:.0f} GMAC/s, fp32 FMA {f32_peak:.0f} GMAC/s; "
             f"DRAM read {', '.join(f'{v:.1f} GB/s ({k} thr)' for k, v in sorted(mem_peak.items()))}; "
             f"64 MiB (L3) read {', '.join(f'{v:.1f} GB/s ({k} thr)' for k, v in sorted(l3_peak.items()))}",
             "",
             "| benchmark | threads | GMAC/s | % of peak | weight GB/s | MAC/byte | peak |",
             "|---|---|---|---|---|---|---|"]
    for name, th, g, pct, w, inten, kind in rows:
        short = re.sub(r"/process_time/real_time", "", name)
        lines.append(f"| {short} | {th} | {g:.1f} | {pct:.1f}% | {w:.2f} | "
                     f"{'' if inten is None else f'{inten:.1f}'} | {kind} |")
    table = "\n".join(lines)
    print(table)
    if args.table_out:
        pathlib.Path(args.table_out).write_text(table + "\n")

    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    xs = [0.05, 5000]
    colors = {1: "tab:blue", 2: "tab:orange"}
    for th in sorted(set(p[1] for p in points) | {1}):
        c = colors.get(th, "tab:gray")
        mb = mem_peak.get(th, mem_peak[1] * th)
        if int8_peak:
            knee = int8_peak * th / mb
            ax.plot([xs[0], knee, xs[1]], [xs[0] * mb, int8_peak * th, int8_peak * th], color=c, lw=1.5,
                    label=f"int8 roof {th} thr ({int8_peak * th:.0f} GMAC/s; DRAM {mb:.0f} GB/s)")
            lb = l3_peak.get(th)
            if lb:
                knee = int8_peak * th / lb
                ax.plot([xs[0], knee], [xs[0] * lb, int8_peak * th], color=c, lw=1, ls="--",
                        label=f"L3-resident read {th} thr ({lb:.0f} GB/s)")
        if f32_peak:
            ax.axhline(f32_peak * th, color=c, lw=1, ls=":", label=f"fp32 FMA roof {th} thr ({f32_peak * th:.0f})")
    for name, th, g, inten, attention in points:
        if inten is None:
            continue
        c = colors.get(th, "tab:gray")
        if name.startswith("ModelMatMulsQ8"):
            marker = "o"
        elif name.startswith("LayerMatMulsQ8"):
            marker = "s"
        elif attention:
            marker = "^"
        else:
            marker = "."
        ax.scatter([inten], [g], color=c, marker=marker, s=30 if marker != "." else 20, alpha=0.85, zorder=3)
        if name.startswith("ModelMatMulsQ8") or (attention and "T2048" in name):
            label = re.search(r"/(M\d+|T\d+/w-?\d+)/", name).group(1)
            ax.annotate(label, (inten, g), textcoords="offset points", xytext=(4, -10), fontsize=7, color=c)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(xs)
    ax.set_ylim(5, max(int8_peak * 2.6, 100))
    ax.set_xlabel("operational intensity (MACs per byte of weights; attention: per byte of Q/K/V/O)")
    ax.set_ylabel("achieved GMAC/s")
    ax.set_title("gembed kernels vs measured roofs (o: 24-layer Q8 GEMMs, s: 1 layer, .: single matmul, ^: attention)",
                 fontsize=8)
    ax.grid(True, which="both", ls=":", lw=0.5)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    print(f"\nwrote {out} ({out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
