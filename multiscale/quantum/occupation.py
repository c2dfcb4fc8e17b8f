"""Fermi occupations of an orthonormal one-electron Hamiltonian, with derivatives that stay
finite at degeneracies.

For a symmetric H (m, m) with eigenpairs (lambda_i, v_i) and n electrons of one spin, the
occupations are f_i = 1 / (1 + exp((lambda_i - mu) / kT)) with mu such that sum f_i = n;
the density matrix is P = sum f_i v_i v_i^T and the (Mermin) free energy
A = sum_i f_i lambda_i - kT S = mu n - kT sum_i ln(1 + exp(-(lambda_i - mu) / kT)).

dA/dH = P exactly (mu's dependence on H cancels at fixed n), and P's derivative is the
Daleckii-Krein formula with divided differences (f_i - f_j) / (lambda_i - lambda_j), which
tends to f'(lambda_i) as two levels meet, plus the shift of mu.  Automatic differentiation
through ``torch.linalg.eigh`` instead divides by lambda_i - lambda_j for every pair and gives
inf or NaN at any degeneracy (methane's triply degenerate HOMO, the HOMO/LUMO crossing of
twisted ethylene); these functions do not.  A is twice differentiable (forces and their
training gradients); P once.  Energies in eV, kT in eV (> 0).
"""

from __future__ import annotations

import torch


def chemical_potential(levels: torch.Tensor, n: float, kT: float, tol: float = 1e-13) -> torch.Tensor:
    """mu (eV) with sum_i f_i = n for the ascending ``levels`` (m,), by bisection."""
    m = levels.shape[0]
    if not 0 <= n <= m:
        raise ValueError(f"{n} electrons of one spin do not fit into {m} orbitals")
    lo = levels[0] - 50.0 * kT - 1.0
    hi = levels[-1] + 50.0 * kT + 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        count = torch.sigmoid((mid - levels) / kT).sum()
        if count > n:
            hi = mid
        else:
            lo = mid
        if hi - lo < tol:
            break
    return 0.5 * (lo + hi)


def _fermi(levels, n, kT):
    mu = chemical_potential(levels, n, kT)
    f = torch.sigmoid((mu - levels) / kT)
    return mu, f


class _Density(torch.autograd.Function):
    """P(H) = V diag(f) V^T at fixed electron count; backward by Daleckii-Krein."""

    @staticmethod
    def forward(ctx, H, n, kT):
        levels, V = torch.linalg.eigh(H)
        _, f = _fermi(levels, n, kT)
        ctx.save_for_backward(levels, V, f)
        ctx.kT = kT
        return (V * f) @ V.T

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, G):
        levels, V, f = ctx.saved_tensors
        kT = ctx.kT
        Gp = V.T @ (0.5 * (G + G.T)) @ V
        w = f * (1.0 - f) / kT                                  # -df/dlambda = df/dmu
        gap = levels.unsqueeze(1) - levels.unsqueeze(0)
        close = gap.abs() < 1e-9 * max(kT, 1.0)
        safe = torch.where(close, torch.ones_like(gap), gap)
        D = torch.where(close, -0.5 * (w.unsqueeze(1) + w.unsqueeze(0)),
                        (f.unsqueeze(1) - f.unsqueeze(0)) / safe)
        grad = D * Gp
        total = w.sum()
        if total > 0:                                            # mu follows H at fixed n
            grad = grad + torch.diag((w * Gp.diagonal()).sum() / total * w)
        return V @ grad @ V.T, None, None


def density(H: torch.Tensor, n: float, kT: float) -> torch.Tensor:
    """Density matrix (m, m) of ``n`` electrons of one spin in the orthonormal Hamiltonian H."""
    _check(H, kT)
    return _Density.apply(H, float(n), float(kT))


class _FreeEnergy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, H, n, kT):
        levels = torch.linalg.eigvalsh(H)
        mu, _ = _fermi(levels, n, kT)
        ctx.save_for_backward(H)
        ctx.n, ctx.kT = n, kT
        return mu * n - kT * torch.nn.functional.softplus((mu - levels) / kT).sum()

    @staticmethod
    def backward(ctx, g):
        (H,) = ctx.saved_tensors
        return g * _Density.apply(H, ctx.n, ctx.kT), None, None


def free_energy(H: torch.Tensor, n: float, kT: float) -> torch.Tensor:
    """Mermin free energy (eV) of ``n`` electrons of one spin in the orthonormal Hamiltonian H."""
    _check(H, kT)
    return _FreeEnergy.apply(H, float(n), float(kT))


def _check(H: torch.Tensor, kT: float) -> None:
    if H.dim() != 2 or H.shape[0] != H.shape[1]:
        raise ValueError(f"the Hamiltonian must be a square matrix, got shape {tuple(H.shape)}")
    if not kT > 0:
        raise ValueError(f"electronic temperature kT = {kT} eV: it must be > 0 (e.g. 0.05) so that "
                         "degenerate levels at the Fermi level share their electrons smoothly")
