"""Training configuration files (TOML) and the models they build.

    [data]
    path = "silicon.extxyz"          # or .h5; relative to the config file

    [model]
    kind = "ani"                     # "ani", "message-passing", "equivariant-transformer" or "aimnet2"
    elements = ["Si"]
    ensemble = 4                     # members trained with different seeds
    dtype = "float64"
    start_from = "earlier.pt"        # optional: start from this model file's weights
    # ... keyword arguments of the model's builder (see BUILDERS)

    [training]                       # fields of multiscale.learning.TrainConfig
    epochs = 300

    [fine_tune]                      # optional second stage from the first one's best weights:
    epochs = 40                      # [training] with these fields replaced, a fresh optimiser
    stress_weight = 0.1

    [output]
    model = "si.pt"                  # the exported model file
    folder = "runs/si"               # checkpoints, log, plots
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from ..config import ConfigError, read_toml
from .trainer import TrainConfig

SECTIONS = {"data", "model", "training", "fine_tune", "output", "active"}  # [active]: multiscale.learning.active_learning


def _message_passing():
    from ..potentials import MessagePassingPotential
    return MessagePassingPotential


def _equivariant_transformer():
    from ..potentials import EquivariantTransformer
    return EquivariantTransformer


def _build_equivariant_transformer(elements, **kwargs):
    return _equivariant_transformer()(elements, **kwargs)


def _ani():
    from ..potentials.ani import build_ani
    return build_ani


def _aimnet2():
    from ..potentials.aimnet2 import AIMNet2Potential
    return AIMNet2Potential


def _build_aimnet2(elements, **kwargs):
    return _aimnet2()(elements, **kwargs)


def _build_message_passing(elements, **kwargs):
    return _message_passing()(elements, **kwargs)


def _build_ani(elements, **kwargs):
    return _ani()(elements, **kwargs)


_TARGETS = {"message-passing": _message_passing, "ani": _ani, "aimnet2": _aimnet2,
            "equivariant-transformer": _equivariant_transformer}  # whose keywords [model] may set


BUILDERS: dict[str, Callable[..., torch.nn.Module]] = {
    "message-passing": _build_message_passing,
    "equivariant-transformer": _build_equivariant_transformer,
    "ani": _build_ani,
    "aimnet2": _build_aimnet2,
}


@dataclasses.dataclass
class TrainingSetup:
    """A validated training configuration: data, model builder, training settings, outputs."""

    data: Path
    model_kind: str
    elements: list[str]
    model_args: dict[str, Any]
    ensemble: int
    dtype: torch.dtype
    training: TrainConfig
    output_model: Path
    folder: Path
    fine_tune: Optional[TrainConfig] = None   # the second stage, if [fine_tune] is given
    start_from: Optional[Path] = None         # a model file whose weights the members start from

    def stages(self, member: int) -> list[tuple[str, TrainConfig]]:
        """(name, settings) of each training stage of ensemble ``member``: its own seed and
        checkpoint file in ``folder``."""
        stages = [("training", self.training)] + ([("fine_tune", self.fine_tune)] if self.fine_tune else [])
        suffix = {"training": "", "fine_tune": ".fine_tune"}
        return [(name, dataclasses.replace(cfg, seed=cfg.seed + member,
                                           checkpoint=str(self.folder / f"member{member}{suffix[name]}.ckpt")))
                for name, cfg in stages]

    def build_model(self, seed: int) -> torch.nn.Module:
        torch.manual_seed(seed)
        args = dict(self.model_args)
        if self.model_kind in ("message-passing", "equivariant-transformer", "aimnet2"):
            args.setdefault("seed", seed)
        return BUILDERS[self.model_kind](self.elements, **args).to(self.dtype)


def read_config(path: str | Path) -> TrainingSetup:
    """Read and validate a training configuration; ConfigError naming the key and the fix."""
    path = Path(path)
    raw = read_toml(path, "training configuration")
    unknown = sorted(raw.keys() - SECTIONS)
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {unknown}; allowed: {sorted(SECTIONS)}")
    base = path.parent
    data = raw.get("data", {})
    if "path" not in data:
        raise ConfigError(f"{path}: [data] needs path = \"dataset.extxyz\"")
    model = dict(raw.get("model", {}))
    kind = model.pop("kind", None)
    if kind not in BUILDERS:
        raise ConfigError(f"{path}: [model] kind must be one of {sorted(BUILDERS)}, got {kind!r}")
    elements = model.pop("elements", None)
    if not elements:
        raise ConfigError(f"{path}: [model] needs elements = [\"Si\", ...]")
    ensemble = int(model.pop("ensemble", 1))
    start_from = model.pop("start_from", None)
    if start_from is not None:
        start_from = base / start_from
        if not start_from.is_file():
            raise ConfigError(f"{path}: [model] start_from = {str(start_from)!r} is not a file; give "
                              "the path of a model file (relative to the configuration) or remove the key")
    if kind == "aimnet2" and ensemble != 1:
        raise ConfigError(f"{path}: [model] kind 'aimnet2' normalises charges over the whole system "
                          "and cannot be averaged as an ensemble yet; set ensemble = 1")
    dtype_name = model.pop("dtype", "float64")
    if dtype_name not in ("float64", "float32"):
        raise ConfigError(f"{path}: [model] dtype must be float64 or float32")
    import inspect
    params = inspect.signature(_TARGETS[kind]() if kind in _TARGETS else BUILDERS[kind]).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        allowed = sorted(set(params) - {"elements", "seed"})
        bad = sorted(model.keys() - set(allowed))
        if bad:
            raise ConfigError(f"{path}: unknown [model] key(s) {bad} for kind {kind!r}; allowed: "
                              f"{sorted(allowed + ['kind', 'elements', 'ensemble', 'dtype'])}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    training = raw.get("training", {})
    fine = raw.get("fine_tune")
    for section, keys in (("training", training), ("fine_tune", fine or {})):
        bad = sorted(keys.keys() - fields)
        if bad:
            raise ConfigError(f"{path}: unknown [{section}] key(s) {bad}; allowed: {sorted(fields)}")
    if fine is not None and "checkpoint" in fine:
        raise ConfigError(f"{path}: [fine_tune] takes no checkpoint (each stage has its own file "
                          "in the [output] folder); remove the key")
    output = raw.get("output", {})
    folder = base / output.get("folder", "runs/" + path.stem)
    train_cfg = TrainConfig(**training)
    if train_cfg.checkpoint is None:
        train_cfg.checkpoint = str(folder / "checkpoint.pt")
    return TrainingSetup(data=base / data["path"], model_kind=kind, elements=list(elements),
                     model_args=model, ensemble=ensemble,
                     dtype=torch.float64 if dtype_name == "float64" else torch.float32,
                     training=train_cfg, output_model=base / output.get("model", path.stem + ".pt"),
                     folder=folder,
                     fine_tune=dataclasses.replace(train_cfg, **fine) if fine is not None else None,
                     start_from=start_from)
