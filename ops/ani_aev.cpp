// torch.ops.multiscale.ani_radial / ani_angular: ANI's AEV terms, forward and backward, each
// in one pass over the edges or triplets (CPU).
//
// Why by hand: written with torch operations, the AEV makes (E, n_radial), (T, n_shifts),
// (T, n_sections) and (T, n_shifts * n_sections) arrays for E ~ 1e4 edges and T ~ 1e5
// triplets, and autograd walks each again backwards: 90 % of an ANI-1x call on a CPU.
// torch's CPU fuser is not in the wheel and AOTInductor does not fuse the backward.  No
// maintained library computes these terms on an edge list (torchani's cuAEV is CUDA only and
// takes coordinates).
//
// The formulas are aev.py's (and torchani's), with the same guards:
//   fc(r) = 0.5 cos(pi r / Rc) + 0.5,   gauss(x) = exp(max(-eta x^2, -80))
//   radial:  out[row, s] += 0.25 gauss(r - ShfR_s) fc_Rcr(r)
//   angular: over every unordered pair of edges (v1, v2) that share a centre (the op finds them)
//            c = 0.95 (v1 . v2) / max(r1 r2, 1e-10)
//            out[block, s Z + z] += 2 max((1 + c cos ShfZ_z + sqrt(1 - c^2) sin ShfZ_z) / 2, 1e-30)^Zeta
//                                   * gauss((r1 + r2) / 2 - ShfA_s) fc_Rca(r1) fc_Rca(r2)
// computed in double whatever the tensors' dtype, accumulated in the tensors' dtype in edge or
// triplet order (as index_add does).  Chunks of edges or triplets take their exp and log
// together (vector_math.h).  The backward raises when asked for a graph (forces in a training
// loss): training runs aev.py's torch path.
//
// One shared library, libmultiscale_ops.so, holds the operators: Python loads it
// (multiscale/model/native_ops.py) and the LAMMPS plugin links it, so a process registers them
// once whichever loads first.

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include "vector_math.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

using at::Tensor;
using Doubles = at::ArrayRef<double>;

constexpr double kPi = 3.14159265358979323846;
constexpr int64_t kChunk = 256;  // edges or triplets whose transcendental terms are taken at once

// The widths of the angular terms, shifts S and sections Z, as compile-time constants where a
// kernel is instantiated for them (ANI-1x's (4, 8), ANI-2x's (8, 4), both's radial 16: the short loops over
// them then unroll and vectorise, a third of the angular backward before), 0 for run time.
template <int S_, int Z_>
struct Widths {
  static constexpr int S = S_, Z = Z_;
};

template <typename F>
void with_widths(int64_t S, int64_t Z, F&& f) {
  if (S == 16 && Z == 0) return f(Widths<16, 0>{});  // the radial terms of both
  if (S == 8 && Z == 4) return f(Widths<8, 4>{});
  if (S == 4 && Z == 8) return f(Widths<4, 8>{});
  f(Widths<0, 0>{});
}

// Gaussian exponents max(-eta (x_k - shift_s)^2, -80) of n values x, row-major (n, S); exp
// of them in place; slopes d/dx where not floored (torch.clamp's gradient), if asked
template <int SC = 0>
MULTISCALE_INLINE void gaussians(const double* x, int64_t n, double eta, Doubles shifts, double* value, double* slope) {
  const int64_t S = SC ? SC : shifts.size();
  for (int64_t k = 0; k < n; ++k)
    for (int64_t s = 0; s < S; ++s) {
      const double d = x[k] - shifts[s];
      const double exponent = -eta * d * d;
      value[k * S + s] = exponent > -80.0 ? exponent : -80.0;   // not std::max: this form vectorises
    }
  if (slope)
    for (int64_t k = 0; k < n; ++k)
      for (int64_t s = 0; s < S; ++s)
        slope[k * S + s] = value[k * S + s] > -80.0 ? -2.0 * eta * (x[k] - shifts[s]) : 0.0;
  multiscale_ops::exp_inplace(value, n * S);
  if (slope)
    for (int64_t k = 0; k < n * S; ++k) slope[k] *= value[k];
}

