// opdev_cuda_gemm_peers: opdev_grouped_matmul on a cuda context against the cuBLAS ways of running the same
// mixture-of-experts products, on the Qwen3-30B-A3B expert shapes.
//
//   E = 128 experts, top-8 routing, hidden 2048, moe_intermediate 768, bfloat16:
//     gate_up: weight [E, 1536, 2048], x [R, 2048] -> out [R, 1536]
//     down:    weight [E, 2048, 768],  x [R, 768]  -> out [R, 2048]
//   T = 1, 8, 64, 512, 4096 tokens (decode to prefill), R = 8 T rows, routed by a fixed pseudo-random top-8
//   (each token picks 8 distinct experts; the same routing every run).
//
// Three ways, each computing out[rows of e] = x[rows of e] . weight[e]^T for every expert e with rows:
//   opdev    opdev_grouped_matmul through the public C API (expert_offsets on the device: the library never
//            learns the per-expert row counts on the host).
//   grouped  one cublasGemmGroupedBatchedEx call; the host passes the per-expert sizes (experts with the same
//            row count form one group), pointer arrays on the device, prepared outside the timing.
//   loop     one cublasGemmEx per expert with rows.
// All use float32 accumulation (CUBLAS_COMPUTE_32F) and bfloat16 inputs and outputs.
//
// Timing: after warm-up, each repeat runs a batch of n back-to-back calls between two device-wide
// synchronisations, timed by CUDA events on the legacy default stream recorded right after each
// synchronisation (opdev's stream is internal to its context, so events cannot be recorded on it; the same
// method is used for all three ways). n is chosen so that a batch lasts about --batch-ms (default 3 ms), which
// makes the synchronisation and launch-latency share of a batch small; the time per call is the median over
// the repeats of batch time / n. TFLOP/s counts 2 R N K; opdev's GB/s counts the weights of the experts
// with rows, x and out once (the decode roofline).
//
// The "check" column compares opdev's output with cuBLAS grouped (or the loop where grouped is not
// available): max |a - b| / (|b| + 1e-3 max |b|) over all elements, "ok" below 2^-6 (a few bfloat16 ulps).
//
// Exit status: 0, 77 with "skipped: no GPU" when no CUDA device (or no opdev cuda backend) is present, 1 on
// errors or when a check fails.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "opdev/opdev.h"

namespace {

#define CUDA_OK(call)                                                                                   \
  do {                                                                                                  \
    cudaError_t e_ = (call);                                                                            \
    if (e_ != cudaSuccess) {                                                                            \
      std::fprintf(stderr, "error: %s failed: %s (%s:%d)\n", #call, cudaGetErrorString(e_), __FILE__, __LINE__); \
      std::exit(1);                                                                                     \
    }                                                                                                   \
  } while (0)

#define OPDEV_OK(call)                                                                                  \
  do {                                                                                                  \
    opdev_status s_ = (call);                                                                           \
    if (s_ != OPDEV_STATUS_SUCCESS) {                                                                   \
      std::fprintf(stderr, "error: %s failed: %s: %s\n", #call, opdev_status_string(s_), opdev_last_error()); \
      std::exit(1);                                                                                     \
    }                                                                                                   \
  } while (0)

constexpr int kExperts = 128, kTopK = 8;

struct Shape {
  const char* name;
  int64_t N, K;
};

struct Options {
  std::vector<int64_t> tokens = {1, 8, 64, 512, 4096};
  int repeats = 15;
  double batch_ms = 3.0;
  int device = 0;
  bool deterministic = false;
  std::string csv;
};

void usage(const char* argv0) {
  std::printf(
      "usage: %s [--csv FILE] [--tokens 1,8,64,512,4096] [--repeats 15] [--batch-ms 3] [--device 0] "
      "[--deterministic]\n"
      "Times opdev_grouped_matmul (cuda) against cublasGemmGroupedBatchedEx and a per-expert cublasGemmEx loop on\n"
      "the Qwen3-30B-A3B expert shapes (E=128, top-8, bfloat16).\n",
      argv0);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "error: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--csv") {
      o.csv = value();
    } else if (a == "--tokens") {
      o.tokens.clear();
      const std::string v = value();
      size_t pos = 0;
      while (pos <= v.size()) {
        const size_t end = std::min(v.find(',', pos), v.size());
        const long long t = std::atoll(v.substr(pos, end - pos).c_str());
        if (t <= 0) {
          std::fprintf(stderr, "error: bad token count in --tokens %s\n", v.c_str());
          std::exit(2);
        }
        o.tokens.push_back(t);
        pos = end + 1;
      }
    } else if (a == "--repeats") {
      o.repeats = std::max(1, std::atoi(value().c_str()));
    } else if (a == "--batch-ms") {
      o.batch_ms = std::max(0.1, std::atof(value().c_str()));
    } else if (a == "--device") {
      o.device = std::atoi(value().c_str());
    } else if (a == "--deterministic") {
      o.deterministic = true;
    } else if (a == "-h" || a == "--help") {
      usage(argv[0]);
      std::exit(0);
    } else {
      std::fprintf(stderr, "error: unknown argument %s\n", a.c_str());
      usage(argv[0]);
      std::exit(2);
    }
  }
  return o;
}

// Deterministic pseudo-random numbers (splitmix64).
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed) {}
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
};

