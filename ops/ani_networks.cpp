// torch.ops.multiscale.ani_networks: the element networks of M ANI ensemble members on one
// element's atoms, CELU between layers, forward and input backward (CPU).
//
// Why by hand: under TorchScript's autograd each layer becomes a product, a separate bias add,
// a layout copy and a CELU whose backward evaluates exp again; ATen's own products are what
// costs.  Here each layer is one product, then one pass adds the bias and applies the CELU in
// place, and the backward takes CELU's slope from the saved outputs (1 above zero,
// y / alpha + 1 below) without an exp.  The weights are constants (an exported model's
// inference form, potentials/stacked.py); only the input gets a gradient.
//
//   x (n, L) -> h0 = celu(x W1^T + b1) (n, M h1) -> (M, n, h1) -> h_j = celu(h_{j-1} W_j + b_j) ...
//   -> out (M, n) = h_last, the last layer without CELU (out features 1)
// weights[j]: (M, in, out), biases[j]: (M, 1, out).

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <vector>

#include "vector_math.h"

namespace {

using at::Tensor;
using at::TensorList;

void check(const Tensor& x, const Tensor& w1, const Tensor& b1, TensorList weights, TensorList biases) {
  TORCH_CHECK(x.dim() == 2 && w1.dim() == 2 && w1.size(1) == x.size(1) && b1.dim() == 1 &&
                  b1.size(0) == w1.size(0),
              "ani_networks: x (n, L), w1 (M h1, L) and b1 (M h1) do not fit: ", x.sizes(), " ", w1.sizes(),
              " ", b1.sizes());
  TORCH_CHECK(!weights.empty() && weights.size() == biases.size(),
              "ani_networks: give one bias per layer after the first, and at least one layer");
  const int64_t M = weights[0].size(0);
  TORCH_CHECK(w1.size(0) % M == 0 && weights[0].size(1) == w1.size(0) / M,
              "ani_networks: the first layer's width ", w1.size(0), " is not M = ", M, " times the second's input ",
              weights[0].size(1));
  for (size_t j = 0; j < weights.size(); ++j) {
    TORCH_CHECK(weights[j].dim() == 3 && weights[j].size(0) == M && biases[j].dim() == 3 &&
                    biases[j].size(0) == M && biases[j].size(2) == weights[j].size(2),
                "ani_networks: layer ", j + 1, " weight (M, in, out) and bias (M, 1, out) do not fit: ",
                weights[j].sizes(), " ", biases[j].sizes());
    if (j > 0)
      TORCH_CHECK(weights[j].size(1) == weights[j - 1].size(2), "ani_networks: layer ", j + 1,
                  " takes ", weights[j].size(1), " inputs, layer ", j, " gives ", weights[j - 1].size(2));
  }
  TORCH_CHECK(weights.back().size(2) == 1, "ani_networks: the last layer must give one energy per atom");
}

// h[k] += bias[k], t[k] = min(h[k], 0) / alpha, k < m
template <typename T>
MULTISCALE_INLINE void add_bias(T* __restrict__ h, const T* __restrict__ bias, T* __restrict__ t, int64_t m,
                                T inv_alpha) {
  for (int64_t k = 0; k < m; ++k) {
    const T x = h[k] + bias[k];
    h[k] = x;
    t[k] = (x < T(0) ? x : T(0)) * inv_alpha;
  }
}

// h[k] = celu(h[k]) = max(h, 0) + alpha (exp(min(h, 0) / alpha) - 1), with t[k] the exp: one
// expression, no branch, so GCC vectorises it (a select that keeps h[k] is a conditional
// store, which it does not)
template <typename T>
MULTISCALE_INLINE void apply_celu(T* __restrict__ h, const T* __restrict__ t, int64_t m, T alpha) {
  for (int64_t k = 0; k < m; ++k) h[k] = (h[k] > T(0) ? h[k] : T(0)) + alpha * (t[k] - T(1));
}

// h (n,) = celu(h + bias (n,)) in place, in chunks that stay in L1, SLEEF's exp between the
// two passes.  exp - 1 rather than expm1 (SLEEF's expm1 costs three times its exp): it loses
// relative accuracy only where |y| is tiny, the absolute error staying below alpha times one
// rounding of 1.
template <typename T>
MULTISCALE_INLINE void bias_celu_body(T* h, const T* bias, int64_t n, T alpha) {
  constexpr int64_t kChunk = 256;
  alignas(64) T t[kChunk];
  for (int64_t k0 = 0; k0 < n; k0 += kChunk) {
    const int64_t m = n - k0 < kChunk ? n - k0 : kChunk;
    add_bias(h + k0, bias + k0, t, m, T(1) / alpha);
    multiscale_ops::exp_of(t, t, m);
    apply_celu(h + k0, t, m, alpha);
  }
}

MULTISCALE_DISPATCH(bias_celu)

// h (B, n, w) = celu(h + bias (B, 1, w)) in place, both contiguous.  By hand rather than
// addmm/baddbmm and at::celu_: those copy the bias into the output before the product and take
// about 1.2 ns per value for the CELU, against 0.4-0.6 ns here.
void bias_celu_tensor(Tensor& h, const Tensor& bias, double alpha) {
  TORCH_INTERNAL_ASSERT(h.is_contiguous() && bias.is_contiguous() && h.numel() % bias.numel() == 0);
  const int64_t w = h.size(-1), B = bias.numel() / w, n = h.numel() / (B * w);
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "ani_networks_celu", [&] {
    scalar_t* out = h.data_ptr<scalar_t>();
    const scalar_t* b = bias.data_ptr<scalar_t>();
    for (int64_t block = 0; block < B; ++block)
      for (int64_t i = 0; i < n; ++i) bias_celu(out + (block * n + i) * w, b + block * w, w, scalar_t(alpha));
  });
}

