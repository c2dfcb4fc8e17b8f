// exp, log, cos and sin of many doubles at once: SLEEF's AVX2 kernels (1 ulp), which libtorch_cpu
// exports and torch's own CPU ops use, where the CPU has AVX2 and FMA; the C library's
// otherwise.  Four times the throughput of a loop of std::exp on an AVX2 core.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <utility>

extern "C" {
__m256d Sleef_expd4_u10avx2(__m256d);
__m256d Sleef_logd4_u10avx2(__m256d);
__m256d Sleef_cosd4_u10avx2(__m256d);
__m256d Sleef_sind4_u10avx2(__m256d);
}

namespace multiscale_ops {

inline bool have_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

#define MULTISCALE_VECTOR_MAP(name, sleef, scalar)                                           \
  __attribute__((target("avx2,fma"))) inline void name##_avx2(const double* x, double* y, int64_t n) { \
    int64_t k = 0;                                                                            \
    for (; k + 4 <= n; k += 4) _mm256_storeu_pd(y + k, sleef(_mm256_loadu_pd(x + k)));      \
    for (; k < n; ++k) y[k] = scalar(x[k]);                                                   \
  }                                                                                           \
  /* y[k] = name(x[k]), k < n (y may be x) */                                                 \
  inline void name##_of(const double* x, double* y, int64_t n) {                               \
    if (have_avx2()) return name##_avx2(x, y, n);                                             \
    for (int64_t k = 0; k < n; ++k) y[k] = scalar(x[k]);                                      \
  }

MULTISCALE_VECTOR_MAP(exp, Sleef_expd4_u10avx2, std::exp)
MULTISCALE_VECTOR_MAP(log, Sleef_logd4_u10avx2, std::log)
MULTISCALE_VECTOR_MAP(cos, Sleef_cosd4_u10avx2, std::cos)
MULTISCALE_VECTOR_MAP(sin, Sleef_sind4_u10avx2, std::sin)

inline void exp_inplace(double* x, int64_t n) { exp_of(x, x, n); }
inline void log_inplace(double* x, int64_t n) { log_of(x, x, n); }

}  // namespace multiscale_ops

// A kernel's helpers are inlined into it, so they are compiled for its target.
#define MULTISCALE_INLINE inline __attribute__((always_inline))

// name(args) runs name_body (a MULTISCALE_INLINE function template) compiled for AVX2 + FMA
// where the CPU has them, for any x86-64 otherwise.  (GCC's target_clones("arch=haswell")
// would ask whether the CPU *is* a Haswell, and newer ones are not.)
#define MULTISCALE_DISPATCH(name)                                                        \
  template <typename... Args>                                                            \
  __attribute__((target("avx2,fma"))) void name##_avx2(Args&&... args) {                 \
    name##_body(std::forward<Args>(args)...);                                            \
  }                                                                                      \
  template <typename... Args>                                                            \
  void name(Args&&... args) {                                                            \
    if (multiscale_ops::have_avx2()) return name##_avx2(std::forward<Args>(args)...);    \
    name##_body(std::forward<Args>(args)...);                                            \
  }

namespace multiscale_ops {

}  // namespace multiscale_ops
