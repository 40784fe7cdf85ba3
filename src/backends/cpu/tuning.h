// Per-context choices of the cpu backend besides the ISA, made once at context creation (backend.cpp) and
// read by the kernels through the context. Not compiled per ISA.
#pragma once

#include "core/backend.h"

namespace opdev::cpu {

// The kernel of bfloat16 gemm products (prefill; MoE experts with many rows) on AVX512-BF16 CPUs:
//  - Pairs: vdpbf16ps on k-pairs of bf16 (exact products, float32 sums; no conversion of x or w).
//  - Fma:   x converted to float32 once per call, w widened while packing, float32 FMA (the float16 path).
// Which is faster depends on the core: on AMD Zen 5 vdpbf16ps does twice the FMA's work per cycle (gemm
// 450-490 against 220-240 GFLOP/s per core), on the Intel Xeon VMs measured half of it (107 against 214
// GFLOP/s per core; the linear products of a 512-token prefill ran 1.41x faster on Fma), see
// docs/PERFORMANCE.md "bf16 prefill: vdpbf16ps or FMA". The rule (Fma on Intel CPUs, Pairs otherwise) is a
// function of cpuid, never of timing, so a machine always computes the same results;
// OPDEV_CPU_BF16_GEMM=pairs|fma overrides it. Both accumulate each output in float32 over k in order.
// gemv (decode) always runs vdpbf16ps: there the weight stream, not the arithmetic, is the bound. So does
// paged_attention's prefill: its float32 path measured slower on the Intel VM too.
enum class Bf16Gemm { Pairs, Fma };

struct Tuning {
  Bf16Gemm bf16_gemm = Bf16Gemm::Pairs;
};

// The cpu backend's per-context state (ExecContext::state) begins with this.
struct StateBase {
  Tuning tuning;
};

inline const Tuning& tuning(const ExecContext& ex) { return static_cast<const StateBase*>(ex.state)->tuning; }

}  // namespace opdev::cpu