// 2 max(h, 1e-30)^zeta floored at 2 exp(-80), in place over h (n values), and d/dh if asked;
// a whole zeta up to 64 by repeated squaring (exact to rounding), any other as exp(zeta log h)
MULTISCALE_INLINE void angle_power(double* h, int64_t n, double zeta, double* slope, std::vector<double>& work) {
  const int whole = zeta == std::floor(zeta) && zeta >= 1 && zeta <= 64 ? static_cast<int>(zeta) : 0;
  const double floor = std::exp(-80.0);
  work.resize(2 * n);
  double* base = work.data();          // h as given
  double* square = work.data() + n;    // its repeated squares (whole zeta)
  for (int64_t k = 0; k < n; ++k) base[k] = h[k];
  double* x = h;  // h -> the power (whole zeta) or zeta log h -> 2 h^zeta
  if (whole) {
    // x = base^whole by bits, each pass a loop over all values (vectorised)
    for (int64_t k = 0; k < n; ++k) {
      square[k] = base[k];
      x[k] = 1.0;
    }
    for (int e = whole; e > 0; e >>= 1) {
      if (e & 1)
        for (int64_t k = 0; k < n; ++k) x[k] *= square[k];
      if (e > 1)
        for (int64_t k = 0; k < n; ++k) square[k] *= square[k];
    }
    const double tiny = 2.0 * std::exp(std::max(zeta * std::log(1e-30), -80.0));
    for (int64_t k = 0; k < n; ++k) {
      const bool live = base[k] > 1e-30 && x[k] > floor;
      const double power = x[k];
      x[k] = base[k] > 1e-30 ? 2.0 * (live ? power : floor) : tiny;
      if (slope) slope[k] = live ? 2.0 * zeta * power / base[k] : 0.0;
    }
    return;
  }
  for (int64_t k = 0; k < n; ++k) x[k] = base[k] > 1e-30 ? base[k] : 1e-30;
  multiscale_ops::log_inplace(x, n);
  for (int64_t k = 0; k < n; ++k) {
    const double exponent = zeta * x[k];
    x[k] = exponent > -80.0 ? exponent : -80.0;
  }
  if (slope)
    for (int64_t k = 0; k < n; ++k)  // live: neither floor reached; slope = zeta h^zeta / h
      slope[k] = (base[k] > 1e-30 && x[k] > -80.0) ? zeta / base[k] : 0.0;
  multiscale_ops::exp_inplace(x, n);
  for (int64_t k = 0; k < n; ++k) {
    x[k] *= 2.0;
    if (slope) slope[k] *= x[k];
  }
}

// length, cutoff function and (if asked) its derivative of every edge
template <typename scalar_t>
MULTISCALE_INLINE void edge_terms(const scalar_t* v, int64_t n, double cutoff, std::vector<double>& r,
                std::vector<double>& fc, std::vector<double>* dfc) {
  r.resize(n);
  fc.resize(n);
  const double k = kPi / cutoff;
  for (int64_t e = 0; e < n; ++e) {
    const double x = v[3 * e], y = v[3 * e + 1], z = v[3 * e + 2];
    r[e] = std::sqrt(x * x + y * y + z * z);
    fc[e] = k * r[e];
  }
  if (dfc) {
    dfc->resize(n);
    multiscale_ops::sin_of(fc.data(), dfc->data(), n);
    for (int64_t e = 0; e < n; ++e) (*dfc)[e] *= -0.5 * k;
  }
  multiscale_ops::cos_of(fc.data(), fc.data(), n);
  for (int64_t e = 0; e < n; ++e) fc[e] = 0.5 * fc[e] + 0.5;
}

void check_vectors(const Tensor& vectors, const char* op) {
  TORCH_CHECK(vectors.device().is_cpu(), "multiscale::", op, " runs on the CPU only; on ",
              vectors.device(), " the model uses its torch path");
  TORCH_CHECK(vectors.dim() == 2 && vectors.size(1) == 3, op, ": vectors must be (n, 3), got ",
              vectors.sizes());
  TORCH_CHECK(vectors.scalar_type() == at::kFloat || vectors.scalar_type() == at::kDouble, op,
              ": vectors must be float32 or float64, got ", vectors.scalar_type());
}

