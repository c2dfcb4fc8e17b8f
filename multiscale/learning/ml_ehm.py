"""The shipped ML-EHM model ``ehm-chno``: data, training, the direct-orbital baseline, the
ethylene crossing study.

    multiscale build-ehm-chno [--epochs 20] [--train 240] [--test 48]

1. Conformers of small C, H, N, O molecules (multiscale.reference.conformers: single bonds
   turned freely, double bonds by at most 60 degrees, coordinates displaced), labelled by
   GFN2-xTB (tblite): energy, forces, orbital energies.  PySCF hybrid DFT would take hours
   on two cores for the same set; GFN2-xTB has the same minimal valence basis as the model.
   Held-out: the same molecules, other conformers (seed 1).
2. ML-EHM (multiscale.potentials.ml_ehm) trained on energy + forces + the frontier levels
   HOMO-2 .. LUMO+2; the direct baseline, the same message-passing network with a readout of
   the six levels (about as many parameters), trained on the same levels of the same data.
3. Twisted ethylene 0 .. 180 degrees (none beyond 60 in training): HOMO and LUMO of xTB,
   textbook EHT, the direct network and ML-EHM, with a plot and errors in the 60-120 degree
   window; the model card multiscale/data/ehm_chno.json quotes them (the curves:
   ehm_chno_crossing.json).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..model.registry import DATA

WORK = DATA / "ehm_chno_run"
MOLECULES = ("C2H4", "C2H4", "C2H4", "CH4", "C2H6", "C2H2", "H2O", "NH3", "H2CO", "CH3OH", "H3CNH2",
             "HCOOH", "CH3CHO", "HCN", "C3H6_Cs", "butadiene")      # ethylene thrice: the study's molecule
FRONTIER = (-2, -1, 0, 1, 2, 3)            # HOMO-2 .. LUMO+2, offsets from the HOMO
VALENCE = {"H": 1, "C": 4, "N": 5, "O": 6}
MAX_TWIST = 60.0
# the ZBL core of et-chno (multiscale/data/et_chno.toml, from the same kind of xTB conformers),
# zero beyond each pair's outer radius, below the closest approach in the data; H-H reaches
# 1.0 Å (the data's closest H-H is 1.42 Å, no H2): with et-chno's 0.55 Å the band energy
# binds two H atoms by 0.6 eV at 0.28 Å, so they would fuse
CORE = {"inner": 0.3, "outer": 0.55, "pairs": {"H-H": [0.5, 1.0], "C-H": [0.35, 0.8], "H-N": [0.35, 0.8], "H-O": [0.35, 0.8],
                                              "C-C": [0.5, 0.95], "C-N": [0.5, 0.95], "C-O": [0.5, 0.95],
                                              "N-N": [0.5, 0.95], "N-O": [0.5, 0.95], "O-O": [0.5, 0.95]}}


def frontier(levels: Sequence[float], symbols: Sequence[str], charge: int = 0) -> np.ndarray:
    """HOMO-2 .. LUMO+2 (6,) eV of a closed shell from ascending ``levels``; NaN where the
    basis has no such level."""
    homo = (sum(VALENCE[s] for s in symbols) - charge) // 2 - 1
    out = np.full(len(FRONTIER), np.nan)
    for k, offset in enumerate(FRONTIER):
        if 0 <= homo + offset < len(levels):
            out[k] = levels[homo + offset]
    return out


def label(structures, log: Callable[[str], None] = print) -> list[dict]:
    """GFN2-xTB energy (eV), forces (eV/Å) and frontier levels (eV) of each structure."""
    from ..reference.charge_states import xtb
    out = []
    for k, atoms in enumerate(structures):
        r = xtb(atoms, 0, 1, orbitals=True)
        out.append({"symbols": atoms.get_chemical_symbols(), "positions": atoms.positions.tolist(),
                    "molecule": atoms.info["molecule"], "twists": atoms.info["twists"],
                    "energy": r["energy"], "forces": r["forces"].tolist(),
                    "frontier": frontier(r["orbital_energies"], atoms.get_chemical_symbols()).tolist()})
        if (k + 1) % 100 == 0 or k + 1 == len(structures):
            log(f"xTB labelled {k + 1}/{len(structures)} conformers")
    return out


def make_data(work: Path = WORK, train: int = 360, test: int = 60, log: Callable[[str], None] = print) -> tuple[list, list]:
    """(training, held-out) labelled conformers, kept in ``work`` as JSON."""
    from ..reference.conformers import conformers
    work.mkdir(parents=True, exist_ok=True)
    sets = []
    for name, count, seed in (("train", train, 0), ("test", test, 1)):
        path = work / f"{name}.json"
        if path.exists() and len(json.loads(path.read_text())) == count:
            sets.append(json.loads(path.read_text()))
            continue
        data = label(conformers(MOLECULES, count, seed, max_double_twist=MAX_TWIST), log)
        path.write_text(json.dumps(data))
        sets.append(data)
    return sets[0], sets[1]


def shortest_distances(data: list[dict]) -> dict:
    """{"C-H": Å, ...}: each element pair's closest approach (symbols sorted) in ``data``."""
    out: dict = {}
    for item in data:
        pos = np.asarray(item["positions"])
        for a in range(len(pos)):
            for b in range(a + 1, len(pos)):
                key = "-".join(sorted((item["symbols"][a], item["symbols"][b])))
                out[key] = min(out.get(key, np.inf), float(np.linalg.norm(pos[a] - pos[b])))
    return out


