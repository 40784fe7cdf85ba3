// Measures what the roofline needs: read bandwidth (all threads streaming a buffer far larger than the
// caches) and float32 FMA / bfloat16 dot-product peaks (independent register chains). See machine.h.
#include "profile/machine.h"

#include <omp.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace opdev::profile {

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

typedef float v16f __attribute__((vector_size(64)));

// Sum of a range of floats with 4 independent vector accumulators (read-only stream).
__attribute__((target_clones("avx512f", "avx2", "default"))) float read_range(const float* p, size_t n) {
  v16f a = {}, b = {}, c = {}, d = {};
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    v16f x, y, z, w;
    std::memcpy(&x, p + i, 64);
    std::memcpy(&y, p + i + 16, 64);
    std::memcpy(&z, p + i + 32, 64);
    std::memcpy(&w, p + i + 48, 64);
    a += x;
    b += y;
    c += z;
    d += w;
  }
  v16f s = a + b + c + d;
  float r = 0;
  for (int k = 0; k < 16; ++k) r += s[k];
  for (; i < n; ++i) r += p[i];
  return r;
}

// FMA throughput: 12 independent chains of fused multiply-adds; returns flops per iteration via *flops.
float fma_loop_generic(long iters, float seed, double* flops) {
  float acc[12];
  for (int k = 0; k < 12; ++k) acc[k] = seed + float(k);
  for (long i = 0; i < iters; ++i)
    for (int k = 0; k < 12; ++k) acc[k] = acc[k] * 0.999999f + 1e-7f;
  *flops = 2.0 * 12;
  float r = 0;
  for (float a : acc) r += a;
  return r;
}

#if defined(__x86_64__)
__attribute__((target("avx512f,fma"))) float fma_loop_avx512(long iters, float seed, double* flops) {
  __m512 acc[12];
  for (int k = 0; k < 12; ++k) acc[k] = _mm512_set1_ps(seed + float(k));
  const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
  for (long i = 0; i < iters; ++i)
    for (int k = 0; k < 12; ++k) acc[k] = _mm512_fmadd_ps(acc[k], m, a);
  *flops = 2.0 * 16 * 12;
  float r = 0;
  for (int k = 0; k < 12; ++k) r += _mm512_reduce_add_ps(acc[k]);
  return r;
}

__attribute__((target("avx2,fma"))) float fma_loop_avx2(long iters, float seed, double* flops) {
  __m256 acc[12];
  for (int k = 0; k < 12; ++k) acc[k] = _mm256_set1_ps(seed + float(k));
  const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
  for (long i = 0; i < iters; ++i)
    for (int k = 0; k < 12; ++k) acc[k] = _mm256_fmadd_ps(acc[k], m, a);
  *flops = 2.0 * 8 * 12;
  alignas(32) float t[8];
  float r = 0;
  for (int k = 0; k < 12; ++k) {
    _mm256_store_ps(t, acc[k]);
    for (float x : t) r += x;
  }
  return r;
}
#endif

float fma_loop(long iters, float seed, double* flops) {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f")) return fma_loop_avx512(iters, seed, flops);
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return fma_loop_avx2(iters, seed, flops);
#endif
  return fma_loop_generic(iters, seed, flops);
}

#if defined(__x86_64__)
// vdpbf16ps: 16 lanes x 2 products x 2 flops per instruction, 12 chains.
__attribute__((target("avx512f,avx512bf16"))) float bf16_loop(long iters) {
  __m512 acc[12];
  for (int k = 0; k < 12; ++k) acc[k] = _mm512_set1_ps(float(k));
  const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3F80), y = (__m512bh)_mm512_set1_epi16(0x3380);
  for (long i = 0; i < iters; ++i)
    for (int k = 0; k < 12; ++k) acc[k] = _mm512_dpbf16_ps(acc[k], x, y);
  float r = 0;
  for (int k = 0; k < 12; ++k) r += _mm512_reduce_add_ps(acc[k]);
  return r;
}
#endif

