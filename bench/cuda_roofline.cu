// The GPU roofline of `opdev bench --backend cuda` and `opdev bench-model --backend cuda`, measured in the
// same run as the cases, with the CUDA runtime and cuBLAS directly (its own stream and buffers, nothing of
// opdev):
//  - copy bandwidth: cudaMemcpyAsync device to device of a 1 GiB buffer (256 MiB quick), each copy timed
//    with CUDA events, best of 10 (5 quick) after 2 warm-ups; the bytes are read + written (2 x size), as an
//    op's cost formula counts them, so "fraction of copy bandwidth" compares like with like.
//  - GEMM rates: cublasGemmEx 8192^3 in bfloat16 and float16 (float32 accumulation, CUBLAS_COMPUTE_32F,
//    output in the input dtype, as torch.matmul does), 4096^3 in float32 (CUBLAS_COMPUTE_32F: no TF32) and
//    8192^3 int8 -> int32 (CUBLAS_COMPUTE_32I; optional: 0 where cuBLAS refuses it), on pseudo-random data
//    (zeros run faster), best of several after warm-ups.
// About 0.3 s in full.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "cuda_roofline.h"

namespace opdev::bench::cuda {

namespace {

void check_cuda(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  cudaGetLastError();
  throw std::runtime_error(std::string("cuda roofline: ") + what + " failed with " + cudaGetErrorName(e) + " (" +
                           cudaGetErrorString(e) + ")");
}
#define RF_CUDA(call) check_cuda((call), #call)

std::string blas_error(cublasStatus_t s, const char* what) {
  return std::string(what) + " returned " + cublasGetStatusName(s);
}

struct DeviceBuffer {
  void* p = nullptr;
  explicit DeviceBuffer(size_t n) { RF_CUDA(cudaMalloc(&p, n)); }
  ~DeviceBuffer() {
    if (p) cudaFree(p);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

struct Stream {
  cudaStream_t s = nullptr;
  Stream() { RF_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking)); }
  ~Stream() {
    if (s) {
      cudaStreamSynchronize(s);
      cudaStreamDestroy(s);
    }
  }
};

struct Blas {
  cublasHandle_t h = nullptr;
  explicit Blas(cudaStream_t s) {
    const cublasStatus_t st = cublasCreate(&h);
    if (st != CUBLAS_STATUS_SUCCESS) throw std::runtime_error("cuda roofline: " + blas_error(st, "cublasCreate"));
    cublasSetStream(h, s);
  }
  ~Blas() {
    if (h) cublasDestroy(h);
  }
};

// Times each of `reps` calls of enqueue() (one operation on s) with a pair of events, after `warmup`
// untimed calls; returns the shortest time in seconds.
template <class F>
double best_seconds(cudaStream_t s, int warmup, int reps, F enqueue) {
  cudaEvent_t a = nullptr, b = nullptr;
  RF_CUDA(cudaEventCreate(&a));
  RF_CUDA(cudaEventCreate(&b));
  double best = 1e30;
  try {
    for (int i = 0; i < warmup; ++i) enqueue();
    for (int i = 0; i < reps; ++i) {
      RF_CUDA(cudaEventRecord(a, s));
      enqueue();
      RF_CUDA(cudaEventRecord(b, s));
      RF_CUDA(cudaEventSynchronize(b));
      float ms = 0;
      RF_CUDA(cudaEventElapsedTime(&ms, a, b));
      best = std::min(best, double(ms) * 1e-3);
    }
  } catch (...) {
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    throw;
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return best;
}

__device__ __forceinline__ uint32_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return uint32_t(x);
}

template <class T>
__device__ __forceinline__ T from_unit(float u);  // u in [-1, 1)
template <>
__device__ __forceinline__ float from_unit<float>(float u) { return u; }
template <>
__device__ __forceinline__ __nv_bfloat16 from_unit<__nv_bfloat16>(float u) { return __float2bfloat16_rn(u); }
template <>
__device__ __forceinline__ __half from_unit<__half>(float u) { return __float2half_rn(u); }
template <>
__device__ __forceinline__ int8_t from_unit<int8_t>(float u) { return int8_t(__float2int_rn(u * 127.0f)); }

template <class T>
__global__ void fill_kernel(T* p, size_t n, uint64_t seed) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    p[i] = from_unit<T>(float(mix(seed * 0x9e3779b97f4a7c15ull + i)) * (2.0f / 4294967296.0f) - 1.0f);
}

template <class T>
void fill(void* p, size_t n, uint64_t seed, cudaStream_t s) {
  fill_kernel<T><<<1024, 256, 0, s>>>(static_cast<T*>(p), n, seed);
  RF_CUDA(cudaGetLastError());
}

template <class T>
constexpr cudaDataType_t data_type();
template <>
constexpr cudaDataType_t data_type<float>() { return CUDA_R_32F; }
template <>
constexpr cudaDataType_t data_type<__nv_bfloat16>() { return CUDA_R_16BF; }
template <>
constexpr cudaDataType_t data_type<__half>() { return CUDA_R_16F; }

// C[n, n] = A[n, n] B[n, n] in T with float32 accumulation; GFLOP/s of the best rep (0 and a note when
// cuBLAS refuses).
template <class T>
double gemm_gflops(cublasHandle_t h, cudaStream_t s, int n, int reps, std::string& notes, const char* label) {
  const size_t elems = size_t(n) * size_t(n);
  DeviceBuffer a(elems * sizeof(T)), b(elems * sizeof(T)), c(elems * sizeof(T));
  fill<T>(a.p, elems, 1, s);
  fill<T>(b.p, elems, 2, s);
  const float alpha = 1.0f, beta = 0.0f;
  cublasStatus_t st = CUBLAS_STATUS_SUCCESS;
  auto run = [&] {
    const cublasStatus_t r = cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, a.p, data_type<T>(), n, b.p, data_type<T>(),
                                          n, &beta, c.p, data_type<T>(), n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (r != CUBLAS_STATUS_SUCCESS) st = r;
  };
  run();
  RF_CUDA(cudaStreamSynchronize(s));
  if (st != CUBLAS_STATUS_SUCCESS) {
    notes += std::string(notes.empty() ? "" : "; ") + label + ": " + blas_error(st, "cublasGemmEx");
    return 0;
  }
  const double t = best_seconds(s, 2, reps, run);
  return 2.0 * double(n) * double(n) * double(n) / t / 1e9;
}

// int8 x int8 -> int32 (the IMMA path wants op(A) = T, op(B) = N and leading dimensions multiple of 4).
double gemm_i8_gops(cublasHandle_t h, cudaStream_t s, int n, int reps, std::string& notes) {
  const size_t elems = size_t(n) * size_t(n);
  DeviceBuffer a(elems), b(elems), c(elems * sizeof(int32_t));
  fill<int8_t>(a.p, elems, 3, s);
  fill<int8_t>(b.p, elems, 4, s);
  const int32_t alpha = 1, beta = 0;
  cublasStatus_t st = CUBLAS_STATUS_SUCCESS;
  auto run = [&] {
    const cublasStatus_t r = cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &alpha, a.p, CUDA_R_8I, n, b.p, CUDA_R_8I, n, &beta,
                                          c.p, CUDA_R_32I, n, CUBLAS_COMPUTE_32I, CUBLAS_GEMM_DEFAULT);
    if (r != CUBLAS_STATUS_SUCCESS) st = r;
  };
  run();
  RF_CUDA(cudaStreamSynchronize(s));
  if (st != CUBLAS_STATUS_SUCCESS) {
    notes += std::string(notes.empty() ? "" : "; ") + "int8 GEMM: " + blas_error(st, "cublasGemmEx");
    return 0;
  }
  const double t = best_seconds(s, 2, reps, run);
  return 2.0 * double(n) * double(n) * double(n) / t / 1e9;
}

}  // namespace

