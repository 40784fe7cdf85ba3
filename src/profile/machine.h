// The machine side of the roofline, measured on this host: read bandwidth (all threads streaming a buffer
// far larger than the caches) and float32 FMA / bfloat16 / int8 dot-product peaks (independent register
// chains).
// One copy for everyone: `opdev bench` and bench-model measure thoroughly, the profiler briefly. Depends
// on nothing else in opdev (bench links the object file directly).
#pragma once

#include <dlpack/dlpack.h>

#include <string>

namespace opdev::profile {

struct Machine {
  int threads = 1;
  double read_gbps = 0;      // streaming read of a buffer far larger than the caches
  double f32_gflops = 0;     // float32 FMA throughput
  double bf16_gflops = 0;    // bfloat16 dot-product throughput (AVX512-BF16), 0 when absent
  double i8_gops = 0;        // int8 dot-product throughput (AVX512-VNNI vpdpbusd), 0 when absent
  std::string simd;          // widest vector unit used for the measurement

  // The peak that bounds an op with this activation dtype: for bfloat16 the faster of the bfloat16 dot
  // product and the float32 FMA (the cpu backend runs bf16 products on either, whichever this CPU does
  // faster: backends/cpu/tuning.h), else the float32 peak (float16 is computed in float32).
  double peak_gflops(DLDataType dtype) const {
    return dtype.code == kDLBfloat && dtype.bits == 16 && bf16_gflops > f32_gflops ? bf16_gflops : f32_gflops;
  }
  // The peak of an int8 product (linear_w8a8, grouped_matmul_w8a8: int8 multiply-adds whatever the output
  // dtype): the int8 dot-product peak where the machine has one, else the float32 peak.
  double peak_int8_gops() const { return i8_gops > 0 ? i8_gops : f32_gflops; }
};

enum class Effort {
  Full,   // 1 GiB read 5 times, 3 x 20M FMA iterations per unit: about 1-2 s (benchmarks)
  Quick,  // 256 MiB read 3 times, 2 x 4M iterations: about 0.3 s (the profiler's roofline)
};

Machine measure_machine(int threads, Effort effort = Effort::Full);

// The read bandwidth part of measure_machine alone (GB/s): for figures that must be taken right beside
// what they are compared with (bench-model measures it after every decode repetition, because this VM's
// bandwidth drifts by tens of percent within a minute).
double measure_read_gbps(int threads, Effort effort = Effort::Full);

}  // namespace opdev::profile
