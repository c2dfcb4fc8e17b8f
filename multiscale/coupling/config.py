"""Configuration of a coupled crack run (``multiscale run CONFIG.toml``), validated up front.

Every key, its type, default and unit is in docs/coupling.md; the embedded default is
``multiscale/data/crack_run.toml``.  Errors are :class:`ConfigError` naming the key and the fix.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomistic import spec as region_spec
from ..atomistic.green import minimum_outer
from ..config import ConfigError, parse_toml
from .continuum import MODELS as CONTINUUM_MODELS

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "data" / "crack_run.toml"

# key -> (type, default, check description or None); None default = required or "computed"
RUN_KEYS = {
    "output": (str, "results/crack"),          # folder, relative to the current directory
    "continuum": (str, "lefm"),
    "max_increments": (int, 200),              # mode "md": default enough for [md] duration
    "checkpoint_every": (int, 5),              # increments; 0 = never
    "timeout": (float, 600.0),                 # s, per exchange with a group
    "stop_after_advances": (int, 0),           # a region stops after this many advances; 0 = never
    "mode": (str, "ramp"),                     # "ramp" (fixed shell, K ramp), "trapping" (flexible
}                                              # boundaries) or "md" (MD at temperature under a K rate)
MODES = ("ramp", "trapping", "md")
MD_KEYS = region_spec.MD_KEYS                  # mode = "md": [md] (atomistic/thermal.py)
TRAPPING_KEYS = {                              # mode = "trapping": the continuation (atomistic/trapping.py)
    "length": (float, 4.0),                    # Å the tip advances (a lattice period is ~3.3 Å)
    "back": (float, 1.0),                      # Å traced backwards from the start (0 = none)
    "ds": (float, 0.05),                       # first arclength step (Å and K_unit K_G)
    "ds_max": (float, 0.1),
    "K_unit": (float, 1.0),                    # K_G: the arclength metric's unit of K
    "fmax": (float, 1e-5),                     # eV/Å on region I, and on tip_weight x the tip force
    "tip_weight": (float, 20.0),               # the tip force's weight in the corrector (trapping.trace)
    "far": (float, 8.0),                       # Å, the field-driven region III beyond region II
    "outer": (float, 80.0),                    # Å, the lattice Green's function's reservoir (0: the
}                                              # shell stays on the K-field; atomistic/green.py)
LOADING_KEYS = {
    "unit": (str, "K_G"),                      # unit of k_start, k_step, k_max
    "k_start": (float, 0.8),
    "k_step": (float, 0.02),
    "k_max": (float, 1.5),
    "advance_threshold": (float, 2.0),         # Å
}
ATOMISTIC_KEYS = region_spec.SPEC_KEYS       # a CrackRegion's spec, validated by the same module
CONTINUUM_KEYS = {                             # the specimen of continuum = "fem" / "predictor"
    "kind": (str, "sent"),                     # "sent" (edge crack) or "ccp" (centre crack, region at the right tip)
    "width": (float, 400.0),                   # Å
    "height": (float, 600.0),                  # Å
    "crack_length": (float, 160.0),            # Å; sent: edge crack length, ccp: half length
    "youngs_modulus": (float, None),           # GPa; None = isotropic equivalent of the potential (E' matched)
    "poisson_ratio": (float, None),            # None = Voigt average of the potential's constants
    "model": (str, None),                      # predictor only: file or shipped name; None = "crack-fields"
    "feedback": (bool, False),                 # fem only: the atoms act back on the specimen (coupling/schwarz.py)
    "hole": (float, None),                     # Å, the atoms' disc in the specimen; None = radius - boundary - 8
    "schwarz_tol": (float, 1e-4),              # Å, largest shell-displacement change at convergence
    "schwarz_iterations": (int, 60),           # per increment
}
FEEDBACK_FMAX = 1e-4                           # eV/Å: the atoms must converge below the Schwarz tolerance's scale
MIN_OVERLAP = 2.0                              # Å between the hole and the shell
REGION_KEYS = {"name": (str, None), "ranks": (int, 1)}
DEBUG_KEYS = {"region": (str, None), "inject_nan_at": (int, None), "hang_at": (int, None),
              "exit_at": (int, None)}
SECTIONS = {"run": RUN_KEYS, "loading": LOADING_KEYS, "atomistic": ATOMISTIC_KEYS,
            "continuum": CONTINUUM_KEYS, "region": None, "debug": DEBUG_KEYS, "trapping": TRAPPING_KEYS,
            "md": MD_KEYS}
K_UNITS = {"K_G": None, "GPa*sqrt(A)": 1.0, "MPa*sqrt(m)": 100.0}  # -> GPa sqrt(Å)
POSITIVE = {"timeout", "k_step", "k_max", "advance_threshold", "radius", "boundary", "width", "height",
            "crack_length", "youngs_modulus", "length", "ds", "ds_max", "K_unit", "far",
            "lattice_constant", "fmax", "max_iterations", "ranks", "stress_radius", "broken_bond",
            "timestep", "exchange_every", "duration", "damping", "layer", "hole", "schwarz_tol",
            "schwarz_iterations", "tip_weight"}
NON_NEGATIVE = {"back", "outer", "max_increments", "checkpoint_every", "stop_after_advances", "dump_every",
                "k_start", "inject_nan_at", "hang_at", "exit_at", "temperature", "k_rate", "seed"}


@dataclass
class RegionConfig:
    """One atomistic region: its name, MPI ranks, CrackRegion spec and loading parameters."""
    name: str
    ranks: int
    spec: dict[str, Any]          # CrackRegion spec; potential resolved to "sw" or a file path
    loading: dict[str, float]     # k_start, k_step, k_max (unit below), advance_threshold


@dataclass
class RunConfig:
    path: Path | None
    text: str
    output: Path
    continuum: str
    max_increments: int
    checkpoint_every: int
    timeout: float
    stop_after_advances: int
    k_unit: str
    regions: list[RegionConfig]
    debug: dict[str, Any] = field(default_factory=dict)
    specimen: dict[str, Any] = field(default_factory=dict)   # [continuum] with defaults; {} for "lefm"
    mode: str = "ramp"
    trapping: dict[str, float] = field(default_factory=dict)  # [trapping] with defaults (mode "trapping")
    md: dict[str, Any] = field(default_factory=dict)          # [md] with defaults (mode "md")

    @property
    def world_size(self) -> int:
        """Ranks needed for the parallel layout: rank 0 (continuum) + every region's ranks."""
        return 1 + sum(r.ranks for r in self.regions)


