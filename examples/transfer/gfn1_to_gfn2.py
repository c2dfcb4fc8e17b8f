"""Transfer learning, demonstrated: an ANI model pretrained on GFN1-xTB, fine-tuned on 20
GFN2-xTB structures (frozen and adapted) and compared with training from scratch on them,
all measured on held-out GFN2-xTB structures (docs/training.md).

    OMP_NUM_THREADS=1 .venv/bin/python examples/transfer/gfn1_to_gfn2.py --json demo.json   # about 3 min
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from multiscale.learning import StructureDataset
from multiscale.learning.trainer import TrainConfig, Trainer, evaluate, set_self_energies
from multiscale.learning.transfer import default_config, fine_tune, refit_self_energies
from multiscale.potentials import AEVParameters, ANIModel
from multiscale.potentials.ani import build_ani
from multiscale.reference.molecules import displaced_molecules
from multiscale.reference.oracles import label, xtb_oracle

DEMO_MODEL = {"aev": "ani1x", "hidden": (32, 16)}  # ANI-1x's AEV (384 features), small networks


def demonstrate(n_pretrain: int = 480, n_small: int = 20, n_test: int = 200, pretrain_epochs: int = 150,
                epochs: int = 300, seed: int = 0, log: Callable[[str], None] = print) -> dict:
    """Pretrain on ``n_pretrain`` GFN1-xTB structures; fine-tune on ``n_small`` GFN2-xTB
    structures (frozen: last layer, last two layers; adapted) and train the same
    architecture from scratch on them (learning rates 1e-3 and 1e-2, force weights 0.01
    and 1); measure all on ``n_test`` held-out GFN2-xTB structures.
    Returns {row: {"energy_mae_meV_per_atom", "force_rmse_eV_per_A"}}."""
    quiet = lambda _msg: None  # noqa: E731
    elements = ["H", "C", "N", "O"]
    gfn1, gfn2 = xtb_oracle("GFN1-xTB"), xtb_oracle("GFN2-xTB")
    cutoff = AEVParameters.ani1x().cutoff
    pretrain_set = label(displaced_molecules(n_pretrain, seed), gfn1, quiet)
    small = label(displaced_molecules(n_small, seed + 1), gfn2, quiet)
    test = label(displaced_molecules(n_test, seed + 2), gfn2, quiet)
    pretrain_data, small_data, test_data = (StructureDataset(structures, elements, cutoff)
                                            for structures in (pretrain_set, small, test))

    def from_scratch(dataset: StructureDataset, config: TrainConfig) -> ANIModel:
        model = build_ani(elements, seed=seed, **DEMO_MODEL).double()
        set_self_energies(model, dataset, len(elements))
        Trainer(model, dataset, config, log=quiet).run()
        return model

    start = time.perf_counter()
    pretraining = TrainConfig(epochs=pretrain_epochs, batch_size=8, learning_rate=3e-3, force_weight=1.0,
                              patience=40, seed=seed)
    pretrained = from_scratch(pretrain_data, pretraining)
    log(f"pretrained on {n_pretrain} GFN1-xTB structures in {time.perf_counter() - start:.0f} s")
    models = {"pretrained (GFN1-xTB)": pretrained}
    models["pretrained, self energies refit"] = copy.deepcopy(pretrained)
    refit_self_energies(models["pretrained, self energies refit"], small_data)
    for name, mode, layers in (("frozen, last layer", "frozen", 1),
                               ("frozen, last 2 layers", "frozen", 2), ("adapted", "adapted", 1)):
        config = default_config(mode, epochs=epochs, seed=seed)
        models[name] = fine_tune(pretrained, small, mode, layers, config, log=quiet)
    for learning_rate in (1e-3, 1e-2):  # from scratch at its best: two rates, two force weights
        for force_weight in (0.01, 1.0):
            config = default_config("adapted", epochs=epochs, seed=seed, learning_rate=learning_rate,
                                    force_weight=force_weight)
            models[f"scratch, lr {learning_rate:g}, force weight {force_weight:g}"] = \
                from_scratch(small_data, config)
    results = {}
    for name, model in models.items():
        results[name] = evaluate(model, test_data, range(n_test))
        log(f"{name}: {json.dumps({k: round(v, 3) for k, v in results[name].items()})}")
    return results


def main(argv: Optional[Sequence[str]] = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="examples/transfer/gfn1_to_gfn2.py",
                                description="the GFN1-xTB -> GFN2-xTB transfer-learning demonstration "
                                            "of docs/training.md (about 3 minutes on one core)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args(argv)
    results = demonstrate(seed=args.seed)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