// forward; ``saved`` gets each CELU's output (the first (n, M h1), the others (M, n, h))
Tensor networks_forward(const Tensor& x, const Tensor& w1, const Tensor& b1, TensorList weights,
                        TensorList biases, double alpha, std::vector<Tensor>* saved) {
  check(x, w1, b1, weights, biases);
  const int64_t n = x.size(0), M = weights[0].size(0), h1 = w1.size(0) / M;
  Tensor h = at::mm(x, w1.t());
  bias_celu_tensor(h, b1.contiguous(), alpha);
  if (saved) saved->push_back(h);
  Tensor a = h.view({n, M, h1}).transpose(0, 1);  // (M, n, h1), strided
  for (size_t j = 0; j < weights.size(); ++j) {
    if (j + 1 == weights.size()) {
      a = at::baddbmm(biases[j], a, weights[j]);   // the energies, (M, n, 1)
      break;
    }
    a = at::bmm(a, weights[j]);
    bias_celu_tensor(a, biases[j].contiguous(), alpha);
    if (saved) saved->push_back(a);
  }
  return a.view({M, n});
}

// CELU's slope from its output y: 1 where y > 0, y / alpha + 1 = exp(x / alpha) elsewhere;
// that is min(y / alpha + 1, 1), written out in each loop as `s < 1 ? s : 1` (the form GCC
// vectorises; through a function or std::min it leaves a branch in the loop)

// g *= slope(y), both (count,)
template <typename T>
MULTISCALE_INLINE void times_slope_body(T* __restrict__ g, const T* __restrict__ y, int64_t count, T inv_alpha) {
  for (int64_t k = 0; k < count; ++k) {
    T slope = y[k] * inv_alpha + T(1);
    slope = slope < T(1) ? slope : T(1);
    g[k] *= slope;
  }
}

// out (n, M h) = g (M, n, h) transposed to atoms-major, times slope(y (n, M h))
template <typename T>
MULTISCALE_INLINE void times_slope_to_atoms_body(const T* __restrict__ g, const T* __restrict__ y, T* __restrict__ out, int64_t M, int64_t n, int64_t h, T inv_alpha) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t m = 0; m < M; ++m) {
      const T* src = g + (m * n + i) * h;
      const T* sy = y + (i * M + m) * h;
      T* dst = out + (i * M + m) * h;
      for (int64_t k = 0; k < h; ++k) {
        T slope = sy[k] * inv_alpha + T(1);
        slope = slope < T(1) ? slope : T(1);
        dst[k] = src[k] * slope;
      }
    }
}

MULTISCALE_DISPATCH(times_slope)
MULTISCALE_DISPATCH(times_slope_to_atoms)

