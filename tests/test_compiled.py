"""Compiled model files (.pt2, torch.export + AOTInductor) give what their TorchScript .pt gives,
in ASE, LAMMPS on 1/2/4 ranks and OpenMM; bad .pt2 files are refused in every engine."""

import json
import subprocess
import sys
import zipfile
from dataclasses import replace

import numpy as np
import pytest
import torch
from ase.build import bulk

import multiscale
from lmp_runs import relative, run, run_ok, skewed_cell as cell
from multiscale.model.compiler import compile_file
from multiscale.model.contract import ModelContractError
from multiscale.model.registry import model_path
from multiscale.potentials import MessagePassingPotential
from multiscale.potentials.stillinger_weber import StillingerWeber

FLOAT64, FLOAT32 = 1e-10, 1e-5


@pytest.fixture(scope="module")
def models(model_dir, si_sw_file):
    """name -> (TorchScript .pt, compiled .pt2): si-ani (ANI ensemble, compiled from the shipped
    file), SW (three-body, ghost energies tallied), a two-hop message-passing model on Si and C
    (compiled from Python) and SW in float32."""
    out = {"si-ani": (model_path("si-ani"), compile_file("si-ani", model_dir / "si_ani.pt2"))}
    for name, dtype in (("sw", "float64"), ("sw32", "float32")):
        sw = StillingerWeber(si_sw_file, ["Si"])
        pt = multiscale.export(sw, model_dir / f"{name}.pt", metadata=replace(sw.metadata(), dtype=dtype))
        out[name] = (pt, compile_file(pt, model_dir / f"{name}.pt2"))
    mp = MessagePassingPotential(["Si", "C"], cutoff=3.6, hops=2, features=16, seed=3)
    out["mp"] = (multiscale.export(mp, model_dir / "mp.pt"), multiscale.export(mp, model_dir / "mp.pt2"))
    return out


def tolerance(name):
    return FLOAT32 if name.endswith("32") else FLOAT64


def silicon_carbide(seed=3):
    atoms = bulk("Si", "diamond", 5.43, cubic=True).repeat(2)
    atoms.rattle(0.1, seed=seed)
    atoms.symbols[::5] = "C"
    return atoms


@pytest.mark.parametrize("name", ["si-ani", "sw", "sw32", "mp"])
def test_ase_energy_forces_and_stresses_equal_torchscript(models, name):
    atoms = silicon_carbide() if name == "mp" else bulk("Si", "diamond", 5.43, cubic=True).repeat(2)
    atoms.rattle(0.1, seed=5)
    results = []
    for path in models[name]:
        atoms.calc = multiscale.MultiscaleCalculator(path)
        results.append((atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(),
                        atoms.get_stresses()))
    (e_pt, *rest_pt), (e_pt2, *rest_pt2) = results
    assert e_pt2 == pytest.approx(e_pt, rel=tolerance(name))
    for a, b in zip(rest_pt2, rest_pt):
        assert relative(a, b) <= tolerance(name)
    assert np.abs(rest_pt[0]).max() > 1e-3         # forces that can disagree


@pytest.mark.mpi
@pytest.mark.parametrize("name,ranks", [("si-ani", 1), ("si-ani", 4), ("sw", 2), ("sw32", 2), ("mp", 1),
                                        ("mp", 2), ("mp", 4)])
def test_lammps_pt2_on_n_ranks_equals_pt_on_one(tmp_path, models, name, ranks):
    """Energies, forces, per-atom energies and per-atom stresses of the .pt2 on N ranks against
    the .pt on one rank (the .pt's own N-rank equality is tested elsewhere)."""
    elements = "Si C" if name == "mp" else "Si Si"
    pt, pt2 = models[name]
    one = run_ok(cell(pt, elements), tmp_path / "pt")
    many = run_ok(cell(pt2, elements), tmp_path / "pt2", ranks=ranks)
    tol = tolerance(name)
    assert many["pe"] == pytest.approx(one["pe"], rel=tol)
    for key in ("forces", "energies", "stresses", "pressure"):
        assert relative(many[key], one[key]) <= tol * 10 if name.endswith("32") else tol, key


def test_openmm_pt2_equals_torchforce(models):
    import copy

    import openmm
    from openmm_systems import single_point, system_of, topology_of
    from multiscale.engines.openmm.force import create_force

    atoms = silicon_carbide()
    top = topology_of(atoms)
    (e_pt, f_pt), (e_pt2, f_pt2) = [single_point(system_of(top, create_force(p, top)), atoms.positions)
                                    for p in models["mp"]]
    assert e_pt2 == pytest.approx(e_pt, rel=FLOAT64)
    assert relative(f_pt2, f_pt) <= FLOAT64
    force = create_force(models["mp"][1], top)
    assert isinstance(force, openmm.PythonForce)      # openmm-torch 1.5 runs only TorchScript
    twin = copy.deepcopy(system_of(top, force))       # the package travels by its path
    assert single_point(twin, atoms.positions)[0] == pytest.approx(e_pt, rel=FLOAT64)