def check_core(data: list[dict]) -> None:
    """ValueError unless CORE is zero on every pair of ``data`` (outer below its closest approach)."""
    for key, shortest in shortest_distances(data).items():
        a, b = key.split("-")
        outer = (CORE["pairs"].get(f"{a}-{b}") or CORE["pairs"].get(f"{b}-{a}") or [CORE["inner"], CORE["outer"]])[1]
        if outer >= shortest:
            raise ValueError(f"the ZBL core's {key} range ends at {outer} Å, inside the data's closest "
                             f"{key} approach {shortest:.3f} Å: shorten it in multiscale.learning.ml_ehm.CORE")


def graph(model, symbols: Sequence[str], positions) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(species, edge_index, positions) of a whole molecule, every pair within the model's cutoff."""
    positions = torch.as_tensor(np.asarray(positions), dtype=torch.float64)
    species = torch.tensor([model.elements.index(s) for s in symbols])
    n = len(symbols)
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    keep = (i != j) & ((positions[j] - positions[i]).norm(dim=-1) < model.cutoff)
    return species, torch.stack([i[keep], j[keep]]), positions


class DirectOrbitals(torch.nn.Module):
    """Baseline: the message-passing trunk of ML-EHM with a mean-pooled readout of the six
    frontier levels (eV), no Hamiltonian."""

    def __init__(self, elements: Sequence[str], cutoff: float, hops: int, features: int, n_basis: int, seed: int = 0):
        super().__init__()
        from ..potentials.message_passing import GaussianBasis, Interaction
        torch.manual_seed(seed)
        self.elements = list(elements)
        self.cutoff = cutoff
        self.embedding = torch.nn.Embedding(len(self.elements), features)
        self.basis = GaussianBasis(cutoff, n_basis)
        self.interactions = torch.nn.ModuleList([Interaction(features, n_basis) for _ in range(hops)])
        width = 3 * features                       # about ML-EHM's parameter count (its three heads)
        self.readout = torch.nn.Sequential(torch.nn.Linear(features, width), torch.nn.SiLU(),
                                           torch.nn.Linear(width, len(FRONTIER)))
        self.double()

    def forward(self, species, edge_index, edge_vectors):
        basis = self.basis(torch.linalg.vector_norm(edge_vectors, dim=1))
        h = self.embedding(species)
        for interaction in self.interactions:
            h = interaction(h, basis, edge_index[0], edge_index[1])
        return self.readout(h).mean(dim=0)