def _typed(where: str, key: str, value, kind):
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} {key} must be true or false, got {value!r}")
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ConfigError(f"{where} {key} must be a {kind.__name__}, got {value!r} "
                          f"({type(value).__name__}); e.g. {key} = {_example(kind)}")
    if kind is float and not math.isfinite(value):
        raise ConfigError(f"{where} {key} must be finite, got {value!r}")
    if key in POSITIVE and value <= 0:
        raise ConfigError(f"{where} {key} must be positive, got {value!r}")
    if key in NON_NEGATIVE and value < 0:
        raise ConfigError(f"{where} {key} must be >= 0, got {value!r}")
    return value


def _example(kind) -> str:
    return {int: "3", float: "1.5", str: '"text"'}[kind]


def _section(where: str, raw: dict, keys: dict, extra: dict | None = None) -> dict:
    allowed = {**keys, **(extra or {})}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table, e.g. {where}\\nkey = value")
    unknown = sorted(raw.keys() - allowed.keys())
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(allowed)}")
    return {k: _typed(where, k, v, allowed[k][0]) for k, v in raw.items()}


def resolve_potential(potential: str, base: Path | None, where: str = "potential") -> str:
    """``"sw"``, a shipped model's name (``multiscale models``) or a model file (relative to
    the config's folder) -> ``"sw"`` or an absolute model file path."""
    from ..model.registry import SHIPPED, model_path
    if potential == "sw":
        return "sw"
    if potential in SHIPPED:
        try:
            return str(model_path(potential))
        except FileNotFoundError as exc:
            raise ConfigError(f"{where} = {potential!r}: {exc}") from None
    path = Path(potential).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    if not path.is_file():
        raise ConfigError(f"{where} = {potential!r}: no such model file {path}; use \"sw\" (native "
                          f"Stillinger-Weber), a shipped model {sorted(SHIPPED)}, or the path of an "
                          f"exported model file (relative to the config's folder)")
    return str(path.resolve())


