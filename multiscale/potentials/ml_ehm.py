"""ML-EHM: a message-passing network that predicts an extended-Hückel Hamiltonian
(Zubatiuk et al., J. Chem. Phys. 154, 244108 (2021)).

    E = E_band(H(alpha, K), S) + sum_pairs E_pair + sum_atoms e0(element)

The network (the SchNet-like interactions of multiscale.potentials.message_passing) gives
each atom's on-site energies alpha_s, alpha_p (eV, textbook values plus a learned shift) and
each pair's Wolfsberg-Helmholz factors: K_ss, K_sp in both directions, and K_sigma, K_pi for
the p-p block in the bond frame, so that

    H_mn = K_mn S_mn (alpha_m + alpha_n) / 2        (multiscale.quantum.huckel.hamiltonian)

over the minimal valence basis of Slater-type orbitals (H 1s; C, N, O 2s 2p).  HC = SCE is
solved for the whole molecule and occupied with the alpha and beta electrons of the total
charge Q and multiplicity M at electronic temperature kT; the band energy is the Mermin free
energy.  E_pair is a learned short-range pair energy (mostly the repulsion a band energy
lacks).  Off-diagonal S and H are multiplied by a cosine switch over the last 2 Å of the cutoff, so
that energies are smooth in the edge list an engine gives (and are textbook EHT's below it).

The model is **non-local**: the eigenproblem couples every atom, so its metadata says
``whole_system`` and engines must hand it whole, non-periodic molecules (n_local atoms, no
ghosts).  Outputs: "energies" (n,) eV (the band energy shared equally, pair energies halved,
e0 per atom), "charges" (n,) e (Mulliken; they sum to Q), "orbital_energies" (m,) eV
ascending.  In Python (training) the band energy goes through
multiscale.quantum.occupation, twice differentiable at degeneracies; TorchScript (engines)
differentiates the Fermi-weighted eigenvalues once, which is exact for forces.
"""

from __future__ import annotations

import math
from typing import Dict, List, Sequence, Tuple

import torch
from torch import Tensor

from ..model.contract import ModelMetadata
from ..quantum.huckel import TEXTBOOK, VALENCE_ELECTRONS, WOLFSBERG_HELMHOLZ_K
from ..quantum.occupation import chemical_potential, free_energy as mermin_free_energy, density as fermi_density
from ..quantum.slater import quadrature, sigma_pi
from .message_passing import GaussianBasis, Interaction
from .repulsion import build_repulsion, describe

SWITCH_WIDTH = 2.0             # Å: S and H go smoothly from full to zero over the last 2 Å of the cutoff
ORBITALS_PER_ATOM = 4          # s, p_x, p_y, p_z slots; atoms without p (H) leave three empty


def _mlp(n_in: int, width: int, n_out: int) -> torch.nn.Sequential:
    return torch.nn.Sequential(torch.nn.Linear(n_in, width), torch.nn.SiLU(), torch.nn.Linear(width, n_out))