def direct_levels(direct: DirectOrbitals, symbols, positions) -> torch.Tensor:
    """The direct network's six frontier levels (eV) for one molecule."""
    species, edge_index, positions = graph(direct, symbols, positions)
    return direct(species, edge_index, positions[edge_index[1]] - positions[edge_index[0]])


def predict(model, item: dict, create_graph: bool = False) -> dict:
    """ML-EHM's energy (eV), forces (n, 3) eV/Å, frontier levels (6,) eV and charges (n,) e for a
    data item ({"symbols", "positions"}); detached unless ``create_graph`` (training)."""
    species, edge_index, positions = graph(model, item["symbols"], item["positions"])
    positions = positions.clone().requires_grad_(True)
    out = model(species, edge_index, positions[edge_index[1]] - positions[edge_index[0]], len(species), 0.0, 1)
    energy = out["energies"].sum()
    forces = -torch.autograd.grad(energy, positions, create_graph=create_graph)[0]
    levels = out["orbital_energies"]
    homo = (sum(VALENCE[s] for s in item["symbols"])) // 2 - 1
    index = torch.tensor([min(max(homo + o, 0), levels.shape[0] - 1) for o in FRONTIER])
    result = {"energy": energy, "forces": forces, "frontier": levels[index], "charges": out["charges"]}
    return result if create_graph else {k: v.detach() for k, v in result.items()}


def _targets(item: dict):
    f = torch.tensor(item["frontier"], dtype=torch.float64)
    return (torch.tensor(item["energy"], dtype=torch.float64), torch.tensor(item["forces"], dtype=torch.float64),
            f, ~torch.isnan(f))


def fit_self_energies(model, data: list[dict]) -> None:
    """Per-element energies that best fit reference minus the untrained model (least squares)."""
    counts = np.array([[item["symbols"].count(e) for e in model.elements] for item in data], dtype=float)
    with torch.no_grad():
        model.self_energy.zero_()
    rest = np.array([item["energy"] - float(predict(model, item)["energy"]) for item in data])
    values = np.linalg.lstsq(counts, rest, rcond=None)[0]
    model.set_self_energies(np.where(counts.sum(0) > 0, values, 0.0))