def forged(path, tmp_path, **changes):
    """A copy of package ``path`` whose multiscale.compiled record says ``changes``."""
    out = tmp_path / f"forged_{'_'.join(changes)}.pt2"
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("_metadata.json") and b"multiscale.compiled" in data:
                stored = json.loads(data)
                stored["multiscale.compiled"] = json.dumps({**json.loads(stored["multiscale.compiled"]), **changes})
                data = json.dumps(stored).encode()
            zout.writestr(item, data)
    return out


@pytest.fixture(scope="module")
def bad_packages(models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad_pt2")
    good = models["sw"][1]
    corrupt = folder / "corrupt.pt2"
    corrupt.write_bytes(good.read_bytes()[:50_000])
    return {
        "corrupt": (corrupt, "is not a torch.export package (corrupt or wrong file)",
                    "could not be loaded (Failed to initialize zip archive"),
        "other torch": (forged(good, folder, torch="2.8.0"), "was built with torch 2.8.0",
                        "was built with torch 2.8.0, and this plugin runs torch"),
        "cuda": (forged(good, folder, device="cuda"),
                 "was compiled for cuda: device 'cuda' asked for, but torch sees no CUDA GPU",
                 "was compiled for cuda and cannot run on cpu: add `device cuda` to the pair_style line"),
    }


@pytest.mark.parametrize("case", ["corrupt", "other torch", "cuda"])
def test_bad_package_is_refused_in_python_engines(bad_packages, case):
    if case == "cuda" and torch.cuda.is_available():
        pytest.skip("a package forged to say cuda is refused only where there is no GPU")
    path, python_words, _ = bad_packages[case]
    with pytest.raises(ModelContractError, match=python_words.replace("(", r"\(").replace(")", r"\)")):
        multiscale.MultiscaleCalculator(path)
    from openmm_systems import topology_of
    from multiscale.engines.openmm.force import create_force
    with pytest.raises(ModelContractError, match="recompile"):
        create_force(path, topology_of(bulk("Si", "diamond", 5.43, cubic=True)))


@pytest.mark.mpi
@pytest.mark.parametrize("case", ["corrupt", "other torch", "cuda"])
def test_bad_package_is_refused_in_lammps(tmp_path, bad_packages, case):
    from test_lammps_errors import assert_lammps_error
    if case == "cuda" and torch.cuda.is_available():
        pytest.skip("a package forged to say cuda is refused only where there is no GPU")
    path, _, lammps_words = bad_packages[case]
    assert_lammps_error(run(cell(path, "Si Si"), tmp_path), lammps_words)


@pytest.mark.mpi
def test_lammps_dtype_keyword_cannot_recast_a_package(tmp_path, models):
    from test_lammps_errors import assert_lammps_error
    proc = run(cell(f"{models['sw'][1]} dtype float32", "Si Si"), tmp_path)
    assert_lammps_error(proc, "computes in float64, not float32: a .pt2 is compiled for one dtype")


@pytest.mark.parametrize("name,why", [
    ("ehm-chno", "its energy couples the whole system"),
    ("aimnet-chno", "it needs per-system sums mid-forward (reductions)"),
])
def test_models_that_cannot_compile_say_why(tmp_path, name, why):
    proc = subprocess.run([sys.executable, "-m", "multiscale.cli", "compile", name, "-o", str(tmp_path / "x.pt2")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and why in proc.stderr, proc.stderr
    assert not (tmp_path / "x.pt2").exists()


def test_package_differentiates_only_the_energy_sum(models):
    """What engines take (the sum) has the package's gradient; per-atom gradients are refused
    rather than silently wrong."""
    loaded = multiscale.load(models["sw"][1])
    from multiscale.model.compiled import sample_system
    local, ghost, index, vectors = sample_system(loaded.metadata, 6, 0, seed=2, dtype=torch.float64)
    vectors.requires_grad_(True)
    energies = loaded.module(torch.cat([local, ghost]), index, vectors, 6)["energies"]
    (grad,) = torch.autograd.grad(2.0 * energies.sum(), vectors, retain_graph=True)
    reference = multiscale.load(models["sw"][0]).module(torch.cat([local, ghost]), index, vectors, 6)["energies"]
    (want,) = torch.autograd.grad(2.0 * reference.sum(), vectors)
    assert relative(grad, want) <= FLOAT64
    with pytest.raises(RuntimeError, match="only the sum of its energies"):
        torch.autograd.grad(energies[0], vectors)
    with pytest.raises(ModelContractError, match="has no member_energies"):
        loaded.module.member_energies


def test_info_reports_what_a_package_was_compiled_for(models):
    proc = subprocess.run([sys.executable, "-m", "multiscale.cli", "info", str(models["si-ani"][1])],
                          capture_output=True, text=True, check=True)
    info = json.loads(proc.stdout)
    assert info["compiled"]["device"] == "cpu" and info["compiled"]["torch"] == torch.__version__
    assert info["elements"] == ["Si"] and info["name"] == multiscale.load("si-ani").metadata.name
