// cuda: rope, rope_cache.
//
// rope: in place on q [T, Hq, D] and k [T, Hk, D] (token and head dimensions may be strided: q and k are
// usually views of one fused qkv buffer). One block per token (grid-stride over tokens): the position
// (int32 or int64, on the device, strided) is read once per token; a position outside [0, P) is never
// dereferenced: the token's q and k are left unchanged and the op's bit is set in the context's error
// word (OPDEV_STATUS_OUT_OF_RANGE at the next host synchronisation). The block's threads walk the
// token's (head, chunk) items, q heads first, then k heads. A chunk is a run of rotation pairs:
// - NeoX (pairs i, i + rot/2): 16 bytes of the dtype from each half (kVec<T> pairs) when rot/2, the base
//   pointers and the strides allow 16-byte accesses, else one pair;
// - GPT-J (pairs 2i, 2i + 1): 16 bytes of adjacent elements (kVec<T> / 2 pairs) when rot, the pointers
//   and the strides allow, else one pair.
// cos / sin come from the token's float32 cache row (read through the read-only cache; every head of the
// token reads the same row, so it stays in L1). Math in float32, one rounding at the store, as the cpu
// backend: x1' = x1 cos - x2 sin, x2' = x2 cos + x1 sin. Dimensions past rot_dim are not touched.
//
// rope_cache: one thread per table entry pair (p, i) computing inv_freq_i, the angle p * inv_freq_i and
// its cos / sin in float64 (like the cpu and ref backends; float32 angles would be off by ~p * 2^-24
// radians), times the YaRN attention factor, rounded once to float32. The scaling parameters (YaRN
// correction range, attention factor) are derived on the host exactly as the cpu backend does. It runs
// once at model load, so the float64 math's cost does not matter.
#include <algorithm>
#include <cmath>

#include "backends/cuda/cuda_common.cuh"

namespace opdev::cuda {

namespace {

template <class T, int W>
struct alignas(sizeof(T) * W) Pack {
  T v[W];
};

// N elements at p as floats: one aligned N-element access (kVec) or N scalar accesses.
template <class T, int N, bool kVec>
__device__ __forceinline__ void load_n(const T* p, float (&out)[N]) {
  if constexpr (kVec) {
    const Pack<T, N> v = *reinterpret_cast<const Pack<T, N>*>(p);
#pragma unroll
    for (int i = 0; i < N; ++i) out[i] = to_float(v.v[i]);
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i) out[i] = to_float(p[i]);
  }
}

template <class T, int N, bool kVec>
__device__ __forceinline__ void store_n(T* p, const float (&in)[N]) {
  if constexpr (kVec) {
    Pack<T, N> v;
#pragma unroll
    for (int i = 0; i < N; ++i) v.v[i] = from_float<T>(in[i]);
    *reinterpret_cast<Pack<T, N>*>(p) = v;
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i) p[i] = from_float<T>(in[i]);
  }
}

template <class T>
struct RopeParams {
  T* q;
  T* k;
  int64_t q_t, q_h, k_t, k_h;  // strides in elements
  const void* pos;
  bool pos64;
  int64_t pos_stride;
  const float* cache;          // [P, rot]
  int64_t P, tokens, rot, half;
  int Hq;
  int iph;                     // items (chunks of NP pairs) per head
  int items;                   // items per token: (Hq + Hk) * iph
  unsigned* error_word;
};

