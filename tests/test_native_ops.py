"""The native ANI AEV operators (ops/ani_aev.cpp) against the torch path they replace.

The torch modules (RadialTerms, AngularTerms) are the reference: they equal torchani
(test_ani.py).  The native ones must give the same AEVs and the same gradients, in float64 to
rounding and in float32 to its precision, for ANI-1x/2x parameters, parameters that take the
other code paths (a non-integer zeta, unevenly spaced shifts), ghosts, and empty inputs; refuse
a second derivative and bad indices with a clear error; and leave training on the torch path.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import multiscale
from multiscale.model import native_ops
from multiscale.potentials import AEVComputer, AEVParameters, ANIModel
from multiscale.potentials.aev import FusedAngularTerms, FusedRadialTerms

from test_ani import edges_of, random_structure


PARAMETERS = {
    "ani1x": (AEVParameters.ani1x(), 4),
    "ani2x": (AEVParameters.ani2x(), 7),
    # zeta 1 (whole, no squaring), uneven radial and angular shifts (no shared spacing)
    "uneven": (AEVParameters(Rcr=5.0, Rca=4.0, EtaR=10.0, ShfR=(0.8, 1.0, 1.7, 2.9, 4.1), EtaA=6.0,
                             Zeta=1.0, ShfA=(0.9, 1.3, 2.6), ShfZ=(0.3, 1.9, 2.8)), 3),
    # a non-integer zeta with long cutoffs, as silicon models use
    "silicon": (AEVParameters.evenly(Rcr=6.0, Rca=4.5, EtaR=8.0, n_radial=12, EtaA=4.0, Zeta=7.3,
                                     n_angular=4, n_sections=6, start=1.5), 1),
}


def test_the_library_is_built_and_registers_the_operators():
    """`make install` builds libmultiscale_ops.so; a missing one fails here, not as skips."""
    assert native_ops.load(), f"{native_ops.LIBRARY} is not built: run `make install`"
    for op in ("ani_radial", "ani_angular", "ani_networks"):
        assert hasattr(torch.ops.multiscale, op)


def system(n_elements: int, n: int = 40, box: float = 7.0, seed: int = 5):
    positions, species = random_structure(seed, n, n_elements, box)
    edge_index, vectors = edges_of(positions, None, 6.0)
    return torch.as_tensor(species), edge_index, vectors


def aev_and_gradient(aev: AEVComputer, species, edge_index, vectors, n_local, weights):
    v = vectors.detach().requires_grad_(True)
    out = aev(species, edge_index, v, n_local)
    (grad,) = torch.autograd.grad((out * weights).sum(), v)
    return out.detach(), grad


@pytest.mark.parametrize("name", sorted(PARAMETERS))
@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
@pytest.mark.parametrize("n_local", [40, 25])
def test_native_aev_and_gradient_equal_the_torch_path(name, dtype, rtol, n_local):
    params, n_elements = PARAMETERS[name]
    torch_aev = AEVComputer(params, n_elements)
    native = native_ops.fuse(torch_aev)
    assert isinstance(native.radial, FusedRadialTerms) and isinstance(native.angular, FusedAngularTerms)
    assert not isinstance(torch_aev.angular, FusedAngularTerms)   # fuse() works on a copy
    species, edge_index, vectors = system(n_elements)
    vectors = vectors.to(dtype)
    weights = torch.randn(n_local, torch_aev.length, generator=torch.Generator().manual_seed(1), dtype=dtype)
    expected, expected_grad = aev_and_gradient(torch_aev, species, edge_index, vectors, n_local, weights)
    got, grad = aev_and_gradient(torch.jit.script(native), species, edge_index, vectors, n_local, weights)
    assert expected.abs().max() > 0.1 and expected_grad.abs().max() > 0.01
    scale = expected.abs().max()
    assert (got - expected).abs().max() <= rtol * scale
    assert (grad - expected_grad).abs().max() <= rtol * expected_grad.abs().max()


def test_float64_gradient_is_the_finite_difference():
    """The native backward on its own: central differences of the native forward."""
    params, n_elements = PARAMETERS["ani2x"]
    native = native_ops.fuse(AEVComputer(params, n_elements))
    species, edge_index, vectors = system(n_elements, n=14, box=4.5)
    weights = torch.randn(14, native.length, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    _, grad = aev_and_gradient(native, species, edge_index, vectors, 14, weights)
    h = 1e-6
    for edge in (0, 7, len(vectors) // 2):
        for x in range(3):
            step = torch.zeros_like(vectors)
            step[edge, x] = h
            up = (native(species, edge_index, vectors + step, 14) * weights).sum()
            down = (native(species, edge_index, vectors - step, 14) * weights).sum()
            assert float((up - down) / (2 * h)) == pytest.approx(float(grad[edge, x]), rel=1e-6, abs=1e-8)


def test_no_edges_and_no_atoms():
    native = native_ops.fuse(AEVComputer(*PARAMETERS["ani1x"]))
    vectors = torch.zeros((0, 3), dtype=torch.float64, requires_grad=True)
    out = native(torch.tensor([0, 1]), torch.zeros((2, 0), dtype=torch.long), vectors, 2)
    assert out.shape == (2, native.length) and float(out.detach().abs().sum()) == 0.0
    assert native(torch.zeros(0, dtype=torch.long), torch.zeros((2, 0), dtype=torch.long),
                  vectors, 0).shape == (0, native.length)


def test_second_derivative_is_refused_with_the_way_out():
    native = native_ops.fuse(AEVComputer(*PARAMETERS["ani1x"]))
    species, edge_index, vectors = system(4, n=12, box=4.0)
    v = vectors.detach().requires_grad_(True)
    with pytest.raises(RuntimeError, match="no second derivative.*train the Python model"):
        torch.autograd.grad(native(species, edge_index, v, 12).sum(), v, create_graph=True)


def test_bad_indices_are_errors_not_crashes():
    v = torch.randn(4, 3, dtype=torch.float64)
    with pytest.raises(RuntimeError, match=r"ani_radial: row\[2\] = 9 is outside \[0, 3\)"):
        torch.ops.multiscale.ani_radial(v, torch.tensor([0, 1, 9, 2]), 3, 5.0, 16.0, [1.0, 2.0])
    pair_index = torch.tensor([[0, 1], [1, 2]])
    with pytest.raises(RuntimeError, match=r"ani_angular: species\[0\] = 5 is outside \[0, 2\)"):
        torch.ops.multiscale.ani_angular(v, torch.zeros(4, dtype=torch.long), torch.tensor([5, 0, 1, 0]),
                                         pair_index, 1, 3.5, 8.0, 32.0, [1.0], [0.5])
    with pytest.raises(RuntimeError, match="float32 or float64"):
        torch.ops.multiscale.ani_radial(v.half(), torch.zeros(4, dtype=torch.long), 1, 5.0, 16.0, [1.0])


def test_training_keeps_the_torch_path_and_export_can_too(tmp_path):
    """The Python model trains with forces in the loss (second derivatives); its default file
    uses the native operators, a native=False file none."""
    model = ANIModel.like_ani1x(seed=3).double()
    species, edge_index, vectors = system(4, n=12, box=4.0)
    v = vectors.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(species, edge_index, v, 12)["energies"].sum(), v, create_graph=True)
    grad.pow(2).sum().backward()
    assert next(model.parameters()).grad is not None
    native_file = multiscale.load(multiscale.export(model, tmp_path / "native.pt"))
    plain_file = multiscale.load(multiscale.export(model, tmp_path / "plain.pt", native=False))
    assert "ani_angular(" in native_file.module.aev.angular.code
    assert "ani_" not in plain_file.module.aev.angular.code + plain_file.module.aev.radial.code
    args = (species, edge_index, vectors, 12, 0.0, 1)
    np.testing.assert_allclose(native_file.module(*args)["energies"].detach(),
                               plain_file.module(*args)["energies"].detach(), rtol=1e-12)


def test_file_needing_unbuilt_operators_says_how_to_build_them(tmp_path):
    path = multiscale.export(ANIModel.like_ani1x(seed=3).double(), tmp_path / "native.pt")
    probe = ("from pathlib import Path\n"
             "from multiscale.model import native_ops\n"
             "native_ops.LIBRARY = Path('/nonexistent/libmultiscale_ops.so')\n"
             "import multiscale\n"
             f"multiscale.load({str(path)!r})\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode != 0
    assert "uses multiscale's native operators, which are not built" in done.stderr
    assert "make install" in done.stderr and "ModelContractError" in done.stderr


def test_old_files_are_rebuilt_with_the_native_operators():
    """A file written before the AEV's terms were submodules (si-ani as shipped until these
    operators, kept in tests/data) is rebuilt for compiling (unscript's upgrade) with them."""
    from pathlib import Path

    from multiscale.model.unscript import unscript
    old = multiscale.load(Path(__file__).parent / "data" / "si_ani_torch_aev.pt")
    assert not hasattr(old.module.aev, "radial")   # written by the earlier AEVComputer
    rebuilt = native_ops.fuse(unscript(old.module))
    species, edge_index, vectors = system(1, n=30, box=6.0)
    args = (species, edge_index, vectors, 30, 0.0, 1)
    expected = old.module(*args)["energies"]
    np.testing.assert_allclose(rebuilt(*args)["energies"].detach(), expected.detach(), rtol=1e-12)
    assert isinstance(rebuilt.aev.angular, FusedAngularTerms)
    # the shipped si-ani is now that file re-exported: the same energies
    shipped = multiscale.load("si-ani").module
    assert shipped.original_name == "ANIInference"
    np.testing.assert_allclose(shipped(*args)["energies"].detach(), expected.detach(), rtol=1e-12)


# -- the inference form of the element networks (potentials/stacked.py, ops/ani_networks.cpp) --

def ensemble(kind: str = "ani2x", members: int = 3):
    from multiscale.potentials import ANIEnsemble
    make = ANIModel.like_ani2x if kind == "ani2x" else ANIModel.like_ani1x
    return ANIEnsemble([make(seed=k) for k in range(members)]).double()


def test_stacked_ensemble_equals_its_members_and_differentiates_exactly(tmp_path):
    """The exported ensemble (stacked members, live columns, native networks) gives each
    member's energies; its forces are the central differences of its own energies."""
    from multiscale.potentials.stacked import ANIInference
    model = ensemble()
    assert isinstance(native_ops.fuse(model), ANIInference)
    loaded = multiscale.load(multiscale.export(model, tmp_path / "ens.pt"))
    positions, species = random_structure(11, 24, 3, 5.0)    # H, C, N only: S, F, Cl columns skipped
    species = torch.as_tensor(species)
    edge_index, vectors = edges_of(positions, None, model.cutoff)
    assert loaded.module.aev.live_columns(species).shape[0] == 3 * 16 + 6 * 32
    np.testing.assert_allclose(loaded.module.member_energies(species, edge_index, vectors, 24).detach(),
                               model.member_energies(species, edge_index, vectors, 24).detach(), rtol=1e-12)
    v = vectors.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(loaded.module(species, edge_index, v, 24, 0.0, 1)["energies"].sum(), v)
    h = 1e-5
    for edge in (0, len(vectors) // 3):
        for x in range(3):
            step = torch.zeros_like(vectors)
            step[edge, x] = h
            up = float(loaded.module(species, edge_index, vectors + step, 24, 0.0, 1)["energies"].sum())
            down = float(loaded.module(species, edge_index, vectors - step, 24, 0.0, 1)["energies"].sum())
            assert (up - down) / (2 * h) == pytest.approx(float(grad[edge, x]), rel=1e-7, abs=1e-9)


@pytest.mark.parametrize("dtype, rtol, atol", [(torch.float64, 1e-12, 1e-13), (torch.float32, 2e-6, 2e-6)])
def test_native_networks_slope_is_celus_exact_derivative(dtype, rtol, atol):
    """torch's own CELU backward rounds 1/alpha to float32; the native one is exact.  Widths
    63 and 19 take every path of the CELU: 16- and 8-wide vectors and the scalar tail."""
    native_ops.load()
    torch.manual_seed(0)
    M, n, L, h1, h2 = 3, 6, 9, 21, 19
    x = torch.randn(n, L, dtype=dtype, requires_grad=True)
    w1, b1 = torch.randn(M * h1, L, dtype=dtype), torch.randn(M * h1, dtype=dtype)
    weights = [torch.randn(M, h1, h2, dtype=dtype) / 4, torch.randn(M, h2, 1, dtype=dtype)]
    biases = [torch.randn(M, 1, h2, dtype=dtype), torch.randn(M, 1, 1, dtype=dtype)]

    def celu(z):   # written out, so autograd differentiates exp exactly
        return torch.where(z > 0, z, 0.1 * (torch.exp(torch.clamp(z, max=0.0) / 0.1) - 1.0))

    def reference(x):
        h = celu(x @ w1.t() + b1).view(n, M, h1).transpose(0, 1)
        h = celu(torch.baddbmm(biases[0], h, weights[0]))
        return torch.baddbmm(biases[1], h, weights[1]).squeeze(2)

    out = torch.ops.multiscale.ani_networks(x, w1, b1, weights, biases, 0.1)
    (grad,) = torch.autograd.grad(out.sum(), x)
    (expected,) = torch.autograd.grad(reference(x).sum(), x)
    np.testing.assert_allclose(out.detach(), reference(x).detach(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(grad, expected, rtol=rtol, atol=atol)
    with pytest.raises(RuntimeError, match="no second derivative"):
        torch.autograd.grad(torch.ops.multiscale.ani_networks(x, w1, b1, weights, biases, 0.1).sum(), x,
                            create_graph=True)
    with pytest.raises(RuntimeError, match="constant weights"):
        torch.ops.multiscale.ani_networks(x, w1.requires_grad_(True), b1, weights, biases, 0.1)


@pytest.mark.parametrize("isa", ["avx2", "generic"])
def test_every_instruction_set_path_gives_the_same_results(isa):
    """The kernels are compiled for AVX-512, AVX2 + FMA and plain x86-64 and the CPU picks one;
    MULTISCALE_OPS_ISA caps the choice, so the paths this machine does not pick by itself run
    here too: this file's AEV and network tests in a process that uses ``isa``."""
    import os
    env = dict(os.environ, MULTISCALE_OPS_ISA=isa)
    tests = ("test_native_aev_and_gradient_equal_the_torch_path or test_float64_gradient or "
             "test_native_networks_slope or test_stacked_ensemble")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k", tests],
                          capture_output=True, text=True, env=env, cwd=os.path.dirname(__file__))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
