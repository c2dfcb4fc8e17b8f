"""Material properties computed in LAMMPS (multiscale.reference.properties), checked against closed forms
for Stillinger-Weber silicon and against the same computation through the plugin."""

import math

import pytest

import multiscale
from multiscale.reference import properties
from multiscale.engines.lammps import pair_lines
from multiscale.potentials import StillingerWeber

SW_LINES = pair_lines("sw")[0]   # native Stillinger-Weber (LAMMPS Si.sw)

SW_EPSILON = 2.1683  # eV, Si.sw: the energy of one bond at the diamond nearest-neighbour distance
SW_A = 5.430949  # Å: SW's diamond minimum (sigma 2.0951 Å x 2^(1/6) x 4/sqrt(3))


@pytest.fixture(scope="module")
def sw_a():
    return properties.lattice_constant(SW_LINES)


def test_lattice_constant(sw_a):
    assert sw_a == pytest.approx(SW_A, rel=2e-6)


@pytest.mark.parametrize("surface, bonds_per_area", [
    ("111", lambda a: 1 / (a * a * math.sqrt(3) / 4)),   # shuffle plane: one bond per surface atom
    ("110", lambda a: 1 / (a * a * math.sqrt(2) / 4)),   # one bond per surface atom
    ("100", lambda a: 2 / (a * a / 2)),                  # two bonds per surface atom
])
def test_unrelaxed_surface_energy_counts_broken_bonds(sw_a, surface, bonds_per_area):
    # In SW, all three-body terms vanish at tetrahedral angles, so an ideal cut costs epsilon
    # per broken bond, shared by the two surfaces it creates.
    expected = bonds_per_area(sw_a) * SW_EPSILON / 2 * properties.EV_PER_A2_TO_J_PER_M2
    gamma = properties.surface_energy(SW_LINES, sw_a, surface, relax=False)
    assert gamma == pytest.approx(expected, rel=1e-6)
    assert properties.surface_energy(SW_LINES, sw_a, surface) <= gamma + 1e-9


def test_elastic_constants_and_plugin_agree(sw_a, si_sw_file, tmp_path):
    # SW silicon: C11 151.4, C12 76.4, C44 (internal relaxation included) 56.4 GPa
    native = properties.elastic_constants(SW_LINES, sw_a)
    assert native["C11"] == pytest.approx(151.4, abs=0.2)
    assert native["C12"] == pytest.approx(76.4, abs=0.2)
    assert native["C44"] == pytest.approx(56.4, abs=0.2)
    model = multiscale.export(StillingerWeber(si_sw_file, ["Si"]), tmp_path / "sw.pt")
    lines = [f"pair_style multiscale {model}", "pair_coeff * * Si"]
    ours = properties.elastic_constants(lines, sw_a, plugin=True)
    for k in native:
        assert ours[k] == pytest.approx(native[k], rel=1e-6)
    assert properties.surface_energy(lines, sw_a, "111", plugin=True) == pytest.approx(
        properties.surface_energy(SW_LINES, sw_a, "111"), rel=1e-8)


def test_material_is_computed_once_per_model_file_and_cached(tmp_path, monkeypatch):
    """The SW model through the plugin: computed once (progress lines), then read from the cache
    (logged) by a fresh process state; the constants equal native SW's shipped ones."""
    import multiscale
    from multiscale.reference import material as mat_module
    monkeypatch.setenv("MULTISCALE_CACHE", str(tmp_path / "cache"))
    model = multiscale.export(StillingerWeber("Si.sw", ["Si"]), tmp_path / "sw.pt")
    lines = []
    first = mat_module.material(model, log=lines.append)
    assert any("elastic constants" in line for line in lines) and any("cached in" in line for line in lines)
    assert len(list((tmp_path / "cache" / "materials").glob("*.json"))) == 1
    mat_module._MEMORY.clear()                            # as a new run would start
    lines.clear()
    again = mat_module.material(model, log=lines.append)
    assert again == first and any("from the cache" in line for line in lines), lines
    native = mat_module.material("sw", log=lambda _m: None)
    for k, v in native.as_dict().items():
        assert getattr(first, k) == pytest.approx(v, rel=1e-8), k