void check_index(const Tensor& index, int64_t length, int64_t bound, const char* op, const char* name) {
  TORCH_CHECK(index.scalar_type() == at::kLong && index.dim() == 1 && index.size(0) == length, op,
              ": ", name, " must be int64 of length ", length, ", got ", index.scalar_type(), " ",
              index.sizes());
  const int64_t* p = index.data_ptr<int64_t>();
  for (int64_t k = 0; k < length; ++k)
    TORCH_CHECK(static_cast<uint64_t>(p[k]) < static_cast<uint64_t>(bound), op, ": ", name, "[", k,
                "] = ", p[k], " is outside [0, ", bound, ")");
}

// ------------------------------------------------------------------------------------- radial

template <typename W, typename scalar_t>
MULTISCALE_INLINE void radial_forward_body(W, const scalar_t* v, int64_t E, const int64_t* to, scalar_t* o,
                                           double cutoff, double eta, Doubles shifts) {
  const int64_t S = W::S ? W::S : shifts.size();
  std::vector<double> r, fc, g(kChunk * S);
  edge_terms(v, E, cutoff, r, fc, nullptr);
  for (int64_t e0 = 0; e0 < E; e0 += kChunk) {
    const int64_t n = std::min(kChunk, E - e0);
    gaussians<W::S>(r.data() + e0, n, eta, shifts, g.data(), nullptr);
    for (int64_t k = 0; k < n; ++k) {
      scalar_t* dst = o + to[e0 + k] * S;
      const double scale = 0.25 * fc[e0 + k];
      for (int64_t s = 0; s < S; ++s) dst[s] += static_cast<scalar_t>(scale * g[k * S + s]);
    }
  }
}

template <typename W, typename scalar_t>
MULTISCALE_INLINE void radial_backward_body(W, const scalar_t* gr, const scalar_t* v, int64_t E,
                                            const int64_t* to, scalar_t* o, double cutoff, double eta,
                                            Doubles shifts) {
  const int64_t S = W::S ? W::S : shifts.size();
  std::vector<double> r, fc, dfc, g(kChunk * S), dg(kChunk * S);
  edge_terms(v, E, cutoff, r, fc, &dfc);
  for (int64_t e0 = 0; e0 < E; e0 += kChunk) {
    const int64_t n = std::min(kChunk, E - e0);
    gaussians<W::S>(r.data() + e0, n, eta, shifts, g.data(), dg.data());
    for (int64_t k = 0; k < n; ++k) {
      const int64_t e = e0 + k;
      const scalar_t* src = gr + to[e] * S;
      // four partial sums: one chain of S dependent additions took a third of the backward
      double part[4] = {0.0, 0.0, 0.0, 0.0};
      for (int64_t s = 0; s < S; ++s)
        part[s & 3] += double(src[s]) * (dg[k * S + s] * fc[e] + g[k * S + s] * dfc[e]);
      double d_r = (part[0] + part[1]) + (part[2] + part[3]);
      d_r *= 0.25 / r[e];
      for (int x = 0; x < 3; ++x) o[3 * e + x] = static_cast<scalar_t>(d_r * v[3 * e + x]);
    }
  }
}

MULTISCALE_DISPATCH(radial_forward)
MULTISCALE_DISPATCH(radial_backward)

Tensor radial_cpu(const Tensor& vectors_, const Tensor& row_, int64_t rows, double cutoff,
                  double eta, Doubles shifts) {
  check_vectors(vectors_, "ani_radial");
  const Tensor vectors = vectors_.contiguous(), row = row_.contiguous();
  const int64_t E = vectors.size(0), S = shifts.size();
  check_index(row, E, rows, "ani_radial", "row");
  Tensor out = at::zeros({rows, S}, vectors.options());
  AT_DISPATCH_FLOATING_TYPES(vectors.scalar_type(), "ani_radial", [&] {
    // S at run time: a constant 16 makes this loop slower (measured)
    radial_forward(Widths<0, 0>{}, vectors.data_ptr<scalar_t>(), E, row.data_ptr<int64_t>(),
                   out.data_ptr<scalar_t>(), cutoff, eta, shifts);
  });
  return out;
}

