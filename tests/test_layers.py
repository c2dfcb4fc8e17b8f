"""The package's architecture, enforced: every import (module level or inside a function) goes
from a layer to the same or a lower one, there are no import cycles, and importing multiscale
loads none of the upper layers."""

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"multiscale": ROOT / "multiscale", "multiscale_openmm": ROOT / "openmm_plugin" / "multiscale_openmm"}

# lowest first; a module may import its own layer and the ones before it (ARCHITECTURE.md)
LAYERS = [
    ("multiscale", "multiscale.config", "multiscale.units", "multiscale.paths"),   # base
    ("multiscale.model",),        # the contract, model-file I/O, the registry of shipped files
    ("multiscale.quantum",),      # extended Hückel: STO overlaps, occupations, the eigenproblem
    ("multiscale.potentials",),   # models under the contract
    ("multiscale.engines",),      # marshal -> call -> scatter: ASE, LAMMPS, OpenMM
    ("multiscale.reference",),    # oracles, LAMMPS sampling, material properties
    ("multiscale.learning",),     # data, training, active learning, transfer
    ("multiscale.continuum",),    # LEFM, specimens, FE, K extraction
    ("multiscale.atomistic",),    # one crack-tip region in LAMMPS
    ("multiscale.fields",),       # the crack-field predictor (fine-tuned on atomistic regions)
    ("multiscale.coupling",),     # the MPI run
    ("multiscale.cli", "multiscale_openmm"),
]


def modules() -> dict[str, Path]:
    out = {}
    for name, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = [name, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def layer(module: str) -> int:
    best, rank = -1, None
    for k, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), k
    assert rank is not None, f"{module} is in no layer; add it to LAYERS"
    return rank


def imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the package modules it imports (relative imports resolved)."""
    graph = defaultdict(set)
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [module] + [f"{module}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in mods:
                    target = target.rsplit(".", 1)[0] if "." in target else ""
                if target and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def test_every_import_goes_down_the_layers():
    mods = modules()
    graph = imports(mods)
    upward = sorted(f"{a} ({layer(a)}) imports {b} ({layer(b)})"
                    for a, targets in graph.items() for b in targets if layer(b) > layer(a))
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_no_import_cycles():
    mods = modules()
    graph = imports(mods)
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for m in sorted(mods):
        if m not in index:
            visit(m)
    assert not cycles, f"import cycles: {cycles}"


def test_the_layer_test_sees_a_violation(tmp_path):
    """The check itself: a fake lower-layer module importing the MPI layer is caught."""
    graph = {"multiscale.model.fake": {"multiscale.coupling.coordinator"}}
    upward = [(a, b) for a, targets in graph.items() for b in targets if layer(b) > layer(a)]
    assert upward == [("multiscale.model.fake", "multiscale.coupling.coordinator")]


def test_import_multiscale_loads_no_upper_layer():
    code = ("import sys, multiscale\n"
            "multiscale.ModelMetadata\n"   # the model layer, on first use
            "print(sorted(m for m in sys.modules if m.startswith('multiscale')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = eval(out)
    assert "multiscale.model.contract" in loaded
    heavy = [m for m in loaded if m.split(".")[1:2] and m.split(".")[1] in
             ("coupling", "fields", "learning", "atomistic", "continuum", "reference")]
    assert not heavy, heavy


def test_lammps_launcher_does_not_import_torch():
    """``multiscale lmp`` execs LAMMPS at once: the launcher's module loads neither torch nor lammps."""
    code = "import sys, multiscale.engines.lammps\nprint('torch' in sys.modules, 'lammps' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