def train(model, data: list[dict], epochs: int, loss_of: Callable, learning_rate: float = 1e-3,
          batch: int = 8, seed: int = 0, log: Callable[[str], None] = print, what: str = "ML-EHM") -> list[float]:
    """Adam over ``data`` in shuffled batches; loss_of(model, item) -> scalar.  Learning rate
    halved at 50 % and 75 % of the epochs.  Returns the mean loss per epoch."""
    optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate)
    steps = torch.optim.lr_scheduler.MultiStepLR(optimiser, [epochs // 2, (3 * epochs) // 4], 0.5)
    rng = np.random.default_rng(seed)
    history = []
    for epoch in range(epochs):
        start, total = time.time(), 0.0
        order = rng.permutation(len(data))
        for first in range(0, len(order), batch):
            optimiser.zero_grad()
            chunk = order[first:first + batch]
            for k in chunk:
                loss = loss_of(model, data[k]) / len(chunk)
                loss.backward()
                total += float(loss.detach()) * len(chunk)
            optimiser.step()
        steps.step()
        history.append(total / len(data))
        log(f"{what} epoch {epoch + 1}/{epochs}: loss {history[-1]:.4g} ({time.time() - start:.0f} s)")
    return history


def ehm_loss(force_weight: float = 1.0, orbital_weight: float = 1.0) -> Callable:
    """(E/N error)^2 + force_weight mean F error^2 + orbital_weight mean frontier error^2 (eV, Å)."""
    def loss(model, item):
        energy, forces, levels, known = _targets(item)
        p = predict(model, item, create_graph=True)
        n = len(item["symbols"])
        return ((p["energy"] - energy) / n) ** 2 + force_weight * ((p["forces"] - forces) ** 2).mean() \
            + orbital_weight * ((p["frontier"] - levels)[known] ** 2).mean()
    return loss


def direct_loss(model, item):
    _, _, levels, known = _targets(item)
    return ((direct_levels(model, item["symbols"], item["positions"]) - levels)[known] ** 2).mean()


def held_out(model, direct, data: list[dict]) -> dict:
    """Errors on ``data``: ML-EHM energy MAE (meV/atom), force RMSE (eV/Å), frontier RMSE (eV)
    of ML-EHM, the direct network and textbook EHT, and the largest |sum of charges|."""
    from ..quantum.huckel import extended_huckel
    e, f, orb, orb_direct, orb_text, charge_sum = [], [], [], [], [], 0.0
    for item in data:
        energy, forces, levels, known = _targets(item)
        p = predict(model, item)
        e.append(abs(float(p["energy"] - energy)) / len(item["symbols"]))
        f.append(((p["forces"] - forces) ** 2).detach().numpy().ravel())
        orb.append(((p["frontier"] - levels)[known] ** 2).detach().numpy())
        with torch.no_grad():
            d = direct_levels(direct, item["symbols"], item["positions"])
        orb_direct.append(((d - levels)[known] ** 2).numpy())
        text = frontier(extended_huckel(item["symbols"], item["positions"]).orbital_energies.numpy(), item["symbols"])
        orb_text.append(((torch.tensor(text) - levels)[known] ** 2).numpy())
        charge_sum = max(charge_sum, abs(float(p["charges"].sum())))
    rms = lambda parts: float(np.sqrt(np.concatenate(parts).mean()))
    return {"structures": len(data), "energy_mae_meV_per_atom": 1e3 * float(np.mean(e)),
            "force_rmse_eV_per_A": rms(f), "frontier_rmse_eV": rms(orb), "direct_frontier_rmse_eV": rms(orb_direct),
            "textbook_frontier_rmse_eV": rms(orb_text), "max_abs_charge_sum_e": charge_sum}


def crossing_study(model, direct, angles=tuple(range(0, 181, 5))) -> dict:
    """HOMO and LUMO (eV) of twisted ethylene by xTB, textbook EHT, the direct network and
    ML-EHM, and each method's RMSE against xTB over 60-120 degrees and its gap minimum."""
    from ..quantum.huckel import extended_huckel
    from ..reference.charge_states import xtb
    from ..reference.molecules import twisted_ethylene
    curves = {k: [] for k in ("xtb", "textbook", "direct", "ml_ehm")}
    for angle in angles:
        atoms = twisted_ethylene(angle)
        symbols, positions = atoms.get_chemical_symbols(), atoms.positions
        ref = frontier(xtb(atoms, 0, 1, orbitals=True)["orbital_energies"], symbols)
        text = frontier(extended_huckel(symbols, positions).orbital_energies.numpy(), symbols)
        with torch.no_grad():
            d = direct_levels(direct, symbols, positions).numpy()
        m = predict(model, {"symbols": symbols, "positions": positions})["frontier"].detach().numpy()
        for key, levels in (("xtb", ref), ("textbook", text), ("direct", d), ("ml_ehm", m)):
            curves[key].append([float(levels[2]), float(levels[3])])       # HOMO, LUMO
    angles = np.asarray(angles, dtype=float)
    window = (angles >= 60) & (angles <= 120)
    ref = np.array(curves["xtb"])
    summary = {}
    for key, values in curves.items():
        values = np.array(values)
        gap = values[:, 1] - values[:, 0]
        summary[key] = {"window_rmse_eV": float(np.sqrt(((values - ref)[window] ** 2).mean())),
                        "gap_min_angle_deg": float(angles[np.argmin(np.where(angles <= 180, gap, np.inf))]),
                        "gap_min_eV": float(gap.min()), "gap_0_eV": float(gap[0])}
    return {"angles_deg": angles.tolist(), "curves": curves, "summary": summary}


def plot_crossing(study: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    angles = study["angles_deg"]
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    styles = {"xtb": ("k", "-", "GFN2-xTB (reference)"), "textbook": ("tab:gray", ":", "textbook EHT"),
              "direct": ("tab:orange", "--", "direct network"), "ml_ehm": ("tab:blue", "-", "ML-EHM")}
    for key, (colour, line, name) in styles.items():
        values = np.array(study["curves"][key])
        s = study["summary"][key]
        ax.plot(angles, values[:, 0], line, color=colour, label=f"{name} (60-120°: {s['window_rmse_eV']:.2f} eV)")
        ax.plot(angles, values[:, 1], line, color=colour)
    ax.axvspan(MAX_TWIST, 180 - MAX_TWIST, color="0.93", zorder=0)
    ax.text(90, ax.get_ylim()[0] + 0.3, "no training data", ha="center", fontsize=8)
    ax.set(xlabel="C=C twist (degrees)", ylabel="HOMO and LUMO (eV)", title="twisted ethylene: HOMO/LUMO crossing")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def build(epochs: int = 20, train_count: int = 240, test_count: int = 48, out: Path | None = None,
          figure: Path | None = None, direct_epochs: int | None = None,
          log: Callable[[str], None] = print) -> dict:
    """Data, both trainings, the held-out errors and the crossing study; writes the model file,
    its card (JSON) and the crossing plot.  The direct network, 50x cheaper per epoch, trains
    for ``direct_epochs`` (default 5 x epochs: near convergence, so that the comparison is not
    with an undertrained baseline).  Returns the card."""
    from ..model.artifact import export
    from ..potentials.ml_ehm import MLEHM
    start = time.time()
    train_data, test_data = make_data(WORK, train_count, test_count, log)
    check_core(train_data + test_data)
    model = MLEHM(elements=("H", "C", "N", "O"), repulsion=CORE)
    fit_self_energies(model, train_data)
    direct = DirectOrbitals(model.elements, model.cutoff, model.hops, model.embedding.embedding_dim,
                            model.basis.centres.shape[0])
    sizes = {"ml_ehm": sum(p.numel() for p in model.parameters()),
             "direct": sum(p.numel() for p in direct.parameters())}
    log(f"parameters: ML-EHM {sizes['ml_ehm']}, direct network {sizes['direct']}")
    direct_epochs = direct_epochs or 5 * epochs
    direct_history = train(direct, train_data, direct_epochs, direct_loss, log=log, what="direct")
    history = train(model, train_data, epochs, ehm_loss(), log=log)
    torch.save(model.state_dict(), WORK / "ehm_chno_state.pt")     # the weights, whatever follows
    errors = held_out(model, direct, test_data)
    log(f"held-out: {errors}")
    study = crossing_study(model, direct)
    out = out or DATA / "ehm_chno.pt"
    figure = figure or Path(__file__).resolve().parents[2] / "docs" / "figures" / "ehm_crossing.png"
    plot_crossing(study, figure)
    export(model, out, model.metadata())
    card = {"model": "ehm-chno", "reference": "GFN2-xTB (tblite)", "molecules": sorted(set(MOLECULES)),
            "max_double_twist_deg": MAX_TWIST, "train_structures": len(train_data), "epochs": epochs,
            "direct_epochs": direct_epochs,
            "parameters": sizes, "held_out": errors, "crossing": study["summary"],
            "loss_history": {"ml_ehm": history, "direct": direct_history},
            "build_seconds": round(time.time() - start), "command": "multiscale build-ehm-chno"}
    out.with_suffix(".json").write_text(json.dumps(card, indent=1))
    out.with_name(out.stem + "_crossing.json").write_text(json.dumps(study, indent=1))
    return card