// NP pairs per item; kVec: one 16-byte access per half (NeoX) or for the item (GPT-J).
template <class T, int NP, bool kNeox, bool kVec>
__global__ void __launch_bounds__(256) rope_kernel(RopeParams<T> p) {
  for (int64_t t = blockIdx.x; t < p.tokens; t += gridDim.x) {
    const int64_t po = t * p.pos_stride;
    const int64_t pos = p.pos64 ? static_cast<const int64_t*>(p.pos)[po] : int64_t(static_cast<const int32_t*>(p.pos)[po]);
    if (pos < 0 || pos >= p.P) {
      if (threadIdx.x == 0) report_bad_index(p.error_word, OPDEV_OP_ROPE);
      continue;
    }
    const float* cs = p.cache + pos * p.rot;
    for (int item = threadIdx.x; item < p.items; item += blockDim.x) {
      const int head = item / p.iph;
      const int64_t i0 = int64_t(item - head * p.iph) * NP;  // first pair of the item
      T* x = head < p.Hq ? p.q + t * p.q_t + int64_t(head) * p.q_h : p.k + t * p.k_t + int64_t(head - p.Hq) * p.k_h;
      float c[NP], s[NP];
#pragma unroll
      for (int j = 0; j < NP; ++j) {
        c[j] = __ldg(cs + i0 + j);
        s[j] = __ldg(cs + p.half + i0 + j);
      }
      if constexpr (kNeox) {
        float x1[NP], x2[NP];
        load_n<T, NP, kVec>(x + i0, x1);
        load_n<T, NP, kVec>(x + p.half + i0, x2);
        float o1[NP], o2[NP];
#pragma unroll
        for (int j = 0; j < NP; ++j) {
          o1[j] = x1[j] * c[j] - x2[j] * s[j];
          o2[j] = x2[j] * c[j] + x1[j] * s[j];
        }
        store_n<T, NP, kVec>(x + i0, o1);
        store_n<T, NP, kVec>(x + p.half + i0, o2);
      } else {
        float v[2 * NP], o[2 * NP];
        load_n<T, 2 * NP, kVec>(x + 2 * i0, v);
#pragma unroll
        for (int j = 0; j < NP; ++j) {
          o[2 * j] = v[2 * j] * c[j] - v[2 * j + 1] * s[j];
          o[2 * j + 1] = v[2 * j + 1] * c[j] + v[2 * j] * s[j];
        }
        store_n<T, 2 * NP, kVec>(x + 2 * i0, o);
      }
    }
  }
}

template <class T, int NP, bool kNeox, bool kVec>
void launch_rope(ExecContext& ex, RopeParams<T> p, int heads) {
  p.iph = int(p.half / NP);
  p.items = heads * p.iph;
  const int threads = int(std::min<int64_t>(256, (int64_t(p.items) + 31) / 32 * 32));
  const unsigned grid = unsigned(std::min<int64_t>(p.tokens, int64_t(1) << 20));
  rope_kernel<T, NP, kNeox, kVec><<<grid, threads, 0, stream(ex)>>>(p);
  OPDEV_CUDA_CHECK_LAUNCH();
}

template <class T>
void run_rope(ExecContext& ex, const rope_args& a) {
  RopeParams<T> p{};
  const bool has_k = a.k.present;
  p.q = a.q.ptr<T>();
  p.k = has_k ? a.k.ptr<T>() : nullptr;
  p.q_t = a.q.strides[0];
  p.q_h = a.q.strides[1];
  p.k_t = has_k ? a.k.strides[0] : 0;
  p.k_h = has_k ? a.k.strides[1] : 0;
  p.pos = a.positions.data;
  p.pos64 = a.positions.dtype == DType::I64;
  p.pos_stride = a.positions.strides[0];
  p.cache = a.cos_sin_cache.ptr<const float>();
  p.P = a.cos_sin_cache.size(0);
  p.rot = a.cos_sin_cache.size(1);
  p.half = p.rot / 2;
  p.tokens = a.q.size(0);
  p.error_word = state(ex).error_word;
  const int64_t Hq = a.q.size(1), Hk = has_k ? a.k.size(1) : 0;
  if (p.tokens == 0 || p.half == 0 || Hq + Hk == 0) return;
  // Per-token work items are counted in int.
  if ((Hq + Hk) * p.half > (int64_t(1) << 30))
    fail(OPDEV_STATUS_UNSUPPORTED, "cuda: rope: supports (Hq + Hk) * rot_dim / 2 <= 2^30, got (", Hq, " + ", Hk, ") * ", p.half);
  p.Hq = int(Hq);
  const int heads = int(Hq + Hk);

  // 16-byte accesses need every row start 16-byte aligned (strides of size-1 dimensions are never used).
  constexpr int V = kVec<T>;
  auto strides_ok = [&](const TensorView& v) {
    return reinterpret_cast<uintptr_t>(v.data) % 16 == 0 && (v.shape[0] <= 1 || v.strides[0] % V == 0) &&
           (v.shape[1] <= 1 || v.strides[1] % V == 0);
  };
  const bool aligned = strides_ok(a.q) && (!has_k || strides_ok(a.k));
  if (a.is_neox) {
    if (aligned && p.half % V == 0) launch_rope<T, V, true, true>(ex, p, heads);
    else launch_rope<T, 1, true, false>(ex, p, heads);
  } else {
    if (aligned && p.rot % V == 0) launch_rope<T, V / 2, false, true>(ex, p, heads);
    else launch_rope<T, 1, false, false>(ex, p, heads);
  }
}