// Rows per expert when each of T tokens picks kTopK distinct experts (partial Fisher-Yates).
std::vector<int64_t> route(int64_t T, uint64_t seed) {
  Rng r(seed);
  std::vector<int64_t> counts(kExperts, 0);
  std::vector<int> ids(kExperts);
  for (int64_t t = 0; t < T; ++t) {
    for (int e = 0; e < kExperts; ++e) ids[size_t(e)] = e;
    for (int j = 0; j < kTopK; ++j) {
      const int pick = j + int(r.next() % uint64_t(kExperts - j));
      std::swap(ids[size_t(j)], ids[size_t(pick)]);
      ++counts[size_t(ids[size_t(j)])];
    }
  }
  return counts;
}

// Uniform values in [-scale, scale), a hash of the index and the seed.
__global__ void fill_kernel(__nv_bfloat16* p, int64_t n, uint64_t seed, float scale) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    uint64_t z = uint64_t(i) * 0x9E3779B97F4A7C15ull + seed;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const float u = float(z >> 40) * (1.0f / 16777216.0f);  // [0, 1)
    p[i] = __float2bfloat16_rn((2.0f * u - 1.0f) * scale);
  }
}

void fill(__nv_bfloat16* p, int64_t n, uint64_t seed, float scale) {
  fill_kernel<<<1024, 256>>>(p, n, seed, scale);
  CUDA_OK(cudaGetLastError());
}