Tensor radial_backward_cpu(const Tensor& grad_, const Tensor& vectors_, const Tensor& row_,
                           double cutoff, double eta, Doubles shifts) {
  check_vectors(vectors_, "ani_radial_backward");
  const Tensor vectors = vectors_.contiguous(), row = row_.contiguous(),
               grad = grad_.to(vectors.scalar_type()).contiguous();
  const int64_t E = vectors.size(0), S = shifts.size();
  TORCH_CHECK(grad.dim() == 2 && grad.size(1) == S, "ani_radial_backward: grad must be (rows, ", S,
              "), got ", grad.sizes());
  check_index(row, E, grad.size(0), "ani_radial_backward", "row");
  Tensor out = at::empty({E, 3}, vectors.options());
  AT_DISPATCH_FLOATING_TYPES(vectors.scalar_type(), "ani_radial_backward", [&] {
    with_widths(S, 0, [&](auto w) {
      radial_backward(w, grad.data_ptr<scalar_t>(), vectors.data_ptr<scalar_t>(), E, row.data_ptr<int64_t>(),
                      out.data_ptr<scalar_t>(), cutoff, eta, shifts);
    });
  });
  return out;
}

// ------------------------------------------------------------------------------------ angular

// Every unordered pair of edges that share a centre, in the order of aev.py's torch path
// (graph.triplets): centres ascending, then edge order; each triplet's output row is
// centre * n_pairs + pair_index[species of its two neighbours].
struct Triplets {
  std::vector<int64_t> first, second, block;
};

struct AngularInputs {
  Tensor vectors;
  Triplets triplets;
};

AngularInputs angular_inputs(const Tensor& vectors, const Tensor& centre_, const Tensor& species_,
                             const Tensor& pair_index_, int64_t n_centres, const char* op) {
  check_vectors(vectors, op);
  const int64_t A = vectors.size(0);
  const Tensor centre = centre_.contiguous(), species = species_.contiguous(),
               pair_index = pair_index_.contiguous();
  TORCH_CHECK(pair_index.scalar_type() == at::kLong && pair_index.dim() == 2 &&
                  pair_index.size(0) == pair_index.size(1),
              op, ": pair_index must be a square int64 table, got ", pair_index.sizes());
  const int64_t n_el = pair_index.size(0), n_pairs = n_el * (n_el + 1) / 2;
  check_index(centre, A, n_centres, op, "centre");
  check_index(species, A, n_el, op, "species");
  check_index(pair_index.view({-1}), n_el * n_el, n_pairs, op, "pair_index");
  const int64_t *c = centre.data_ptr<int64_t>(), *z = species.data_ptr<int64_t>(),
                *pairs = pair_index.data_ptr<int64_t>();
  // counting sort of the edges by centre, stable
  std::vector<int64_t> start(n_centres + 1, 0), order(A);
  for (int64_t e = 0; e < A; ++e) ++start[c[e] + 1];
  for (int64_t k = 0; k < n_centres; ++k) start[k + 1] += start[k];
  std::vector<int64_t> fill(start.begin(), start.end() - 1);
  for (int64_t e = 0; e < A; ++e) order[fill[c[e]]++] = e;
  AngularInputs in{vectors.contiguous(), {}};
  int64_t T = 0;
  for (int64_t k = 0; k < n_centres; ++k) {
    const int64_t m = start[k + 1] - start[k];
    T += m * (m - 1) / 2;
  }
  Triplets& t = in.triplets;
  t.first.reserve(T);
  t.second.reserve(T);
  t.block.reserve(T);
  for (int64_t k = 0; k < n_centres; ++k)
    for (int64_t p = start[k]; p < start[k + 1]; ++p)
      for (int64_t q = p + 1; q < start[k + 1]; ++q) {
        const int64_t e1 = order[p], e2 = order[q];
        t.first.push_back(e1);
        t.second.push_back(e2);
        t.block.push_back(k * n_pairs + pairs[z[e1] * n_el + z[e2]]);
      }
  return in;
}

// The per-triplet terms of a chunk of triplets [t0, t0 + n): mean length, cutoff product,
// c = 0.95 cos(theta), k = 0.95 / max(r1 r2, 1e-10), and the Gaussian (n, S) and angle (n, Z)
// factors with their slopes (d/d mean and d/dc) when ``slopes``.
struct AngularChunk {
  int64_t S, Z;
  std::vector<double> cos_z, sin_z, mean, f, c, k, g, dg, angle, dangle, work;