// ---- rope_cache ----

struct RopeCacheParams {
  float* out;
  int64_t P, rot, half;
  double log_theta;
  int type;             // opdev_rope_scaling_type
  double factor;
  double lo, width;     // YaRN ramp: weight of interpolation min(1, max(0, (i - lo) / width))
  double scale;         // YaRN attention factor (1 otherwise)
};

__global__ void __launch_bounds__(256) rope_cache_kernel(RopeCacheParams p) {
  const int64_t n = p.P * p.half;
  for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < n; idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t pp = idx / p.half, i = idx - pp * p.half;
    // theta^(-2i/rot) = exp(-2i ln(theta) / rot), as the cpu backend.
    double inv = exp(-double(2 * i) * p.log_theta / double(p.rot));
    if (p.type == OPDEV_ROPE_SCALING_LINEAR) {
      inv /= p.factor;
    } else if (p.type == OPDEV_ROPE_SCALING_YARN) {
      const double w = fmin(1.0, fmax(0.0, (double(i) - p.lo) / p.width));
      inv = inv * (1.0 - w) + (inv / p.factor) * w;
    }
    double s, c;
    sincos(double(pp) * inv, &s, &c);
    p.out[pp * p.rot + i] = float(c * p.scale);
    p.out[pp * p.rot + p.half + i] = float(s * p.scale);
  }
}

// Hugging Face's get_mscale: 0.1 * m * ln(s) + 1 above s = 1.
double mscale_of(double s, double m) { return s > 1 ? 1.0 + 0.1 * m * std::log(s) : 1.0; }

}  // namespace

opdev_status rope(ExecContext& ex, const rope_args& a) {
  OPDEV_CUDA_FLOAT_SWITCH(a.q.dtype, T, { run_rope<T>(ex, a); });
  return OPDEV_STATUS_SUCCESS;
}

opdev_status rope_cache(ExecContext& ex, const rope_cache_args& a) {
  RopeCacheParams p{};
  p.out = a.cos_sin_cache.ptr<float>();
  p.P = a.cos_sin_cache.size(0);
  p.rot = a.cos_sin_cache.size(1);
  p.half = p.rot / 2;
  if (p.P == 0 || p.half == 0) return OPDEV_STATUS_SUCCESS;
  p.log_theta = std::log(a.theta);
  const opdev_rope_scaling& s = a.scaling;
  p.type = int(s.type);
  p.factor = s.factor;
  p.scale = 1.0;
  p.lo = 0.0;
  p.width = 1.0;
  if (s.type == OPDEV_ROPE_SCALING_YARN) {
    // The cpu backend's derivation (transformers' _compute_yarn_parameters).
    if (s.attention_factor > 0) p.scale = s.attention_factor;
    else if (s.mscale != 0 && s.mscale_all_dim != 0) p.scale = mscale_of(s.factor, s.mscale) / mscale_of(s.factor, s.mscale_all_dim);
    else p.scale = mscale_of(s.factor, 1.0);
    // The rotary dimension that completes `turns` rotations over the original context length.
    const double two_pi = 6.283185307179586476925;
    auto dim_for = [&](double turns) {
      return double(p.rot) * std::log(double(s.original_max_position_embeddings) / (two_pi * turns)) / (2.0 * p.log_theta);
    };
    double lo = dim_for(s.beta_fast), hi = dim_for(s.beta_slow);
    if (s.truncate) {
      lo = std::floor(lo);
      hi = std::ceil(hi);
    }
    lo = std::max(0.0, lo);
    hi = std::min(double(p.rot - 1), hi);
    p.lo = lo;
    p.width = lo == hi ? 0.001 : hi - lo;
  }
  rope_cache_kernel<<<grid_for(p.P * p.half, 256), 256, 0, stream(ex)>>>(p);
  OPDEV_CUDA_CHECK_LAUNCH();
  return OPDEV_STATUS_SUCCESS;
}

}  // namespace opdev::cuda