float bf16_to_float(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// A compact device tensor description (shape must outlive the DLTensor).
DLTensor tensor(void* data, int device, DLDataType dtype, int ndim, int64_t* shape) {
  DLTensor t{};
  t.data = data;
  t.device = DLDevice{kDLCUDA, device};
  t.ndim = ndim;
  t.dtype = dtype;
  t.shape = shape;
  t.strides = nullptr;
  t.byte_offset = 0;
  return t;
}

const char* cublas_status(cublasStatus_t s) { return cublasGetStatusName(s); }

// Median time per call in microseconds of fn (which enqueues one call), or -1 if it failed.
template <class Fn>
double time_per_call_us(Fn&& fn, const Options& o) {
  cudaEvent_t e0, e1;
  CUDA_OK(cudaEventCreate(&e0));
  CUDA_OK(cudaEventCreate(&e1));
  auto batch_ms = [&](int n) -> double {
    CUDA_OK(cudaDeviceSynchronize());
    CUDA_OK(cudaEventRecord(e0, 0));
    for (int i = 0; i < n; ++i)
      if (!fn()) return -1.0;
    CUDA_OK(cudaDeviceSynchronize());
    CUDA_OK(cudaEventRecord(e1, 0));
    CUDA_OK(cudaEventSynchronize(e1));
    float ms = 0.0f;
    CUDA_OK(cudaEventElapsedTime(&ms, e0, e1));
    return double(ms);
  };
  double result = -1.0;
  // Warm-up (first-call setup: heuristics, attribute opt-ins, clocks), then size the batches.
  if (batch_ms(3) >= 0.0) {
    const double one = std::max(1e-3, batch_ms(5) / 5.0);
    const int n = int(std::min(2000.0, std::max(1.0, std::ceil(o.batch_ms / one))));
    std::vector<double> per_call;
    for (int r = 0; r < o.repeats; ++r) {
      const double ms = batch_ms(n);
      if (ms < 0.0) break;
      per_call.push_back(ms * 1e3 / n);
    }
    if (int(per_call.size()) == o.repeats) {
      std::sort(per_call.begin(), per_call.end());
      result = per_call[per_call.size() / 2];
    }
  }
  CUDA_OK(cudaEventDestroy(e0));
  CUDA_OK(cudaEventDestroy(e1));
  return result;
}

struct Row {
  std::string shape;
  int64_t N = 0, K = 0, T = 0, R = 0, active = 0;
  double opdev_us = -1, grouped_us = -1, loop_us = -1, opdev_gbps = 0, err = -1;
  bool ok = true;
};

std::string fmt(double v, const char* f) {
  if (v < 0) return "n/a";
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  int ndev = 0;
  if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0 || !opdev_backend_available("cuda")) {
    cudaGetLastError();
    std::printf("skipped: no GPU\n");
    return 77;
  }
  if (o.device < 0 || o.device >= ndev) {
    std::fprintf(stderr, "error: device %d does not exist (%d visible)\n", o.device, ndev);
    return 2;
  }
  CUDA_OK(cudaSetDevice(o.device));
  cudaDeviceProp prop{};
  CUDA_OK(cudaGetDeviceProperties(&prop, o.device));

  opdev_context_options copt;
  opdev_context_options_init(&copt);
  copt.device_id = o.device;
  copt.deterministic = o.deterministic ? 1 : 0;
  opdev_context* ctx = nullptr;
  OPDEV_OK(opdev_context_create("cuda", &copt, &ctx));

  cublasHandle_t blas = nullptr;
  if (cublasCreate(&blas) != CUBLAS_STATUS_SUCCESS) {
    std::fprintf(stderr, "error: cublasCreate failed\n");
    return 1;
  }
  cudaStream_t stream = nullptr;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cublasSetStream(blas, stream);

  std::printf("device: %s (sm_%d%d, %d SMs); opdev: %s%s\n", prop.name, prop.major, prop.minor,
              prop.multiProcessorCount, opdev_context_describe(ctx), o.deterministic ? ", deterministic" : "");
  std::printf("Qwen3-30B-A3B experts: E=%d, top-%d, bfloat16, float32 accumulation; time per call = median of %d "
              "event-timed batches (~%.1f ms each) after warm-up\n\n",
              kExperts, kTopK, o.repeats, o.batch_ms);

  const Shape shapes[] = {{"gate_up", 1536, 2048}, {"down", 2048, 768}};
  int64_t max_T = 0;
  for (int64_t t : o.tokens) max_T = std::max(max_T, t);
  const int64_t max_R = max_T * kTopK;
  const DLDataType bf16_t{kDLBfloat, 16, 1}, i64_t{kDLInt, 64, 1};
  std::vector<Row> rows;
  bool all_ok = true;

  std::printf("%-8s %5s %6s %4s | %10s %7s %7s | %10s %7s | %10s %7s | %8s %8s | %s\n", "shape", "T", "R", "exp",
              "opdev_us", "TFLOP/s", "GB/s", "grouped_us", "TFLOP/s", "loop_us", "TFLOP/s", "x_group", "x_loop",
              "check");

  for (const Shape& sh : shapes) {
    const int64_t N = sh.N, K = sh.K;
    __nv_bfloat16 *w = nullptr, *x = nullptr, *out_opdev = nullptr, *out_group = nullptr, *out_loop = nullptr;
    CUDA_OK(cudaMalloc(&w, size_t(kExperts) * N * K * sizeof(__nv_bfloat16)));
    CUDA_OK(cudaMalloc(&x, size_t(max_R) * K * sizeof(__nv_bfloat16)));
    CUDA_OK(cudaMalloc(&out_opdev, size_t(max_R) * N * sizeof(__nv_bfloat16)));
    CUDA_OK(cudaMalloc(&out_group, size_t(max_R) * N * sizeof(__nv_bfloat16)));
    CUDA_OK(cudaMalloc(&out_loop, size_t(max_R) * N * sizeof(__nv_bfloat16)));
    int64_t* offsets_dev = nullptr;
    CUDA_OK(cudaMalloc(&offsets_dev, sizeof(int64_t) * (kExperts + 1)));
    void** ptrs_dev = nullptr;  // A, B, C pointer arrays of the grouped call
    CUDA_OK(cudaMalloc(&ptrs_dev, sizeof(void*) * 3 * kExperts));
    fill(w, int64_t(kExperts) * N * K, 0x5eed0001ull + uint64_t(N), 1.0f / std::sqrt(float(K)));
    fill(x, max_R * K, 0x5eed0002ull + uint64_t(K), 1.0f);
    CUDA_OK(cudaDeviceSynchronize());

    for (int64_t T : o.tokens) {
      const int64_t R = T * kTopK;
      const std::vector<int64_t> counts = route(T, 1000 + uint64_t(T));
      std::vector<int64_t> offsets(kExperts + 1, 0);
      for (int e = 0; e < kExperts; ++e) offsets[size_t(e) + 1] = offsets[size_t(e)] + counts[size_t(e)];
      CUDA_OK(cudaMemcpy(offsets_dev, offsets.data(), sizeof(int64_t) * (kExperts + 1), cudaMemcpyHostToDevice));
      CUDA_OK(cudaMemset(out_opdev, 0, size_t(R) * N * sizeof(__nv_bfloat16)));
      CUDA_OK(cudaMemset(out_group, 0, size_t(R) * N * sizeof(__nv_bfloat16)));
      CUDA_OK(cudaMemset(out_loop, 0, size_t(R) * N * sizeof(__nv_bfloat16)));

      Row row;
      row.shape = sh.name;
      row.N = N;
      row.K = K;
      row.T = T;
      row.R = R;
      for (int64_t c : counts) row.active += c > 0;

      // ---- opdev ----
      int64_t out_shape[2] = {R, N}, x_shape[2] = {R, K}, w_shape[3] = {kExperts, N, K}, o_shape[1] = {kExperts + 1};
      const DLTensor t_out = tensor(out_opdev, o.device, bf16_t, 2, out_shape);
      const DLTensor t_x = tensor(x, o.device, bf16_t, 2, x_shape);
      const DLTensor t_w = tensor(w, o.device, bf16_t, 3, w_shape);
      const DLTensor t_off = tensor(offsets_dev, o.device, i64_t, 1, o_shape);
      auto run_opdev = [&]() {
        const opdev_status s = opdev_grouped_matmul(ctx, &t_out, &t_x, &t_w, &t_off);
        if (s != OPDEV_STATUS_SUCCESS) {
          std::fprintf(stderr, "opdev_grouped_matmul: %s: %s\n", opdev_status_string(s), opdev_last_error());
          return false;
        }
        return true;
      };
      row.opdev_us = time_per_call_us(run_opdev, o);
      OPDEV_OK(opdev_synchronize(ctx));  // also reports index errors the kernels found

      // ---- cuBLAS: column-major out^T[N, rows] = W_e^T (W_e stored K x N col-major, op T) . x_e^T ----
      const float alpha = 1.0f, beta = 0.0f;
      std::map<int, std::vector<int>> by_rows;  // row count -> experts (one cuBLAS group each)
      for (int e = 0; e < kExperts; ++e)
        if (counts[size_t(e)] > 0) by_rows[int(counts[size_t(e)])].push_back(e);
      std::vector<cublasOperation_t> ta, tb;
      std::vector<int> m, n, k, lda, ldb, ldc, gsize;
      std::vector<float> alphas, betas;
      std::vector<const void*> A, B;
      std::vector<void*> C;
      for (const auto& [cnt, experts] : by_rows) {
        ta.push_back(CUBLAS_OP_T);
        tb.push_back(CUBLAS_OP_N);
        m.push_back(int(N));
        n.push_back(cnt);
        k.push_back(int(K));
        lda.push_back(int(K));
        ldb.push_back(int(K));
        ldc.push_back(int(N));
        alphas.push_back(alpha);
        betas.push_back(beta);
        gsize.push_back(int(experts.size()));
        for (int e : experts) {
          A.push_back(w + size_t(e) * N * K);
          B.push_back(x + size_t(offsets[size_t(e)]) * K);
          C.push_back(out_group + size_t(offsets[size_t(e)]) * N);
        }
      }
      const int problems = int(A.size());
      std::vector<const void*> host_ptrs;
      host_ptrs.insert(host_ptrs.end(), A.begin(), A.end());
      host_ptrs.insert(host_ptrs.end(), B.begin(), B.end());
      host_ptrs.insert(host_ptrs.end(), C.begin(), C.end());
      CUDA_OK(cudaMemcpy(ptrs_dev, host_ptrs.data(), sizeof(void*) * host_ptrs.size(), cudaMemcpyHostToDevice));
      const void* const* A_dev = const_cast<const void* const*>(ptrs_dev);
      const void* const* B_dev = const_cast<const void* const*>(ptrs_dev + problems);
      void* const* C_dev = ptrs_dev + 2 * problems;
#if CUBLAS_VERSION >= 120500
      auto run_grouped = [&]() {
        const cublasStatus_t s = cublasGemmGroupedBatchedEx(
            blas, ta.data(), tb.data(), m.data(), n.data(), k.data(), alphas.data(), A_dev, CUDA_R_16BF, lda.data(),
            B_dev, CUDA_R_16BF, ldb.data(), betas.data(), C_dev, CUDA_R_16BF, ldc.data(), int(m.size()), gsize.data(),
            CUBLAS_COMPUTE_32F);
        if (s != CUBLAS_STATUS_SUCCESS) {
          std::fprintf(stderr, "cublasGemmGroupedBatchedEx: %s (T=%lld %s)\n", cublas_status(s), (long long)T, sh.name);
          return false;
        }
        return true;
      };
      row.grouped_us = time_per_call_us(run_grouped, o);
#endif

      // ---- cuBLAS: one cublasGemmEx per expert with rows ----
      auto run_loop = [&]() {
        for (int e = 0; e < kExperts; ++e) {
          const int cnt = int(counts[size_t(e)]);
          if (cnt == 0) continue;
          const cublasStatus_t s = cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, int(N), cnt, int(K), &alpha,
                                                w + size_t(e) * N * K, CUDA_R_16BF, int(K),
                                                x + size_t(offsets[size_t(e)]) * K, CUDA_R_16BF, int(K), &beta,
                                                out_loop + size_t(offsets[size_t(e)]) * N, CUDA_R_16BF, int(N),
                                                CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
          if (s != CUBLAS_STATUS_SUCCESS) {
            std::fprintf(stderr, "cublasGemmEx: %s (T=%lld %s)\n", cublas_status(s), (long long)T, sh.name);
            return false;
          }
        }
        return true;
      };
      row.loop_us = time_per_call_us(run_loop, o);
      CUDA_OK(cudaDeviceSynchronize());

      // ---- check opdev against cuBLAS ----
      const __nv_bfloat16* ref = row.grouped_us >= 0 ? out_group : (row.loop_us >= 0 ? out_loop : nullptr);
      if (ref) {
        std::vector<uint16_t> got(size_t(R * N)), want(size_t(R * N));
        CUDA_OK(cudaMemcpy(got.data(), out_opdev, got.size() * 2, cudaMemcpyDeviceToHost));
        CUDA_OK(cudaMemcpy(want.data(), ref, want.size() * 2, cudaMemcpyDeviceToHost));
        double max_ref = 0.0;
        for (uint16_t v : want) max_ref = std::max(max_ref, double(std::fabs(bf16_to_float(v))));
        double err = 0.0;
        for (size_t i = 0; i < got.size(); ++i) {
          const double a = bf16_to_float(got[i]), b = bf16_to_float(want[i]);
          const double e = std::fabs(a - b) / (std::fabs(b) + 1e-3 * max_ref + 1e-30);
          err = std::isnan(e) ? INFINITY : std::max(err, e);
        }
        row.err = err;
        row.ok = err < 1.0 / 64;
      }
      all_ok = all_ok && row.ok && row.opdev_us >= 0;

      const double flops = 2.0 * double(R) * double(N) * double(K);
      const double bytes = double(row.active) * N * K * 2 + double(R) * K * 2 + double(R) * N * 2;
      row.opdev_gbps = row.opdev_us > 0 ? bytes / (row.opdev_us * 1e3) : 0.0;
      auto tflops = [&](double us) { return us > 0 ? flops / (us * 1e6) : -1.0; };
      auto ratio = [&](double peer) { return peer > 0 && row.opdev_us > 0 ? peer / row.opdev_us : -1.0; };
      const std::string check =
          row.err < 0 ? "-" : (row.ok ? "ok " + fmt(row.err, "%.1e") : "MISMATCH " + fmt(row.err, "%.2e"));
      std::printf("%-8s %5lld %6lld %4lld | %10s %7s %7s | %10s %7s | %10s %7s | %8s %8s | %s\n", sh.name,
                  (long long)T, (long long)R, (long long)row.active, fmt(row.opdev_us, "%.2f").c_str(),
                  fmt(tflops(row.opdev_us), "%.1f").c_str(), fmt(row.opdev_gbps, "%.0f").c_str(),
                  fmt(row.grouped_us, "%.2f").c_str(), fmt(tflops(row.grouped_us), "%.1f").c_str(),
                  fmt(row.loop_us, "%.2f").c_str(), fmt(tflops(row.loop_us), "%.1f").c_str(),
                  fmt(ratio(row.grouped_us), "%.2fx").c_str(), fmt(ratio(row.loop_us), "%.2fx").c_str(),
                  check.c_str());
      std::fflush(stdout);
      rows.push_back(row);
    }
    CUDA_OK(cudaFree(w));
    CUDA_OK(cudaFree(x));
    CUDA_OK(cudaFree(out_opdev));
    CUDA_OK(cudaFree(out_group));
    CUDA_OK(cudaFree(out_loop));
    CUDA_OK(cudaFree(offsets_dev));
    CUDA_OK(cudaFree(ptrs_dev));
  }
  std::printf("\nx_group, x_loop: the peer's time / opdev's time (above 1: opdev is faster).\n");

  if (!o.csv.empty()) {
    FILE* f = std::fopen(o.csv.c_str(), "w");
    if (!f) {
      std::fprintf(stderr, "error: cannot write %s\n", o.csv.c_str());
      return 1;
    }
    std::fprintf(f,
                 "device,deterministic,shape,E,topk,N,K,T,R,active_experts,opdev_us,opdev_tflops,opdev_gbps,"
                 "grouped_us,grouped_tflops,loop_us,loop_tflops,speedup_vs_grouped,speedup_vs_loop,check_err,"
                 "check_ok\n");
    for (const Row& r : rows) {
      const double flops = 2.0 * double(r.R) * double(r.N) * double(r.K);
      auto tf = [&](double us) { return us > 0 ? flops / (us * 1e6) : -1.0; };
      auto sp = [&](double peer) { return peer > 0 && r.opdev_us > 0 ? peer / r.opdev_us : -1.0; };
      std::fprintf(f,
                   "\"%s\",%d,%s,%d,%d,%lld,%lld,%lld,%lld,%lld,%.3f,%.3f,%.1f,%.3f,%.3f,%.3f,%.3f,%.4f,%.4f,%.3e,%d\n",
                   prop.name, o.deterministic ? 1 : 0, r.shape.c_str(), kExperts, kTopK, (long long)r.N, (long long)r.K,
                   (long long)r.T, (long long)r.R, (long long)r.active, r.opdev_us, tf(r.opdev_us), r.opdev_gbps,
                   r.grouped_us, tf(r.grouped_us), r.loop_us, tf(r.loop_us), sp(r.grouped_us), sp(r.loop_us), r.err,
                   r.ok ? 1 : 0);
    }
    std::fclose(f);
    std::printf("wrote %s\n", o.csv.c_str());
  }

  cublasDestroy(blas);
  cudaStreamDestroy(stream);
  opdev_context_destroy(ctx);
  if (!all_ok) {
    std::fprintf(stderr, "error: opdev failed or disagreed with cuBLAS (see the check column)\n");
    return 1;
  }
  return 0;
}
