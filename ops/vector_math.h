// exp, log, cos and sin of many doubles at once (exp of floats too): SLEEF's AVX-512 or AVX2
// kernels (1 ulp), which libtorch_cpu exports and torch's own CPU ops use, where the CPU has
// them; the C library's otherwise.  AVX2 has four times the throughput of a loop of std::exp;
// AVX-512 twice that again for exp, 2.7 times for log (measured).  And MULTISCALE_DISPATCH,
// which compiles a kernel for each instruction set.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>

extern "C" {
__m256d Sleef_expd4_u10avx2(__m256d);
__m256d Sleef_logd4_u10avx2(__m256d);
__m256d Sleef_cosd4_u10avx2(__m256d);
__m256d Sleef_sind4_u10avx2(__m256d);
__m256 Sleef_expf8_u10avx2(__m256);
__m512d Sleef_expd8_u10avx512f(__m512d);
__m512d Sleef_logd8_u10avx512f(__m512d);
__m512d Sleef_cosd8_u10avx512f(__m512d);
__m512d Sleef_sind8_u10avx512f(__m512d);
__m512 Sleef_expf16_u10avx512f(__m512);
}

namespace multiscale_ops {

// MULTISCALE_OPS_ISA=avx2 or =generic caps the instruction set the kernels use below what the
// CPU has (tests run every path on one machine: tests/test_native_ops.py)
inline int isa_cap() {
  static const int cap = [] {
    const char* env = std::getenv("MULTISCALE_OPS_ISA");
    if (!env) return 2;
    const std::string isa(env);
    return isa == "generic" ? 0 : isa == "avx2" ? 1 : 2;
  }();
  return cap;
}

inline bool have_avx2() {
  static const bool yes = isa_cap() >= 1 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

// avx512vl and dq besides f: GCC uses them for 256-bit and 64-bit-integer work in the kernels
inline bool have_avx512() {
  static const bool yes = isa_cap() >= 2 && __builtin_cpu_supports("avx512f") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  return yes;
}

#define MULTISCALE_VECTOR_MAP(name, sleef4, sleef8, scalar)                                   \
  __attribute__((target("avx2,fma"))) inline void name##_avx2(const double* x, double* y, int64_t n) { \
    int64_t k = 0;                                                                            \
    for (; k + 4 <= n; k += 4) _mm256_storeu_pd(y + k, sleef4(_mm256_loadu_pd(x + k)));     \
    for (; k < n; ++k) y[k] = scalar(x[k]);                                                   \
  }                                                                                           \
  __attribute__((target("avx512f"))) inline void name##_avx512(const double* x, double* y, int64_t n) { \
    int64_t k = 0;                                                                            \
    for (; k + 8 <= n; k += 8) _mm512_storeu_pd(y + k, sleef8(_mm512_loadu_pd(x + k)));     \
    for (; k < n; ++k) y[k] = scalar(x[k]);                                                   \
  }                                                                                           \
  /* y[k] = name(x[k]), k < n (y may be x) */                                                 \
  inline void name##_of(const double* x, double* y, int64_t n) {                               \
    if (have_avx512()) return name##_avx512(x, y, n);                                         \
    if (have_avx2()) return name##_avx2(x, y, n);                                             \
    for (int64_t k = 0; k < n; ++k) y[k] = scalar(x[k]);                                      \
  }

MULTISCALE_VECTOR_MAP(exp, Sleef_expd4_u10avx2, Sleef_expd8_u10avx512f, std::exp)
MULTISCALE_VECTOR_MAP(log, Sleef_logd4_u10avx2, Sleef_logd8_u10avx512f, std::log)
MULTISCALE_VECTOR_MAP(cos, Sleef_cosd4_u10avx2, Sleef_cosd8_u10avx512f, std::cos)
MULTISCALE_VECTOR_MAP(sin, Sleef_sind4_u10avx2, Sleef_sind8_u10avx512f, std::sin)

// exp of floats (the CELU of float32 networks): SLEEF's 16- or 8-wide kernels
__attribute__((target("avx2,fma"))) inline void exp_avx2(const float* x, float* y, int64_t n) {
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) _mm256_storeu_ps(y + k, Sleef_expf8_u10avx2(_mm256_loadu_ps(x + k)));
  for (; k < n; ++k) y[k] = std::exp(x[k]);
}
__attribute__((target("avx512f"))) inline void exp_avx512(const float* x, float* y, int64_t n) {
  int64_t k = 0;
  for (; k + 16 <= n; k += 16) _mm512_storeu_ps(y + k, Sleef_expf16_u10avx512f(_mm512_loadu_ps(x + k)));
  for (; k < n; ++k) y[k] = std::exp(x[k]);
}
inline void exp_of(const float* x, float* y, int64_t n) {
  if (have_avx512()) return exp_avx512(x, y, n);
  if (have_avx2()) return exp_avx2(x, y, n);
  for (int64_t k = 0; k < n; ++k) y[k] = std::exp(x[k]);
}

inline void exp_inplace(double* x, int64_t n) { exp_of(x, x, n); }
inline void log_inplace(double* x, int64_t n) { log_of(x, x, n); }

}  // namespace multiscale_ops

// A kernel's helpers are inlined into it, so they are compiled for its target.
#define MULTISCALE_INLINE inline __attribute__((always_inline))

// name(args) runs name_body (a MULTISCALE_INLINE function template) compiled for AVX-512 or
// AVX2 + FMA where the CPU has them, for any x86-64 otherwise.  512-bit vectors: GCC's default
// for AVX-512 targets is 256; the AEV and CELU kernels run 3-25 % faster with 512 (measured).
// (GCC's target_clones("arch=haswell") would ask whether the CPU *is* a Haswell, and newer
// ones are not.)
#define MULTISCALE_AVX512 "avx512f,avx512vl,avx512dq,avx2,fma,prefer-vector-width=512"
#define MULTISCALE_DISPATCH(name)                                                        \
  template <typename... Args>                                                            \
  __attribute__((target("avx2,fma"))) void name##_avx2(Args&&... args) {                 \
    name##_body(std::forward<Args>(args)...);                                            \
  }                                                                                      \
  template <typename... Args>                                                            \
  __attribute__((target(MULTISCALE_AVX512))) void name##_avx512(Args&&... args) {        \
    name##_body(std::forward<Args>(args)...);                                            \
  }                                                                                      \
  template <typename... Args>                                                            \
  void name(Args&&... args) {                                                            \
    if (multiscale_ops::have_avx512()) return name##_avx512(std::forward<Args>(args)...); \
    if (multiscale_ops::have_avx2()) return name##_avx2(std::forward<Args>(args)...);    \
    name##_body(std::forward<Args>(args)...);                                            \
  }