  AngularChunk(Doubles shifts, Doubles sections) : S(shifts.size()), Z(sections.size()) {
    for (double z : sections) {
      cos_z.push_back(std::cos(z));
      sin_z.push_back(std::sin(z));
    }
    for (auto* a : {&mean, &f, &c, &k}) a->resize(kChunk);
    for (auto* a : {&g, &dg}) a->resize(kChunk * S);
    for (auto* a : {&angle, &dangle}) a->resize(kChunk * Z);
  }
};

template <typename W, typename scalar_t>
MULTISCALE_INLINE void chunk_terms(W, AngularChunk& q, const scalar_t* v, const int64_t* e1, const int64_t* e2,
                                 int64_t n, const double* r, const double* fc, double eta, double zeta,
                                 Doubles shifts, bool slopes) {
  const int64_t Z = W::Z ? W::Z : q.Z;
  for (int64_t t = 0; t < n; ++t) {
    const int64_t a = e1[t], b = e2[t];
    const double dot = double(v[3 * a]) * v[3 * b] + double(v[3 * a + 1]) * v[3 * b + 1] +
                       double(v[3 * a + 2]) * v[3 * b + 2];
    q.mean[t] = 0.5 * (r[a] + r[b]);
    q.f[t] = fc[a] * fc[b];
    const double rr = r[a] * r[b];
    q.k[t] = 0.95 / (rr > 1e-10 ? rr : 1e-10);
    q.c[t] = q.k[t] * dot;
  }
  for (int64_t t = 0; t < n; ++t) {
    const double c = q.c[t], s = std::sqrt(1.0 - c * c);
    for (int64_t z = 0; z < Z; ++z) q.angle[t * Z + z] = 0.5 * (1.0 + c * q.cos_z[z] + s * q.sin_z[z]);
  }
  gaussians<W::S>(q.mean.data(), n, eta, shifts, q.g.data(), slopes ? q.dg.data() : nullptr);
  angle_power(q.angle.data(), n * Z, zeta, slopes ? q.dangle.data() : nullptr, q.work);
  if (slopes)  // d angle / dc = d angle / dh * (cos_z - c / s sin_z) / 2
    for (int64_t t = 0; t < n; ++t) {
      const double c = q.c[t], c_over_s = c / std::sqrt(1.0 - c * c);
      for (int64_t z = 0; z < Z; ++z) q.dangle[t * Z + z] *= 0.5 * (q.cos_z[z] - c_over_s * q.sin_z[z]);
    }
}

template <typename W, typename scalar_t>
MULTISCALE_INLINE void angular_forward_body(W w, const scalar_t* v, int64_t A, const Triplets& trip, scalar_t* out,
                                     double cutoff, double eta, double zeta, Doubles shifts, Doubles sections) {
  const int64_t S = W::S ? W::S : shifts.size(), Z = W::Z ? W::Z : sections.size(), width = S * Z,
                T = trip.first.size();
  std::vector<double> r, fc;
  edge_terms(v, A, cutoff, r, fc, nullptr);
  AngularChunk q(shifts, sections);
  for (int64_t t0 = 0; t0 < T; t0 += kChunk) {
    const int64_t n = std::min(kChunk, T - t0);
    chunk_terms(w, q, v, &trip.first[t0], &trip.second[t0], n, r.data(), fc.data(), eta, zeta, shifts, false);
    for (int64_t t = 0; t < n; ++t) {
      scalar_t* dst = out + trip.block[t0 + t] * width;
      const double* angle = &q.angle[t * Z];
      for (int64_t s = 0; s < S; ++s) {
        const double rf = q.g[t * S + s] * q.f[t];
        for (int64_t z = 0; z < Z; ++z) dst[s * Z + z] += static_cast<scalar_t>(rf * angle[z]);
      }
    }
  }
}

// by_g[z] = sum_s g[s] w[s, z], by_dg[z] = sum_s dg[s] w[s, z]; w (S, Z)
template <typename W, typename scalar_t>
MULTISCALE_INLINE void sums_over_shifts(W, const scalar_t* __restrict__ w, const double* __restrict__ g,
                                        const double* __restrict__ dg, double* __restrict__ by_g,
                                        double* __restrict__ by_dg, int64_t S_, int64_t Z_) {
  const int64_t S = W::S ? W::S : S_, Z = W::Z ? W::Z : Z_;
  for (int64_t z = 0; z < Z; ++z) by_g[z] = by_dg[z] = 0.0;
  for (int64_t s = 0; s < S; ++s)
    for (int64_t z = 0; z < Z; ++z) {
      const double x = w[s * Z + z];
      by_g[z] += g[s] * x;
      by_dg[z] += dg[s] * x;
    }
}

