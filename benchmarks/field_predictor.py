"""Crack-field predictor vs finite elements: time for the same field at the same points.

    .venv/bin/python benchmarks/field_predictor.py [--quick] [--json FILE] [--figure FILE]

For each random specimen: the FE time is mesh + assembly + solve + K (``FieldSolution.seconds``)
plus evaluating the field at Q points; the predictor time is one call for that specimen
(single) or one call for all specimens together (batched, per specimen).  Both on one thread.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--queries", type=int, default=1024)
    p.add_argument("--json", default=str(HERE / "results" / "field_predictor.json"))
    p.add_argument("--figure", default=str(HERE.parent / "docs" / "figures" / "field_predictor_speed.png"))
    args = p.parse_args()
    torch.set_num_threads(1)
    from multiscale.continuum.fem import solve
    from multiscale.fields.data import query_points, random_specimen
    from multiscale.fields.predictor import FieldPredictor
    from multiscale.registry import model_path

    pred = FieldPredictor.load(model_path("crack-fields"))
    rng = np.random.default_rng(2024)
    n = 4 if args.quick else 16
    specs, queries, fe = [], [], []
    for _ in range(n):
        spec = random_specimen(rng)
        sol = solve(spec)
        xy = query_points(spec, sol.inside, args.queries, rng)
        t1 = time.perf_counter()
        sol.displacements(xy), sol.stresses(xy)
        fe.append(sol.seconds + time.perf_counter() - t1)
        specs.append(spec), queries.append(xy)
    pred.predict(specs[0], queries[0])  # warm-up (TorchScript profiling runs)
    pred.predict(specs[0], queries[0])
    single = []
    for spec, xy in zip(specs, queries):
        t0 = time.perf_counter()
        pred.predict(spec, xy)
        single.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    pred.predict_batch(specs, queries)
    batched = (time.perf_counter() - t0) / n
    k_only = []  # K needs the encoder and the K head only: one query point
    for spec, xy in zip(specs, queries):
        t0 = time.perf_counter()
        pred.predict(spec, xy[:1])
        k_only.append(time.perf_counter() - t0)
    out = {"specimens": n, "queries": args.queries, "fe_seconds": float(np.median(fe)),
           "predictor_single_seconds": float(np.median(single)), "predictor_batched_seconds": batched,
           "speedup_single": float(np.median(fe) / np.median(single)),
           "speedup_batched": float(np.median(fe) / batched),
           "predictor_k_only_seconds": float(np.median(k_only)),
           "speedup_k_only": float(np.median(fe) / np.median(k_only)), "threads": 1}
    print(json.dumps(out, indent=2))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.2), constrained_layout=True)
    vals = [out["fe_seconds"], out["predictor_single_seconds"], out["predictor_batched_seconds"],
            out["predictor_k_only_seconds"]]
    ax.bar(["FE", "predictor\nsingle", f"predictor\nbatch of {n}", "predictor\nK only"], vals,
           color=["grey", "tab:blue", "tab:green", "tab:orange"])
    ax.set_yscale("log")
    ax.set_ylabel("seconds per specimen (1 thread)")
    ax.set_title(f"field at {args.queries} points: x{out['speedup_single']:.0f} single, "
                 f"x{out['speedup_batched']:.0f} batched", fontsize=9)
    for i, v in enumerate(vals):
        ax.text(i, v, f"{v * 1e3:.1f} ms", ha="center", va="bottom", fontsize=8)
    Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=120)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
