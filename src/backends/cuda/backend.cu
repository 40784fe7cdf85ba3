// The cuda backend's table: device selection, per-context stream + cuBLASLt handle + workspace, raw
// device memory (behind the context's caching allocator), copies, synchronisation and the check of the
// device-side index-error word. The op kernels live in one file per op family beside this one.
#include <cublasLt.h>
#include <cublas_v2.h>

#include <cstring>
#include <string>

#include "backends/cuda/cuda_common.cuh"
#include "core/context.h"
#include "core/env.h"
#include "core/logging.h"

namespace opdev::cuda {

#define OPDEV_OP(ID, name) opdev_status name(ExecContext& ex, const name##_args& a);
#include "opdev/ops.def"
#undef OPDEV_OP

void cuda_fail(cudaError_t err, const char* call, const char* file, int line) {
  int dev = -1;
  cudaGetDevice(&dev);
  cudaGetLastError();  // clear a sticky launch error so the context stays usable where CUDA allows
  const char* base = std::strrchr(file, '/');
  const opdev_status s =
      err == cudaErrorMemoryAllocation ? OPDEV_STATUS_OUT_OF_MEMORY : OPDEV_STATUS_DEVICE_ERROR;
  fail(s, "cuda: ", call, " failed with ", cudaGetErrorName(err), " (", cudaGetErrorString(err), ") at ",
       base ? base + 1 : file, ":", line, " on device ", dev);
}

namespace {

#define OPDEV_CUBLAS_CHECK(call)                                                                     \
  do {                                                                                               \
    cublasStatus_t st_ = (call);                                                                     \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                                \
      fail(OPDEV_STATUS_DEVICE_ERROR, "cuda: ", #call, " failed with ", cublasGetStatusName(st_), " at ", \
           __FILE__, ":", __LINE__);                                                                 \
  } while (0)

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

bool available(int device_id) { return device_id >= 0 && device_id < device_count(); }

void destroy(CudaState* s) {
  if (!s) return;
  cudaSetDevice(s->device);
  if (s->stream) cudaStreamSynchronize(s->stream);
  for (int i = 0; i < CudaState::kStagingSlots; ++i) {
    if (s->staging_done[i]) cudaEventDestroy(s->staging_done[i]);
    if (s->staging[i]) cudaFreeHost(s->staging[i]);
  }
  if (s->error_host) cudaFreeHost(s->error_host);
  if (s->error_word) cudaFree(s->error_word);
  if (s->lt_workspace) cudaFree(s->lt_workspace);
  if (s->blaslt) cublasLtDestroy(static_cast<cublasLtHandle_t>(s->blaslt));
  if (s->blas) cublasDestroy(static_cast<cublasHandle_t>(s->blas));
  if (s->stream) cudaStreamDestroy(s->stream);
  delete s;
}

// The attention P V precision (AttnP in cuda_common.cuh): OPDEV_CUDA_ATTN_P, else Rounded. Read before the
// device is opened, so a bad value is reported on any machine.
AttnP choose_attn_p() {
  const std::string want = env_string("OPDEV_CUDA_ATTN_P");
  if (want.empty() || want == "rounded") return AttnP::Rounded;
  if (want == "split") return AttnP::Split;
  fail(OPDEV_STATUS_INVALID_ARGUMENT, "OPDEV_CUDA_ATTN_P='", want,
       "' is not an attention P V mode: rounded (P rounded to bf16 / f16, FlashAttention-2) or split (exact P in "
       "16-bit terms); unset it for the default (rounded)");
}

opdev_status create_state(int device_id, void** out) {
  const AttnP attn_p = choose_attn_p();
  const int n = device_count();
  if (n == 0)
    fail(OPDEV_STATUS_NOT_FOUND, "cuda: no CUDA device is visible (driver missing, or CUDA_VISIBLE_DEVICES empty); use --backend cpu");
  if (device_id < 0 || device_id >= n)
    fail(OPDEV_STATUS_NOT_FOUND, "cuda: device ", device_id, " does not exist (", n, " visible)");
  auto* s = new CudaState;
  try {
    s->device = device_id;
    s->attn_p = attn_p;
    OPDEV_CUDA_CHECK(cudaSetDevice(device_id));
    OPDEV_CUDA_CHECK(cudaGetDeviceProperties(&s->prop, device_id));
    OPDEV_CUDA_CHECK(cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking));
    cublasLtHandle_t lt = nullptr;
    OPDEV_CUBLAS_CHECK(cublasLtCreate(&lt));
    s->blaslt = lt;
    cublasHandle_t blas = nullptr;
    OPDEV_CUBLAS_CHECK(cublasCreate(&blas));
    s->blas = blas;
    OPDEV_CUBLAS_CHECK(cublasSetStream(blas, s->stream));
    // cuBLAS recommends 32 MiB of workspace on Hopper (4 MiB elsewhere).
    s->lt_workspace_bytes = s->prop.major >= 9 ? (size_t(32) << 20) : (size_t(4) << 20);
    OPDEV_CUDA_CHECK(cudaMalloc(&s->lt_workspace, s->lt_workspace_bytes));
    OPDEV_CUBLAS_CHECK(cublasSetWorkspace(blas, s->lt_workspace, s->lt_workspace_bytes));
    OPDEV_CUDA_CHECK(cudaMalloc(&s->error_word, sizeof(unsigned)));
    OPDEV_CUDA_CHECK(cudaMemsetAsync(s->error_word, 0, sizeof(unsigned), s->stream));
    OPDEV_CUDA_CHECK(cudaMallocHost(&s->error_host, sizeof(unsigned)));
    for (int i = 0; i < CudaState::kStagingSlots; ++i) {
      OPDEV_CUDA_CHECK(cudaMallocHost(&s->staging[i], CudaState::kStagingBytes));
      OPDEV_CUDA_CHECK(cudaEventCreateWithFlags(&s->staging_done[i], cudaEventDisableTiming));
    }
    OPDEV_CUDA_CHECK(cudaStreamSynchronize(s->stream));
    s->description = cat(s->prop.name, " (sm_", s->prop.major, s->prop.minor, ", device ", device_id, ", ",
                         s->prop.multiProcessorCount, " SMs, ", (s->prop.totalGlobalMem >> 20), " MiB)",
                         attn_p == AttnP::Split ? ", attention P split" : ", attention P rounded");
    log(LogLevel::Debug, "cuda backend: ", s->description);
  } catch (...) {
    destroy(s);
    throw;
  }
  *out = s;
  return OPDEV_STATUS_SUCCESS;
}

void destroy_state(void* state) { destroy(static_cast<CudaState*>(state)); }

// Names the ops whose bits are set in an error word.
std::string ops_in(unsigned word) {
  std::string names;
  for (int op = 0; op < OPDEV_OP_COUNT && op < 32; ++op)
    if (word & (1u << op)) names += cat(names.empty() ? "" : ", ", opdev_op_name(opdev_op(op)));
  return names;
}

// After a stream synchronisation: reports (once) index data that a kernel found out of range.
void check_error_word(CudaState& s) {
  OPDEV_CUDA_CHECK(cudaMemcpyAsync(s.error_host, s.error_word, sizeof(unsigned), cudaMemcpyDeviceToHost, s.stream));
  OPDEV_CUDA_CHECK(cudaStreamSynchronize(s.stream));
  const unsigned word = *s.error_host;
  if (word == 0) return;
  OPDEV_CUDA_CHECK(cudaMemsetAsync(s.error_word, 0, sizeof(unsigned), s.stream));
  OPDEV_CUDA_CHECK(cudaStreamSynchronize(s.stream));
  fail(OPDEV_STATUS_OUT_OF_RANGE, "cuda: index data on the device was out of range in ", ops_in(word),
       " (found at this synchronisation; the out-of-range entries were skipped and their outputs zeroed). "
       "Check the ids / positions / slots / block tables / expert offsets passed to those ops");
}

bool supports(opdev_op op, DType dtype) {
  switch (op) {
    case OPDEV_OP_ROPE_CACHE: return dtype == DType::F32;
    case OPDEV_OP_COPY: return dtype != DType::Unknown && dtype != DType::F64;
    default: return dtype == DType::F32 || dtype == DType::BF16 || dtype == DType::F16;
  }
}

void* raw_alloc(void* state, size_t nbytes) {
  auto* s = static_cast<CudaState*>(state);
  if (cudaSetDevice(s->device) != cudaSuccess) return nullptr;
  void* p = nullptr;
  if (cudaMalloc(&p, nbytes ? nbytes : 1) != cudaSuccess) {
    cudaGetLastError();  // out of memory is reported by the caching allocator
    return nullptr;
  }
  return p;
}

void raw_free(void* state, void* ptr) {
  auto* s = static_cast<CudaState*>(state);
  cudaSetDevice(s->device);
  cudaFree(ptr);  // synchronises with queued work that may still use ptr
}

opdev_status memcpy_(void* state, void* dst, const void* src, size_t nbytes, opdev_memcpy_kind kind) {
  auto& s = *static_cast<CudaState*>(state);
  OPDEV_CUDA_CHECK(cudaSetDevice(s.device));
  if (nbytes == 0) return OPDEV_STATUS_SUCCESS;
  switch (kind) {
    case OPDEV_MEMCPY_HOST_TO_DEVICE:
      if (nbytes <= CudaState::kStagingBytes) {
        // Copy into a pinned slot and queue the DMA: the caller may reuse src at once, and the host does
        // not wait for the kernels queued before (the decode step's small uploads).
        const int i = s.staging_next;
        s.staging_next = (i + 1) % CudaState::kStagingSlots;
        OPDEV_CUDA_CHECK(cudaEventSynchronize(s.staging_done[i]));
        std::memcpy(s.staging[i], src, nbytes);
        OPDEV_CUDA_CHECK(cudaMemcpyAsync(dst, s.staging[i], nbytes, cudaMemcpyHostToDevice, s.stream));
        OPDEV_CUDA_CHECK(cudaEventRecord(s.staging_done[i], s.stream));
      } else {
        OPDEV_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, s.stream));
        OPDEV_CUDA_CHECK(cudaStreamSynchronize(s.stream));
      }
      return OPDEV_STATUS_SUCCESS;
    case OPDEV_MEMCPY_DEVICE_TO_HOST:
      OPDEV_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, s.stream));
      check_error_word(s);  // synchronises the stream
      return OPDEV_STATUS_SUCCESS;
    case OPDEV_MEMCPY_DEVICE_TO_DEVICE:
      OPDEV_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, s.stream));
      return OPDEV_STATUS_SUCCESS;
    default: fail(OPDEV_STATUS_INVALID_ARGUMENT, "cuda: unknown memcpy kind ", int(kind));
  }
}