std::string unavailable_reason(int device) {
  int driver = 0;
  cudaDriverGetVersion(&driver);  // 0 when no driver is installed
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  std::string r;
  if (e != cudaSuccess) {
    cudaGetLastError();
    r = std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
  } else if (n == 0) {
    r = "the driver reports no CUDA device";
  } else if (device < 0 || device >= n) {
    r = "device " + std::to_string(device) + " does not exist (" + std::to_string(n) + " visible)";
  } else {
    return "";
  }
  if (driver == 0) r += "; no CUDA driver is loaded (libcuda.so.1)";
  if (const char* v = std::getenv("CUDA_VISIBLE_DEVICES")) r += std::string("; CUDA_VISIBLE_DEVICES=") + v;
  return r;
}

GpuRoofline measure(int device, bool quick) {
  GpuRoofline g;
  RF_CUDA(cudaSetDevice(device));
  cudaDeviceProp prop{};
  RF_CUDA(cudaGetDeviceProperties(&prop, device));
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  g.name = std::string(prop.name) + ", sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ", " +
           std::to_string(prop.multiProcessorCount) + " SMs, " + std::to_string(prop.totalGlobalMem >> 30) + " GiB, L2 " +
           std::to_string(prop.l2CacheSize >> 20) + " MiB, driver " + std::to_string(driver / 1000) + "." +
           std::to_string(driver % 1000 / 10) + ", runtime " + std::to_string(runtime / 1000) + "." +
           std::to_string(runtime % 1000 / 10);
  Stream stream;
  const cudaStream_t s = stream.s;

  // Copy bandwidth: a buffer far larger than L2, at most a quarter of the free memory.
  size_t free_b = 0, total_b = 0;
  RF_CUDA(cudaMemGetInfo(&free_b, &total_b));
  size_t bytes = quick ? (size_t(256) << 20) : (size_t(1) << 30);
  while (bytes > (size_t(64) << 20) && 2 * bytes > free_b / 2) bytes /= 2;
  {
    DeviceBuffer src(bytes), dst(bytes);
    RF_CUDA(cudaMemsetAsync(src.p, 1, bytes, s));
    const double t = best_seconds(s, 2, quick ? 5 : 10, [&] {
      RF_CUDA(cudaMemcpyAsync(dst.p, src.p, bytes, cudaMemcpyDeviceToDevice, s));
    });
    g.copy_bytes = bytes;
    g.copy_gbps = 2.0 * double(bytes) / t / 1e9;
  }

  Blas blas(s);
  g.gemm_n = 8192;
  const int reps = quick ? 3 : 8;
  g.bf16_gflops = gemm_gflops<__nv_bfloat16>(blas.h, s, g.gemm_n, reps, g.notes, "bfloat16 GEMM");
  g.f16_gflops = gemm_gflops<__half>(blas.h, s, g.gemm_n, reps, g.notes, "float16 GEMM");
  g.f32_gflops = gemm_gflops<float>(blas.h, s, 4096, reps, g.notes, "float32 GEMM");
  g.i8_gops = gemm_i8_gops(blas.h, s, g.gemm_n, reps, g.notes);
  RF_CUDA(cudaStreamSynchronize(s));
  return g;
}

}  // namespace opdev::bench::cuda