template <typename W, typename scalar_t>
MULTISCALE_INLINE void angular_backward_body(W w, const scalar_t* gr, const scalar_t* v, int64_t A,
                                             const Triplets& trip, double* acc, double cutoff, double eta,
                                             double zeta, Doubles shifts, Doubles sections) {
  const int64_t S = W::S ? W::S : shifts.size(), Z = W::Z ? W::Z : sections.size(), width = S * Z,
                T = trip.first.size();
  std::vector<double> r, fc, dfc, inv_r(A);
  edge_terms(v, A, cutoff, r, fc, &dfc);
  for (int64_t e = 0; e < A; ++e) inv_r[e] = 1.0 / r[e];
  AngularChunk q(shifts, sections);
  std::vector<double> by_g_(Z), by_dg_(Z);
  double *by_g = by_g_.data(), *by_dg = by_dg_.data();
  for (int64_t t0 = 0; t0 < T; t0 += kChunk) {
    const int64_t n = std::min(kChunk, T - t0);
    chunk_terms(w, q, v, &trip.first[t0], &trip.second[t0], n, r.data(), fc.data(), eta, zeta, shifts, true);
    for (int64_t t = 0; t < n; ++t) {
      const int64_t a = trip.first[t0 + t], b = trip.second[t0 + t];
      const scalar_t* src = gr + trip.block[t0 + t] * width;
      const double* angle = &q.angle[t * Z];
      const double* dangle = &q.dangle[t * Z];
      // d_c = sum_s g_s sum_z w_sz dangle_z, d_mean = sum_s dg_s sum_z w_sz angle_z, d_f =
      // sum_s g_s sum_z w_sz angle_z: summed over s first, lane by lane in z (vectorised;
      // summing over z first makes each sum one dependency chain, a third of the backward)
      sums_over_shifts(w, src, &q.g[t * S], &q.dg[t * S], by_g, by_dg, S, Z);
      double d_c = 0.0, d_mean = 0.0, d_f = 0.0;
      for (int64_t z = 0; z < Z; ++z) {
        d_c += by_g[z] * dangle[z];
        d_f += by_g[z] * angle[z];
        d_mean += by_dg[z] * angle[z];
      }
      d_c *= q.f[t];
      d_mean *= q.f[t];
      // c = k v1.v2, k = 0.95 / max(r1 r2, 1e-10): dc/dv1 = k v2 - c v1 / r1^2 (unless clamped)
      const double k = q.k[t], c = r[a] * r[b] < 1e-10 ? 0.0 : q.c[t];
      const double along1 = (0.5 * d_mean + d_f * fc[b] * dfc[a]) * inv_r[a] - d_c * c * inv_r[a] * inv_r[a];
      const double along2 = (0.5 * d_mean + d_f * fc[a] * dfc[b]) * inv_r[b] - d_c * c * inv_r[b] * inv_r[b];
      const double across = d_c * k;
      for (int x = 0; x < 3; ++x) {
        acc[3 * a + x] += across * v[3 * b + x] + along1 * v[3 * a + x];
        acc[3 * b + x] += across * v[3 * a + x] + along2 * v[3 * b + x];
      }
    }
  }
}

MULTISCALE_DISPATCH(angular_forward)
MULTISCALE_DISPATCH(angular_backward)

Tensor angular_cpu(const Tensor& vectors_, const Tensor& centre, const Tensor& species,
                   const Tensor& pair_index, int64_t n_centres, double cutoff, double eta, double zeta,
                   Doubles shifts, Doubles sections) {
  const AngularInputs in = angular_inputs(vectors_, centre, species, pair_index, n_centres, "ani_angular");
  const int64_t n_el = pair_index.size(0), width = shifts.size() * sections.size();
  Tensor out = at::zeros({n_centres * n_el * (n_el + 1) / 2, width}, in.vectors.options());
  AT_DISPATCH_FLOATING_TYPES(in.vectors.scalar_type(), "ani_angular", [&] {
    with_widths(shifts.size(), sections.size(), [&](auto w) {
      angular_forward(w, in.vectors.data_ptr<scalar_t>(), in.vectors.size(0), in.triplets,
                      out.data_ptr<scalar_t>(), cutoff, eta, zeta, shifts, sections);
    });
  });
  return out;
}

