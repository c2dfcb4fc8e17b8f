"""What an attention model attends to at a crack tip, from a finished coupled run.

    mpiexec -n 3 multiscale run examples/coupling/two_regions.toml
    python examples/coupling/attention_at_the_tip.py results/two_regions [--region native-sw] [--model si-attention]

Prints each region's first advance (K/K_G, K_G); then, for one region, takes the relaxed
configuration of the increment before its crack first advanced and the one after, finds the
bonds that broke (multiscale.atomistic.attention_map.broken_bonds), ranks them among all the
region's bonds by the attention model's attention in the configuration before, draws the map
with them marked (attention_at_the_tip.png, next to results.h5) and writes the numbers to
attention_at_the_tip.json.  The model only reads the configuration (ASE, one call): the
region itself may have run any potential (si-attention's own LAMMPS region is too slow on a
laptop: docs/attention.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from ase.io import read

from multiscale.atomistic.attention_map import bond_attention, broken_bonds, plot_attention
from multiscale.coupling.output import read_history

BOND = 2.8      # Å: silicon's covalent bonds (2.35 Å), not the second neighbours (3.84 Å)


def first_advances(histories: dict) -> dict:
    out = {}
    for name, h in histories.items():
        advanced = np.flatnonzero(h["advanced"])
        out[name] = {"K_G_GPa_sqrtA": float(h["K_G"]),
                     "first_advance_K_over_KG": float(h["K_over_KG"][advanced[0]]) if len(advanced) else None,
                     "increment": int(h["increment"][advanced[0]]) if len(advanced) else None}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", type=Path, help="the run's output folder (with results.h5)")
    p.add_argument("--region", default="native-sw", help="the region whose crack is read")
    p.add_argument("--model", default="si-attention", help="the attention model (shipped name or file)")
    args = p.parse_args(argv)
    advances = first_advances(read_history(args.folder / "results.h5"))
    for name, row in advances.items():
        print(f"{name:>14}: K_G = {row['K_G_GPa_sqrtA']:.2f} GPa sqrt(Å), first advance at "
              + (f"{row['first_advance_K_over_KG']:.2f} K_G" if row["increment"] is not None else "none"))
    j = advances[args.region]["increment"]
    if j is None or j == 0:
        raise SystemExit(f"region {args.region!r} has no advance after its first increment: nothing to compare")
    work = args.folder / args.region
    before = read(work / f"region.{j - 1:05d}.dump", format="lammps-dump-text")
    after = read(work / f"region.{j:05d}.dump", format="lammps-dump-text")
    broken = broken_bonds(before, after)
    model = args.model
    pairs, weights, vectors = bond_attention(before, model, max_distance=BOND)
    order = np.argsort(weights)[::-1]
    rank = np.empty(len(weights), int)
    rank[order] = np.arange(1, len(weights) + 1)
    where = {tuple(pq): k for k, pq in enumerate(pairs.tolist())}
    rows = [{"atoms": [int(a), int(b)], "rank": int(rank[where[(a, b)]]), "of": len(weights),
             "percentile": float(100.0 * (1 - (rank[where[(a, b)]] - 1) / len(weights))),
             "attention": float(weights[where[(a, b)]]),
             "midpoint_xy_A": (0.5 * (before.positions[a] + before.positions[b]))[:2].round(2).tolist()}
            for a, b in broken.tolist() if (a, b) in where]
    print(f"{len(broken)} bonds broke between increments {j - 1} and {j}; by attention among "
          f"{len(weights)} bonds of the configuration before:")
    for r in rows:
        print(f"  {r['atoms']} at {r['midpoint_xy_A']} Å: rank {r['rank']} of {r['of']} "
              f"({r['percentile']:.1f} th percentile)")
    lengths = np.linalg.norm(vectors, axis=1)
    from scipy.stats import spearmanr
    correlation = float(spearmanr(weights, lengths)[0])
    print(f"Spearman rank correlation of a bond's attention with its length: {correlation:.2f}")
    figure = plot_attention(before, model, args.folder / "attention_at_the_tip.png", top=1.0,
                            bonds=(pairs, weights, vectors),
                            mark=broken, title=f"{model} on {args.region}'s crack, one increment before it advanced "
                                               "(red dashed: the bonds that broke)")
    (args.folder / "attention_at_the_tip.json").write_text(json.dumps(
        {"model": model, "region": args.region, "first_advances": advances, "before_increment": j - 1,
         "bonds": len(weights), "broken_bonds": rows,
         "spearman_attention_vs_length": correlation}, indent=2))
    print(f"map: {figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
