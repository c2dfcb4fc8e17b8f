"""The spec of one crack-tip region: its keys, types, defaults and checks, and the potential
it runs.  The run configuration (``[atomistic]`` / ``[[region]]``) and
:class:`multiscale.atomistic.region.CrackRegion` validate through this one module, so a spec the
config accepts is one the region accepts.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

SW_CUTOFF = 3.77118  # Å, Si.sw: a * sigma = 1.80 * 2.0951
MIN_INTERIOR = 6.0   # Å: the interior disc must be at least this wide (radius > boundary + 6 Å)
MIN_STYLES = ("fire", "cg", "sd", "quickmin")

# key -> (type, default); a None default means "computed" (lattice_constant, broken_bond) or
# "all of the interior" (stress_radius).  Units: Å, eV/Å.
SPEC_KEYS = {
    "potential": (str, "sw"),            # "sw" (native Stillinger-Weber), a shipped model or a model file
    "radius": (float, 20.0),             # Å, the region's disc
    "boundary": (float, 8.0),            # Å, the outer shell placed by the continuum
    "lattice_constant": (float, None),   # Å; None = computed with the potential
    "fmax": (float, 1e-3),               # eV/Å, minimiser tolerance
    "max_iterations": (int, 2000),
    "dump_every": (int, 0),              # increments; 0 = never
    "min_style": (str, "fire"),          # LAMMPS minimiser: fire, cg, sd, quickmin
    "stress_radius": (float, None),      # Å around the found tip for stress samples
    "broken_bond": (float, None),        # Å; None = 1.3 x the bond length
}

# mode "md" of a coupled run: key -> (type, default) of its [md] table (atomistic/thermal.py)
MD_KEYS = {
    "temperature": (float, 300.0),      # K
    "timestep": (float, 1.0),           # fs
    "exchange_every": (int, 50),        # MD steps between two exchanges with the continuum
    "k_rate": (float, 0.1),             # [loading] unit per ps
    "duration": (float, 10.0),          # ps after the first (relaxed) exchange
    "damping": (float, 0.1),            # ps, Langevin damping time of the layer
    "layer": (float, 4.0),              # Å, the thermostatted layer inside the shell
    "seed": (int, 4928459),             # velocities and Langevin noise
}
MAX_TIMESTEP = 5.0                      # fs: silicon's optical vibration period is ~65 fs
MIN_CORE = 2.0                          # Å of NVE interior left inside the thermostat layer


class SpecError(ValueError):
    """A region spec that cannot be run; the message names the key(s) and the fix."""


def _number(value, kind) -> bool:
    if isinstance(value, bool):
        return False
    if kind is int:
        return isinstance(value, int)
    return isinstance(value, (int, float)) and math.isfinite(value)


def validate(spec: dict) -> dict:
    """The spec with defaults filled in; SpecError naming the first problem.  Only what the
    spec itself says is checked here (see :func:`check_potential` for the potential's range)."""
    if not isinstance(spec, dict):
        raise SpecError(f"a region spec must be a dict, got {type(spec).__name__}")
    spec = dict(spec)
    if "ftol" in spec:  # the interface's other name for fmax
        ftol = spec.pop("ftol")
        if "fmax" in spec and spec["fmax"] != ftol:
            raise SpecError(f"region spec gives fmax = {spec['fmax']} and ftol = {ftol}; give one")
        spec["fmax"] = ftol
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise SpecError(f"region spec has unknown keys {unknown}; known: {sorted(SPEC_KEYS)}")
    out = {k: default for k, (_, default) in SPEC_KEYS.items()} | spec
    for key in ("radius", "boundary", "fmax", "lattice_constant", "stress_radius", "broken_bond"):
        value = out[key]
        if value is None and SPEC_KEYS[key][1] is None:
            continue
        if not (_number(value, float) and value > 0):
            raise SpecError(f"region spec: {key} must be a positive number, got {value!r}")
    for key, low in (("max_iterations", 1), ("dump_every", 0)):
        if not _number(out[key], int) or out[key] < low:
            raise SpecError(f"region spec: {key} must be an integer >= {low}, got {out[key]!r}")
    if out["boundary"] >= out["radius"] - MIN_INTERIOR:
        raise SpecError(f"region spec: boundary = {out['boundary']} Å leaves no interior in radius = "
                        f"{out['radius']} Å (need radius > boundary + {MIN_INTERIOR:g} Å); enlarge radius "
                        f"beyond {out['boundary'] + MIN_INTERIOR:g} Å or thin boundary")
    a = out["lattice_constant"]
    if a is not None and not 4.0 < a < 7.0:
        raise SpecError(f"region spec: lattice_constant = {a!r} Å is not a silicon-like lattice constant; "
                        "give about 5.43 or leave it out to compute it with the potential")
    if out["min_style"] not in MIN_STYLES:
        raise SpecError(f"region spec: min_style {out['min_style']!r} is not one of {', '.join(MIN_STYLES)}")
    if not isinstance(out["potential"], (str, os.PathLike)):
        raise SpecError(f"region spec: potential must be 'sw', a shipped model or a model file, got "
                        f"{out['potential']!r}")
    return out


@dataclass(frozen=True)
class Potential:
    """What a region needs of its potential: LAMMPS pair lines, whether they need the plugin,
    the interaction range cutoff x hops (Å) and a description for logs."""
    name: str          # "sw" or the model file's path
    pair_lines: tuple[str, ...]
    plugin: bool
    reach: float
    description: str


def potential(name: str | os.PathLike) -> Potential:
    """``"sw"``, a shipped model's name or a model file, resolved and checked to be a silicon
    potential (not a crack-field predictor)."""
    from ..engines.lammps import pair_lines
    if str(name) == "sw":
        lines, plugin = pair_lines("sw")
        return Potential("sw", tuple(lines), plugin, SW_CUTOFF, "native Stillinger-Weber (Si.sw)")
    from ..model import artifact, registry
    path = registry.resolve(name)
    if not Path(path).is_file():
        raise FileNotFoundError(f"region potential {str(name)!r} is neither 'sw', a shipped model "
                                f"({sorted(registry.SHIPPED)}) nor an existing model file")
    meta = artifact.load(path).metadata
    if getattr(meta, "kind", "potential") == "field":
        raise SpecError(f"region potential {str(name)!r} is a crack-field predictor, not a potential; use "
                        "'sw', 'si-ani' or another interatomic potential (predictors go in [continuum] model)")
    if "Si" not in meta.elements:
        raise SpecError(f"model {path} has elements {list(meta.elements)}, not Si; a silicon crack needs Si")
    lines, plugin = pair_lines(path)
    return Potential(str(path), tuple(lines), plugin, meta.cutoff * meta.hops,
                     f"{Path(path).name} (cutoff {meta.cutoff} Å x {meta.hops} hops)")


def check_potential(spec: dict, pot: Potential) -> None:
    """SpecError unless the shell is at least as thick as the potential's range."""
    if spec["boundary"] < pot.reach:
        raise SpecError(f"region spec: boundary = {spec['boundary']} Å is thinner than the potential's range "
                        f"{pot.reach:.2f} Å (cutoff x hops of {pot.description}); the interior would see "
                        f"the shell's missing neighbours; set boundary >= {pot.reach:.2f}")