Tensor angular_backward_cpu(const Tensor& grad_, const Tensor& vectors_, const Tensor& centre,
                            const Tensor& species, const Tensor& pair_index, int64_t n_centres,
                            double cutoff, double eta, double zeta, Doubles shifts, Doubles sections) {
  const int64_t width = shifts.size() * sections.size();
  const AngularInputs in =
      angular_inputs(vectors_, centre, species, pair_index, n_centres, "ani_angular_backward");
  const int64_t n_el = pair_index.size(0);
  TORCH_CHECK(grad_.dim() == 2 && grad_.size(0) == n_centres * n_el * (n_el + 1) / 2 && grad_.size(1) == width,
              "ani_angular_backward: grad must be (n_centres * n_pairs, ", width, "), got ", grad_.sizes());
  const Tensor grad = grad_.to(in.vectors.scalar_type()).contiguous();
  const int64_t A = in.vectors.size(0);
  std::vector<double> acc(3 * A, 0.0);
  AT_DISPATCH_FLOATING_TYPES(in.vectors.scalar_type(), "ani_angular_backward", [&] {
    with_widths(shifts.size(), sections.size(), [&](auto w) {
      angular_backward(w, grad.data_ptr<scalar_t>(), in.vectors.data_ptr<scalar_t>(), A, in.triplets,
                       acc.data(), cutoff, eta, zeta, shifts, sections);
    });
  });
  return at::tensor(acc, in.vectors.options().dtype(at::kDouble)).view({A, 3}).to(in.vectors.scalar_type());
}

// ------------------------------------------------------------- shapes for torch.export tracing

Tensor radial_meta(const Tensor& vectors, const Tensor&, c10::SymInt rows, double, double, Doubles shifts) {
  return at::empty_symint({rows, c10::SymInt(static_cast<int64_t>(shifts.size()))}, vectors.options());
}

Tensor radial_backward_meta(const Tensor&, const Tensor& vectors, const Tensor&, double, double, Doubles) {
  return at::empty_like(vectors);
}

Tensor angular_meta(const Tensor& vectors, const Tensor&, const Tensor&, const Tensor& pair_index,
                    c10::SymInt n_centres, double, double, double, Doubles shifts, Doubles sections) {
  const int64_t n_el = pair_index.size(0);
  return at::empty_symint({n_centres * (n_el * (n_el + 1) / 2),
                           c10::SymInt(static_cast<int64_t>(shifts.size() * sections.size()))},
                          vectors.options());
}

Tensor angular_backward_meta(const Tensor&, const Tensor& vectors, const Tensor&, const Tensor&,
                             const Tensor&, c10::SymInt, double, double, double, Doubles, Doubles) {
  return at::empty_like(vectors);
}

// ---------------------------------------------------------------------------------- autograd

void no_graph(const char* op) {
  TORCH_CHECK(!at::GradMode::is_enabled(), "multiscale::", op,
              " has no second derivative (create_graph=True, e.g. forces in a training loss): "
              "train the Python model, whose AEV runs torch operations, and export it afterwards");
}