def _region_spec(spec: dict, where: str) -> dict:
    """The region's spec checked as CrackRegion checks it (geometry, minimiser, the potential's
    kind, elements and range) at validation time, not on a worker after the material step."""
    try:
        spec = region_spec.validate(spec)
        region_spec.check_potential(spec, region_spec.potential(spec["potential"]))
    except (region_spec.SpecError, FileNotFoundError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except Exception as exc:   # a model file that does not load
        raise ConfigError(f"{where}: potential {spec['potential']!r}: {exc}") from None
    return spec


def parse_config(text: str, path: Path | None = None, output: str | Path | None = None) -> RunConfig:
    """Validate a configuration's TOML ``text`` (read from ``path``, used for messages and
    relative model paths); ``output`` overrides [run] output."""
    name = str(path) if path else "configuration"
    raw = parse_toml(text, name)
    unknown = sorted(raw.keys() - SECTIONS.keys())
    if unknown:
        raise ConfigError(f"{name}: unknown section(s) {unknown}; known sections: {sorted(SECTIONS)}")
    base = path.resolve().parent if path else None
    run = {k: v[1] for k, v in RUN_KEYS.items()} | _section("[run]", raw.get("run", {}), RUN_KEYS)
    loading = {k: v[1] for k, v in LOADING_KEYS.items()} | _section(
        "[loading]", raw.get("loading", {}), LOADING_KEYS)
    atomistic = {k: v[1] for k, v in ATOMISTIC_KEYS.items()} | _section(
        "[atomistic]", raw.get("atomistic", {}), ATOMISTIC_KEYS)
    debug = _section("[debug]", raw.get("debug", {}), DEBUG_KEYS)
    if run["continuum"] not in CONTINUUM_MODELS:
        raise ConfigError(f"[run] continuum must be one of {list(CONTINUUM_MODELS)}, got {run['continuum']!r}")
    if loading["unit"] not in K_UNITS:
        raise ConfigError(f"[loading] unit must be one of {list(K_UNITS)}, got {loading['unit']!r}")
    trapping = _trapping(raw, run)
    md = _md(raw, run)
    if md and "max_increments" not in raw.get("run", {}):   # mode "md": [md] duration ends the run
        run["max_increments"] = math.ceil(md["duration"] * 1000.0 / (md["timestep"] * md["exchange_every"]) - 1e-9) + 1

    entries = raw.get("region")
    if not entries:
        raise ConfigError(f"{name}: no atomistic region; add at least one\n[[region]]\nname = \"tip\"")
    if not isinstance(entries, list):
        raise ConfigError(f"{name}: write regions as an array of tables, [[region]], not [region]")
    region_extra = {**ATOMISTIC_KEYS, **{k: v for k, v in LOADING_KEYS.items() if k != "unit"}}
    regions, names = [], set()
    for i, entry in enumerate(entries):
        where = f"[[region]] #{i + 1}"
        values = _section(where, entry, REGION_KEYS, region_extra)
        rname = values.get("name")
        if rname is None:
            raise ConfigError(f"{where} needs a name, e.g. name = \"tip{i + 1}\"")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", rname):
            raise ConfigError(f"{where} name {rname!r} may only use letters, digits, '_', '-', '.' "
                              "(it names the region's output folder)")
        if rname in names:
            raise ConfigError(f"{where}: region name {rname!r} is used twice; names must be unique")
        names.add(rname)
        spec = {k: values.get(k, atomistic[k]) for k in ATOMISTIC_KEYS}
        spec["potential"] = resolve_potential(spec["potential"], base, f"{where} ({rname}) potential")
        load = {k: values.get(k, loading[k]) for k in LOADING_KEYS if k != "unit"}
        if load["k_max"] < load["k_start"]:
            raise ConfigError(f"{where} ({rname}): k_max = {load['k_max']} is below k_start = "
                              f"{load['k_start']}; raise k_max")
        spec = _region_spec(spec, f"{where} ({rname})")
        regions.append(RegionConfig(rname, values.get("ranks", 1), spec, load))
    specimen = _specimen(raw, run["continuum"], regions)
    if specimen.get("feedback") and run["mode"] != "ramp":
        raise ConfigError(f'[continuum] feedback = true runs the quasi-static K ramp; [run] mode = "{run["mode"]}" '
                          'does not take it')
    for rc in regions:
        if trapping.get("outer"):
            reach = region_spec.potential(rc.spec["potential"]).reach
            needed = minimum_outer(rc.spec["radius"], reach, trapping["far"])
            if trapping["outer"] < needed:
                raise ConfigError(f"[trapping] outer = {trapping['outer']:g} Å must exceed region {rc.name}'s region III "
                                  f"by three cutoffs ({needed:.1f} Å: radius {rc.spec['radius']:g} + far "
                                  f"{trapping['far']:g} + 4 x {reach:.2f}); raise outer, or set 0 to keep the shell "
                                  "on the K-field")
        if md and md["layer"] > rc.spec["radius"] - rc.spec["boundary"] - region_spec.MIN_CORE:
            raise ConfigError(f"[md] layer = {md['layer']:g} Å leaves region {rc.name} (radius {rc.spec['radius']:g} Å, "
                              f"boundary {rc.spec['boundary']:g} Å) less than {region_spec.MIN_CORE:g} Å of NVE "
                              f"interior; thin the layer below "
                              f"{rc.spec['radius'] - rc.spec['boundary'] - region_spec.MIN_CORE:g} Å or enlarge radius")
    if debug:
        target = debug.setdefault("region", regions[0].name)
        if target not in names:
            raise ConfigError(f"[debug] region {target!r} is not a region; regions: {sorted(names)}")
    out = Path(output if output is not None else run["output"])
    return RunConfig(path=path, text=text, output=out, continuum=run["continuum"],
                     max_increments=run["max_increments"], checkpoint_every=run["checkpoint_every"],
                     timeout=run["timeout"], stop_after_advances=run["stop_after_advances"],
                     k_unit=loading["unit"], regions=regions, debug=debug, specimen=specimen,
                     mode=run["mode"], trapping=trapping, md=md)


def _trapping(raw: dict, run: dict) -> dict:
    """[trapping] with defaults for mode = "trapping"; {} (and no [trapping]) otherwise."""
    if run["mode"] not in MODES:
        raise ConfigError(f"[run] mode must be one of {list(MODES)}, got {run['mode']!r}")
    if run["mode"] != "trapping":
        if "trapping" in raw:
            raise ConfigError('[trapping] configures mode = "trapping" (flexible boundaries, the lattice-trapping '
                              'curve); this run is mode = "ramp": remove [trapping] or set [run] mode = "trapping"')
        return {}
    if run["continuum"] != "lefm":
        raise ConfigError(f'[run] mode = "trapping" traces the crack under the near-tip K-field: it needs '
                          f'continuum = "lefm", got {run["continuum"]!r}')
    out = {k: v[1] for k, v in TRAPPING_KEYS.items()} | _section("[trapping]", raw.get("trapping", {}),
                                                                   TRAPPING_KEYS)
    if out["ds_max"] < out["ds"]:
        raise ConfigError(f"[trapping] ds_max = {out['ds_max']} is below ds = {out['ds']}; raise ds_max")
    return out


def _md(raw: dict, run: dict) -> dict:
    """[md] with defaults for mode = "md"; {} (and no [md]) otherwise."""
    if run["mode"] != "md":
        if "md" in raw:
            raise ConfigError(f'[md] configures mode = "md" (MD at temperature); this run is mode = "{run["mode"]}": '
                              'remove [md] or set [run] mode = "md"')
        return {}
    out = {k: v[1] for k, v in MD_KEYS.items()} | _section("[md]", raw.get("md", {}), MD_KEYS)
    if out["timestep"] > region_spec.MAX_TIMESTEP:
        raise ConfigError(f"[md] timestep = {out['timestep']:g} fs is too long for silicon (its fastest vibration "
                          f"takes about 65 fs); use 1-2 fs (at most {region_spec.MAX_TIMESTEP:g})")
    if out["seed"] >= 2 ** 63:
        raise ConfigError(f"[md] seed must be below 2**63, got {out['seed']}")
    return out


def _specimen(raw: dict, continuum: str, regions: list[RegionConfig]) -> dict:
    """The [continuum] table with defaults, checked against every region's disc (and, for the
    predictor, its training range); {} for "lefm", which has no specimen."""
    if continuum == "lefm":
        if "continuum" in raw:
            raise ConfigError('[continuum] describes the specimen of continuum = "fem" or "predictor"; '
                              'continuum = "lefm" (the near-tip K-field) has none: remove [continuum] '
                              'or set [run] continuum = "fem"')
        return {}
    from ..continuum.specimen import KINDS, Specimen
    sp = {k: v[1] for k, v in CONTINUUM_KEYS.items()} | _section(
        "[continuum]", raw.get("continuum", {}), CONTINUUM_KEYS)
    if sp["kind"] not in KINDS:
        raise ConfigError(f"[continuum] kind must be one of {list(KINDS)}, got {sp['kind']!r}")
    W, H, a = sp["width"], sp["height"], sp["crack_length"]
    nu = sp["poisson_ratio"]
    if sp["model"] is not None and continuum != "predictor":
        raise ConfigError(f'[continuum] model = {sp["model"]!r} names a field predictor, used only with '
                          f'[run] continuum = "predictor" (this run uses "{continuum}"); remove it')
    domain = _predictor_domain(sp["model"]) if continuum == "predictor" else None
    if nu is not None and not -1.0 < nu < 0.5:
        raise ConfigError(f"[continuum] poisson_ratio must lie in (-1, 0.5), got {nu}")
    _feedback(sp, continuum, regions)
    tip_x = a if sp["kind"] == "sent" else W / 2 + a
    for rc in regions:
        R, where = rc.spec["radius"], f"[continuum] with region {rc.name} (radius = {rc.spec['radius']:g} Å)"
        if a <= R:
            raise ConfigError(f"{where}: crack_length = {a:g} Å is shorter than the region's radius; "
                              f"the disc would reach past the crack's start; make crack_length > {R:g} Å")
        if tip_x + R >= W or R >= H / 2:
            raise ConfigError(f"{where}: the region's disc around the tip ({tip_x:g}, 0) is not inside the "
                              f"{W:g} x {H:g} Å specimen; enlarge width/height or shorten crack_length")
        try:   # the crack may grow by up to the region's radius during the run
            Specimen(sp["kind"], W, H, a + R, 0.0, 1.0, sp["youngs_modulus"] or 150.0, nu or 0.25)
        except ValueError as exc:
            raise ConfigError(f"{where}: the crack grown by the region's radius is impossible: {exc}") from None
        if domain:
            lo, hi = domain[sp["kind"]]
            alo, ahi = domain["aspect"]
            if not (lo <= a / W and (a + R) / W <= hi and alo <= H / W <= ahi):
                raise ConfigError(f"{where}: the predictor was trained for crack_length/width in [{lo}, {hi}] "
                                  f"({sp['kind']}) and height/width in [{alo}, {ahi}]; this specimen has "
                                  f"{a / W:.3f}-{(a + R) / W:.3f} (crack growth by the radius included) and "
                                  f"{H / W:.3f}; change the specimen or use continuum = \"fem\"")
    return sp


def _feedback(sp: dict, continuum: str, regions: list[RegionConfig]) -> None:
    """[continuum] feedback: only with "fem"; each region's hole (default filled in per region
    as radius - boundary - 8 Å) inside its interior with an overlap, atoms relaxed finely."""
    given = {k for k in ("hole", "schwarz_tol", "schwarz_iterations") if sp[k] != CONTINUUM_KEYS[k][1]}
    if not sp["feedback"]:
        if given:
            raise ConfigError(f"[continuum] {', '.join(sorted(given))} configure feedback = true (atoms acting "
                              "back on the specimen); set it or remove them")
        return
    if continuum != "fem":
        raise ConfigError(f'[continuum] feedback = true iterates the atoms with the finite-element specimen: it needs '
                          f'[run] continuum = "fem", got {continuum!r}')
    for rc in regions:
        inner = rc.spec["radius"] - rc.spec["boundary"]
        hole = sp["hole"] if sp["hole"] is not None else inner - 8.0
        if not 6.0 <= hole <= inner - MIN_OVERLAP:
            raise ConfigError(f"[continuum] hole = {hole:g} Å for region {rc.name}: the atoms' disc in the specimen "
                              f"must lie in [6, {inner - MIN_OVERLAP:g}] Å (inside the region's interior of "
                              f"{inner:g} Å, {MIN_OVERLAP:g} Å of overlap with the shell); enlarge radius or set hole")
        if rc.spec["fmax"] > FEEDBACK_FMAX:
            raise ConfigError(f"region {rc.name}: fmax = {rc.spec['fmax']:g} eV/Å is too coarse for feedback (the "
                              f"Schwarz iteration converges only as far as the atoms do); set fmax <= {FEEDBACK_FMAX:g}, "
                              "e.g. 1e-5")


def _predictor_domain(model: str | None) -> dict | None:
    """The training domain (``training.domain`` of the file's metadata) of the predictor
    ``model`` (a file or a shipped name; None = "crack-fields"); ConfigError if it is not a
    crack-field predictor.  None if the file does not record one."""
    from ..model import ModelContractError, load, resolve
    from ..model.registry import SHIPPED
    name = model or "crack-fields"
    path = resolve(name)
    if not path.is_file():
        raise ConfigError(f"[continuum] model {name!r} is neither a shipped field predictor "
                          f"({sorted(SHIPPED)}) nor an existing file")
    try:
        meta = load(path).metadata
    except ModelContractError as exc:
        raise ConfigError(f"[continuum] model {name!r}: {exc}") from None
    if getattr(meta, "kind", "potential") != "field":
        raise ConfigError(f"[continuum] model {name!r} is an interatomic potential, not a crack-field "
                          "predictor; potentials go in [atomistic] potential, predictors here "
                          "(e.g. \"crack-fields\")")
    return meta.training.get("domain")


def read_config(path: str | Path | None = None, output: str | Path | None = None) -> RunConfig:
    """Read and validate a run configuration; ``None`` = the embedded default."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    if not path.is_file():
        raise ConfigError(f"configuration {path} does not exist")
    return parse_config(path.read_text(), path, output)


def check_world_size(config: RunConfig, size: int) -> None:
    """Rank layout: 1 rank runs everything in turn, else rank 0 + each region's ``ranks``."""
    if size != 1 and size != config.world_size:
        layout = " + ".join(f"{r.ranks} ({r.name})" for r in config.regions)
        raise ConfigError(f"{size} MPI ranks do not fit the regions' layout: 1 (continuum) + {layout} = "
                          f"{config.world_size}; run `mpiexec -n {config.world_size} multiscale run ...` "
                          f"(or -n 1 to run every region in turn on one rank), or change the regions' ranks")