class MLEHM(torch.nn.Module):
    """ML-EHM for ``elements`` (a subset of H, C, N, O).

    cutoff: Å, of the message passing and of the overlaps (S is below 1e-3 beyond 6 Å);
    hops, features, n_basis: the message-passing network; kT: electronic temperature, eV;
    repulsion: a ZBL core (multiscale.potentials.repulsion; zero beyond its outer radii) that
    keeps atoms from fusing where no data reached.
    """

    def __init__(self, elements: Sequence[str] = ("H", "C", "N", "O"), cutoff: float = 6.0, hops: int = 2,
                 features: int = 32, n_basis: int = 16, kT: float = 0.05, seed: int = 0, repulsion=None):
        super().__init__()
        unknown = sorted(set(elements) - TEXTBOOK.keys())
        if unknown:
            raise ValueError(f"ML-EHM has a valence basis for {sorted(TEXTBOOK)}, not {unknown}")
        torch.manual_seed(seed)
        self.elements: List[str] = list(elements)
        self.cutoff = float(cutoff)
        self.hops = int(hops)
        self.kT = float(kT)
        self.k0 = float(WOLFSBERG_HELMHOLZ_K)
        self.slots = ORBITALS_PER_ATOM
        self.switch_on = float(cutoff - SWITCH_WIDTH)
        shells = [TEXTBOOK[e] for e in self.elements]
        self.register_buffer("n_s", torch.tensor([float(s[0].n) for s in shells], dtype=torch.float64))
        self.register_buffer("zeta_s", torch.tensor([s[0].zeta for s in shells], dtype=torch.float64))
        # elements without p shells get a placeholder exponent; their p slots are dropped
        self.register_buffer("zeta_p", torch.tensor([s[1].zeta if len(s) > 1 else 1.0 for s in shells],
                                                    dtype=torch.float64))
        self.register_buffer("has_p", torch.tensor([len(s) > 1 for s in shells]))
        self.register_buffer("alpha0", torch.tensor([[s[0].energy, s[1].energy if len(s) > 1 else 0.0]
                                                     for s in shells], dtype=torch.float64))
        self.register_buffer("valence", torch.tensor([float(VALENCE_ELECTRONS[e]) for e in self.elements],
                                                     dtype=torch.float64))
        nodes = quadrature(torch.float64)
        self.register_buffer("xi_nodes", nodes[0])
        self.register_buffer("xi_weights", nodes[1])
        self.register_buffer("eta_nodes", nodes[2])
        self.register_buffer("eta_weights", nodes[3])
        self.embedding = torch.nn.Embedding(len(self.elements), features)
        self.basis = GaussianBasis(self.cutoff, n_basis)
        self.interactions = torch.nn.ModuleList([Interaction(features, n_basis) for _ in range(hops)])
        self.onsite = _mlp(features, features, 2)                       # shifts of alpha_s, alpha_p, eV
        self.pair = _mlp(2 * features + n_basis, features, 4)           # K_ss, K_sigma, K_pi, E_pair
        self.sp = _mlp(2 * features + n_basis, features, 1)             # K_sp, s on the first atom
        for head in (self.onsite, self.pair, self.sp):                  # start at textbook EHT
            torch.nn.init.zeros_(head[2].weight)
            torch.nn.init.zeros_(head[2].bias)
        self.self_energy = torch.nn.Parameter(torch.zeros(len(self.elements), dtype=torch.float64))
        self.repulsion = build_repulsion(self.elements, repulsion)
        self.double()

    def set_self_energies(self, values) -> None:
        with torch.no_grad():
            self.self_energy.copy_(torch.as_tensor(values, dtype=self.self_energy.dtype))

    def metadata(self) -> ModelMetadata:
        return ModelMetadata(name="ml-ehm", elements=tuple(self.elements), cutoff=self.cutoff, hops=self.hops,
                             outputs=("energies", "charges", "orbital_energies"), uses_charge=True,
                             uses_spin=True, whole_system=True,
                             citation="Zubatiuk et al., J. Chem. Phys. 154, 244108 (2021)",
                             description=f"ML-EHM: message passing ({self.hops} hops) predicting an "
                                         f"extended-Hückel Hamiltonian over STOs, kT {self.kT} eV"
                                         f"{describe(self.repulsion)}")

    # ------------------------------------------------------------------ pieces
    def atom_states(self, species: Tensor, edge_index: Tensor, basis: Tensor) -> Tensor:
        """(n, features) atom states after ``hops`` interactions; basis: (E, n_basis) of the edges."""
        h = self.embedding(species)
        for interaction in self.interactions:
            h = interaction(h, basis, edge_index[0], edge_index[1])
        return h

    def overlap_blocks(self, za: Tensor, zb: Tensor, r: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Diatomic overlaps of pairs of species za, zb at r (P,) Å: ss, s_a p_b, p_a s_b sigma,
        p p sigma and pi (each (P,))."""
        nodes = [self.xi_nodes, self.xi_weights, self.eta_nodes, self.eta_weights]
        two = torch.full_like(r, 2.0)
        ss, _ = sigma_pi(self.n_s[za], 0, self.zeta_s[za], self.n_s[zb], 0, self.zeta_s[zb], r, nodes)
        sp, _ = sigma_pi(self.n_s[za], 0, self.zeta_s[za], two, 1, self.zeta_p[zb], r, nodes)
        ps, _ = sigma_pi(two, 1, self.zeta_p[za], self.n_s[zb], 0, self.zeta_s[zb], r, nodes)
        pp_sigma, pp_pi = sigma_pi(two, 1, self.zeta_p[za], two, 1, self.zeta_p[zb], r, nodes)
        return ss, sp, ps, pp_sigma, pp_pi

    def matrices(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """(H, S, orbital atom (m,), pair energies (n,)) of the whole molecule."""
        n = species.shape[0]
        dtype = edge_vectors.dtype
        distances = torch.linalg.vector_norm(edge_vectors, dim=1)
        basis = self.basis(distances)
        h = self.atom_states(species, edge_index, basis)
        alpha = self.alpha0[species] + self.onsite(h)                  # (n, 2) eV
        upper = edge_index[0] < edge_index[1]
        a, b = edge_index[0][upper], edge_index[1][upper]
        vec = edge_vectors[upper]
        r = distances[upper]
        u = vec / r.unsqueeze(1)
        x = torch.clamp((r - self.switch_on) / (self.cutoff - self.switch_on), 0.0, 1.0)
        envelope = 0.5 * (torch.cos(math.pi * x) + 1.0)
        rbf = basis[upper]
        pair = self.pair(torch.cat([h[a] + h[b], h[a] * h[b], rbf], dim=1))
        K = self.k0 + pair[:, :3]                         # K_ss, K_sigma, K_pi
        K_sp_ab = self.k0 + self.sp(torch.cat([h[a], h[b], rbf], dim=1)).squeeze(1)
        K_sp_ba = self.k0 + self.sp(torch.cat([h[b], h[a], rbf], dim=1)).squeeze(1)
        za, zb = species[a], species[b]
        ss, sp, ps, pp_sigma, pp_pi = self.overlap_blocks(za, zb, r)
        ss, sp, ps = ss * envelope, sp * envelope, ps * envelope
        pp_sigma, pp_pi = pp_sigma * envelope, pp_pi * envelope
        outer = u.unsqueeze(2) * u.unsqueeze(1)                          # (P, 3, 3)
        device = species.device
        eye = torch.eye(3, dtype=dtype, device=device).unsqueeze(0)
        P = r.shape[0]
        S_block = torch.zeros((P, 4, 4), dtype=dtype, device=device)
        S_block[:, 0, 0] = ss
        S_block[:, 0, 1:] = sp.unsqueeze(1) * u
        S_block[:, 1:, 0] = ps.unsqueeze(1) * u
        S_block[:, 1:, 1:] = pp_sigma.view(-1, 1, 1) * outer + pp_pi.view(-1, 1, 1) * (eye - outer)
        mean_ss = 0.5 * (alpha[a, 0] + alpha[b, 0])
        mean_sp = 0.5 * (alpha[a, 0] + alpha[b, 1])
        mean_ps = 0.5 * (alpha[a, 1] + alpha[b, 0])
        mean_pp = 0.5 * (alpha[a, 1] + alpha[b, 1])
        H_block = torch.zeros((P, 4, 4), dtype=dtype, device=device)
        H_block[:, 0, 0] = K[:, 0] * ss * mean_ss
        H_block[:, 0, 1:] = (K_sp_ab * sp * mean_sp).unsqueeze(1) * u
        H_block[:, 1:, 0] = (K_sp_ba * ps * mean_ps).unsqueeze(1) * u
        H_block[:, 1:, 1:] = mean_pp.view(-1, 1, 1) * ((K[:, 1] * pp_sigma).view(-1, 1, 1) * outer
                                                       + (K[:, 2] * pp_pi).view(-1, 1, 1) * (eye - outer))
        slot = torch.arange(self.slots, device=species.device)
        rows = (a.unsqueeze(1) * self.slots + slot).unsqueeze(2).expand(P, 4, 4).reshape(-1)
        cols = (b.unsqueeze(1) * self.slots + slot).unsqueeze(1).expand(P, 4, 4).reshape(-1)
        m_all = n * self.slots
        S_up = torch.zeros((m_all, m_all), dtype=dtype, device=device).index_put((rows, cols), S_block.reshape(-1), accumulate=True)
        H_up = torch.zeros((m_all, m_all), dtype=dtype, device=device).index_put((rows, cols), H_block.reshape(-1), accumulate=True)
        onsite = torch.cat([alpha[:, :1], alpha[:, 1:].expand(n, 3)], dim=1).reshape(-1)
        S_full = S_up + S_up.T + torch.eye(m_all, dtype=dtype, device=device)
        H_full = H_up + H_up.T + torch.diag(onsite)
        real = torch.cat([torch.ones((n, 1), dtype=torch.bool, device=species.device),
                          self.has_p[species].unsqueeze(1).expand(n, 3)], dim=1).reshape(-1)
        keep = torch.nonzero(real).squeeze(1)
        S = S_full.index_select(0, keep).index_select(1, keep)
        H = H_full.index_select(0, keep).index_select(1, keep)
        orbital_atom = torch.div(keep, self.slots, rounding_mode="floor")
        pair_energies = torch.zeros(n, dtype=dtype, device=device).index_add(0, a, 0.5 * envelope * pair[:, 3]) \
            .index_add(0, b, 0.5 * envelope * pair[:, 3])
        return H, S, orbital_atom, pair_energies

    def electrons(self, species: Tensor, charge: float, spin: int) -> Tuple[int, int]:
        total = float(self.valence[species].sum()) - charge
        count = int(round(total))
        if abs(total - count) > 1e-9 or count < 0 or spin < 1 or (count + spin - 1) % 2 != 0:
            raise ValueError("ML-EHM: total charge and multiplicity give no whole alpha and beta electron "
                             "counts; use a whole charge and a multiplicity of the right parity")
        return (count + spin - 1) // 2, (count - spin + 1) // 2

    def band(self, Hp: Tensor, n_alpha: int, n_beta: int) -> Tuple[Tensor, Tensor, Tensor]:
        """(band free energy eV, orthonormal-basis density (m, m), levels (m,) eV ascending) of
        the alpha and beta electrons."""
        if torch.jit.is_scripting():
            # one eigh: only the levels enter the energy, and eigh's backward for levels alone
            # is V diag(f) V^T, no level differences: exact forces at degeneracies
            levels, V = torch.linalg.eigh(Hp)
            energy = torch.zeros((), dtype=Hp.dtype, device=Hp.device)
            P = torch.zeros_like(Hp)
            for count in [n_alpha, n_beta]:
                with torch.no_grad():       # dA/dmu = 0 at fixed electron count
                    mu = chemical_potential(levels.detach(), float(count), self.kT)
                f = torch.sigmoid((mu - levels.detach()) / self.kT)
                energy = energy + mu * count - self.kT * torch.nn.functional.softplus((mu - levels) / self.kT).sum()
                P = P + (V.detach() * f) @ V.detach().T
            return energy, P, levels
        return self._band_autograd(Hp, n_alpha, n_beta)

    @torch.jit.unused
    def _band_autograd(self, Hp: Tensor, n_alpha: int, n_beta: int) -> Tuple[Tensor, Tensor, Tensor]:
        # multiscale.quantum.occupation: twice differentiable at degeneracies (training on forces)
        energy = mermin_free_energy(Hp, n_alpha, self.kT) + mermin_free_energy(Hp, n_beta, self.kT)
        density = fermi_density(Hp, n_alpha, self.kT) + fermi_density(Hp, n_beta, self.kT)
        return energy, density, torch.linalg.eigvalsh(Hp)

    def forward(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor, n_local: int,
                charge: float = 0.0, spin: int = 1) -> Dict[str, Tensor]:
        n = species.shape[0]
        if n != n_local:
            raise ValueError("ML-EHM is non-local (one eigenproblem for the whole molecule): it needs the "
                             "whole, non-periodic system with no ghost atoms (one MPI rank)")
        n_alpha, n_beta = self.electrons(species, charge, spin)
        H, S, orbital_atom, pair_energies = self.matrices(species, edge_index, edge_vectors)
        if n_alpha > S.shape[0]:
            raise ValueError("ML-EHM: more electrons of one spin than valence orbitals")
        L = torch.linalg.cholesky(S)
        X = torch.linalg.solve_triangular(L, torch.eye(S.shape[0], dtype=S.dtype, device=S.device), upper=False)
        Hp = X @ H @ X.T
        Hp = 0.5 * (Hp + Hp.T)
        band, P_orth, levels = self.band(Hp, n_alpha, n_beta)
        P = X.T @ P_orth @ X
        population = (P * S).sum(dim=1)
        electrons = torch.zeros(n, dtype=S.dtype).index_add(0, orbital_atom, population)
        energies = band / n + pair_energies + self.self_energy[species]
        if self.repulsion is not None:
            energies = energies + self.repulsion.atom_energies(species, edge_index, edge_vectors, n_local)
        return {"energies": energies, "charges": self.valence[species] - electrons,
                "orbital_energies": levels}
