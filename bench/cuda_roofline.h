// The GPU side of the roofline, measured with the CUDA runtime and cuBLAS directly (not through opdev):
// device-to-device copy bandwidth and cuBLAS GEMM rates. Compiled only when the cuda backend is built
// (OPDEV_WITH_CUDA; bench/cuda_roofline.cu), so the cpu-only build does not change.
#pragma once

#include <string>

namespace opdev::bench::cuda {

// Why no CUDA device `device` can be used here, in the driver's words ("cudaErrorNoDevice: no
// CUDA-capable device is detected", or "no CUDA driver is loaded" when libcuda is missing); "" when it can.
std::string unavailable_reason(int device);

struct GpuRoofline {
  std::string name;         // "NVIDIA H100 80GB HBM3, sm_90, 132 SMs, 80 GiB, driver 13.0"
  double copy_gbps = 0;     // cudaMemcpyAsync device to device: (bytes read + bytes written) / time, best of reps
  double bf16_gflops = 0;   // cublasGemmEx 8192^3, bfloat16 in and out, float32 accumulation (CUBLAS_COMPUTE_32F)
  double f16_gflops = 0;    // the same in float16
  double f32_gflops = 0;    // cublasGemmEx 4096^3 float32, CUBLAS_COMPUTE_32F (no TF32)
  double i8_gops = 0;       // cublasGemmEx 8192^3 int8 -> int32 (0 where cuBLAS refuses it)
  size_t copy_bytes = 0;    // bytes of the copied buffer
  int gemm_n = 0;           // the bfloat16 / float16 GEMM size
  std::string notes;        // what could not be measured, and why
};

// Measures the roofline of `device` on its own stream and memory (about 0.3 s; quick: about 0.1 s).
// Throws std::runtime_error naming the CUDA / cuBLAS call that failed.
GpuRoofline measure(int device, bool quick);

}  // namespace opdev::bench::cuda