#if defined(__x86_64__)
// vpdpbusd: 16 lanes x 4 products x 2 ops per instruction, 12 chains.
__attribute__((target("avx512f,avx512vnni"))) float i8_loop(long iters) {
  __m512i acc[12];
  for (int k = 0; k < 12; ++k) acc[k] = _mm512_set1_epi32(k);
  const __m512i x = _mm512_set1_epi8(3), y = _mm512_set1_epi8(-2);
  for (long i = 0; i < iters; ++i)
    for (int k = 0; k < 12; ++k) acc[k] = _mm512_dpbusd_epi32(acc[k], x, y);
  // The lanes wrap (vpdpbusd is not saturating); sum them as unsigned so the sink's arithmetic wraps too
  // (a signed sum, or _mm512_reduce_add_epi32, overflows: undefined behaviour).
  alignas(64) uint32_t lanes[16];
  uint32_t r = 0;
  for (int k = 0; k < 12; ++k) {
    _mm512_store_si512(lanes, acc[k]);
    for (uint32_t v : lanes) r += v;
  }
  return float(r);
}
#endif

volatile float g_sink;

}  // namespace

double measure_read_gbps(int threads, Effort effort) {
  const bool quick = effort == Effort::Quick;
  if (threads < 1) threads = 1;
  // 1 GiB (quick: 256 MiB, still 8x the L3 of the machines we run on), first-touched by the threads that
  // read it, best of 5 (3) passes.
  const size_t n = (size_t(1) << (quick ? 28 : 30)) / sizeof(float);
  const int read_passes = quick ? 3 : 5;
  float* buf = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
  if (!buf) return 0;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (long i = 0; i < long(n); ++i) buf[i] = 1.0f;
  double best = 1e30;
  for (int pass = 0; pass < read_passes; ++pass) {
    float total = 0;
    double t0 = now();
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
      const size_t t = size_t(omp_get_thread_num()), T = size_t(omp_get_num_threads());
      const size_t b = n * t / T, e = n * (t + 1) / T;
      total += read_range(buf + b, e - b);
    }
    double dt = now() - t0;
    g_sink = total;
    if (dt < best) best = dt;
  }
  std::free(buf);
  return double(n * sizeof(float)) / best / 1e9;
}

Machine measure_machine(int threads, Effort effort) {
  const bool quick = effort == Effort::Quick;
  if (threads < 1) threads = 1;
  Machine m;
  m.threads = threads;
#if defined(__x86_64__)
  __builtin_cpu_init();
  m.simd = __builtin_cpu_supports("avx512f") ? "avx512" : __builtin_cpu_supports("avx2") ? "avx2" : "sse2";
#else
  m.simd = "generic";
#endif
  m.read_gbps = measure_read_gbps(threads, effort);
  const int fma_passes = quick ? 2 : 3;
  const long iters = quick ? 4000000 : 20000000;
  // FMA peak.
  {
    double best = 1e30, flops = 0;
    for (int pass = 0; pass < fma_passes; ++pass) {
      double t0 = now();
#pragma omp parallel num_threads(threads)
      {
        double f;
        g_sink = fma_loop(iters, float(omp_get_thread_num()), &f);
#pragma omp master
        flops = f;
      }
      double dt = now() - t0;
      if (dt < best) best = dt;
    }
    m.f32_gflops = flops * double(iters) * threads / best / 1e9;
  }
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512bf16")) {
    double best = 1e30;
    for (int pass = 0; pass < fma_passes; ++pass) {
      double t0 = now();
#pragma omp parallel num_threads(threads)
      g_sink = bf16_loop(iters);
      double dt = now() - t0;
      if (dt < best) best = dt;
    }
    m.bf16_gflops = 4.0 * 16 * 12 * double(iters) * threads / best / 1e9;
  }
  if (__builtin_cpu_supports("avx512vnni")) {
    double best = 1e30;
    for (int pass = 0; pass < fma_passes; ++pass) {
      double t0 = now();
#pragma omp parallel num_threads(threads)
      g_sink = i8_loop(iters);
      double dt = now() - t0;
      if (dt < best) best = dt;
    }
    m.i8_gops = 8.0 * 16 * 12 * double(iters) * threads / best / 1e9;
  }
#endif
  return m;
}

}  // namespace opdev::profile