Tensor networks_backward(const Tensor& grad, const Tensor& w1, TensorList weights, TensorList saved,
                         double alpha) {
  const int64_t M = weights[0].size(0), h1 = w1.size(0) / M, n = grad.size(1);
  Tensor g = grad.reshape({M, n, 1}).to(w1.scalar_type());
  for (int64_t j = static_cast<int64_t>(weights.size()) - 1; j >= 1; --j) {
    g = at::bmm(g, weights[j].transpose(1, 2)).contiguous();  // (M, n, in)
    const Tensor y = saved[j].contiguous();
    AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "ani_networks_backward", [&] {
      times_slope(g.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), g.numel(), scalar_t(1.0 / alpha));
    });
  }
  // the first layer: slope of its CELU, written back in its (n, M h1) layout
  g = at::bmm(g, weights[0].transpose(1, 2)).contiguous();  // (M, n, h1)
  Tensor atoms = at::empty({n, M * h1}, g.options());
  const Tensor y = saved[0].contiguous();
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "ani_networks_backward", [&] {
    times_slope_to_atoms(g.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), atoms.data_ptr<scalar_t>(), M, n, h1,
                         scalar_t(1.0 / alpha));
  });
  return at::mm(atoms, w1);
}

Tensor networks_cpu(const Tensor& x, const Tensor& w1, const Tensor& b1, TensorList weights,
                    TensorList biases, double alpha) {
  return networks_forward(x, w1, b1, weights, biases, alpha, nullptr);
}

Tensor networks_meta(const Tensor& x, const Tensor&, const Tensor&, TensorList weights, TensorList,
                     double) {
  return at::empty_symint({weights[0].sym_size(0), x.sym_size(0)}, x.options());
}

class NetworksFunction : public torch::autograd::Function<NetworksFunction> {
 public:
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& x, const Tensor& w1,
                        const Tensor& b1, TensorList weights, TensorList biases, double alpha) {
    for (const Tensor& w : {w1, b1})
      TORCH_CHECK(!w.requires_grad(), "multiscale::ani_networks takes constant weights (an exported "
                  "model's inference form); train the Python model");
    for (TensorList list : {weights, biases})
      for (const Tensor& w : list)
        TORCH_CHECK(!w.requires_grad(), "multiscale::ani_networks takes constant weights (an exported "
                    "model's inference form); train the Python model");
    at::AutoDispatchBelowADInplaceOrView guard;
    std::vector<Tensor> saved;
    const Tensor out = networks_forward(x, w1, b1, weights, biases, alpha, &saved);
    std::vector<Tensor> keep{w1};
    keep.insert(keep.end(), weights.begin(), weights.end());
    keep.insert(keep.end(), saved.begin(), saved.end());
    ctx->save_for_backward(keep);
    ctx->saved_data["layers"] = static_cast<int64_t>(weights.size());
    ctx->saved_data["alpha"] = alpha;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    TORCH_CHECK(!at::GradMode::is_enabled(),
                "multiscale::ani_networks has no second derivative (create_graph=True, e.g. forces "
                "in a training loss): train the Python model and export it afterwards");
    const auto all = ctx->get_saved_variables();
    const int64_t layers = ctx->saved_data["layers"].toInt();
    const std::vector<Tensor> weights(all.begin() + 1, all.begin() + 1 + layers);
    const std::vector<Tensor> saved(all.begin() + 1 + layers, all.end());
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("multiscale::ani_networks_backward", "")
                         .typed<Tensor(const Tensor&, const Tensor&, TensorList, TensorList, double)>();
    Tensor gx = op.call(grads[0], all[0], weights, saved, ctx->saved_data["alpha"].toDouble());
    // one gradient per input tensor (x, w1, b1, every weight and bias) and one for alpha
    torch::autograd::variable_list out(4 + 2 * layers);
    out[0] = gx;
    return out;
  }
};

Tensor networks_autograd(const Tensor& x, const Tensor& w1, const Tensor& b1, TensorList weights,
                         TensorList biases, double alpha) {
  return NetworksFunction::apply(x, w1, b1, weights, biases, alpha);
}

Tensor networks_backward_meta(const Tensor& grad, const Tensor& w1, TensorList, TensorList, double) {
  return at::empty_symint({grad.sym_size(1), w1.sym_size(1)}, grad.options());
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(multiscale, m) {
  m.def("ani_networks(Tensor x, Tensor w1, Tensor b1, Tensor[] weights, Tensor[] biases, float alpha) -> Tensor");
  m.def("ani_networks_backward(Tensor grad, Tensor w1, Tensor[] weights, Tensor[] activations, "
        "float alpha) -> Tensor");
}

TORCH_LIBRARY_IMPL(multiscale, CPU, m) {
  m.impl("ani_networks", networks_cpu);
  m.impl("ani_networks_backward", networks_backward);
}

TORCH_LIBRARY_IMPL(multiscale, Meta, m) {
  m.impl("ani_networks", networks_meta);
  m.impl("ani_networks_backward", networks_backward_meta);
}

TORCH_LIBRARY_IMPL(multiscale, Autograd, m) {
  m.impl("ani_networks", networks_autograd);
}
