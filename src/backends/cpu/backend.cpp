// The cpu backend's table. Kernels are compiled once per ISA (namespaces avx512, avx2, generic); the
// context picks the best one this CPU runs, or the one named by OPDEV_CPU_ISA (avx512 | avx2 | generic),
// and the table's slots forward to it. The context's other choices (tuning.h) are made here too.
#include <string>

#include "backends/cpu/tuning.h"
#include "core/backend.h"
#include "core/context.h"
#include "core/env.h"
#include "core/error.h"
#include "core/logging.h"

namespace opdev::cpu {

#define OPDEV_OP(ID, name) opdev_status name(ExecContext& ex, const name##_args& a);
namespace generic {
#include "opdev/ops.def"
}
#if defined(OPDEV_CPU_HAS_X86_VARIANTS)
namespace avx2 {
#include "opdev/ops.def"
}
namespace avx512 {
#include "opdev/ops.def"
}
#endif
#undef OPDEV_OP

namespace {

struct Isa {
  const char* name;
  bool (*runs_here)();
  bool bf16_pairs;  // has the vdpbf16ps pair kernels, so a bf16 gemm kernel to choose (tuning.h)
  BackendOps ops;
};

bool always() { return true; }
#if defined(OPDEV_CPU_HAS_X86_VARIANTS)
bool has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
bool has_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512vnni") &&
         __builtin_cpu_supports("fma");
}
#endif

const Isa* isas(int* n) {
  static const Isa table[] = {
#if defined(OPDEV_CPU_HAS_X86_VARIANTS)
      {"avx512", has_avx512, true,
       BackendOps{
#define OPDEV_OP(ID, name) &avx512::name,
#include "opdev/ops.def"
#undef OPDEV_OP
       }},
      {"avx2", has_avx2, false,
       BackendOps{
#define OPDEV_OP(ID, name) &avx2::name,
#include "opdev/ops.def"
#undef OPDEV_OP
       }},
#endif
      {"generic", always, false,
       BackendOps{
#define OPDEV_OP(ID, name) &generic::name,
#include "opdev/ops.def"
#undef OPDEV_OP
       }},
  };
  *n = int(sizeof(table) / sizeof(table[0]));
  return table;
}

struct CpuState : StateBase {
  const Isa* isa;
  std::string describe;  // the ISA's name, plus the bf16 gemm kernel where the ISA has a choice
};

// The bf16 gemm kernel (tuning.h): OPDEV_CPU_BF16_GEMM, else Fma on Intel CPUs and Pairs elsewhere.
// ISAs without the pair kernels always run Fma (the variable is still checked), and their description
// does not mention it.
Bf16Gemm choose_bf16_gemm(const Isa& isa) {
  const std::string want = env_string("OPDEV_CPU_BF16_GEMM");
  if (!want.empty() && want != "pairs" && want != "fma")
    fail(OPDEV_STATUS_INVALID_ARGUMENT, "OPDEV_CPU_BF16_GEMM='", want, "' is not a bf16 gemm kernel: pairs (vdpbf16ps) or fma (float32 FMA); unset it for the CPU's default");
  if (!isa.bf16_pairs) return Bf16Gemm::Fma;
  if (!want.empty()) return want == "pairs" ? Bf16Gemm::Pairs : Bf16Gemm::Fma;
#if defined(OPDEV_CPU_HAS_X86_VARIANTS)
  __builtin_cpu_init();
  if (__builtin_cpu_is("intel")) return Bf16Gemm::Fma;
#endif
  return Bf16Gemm::Pairs;
}

opdev_status create_state(int, void** state) {
  int n;
  const Isa* t = isas(&n);
  const std::string want = env_string("OPDEV_CPU_ISA");
  const Isa* chosen = nullptr;
  if (!want.empty()) {
    std::string names;
    for (int i = 0; i < n; ++i) {
      names += cat(i ? ", " : "", t[i].name);
      if (want == t[i].name) chosen = &t[i];
    }
    if (!chosen) fail(OPDEV_STATUS_INVALID_ARGUMENT, "OPDEV_CPU_ISA='", want, "' is not one of this build's cpu kernels: ", names);
    if (!chosen->runs_here()) fail(OPDEV_STATUS_UNSUPPORTED, "OPDEV_CPU_ISA='", want, "' but this CPU lacks the instructions it needs");
  } else {
    for (int i = 0; i < n && !chosen; ++i)
      if (t[i].runs_here()) chosen = &t[i];
  }
  auto* st = new CpuState;
  st->isa = chosen;
  st->describe = chosen->name;
  try {
    st->tuning.bf16_gemm = choose_bf16_gemm(*chosen);
    if (chosen->bf16_pairs) st->describe += st->tuning.bf16_gemm == Bf16Gemm::Fma ? ", bf16 gemm fma" : ", bf16 gemm pairs";
  } catch (...) {
    delete st;
    throw;
  }
  log(LogLevel::Debug, "cpu backend: using ", st->describe, " kernels");
  *state = st;
  return OPDEV_STATUS_SUCCESS;
}

void destroy_state(void* state) { delete static_cast<CpuState*>(state); }

bool supports(opdev_op op, DType dtype) {
  switch (op) {
    case OPDEV_OP_ROPE_CACHE: return dtype == DType::F32;
    case OPDEV_OP_COPY: return dtype != DType::Unknown;
    default: return dtype == DType::F32 || dtype == DType::BF16 || dtype == DType::F16;
  }
}

// Table slots: forward to the context's ISA.
#define OPDEV_OP(ID, name)                                                      \
  opdev_status fwd_##name(ExecContext& ex, const name##_args& a) {              \
    return static_cast<CpuState*>(ex.state)->isa->ops.name(ex, a);              \
  }
#include "opdev/ops.def"
#undef OPDEV_OP

}  // namespace

const char* describe(void* state) { return static_cast<CpuState*>(state)->describe.c_str(); }

}  // namespace opdev::cpu

namespace opdev {

const Backend& cpu_backend() {
  static const Backend backend = {
      /* .name          = */ "cpu",
      /* .device_type   = */ kDLCPU,
      /* .available     = */ host_available,
      /* .create_state  = */ cpu::create_state,
      /* .destroy_state = */ cpu::destroy_state,
      /* .supports      = */ cpu::supports,
      /* .raw_alloc     = */ host_raw_alloc,
      /* .raw_free      = */ host_raw_free,
      /* .memcpy        = */ host_memcpy,
      /* .synchronize   = */ nullptr,
      /* .describe      = */ cpu::describe,
      /* .ops           = */
      BackendOps{
#define OPDEV_OP(ID, name) /* .name = */ &cpu::fwd_##name,
#include "opdev/ops.def"
#undef OPDEV_OP
      },
  };
  return backend;
}

}  // namespace opdev