template <typename Signature>
c10::TypedOperatorHandle<Signature> handle(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

class RadialFunction : public torch::autograd::Function<RadialFunction> {
 public:
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& vectors, const Tensor& row,
                        c10::SymInt rows, double cutoff, double eta, Doubles shifts) {
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto op = handle<Tensor(const Tensor&, const Tensor&, c10::SymInt, double, double, Doubles)>(
        "multiscale::ani_radial");
    ctx->save_for_backward({vectors, row});
    ctx->saved_data["cutoff"] = cutoff;
    ctx->saved_data["eta"] = eta;
    ctx->saved_data["shifts"] = shifts.vec();
    return op.call(vectors, row, rows, cutoff, eta, shifts);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    no_graph("ani_radial");
    static auto op = handle<Tensor(const Tensor&, const Tensor&, const Tensor&, double, double, Doubles)>(
        "multiscale::ani_radial_backward");
    const auto saved = ctx->get_saved_variables();
    const auto shifts = ctx->saved_data["shifts"].toDoubleVector();
    return {op.call(grads[0], saved[0], saved[1], ctx->saved_data["cutoff"].toDouble(),
                    ctx->saved_data["eta"].toDouble(), shifts),
            Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

class AngularFunction : public torch::autograd::Function<AngularFunction> {
 public:
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& vectors, const Tensor& centre,
                        const Tensor& species, const Tensor& pair_index, c10::SymInt n_centres,
                        double cutoff, double eta, double zeta, Doubles shifts, Doubles sections) {
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto op = handle<Tensor(const Tensor&, const Tensor&, const Tensor&, const Tensor&, c10::SymInt,
                                   double, double, double, Doubles, Doubles)>("multiscale::ani_angular");
    ctx->save_for_backward({vectors, centre, species, pair_index});
    ctx->saved_data["n_centres"] = n_centres;
    ctx->saved_data["cutoff"] = cutoff;
    ctx->saved_data["eta"] = eta;
    ctx->saved_data["zeta"] = zeta;
    ctx->saved_data["shifts"] = shifts.vec();
    ctx->saved_data["sections"] = sections.vec();
    return op.call(vectors, centre, species, pair_index, n_centres, cutoff, eta, zeta, shifts, sections);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    no_graph("ani_angular");
    static auto op = handle<Tensor(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                   const Tensor&, c10::SymInt, double, double, double, Doubles, Doubles)>(
        "multiscale::ani_angular_backward");
    const auto saved = ctx->get_saved_variables();
    const auto shifts = ctx->saved_data["shifts"].toDoubleVector();
    const auto sections = ctx->saved_data["sections"].toDoubleVector();
    return {op.call(grads[0], saved[0], saved[1], saved[2], saved[3], ctx->saved_data["n_centres"].toSymInt(),
                    ctx->saved_data["cutoff"].toDouble(),
                    ctx->saved_data["eta"].toDouble(), ctx->saved_data["zeta"].toDouble(), shifts,
                    sections),
            Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

Tensor radial_autograd(const Tensor& vectors, const Tensor& row, c10::SymInt rows, double cutoff,
                       double eta, Doubles shifts) {
  return RadialFunction::apply(vectors, row, rows, cutoff, eta, shifts);
}

Tensor angular_autograd(const Tensor& vectors, const Tensor& centre, const Tensor& species,
                        const Tensor& pair_index, c10::SymInt n_centres, double cutoff, double eta,
                        double zeta, Doubles shifts, Doubles sections) {
  return AngularFunction::apply(vectors, centre, species, pair_index, n_centres, cutoff, eta, zeta, shifts,
                                sections);
}

}  // namespace

TORCH_LIBRARY(multiscale, m) {
  m.def("ani_radial(Tensor vectors, Tensor row, SymInt rows, float cutoff, float eta, float[] shifts) -> Tensor");
  m.def("ani_radial_backward(Tensor grad, Tensor vectors, Tensor row, float cutoff, float eta, "
        "float[] shifts) -> Tensor");
  m.def("ani_angular(Tensor vectors, Tensor centre, Tensor species, Tensor pair_index, SymInt n_centres, "
        "float cutoff, float eta, float zeta, float[] shifts, float[] sections) -> Tensor");
  m.def("ani_angular_backward(Tensor grad, Tensor vectors, Tensor centre, Tensor species, "
        "Tensor pair_index, SymInt n_centres, float cutoff, float eta, float zeta, float[] shifts, "
        "float[] sections) -> Tensor");
}

TORCH_LIBRARY_IMPL(multiscale, CPU, m) {
  m.impl("ani_radial", radial_cpu);
  m.impl("ani_radial_backward", radial_backward_cpu);
  m.impl("ani_angular", angular_cpu);
  m.impl("ani_angular_backward", angular_backward_cpu);
}

TORCH_LIBRARY_IMPL(multiscale, Meta, m) {
  m.impl("ani_radial", radial_meta);
  m.impl("ani_radial_backward", radial_backward_meta);
  m.impl("ani_angular", angular_meta);
  m.impl("ani_angular_backward", angular_backward_meta);
}

TORCH_LIBRARY_IMPL(multiscale, Autograd, m) {
  m.impl("ani_radial", radial_autograd);
  m.impl("ani_angular", angular_autograd);
}