opdev_status synchronize(void* state) {
  auto& s = *static_cast<CudaState*>(state);
  OPDEV_CUDA_CHECK(cudaSetDevice(s.device));
  check_error_word(s);
  return OPDEV_STATUS_SUCCESS;
}

const char* describe(void* state) { return static_cast<CudaState*>(state)->description.c_str(); }

// Table slots: make the context's device current, then run the op.
#define OPDEV_OP(ID, name)                                                  \
  opdev_status slot_##name(ExecContext& ex, const name##_args& a) {         \
    OPDEV_CUDA_CHECK(cudaSetDevice(static_cast<CudaState*>(ex.state)->device)); \
    return cuda::name(ex, a);                                               \
  }
#include "opdev/ops.def"
#undef OPDEV_OP

}  // namespace
}  // namespace opdev::cuda

namespace opdev {

const Backend& cuda_backend() {
  static const Backend backend = {
      /* .name          = */ "cuda",
      /* .device_type   = */ kDLCUDA,
      /* .available     = */ cuda::available,
      /* .create_state  = */ cuda::create_state,
      /* .destroy_state = */ cuda::destroy_state,
      /* .supports      = */ cuda::supports,
      /* .raw_alloc     = */ cuda::raw_alloc,
      /* .raw_free      = */ cuda::raw_free,
      /* .memcpy        = */ cuda::memcpy_,
      /* .synchronize   = */ cuda::synchronize,
      /* .describe      = */ cuda::describe,
      /* .ops           = */
      BackendOps{
#define OPDEV_OP(ID, name) /* .name = */ &cuda::slot_##name,
#include "opdev/ops.def"
#undef OPDEV_OP
      },
  };
  return backend;
}

}  // namespace opdev
