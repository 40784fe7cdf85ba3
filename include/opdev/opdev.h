/*
 * opdev: a portable LLM operator library. The stable C interface.
 *
 * Conventions (they hold for every op below; docs/OPS.md has the full semantics):
 *  - Tensors are DLPack DLTensors (dlpack/dlpack.h). Shapes and strides are in elements; strides == NULL
 *    means compact row-major; byte_offset is honoured. Unless an op says otherwise the innermost
 *    dimension must be contiguous (stride 1) and the other dimensions may have any non-negative stride,
 *    e.g. a [T, heads, head_dim] view into a fused QKV buffer.
 *  - Every tensor must live on the context's device (opdev_context_device()). data may be NULL only when
 *    the tensor has no elements.
 *  - Outputs come first, then inputs, then scalars. Callers allocate outputs. An op documents which
 *    outputs may alias which inputs (then they must be exactly the same view); any other overlap between
 *    an output and another argument is an error.
 *  - Activation dtypes are float32, bfloat16 and float16 (the ref backend also takes float64). Index
 *    tensors are int32 or int64 as documented per op. Accumulation and transcendental math are float32 or
 *    better whatever the storage dtype.
 *  - Every op validates its arguments before touching memory. A violation returns a status and sets a
 *    thread-local message (opdev_last_error()) that names the op, the argument, and the expected and
 *    actual values. Index data that is visible on the host (CPU tensors) is range-checked before use.
 *    Nothing aborts; nothing reads or writes out of bounds.
 *  - Empty inputs (T = 0 tokens) are valid and do nothing.
 *  - No function takes ownership of caller memory. All functions are thread-safe for distinct contexts;
 *    one context must not be used by two threads at once.
 */
#ifndef OPDEV_OPDEV_H_
#define OPDEV_OPDEV_H_

#include <dlpack/dlpack.h>
#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define OPDEV_API __declspec(dllexport)
#else
#define OPDEV_API __attribute__((visibility("default")))
#endif

#define OPDEV_VERSION_MAJOR 0
#define OPDEV_VERSION_MINOR 1
#define OPDEV_VERSION_PATCH 0

/* Largest tensor rank any op accepts. */
#define OPDEV_MAX_DIMS 8

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------------ */
/* Status codes and errors                                                                          */
/* ------------------------------------------------------------------------------------------------ */

typedef enum opdev_status {
  OPDEV_STATUS_SUCCESS = 0,
  OPDEV_STATUS_INVALID_ARGUMENT = 1,  /* null pointer, wrong rank/shape/stride/device, bad scalar, forbidden aliasing */
  OPDEV_STATUS_UNSUPPORTED_DTYPE = 2, /* a dtype the op, or this backend, does not take */
  OPDEV_STATUS_OUT_OF_RANGE = 3,      /* index data out of range: token ids, positions, slots, expert ids, blocks */
  OPDEV_STATUS_SIZE_OVERFLOW = 4,     /* a size or byte-extent product overflows */
  OPDEV_STATUS_UNSUPPORTED = 5,       /* valid arguments this backend does not implement (e.g. a head_dim) */
  OPDEV_STATUS_OUT_OF_MEMORY = 6,
  OPDEV_STATUS_NOT_FOUND = 7,         /* unknown backend name, or its device is not present */
  OPDEV_STATUS_DEVICE_ERROR = 8,      /* the device runtime reported a failure (e.g. a CUDA error) */
  OPDEV_STATUS_INTERNAL = 9,          /* a bug in opdev: please report it with opdev_last_error() */
  OPDEV_STATUS_MAX_ENUM = 0x7FFFFFFF
} opdev_status;

/* Static string naming a status, e.g. "OPDEV_STATUS_INVALID_ARGUMENT". */
OPDEV_API const char* opdev_status_string(opdev_status status);

/* Message of the last failed call on this thread ("" after a success). Valid until the next opdev call
 * on the same thread. */
OPDEV_API const char* opdev_last_error(void);

/* Library version (of the shared object actually loaded). */
OPDEV_API void opdev_version(int* major, int* minor, int* patch);
OPDEV_API const char* opdev_version_string(void);

/* Logging. One sink for the library and the programs built on it: lines "opdev [level] component: message"
 * on stderr, or appended to the file named by OPDEV_LOG_FILE; the level comes from OPDEV_LOG_LEVEL
 * (error | warn | info | debug; default warn). The library logs context creation (info), backend choices
 * and every error it returns (debug). */
typedef enum opdev_log_level {
  OPDEV_LOG_ERROR = 0,
  OPDEV_LOG_WARN = 1,
  OPDEV_LOG_INFO = 2,
  OPDEV_LOG_DEBUG = 3,
  OPDEV_LOG_MAX_ENUM = 0x7FFFFFFF
} opdev_log_level;

/* 1 if lines of this level are written (check before formatting an expensive message). */
OPDEV_API int opdev_log_enabled(opdev_log_level level);
/* Writes one line if the level is enabled. component (e.g. "engine") may be NULL; message must not be NULL. */
OPDEV_API void opdev_log(opdev_log_level level, const char* component, const char* message);

/* ------------------------------------------------------------------------------------------------ */
/* Operators and backends                                                                           */
/* ------------------------------------------------------------------------------------------------ */

typedef enum opdev_op {
#define OPDEV_OP(ID, name) OPDEV_OP_##ID,
#include "opdev/ops.def"
#undef OPDEV_OP
  OPDEV_OP_COUNT,
  OPDEV_OP_MAX_ENUM = 0x7FFFFFFF /* keeps any int a valid value in C++ (callers may pass garbage) */
} opdev_op;

/* Canonical name of an op ("rms_norm"), or NULL for an invalid value. */
OPDEV_API const char* opdev_op_name(opdev_op op);
/* The op with that canonical name; OPDEV_OP_COUNT if none. */
OPDEV_API opdev_op opdev_op_from_name(const char* name);

/* Backends compiled into this library, in registration order ("ref", "cpu", and "cuda" when built). */
OPDEV_API int opdev_backend_count(void);
OPDEV_API const char* opdev_backend_name(int index);
/* 1 if a context for that backend can be created on this machine (e.g. a GPU is present), else 0. */
OPDEV_API int opdev_backend_available(const char* name);

/* ------------------------------------------------------------------------------------------------ */
/* Context                                                                                          */
/* ------------------------------------------------------------------------------------------------ */

typedef struct opdev_context opdev_context;

/* Workspace/device-memory allocator of a context. alloc returns memory on the context's device aligned to
 * at least `alignment` bytes, or NULL. */
typedef struct opdev_allocator {
  void* user;
  void* (*alloc)(void* user, size_t nbytes, size_t alignment);
  void (*free)(void* user, void* ptr);
} opdev_allocator;

typedef struct opdev_context_options {
  size_t struct_size;                /* sizeof(opdev_context_options): lets the struct grow compatibly */
  int device_id;                     /* device ordinal for device backends; 0 for host backends */
  int num_threads;                   /* host threads for host backends; 0 = OPDEV_NUM_THREADS or all cores */
  int deterministic;                 /* 1: bitwise-reproducible results (see docs/ARCHITECTURE.md) */
  const opdev_allocator* allocator;  /* workspace allocator; NULL = the built-in caching allocator */
} opdev_context_options;

/* Fills *options with the defaults (call before setting fields). */
OPDEV_API void opdev_context_options_init(opdev_context_options* options);

/* Creates a context on the named backend. options may be NULL (defaults). */
OPDEV_API opdev_status opdev_context_create(const char* backend, const opdev_context_options* options,
                                            opdev_context** out_ctx);
OPDEV_API void opdev_context_destroy(opdev_context* ctx);

OPDEV_API const char* opdev_context_backend(const opdev_context* ctx);
/* Backend-specific configuration of the context, e.g. the cpu kernel ISA ("avx512"); "" if none. */
OPDEV_API const char* opdev_context_describe(const opdev_context* ctx);
/* The device that tensors passed with this context must be on. */
OPDEV_API DLDevice opdev_context_device(const opdev_context* ctx);
OPDEV_API int opdev_context_num_threads(const opdev_context* ctx);
OPDEV_API opdev_status opdev_context_set_num_threads(opdev_context* ctx, int num_threads);
OPDEV_API int opdev_context_deterministic(const opdev_context* ctx);
OPDEV_API opdev_status opdev_context_set_deterministic(opdev_context* ctx, int deterministic);

/* 1 if the context's backend implements `op` with `dtype` as its activation dtype (the dtype of the op's
 * first floating-point input, or of the tensor an op documents as such, e.g. out of opdev_linear_w8a8),
 * else 0. */
OPDEV_API int opdev_supports(const opdev_context* ctx, opdev_op op, DLDataType dtype);

/* Waits for all work queued on the context (a no-op on host backends). */
OPDEV_API opdev_status opdev_synchronize(opdev_context* ctx);

/* Device memory of the context's device (host memory for host backends). */
OPDEV_API opdev_status opdev_malloc(opdev_context* ctx, size_t nbytes, void** out_ptr);
OPDEV_API opdev_status opdev_free(opdev_context* ctx, void* ptr);

typedef enum opdev_memcpy_kind {
  OPDEV_MEMCPY_HOST_TO_DEVICE = 0,
  OPDEV_MEMCPY_DEVICE_TO_HOST = 1,
  OPDEV_MEMCPY_DEVICE_TO_DEVICE = 2,
  OPDEV_MEMCPY_MAX_ENUM = 0x7FFFFFFF
} opdev_memcpy_kind;

/* Copy between host memory and the context's device. Synchronous for the host: on return, src may be
 * reused and (device to host) dst holds the data. Ordered with the context's ops: ops issued later on
 * this context see the copied data. A device backend may queue a host-to-device or device-to-device copy
 * on the context's own stream (cuda: host-to-device up to 1 MiB through pinned staging, and every
 * device-to-device copy), so other streams or libraries that read dst call opdev_synchronize first. */
OPDEV_API opdev_status opdev_memcpy(opdev_context* ctx, void* dst, const void* src, size_t nbytes,
                                    opdev_memcpy_kind kind);

/* ------------------------------------------------------------------------------------------------ */
/* Profiler hook                                                                                    */
/* ------------------------------------------------------------------------------------------------ */

/* A named scalar argument of an op call (ints and enums are exact in a double). */
typedef struct opdev_op_scalar {
  const char* name;
  double value;
} opdev_op_scalar;

/* What the front-end knows about one op call, passed to the profiler hook. */
typedef struct opdev_op_info {
  size_t struct_size;
  opdev_op op;
  const char* backend;
  int num_tensors;                   /* arguments in signature order; absent optional ones are NULL */
  const DLTensor* const* tensors;
  const char* const* tensor_names;
  double bytes;                      /* minimum bytes the op moves (its cost formula) */
  double flops;                      /* floating-point operations (its cost formula) */
  /* The fields below exist when struct_size covers them (added in 0.2). */
  int num_outputs;                   /* tensors[0 .. num_outputs) are written (in-place ones included) */
  int num_scalars;                   /* non-tensor arguments in signature order; a struct argument */
  const opdev_op_scalar* scalars;    /* (rope_cache's scaling) is flattened into its fields */
  const char* label;                 /* the context's label at the call (opdev_context_set_label), or "" */
  uint64_t call_index;               /* 0-based count of validated op calls on this context */
  DLDataType dtype;                  /* the activation dtype the backend runs (as opdev_supports takes it) */
} opdev_op_info;

typedef struct opdev_profiler {
  void* user;
  void (*op_begin)(void* user, const opdev_op_info* info);
  void (*op_end)(void* user, const opdev_op_info* info, opdev_status status);
} opdev_profiler;

/* Installs (or with NULL removes) a hook called around every op that passed validation. The struct is
 * copied. */
OPDEV_API opdev_status opdev_context_set_profiler(opdev_context* ctx, const opdev_profiler* profiler);

/* Labels the op calls that follow on this context (e.g. "layers.3.self_attn.qkv_proj"): the label reaches
 * the profiler hook and is appended to error messages as " (at <label>)". The string is copied; NULL or ""
 * clears it. Runtimes set it per op so that traces and errors say where in the model a call came from. */
OPDEV_API opdev_status opdev_context_set_label(opdev_context* ctx, const char* label);
/* The current label ("" if none). Valid until the next opdev_context_set_label on ctx. */
OPDEV_API const char* opdev_context_label(const opdev_context* ctx);

/* ------------------------------------------------------------------------------------------------ */
/* Profiling                                                                                        */
/* ------------------------------------------------------------------------------------------------ */

/* A profile records every op call of one context that passed validation: op, backend, label, activation
 * dtype, shapes, start and end time (host steady clock; on a device backend the context is synchronized
 * before the end time is taken), bytes, flops (the op's cost formula) and the calling thread. It works
 * beside a hook installed with opdev_context_set_profiler (both see every call). opdev_profile_write
 * turns it into files:
 *   trace.json             Chrome trace event format: open it in https://ui.perfetto.dev or
 *                          chrome://tracing (one track per thread; event name = label, else op name)
 *   op_summary.csv         one row per (op, backend, dtype, shapes): calls, total/mean/min time, GB/s,
 *                          GFLOP/s, memory- or compute-bound, fraction of the roofline
 *   fusion_candidates.csv  runs of adjacent memory-bound calls over the same tokens that pass a tensor
 *                          along, with the bytes and the time fusing each run would save
 *   report.txt             the text of opdev_profile_report
 * The roofline is the machine's read bandwidth and peak FLOP/s: given in the options, or measured on this
 * host (about 0.3 s, once per process and thread count, at the first write or report).
 *
 * OPDEV_PROFILE=DIR (environment): every context created while it is set records from its creation and
 * writes these files into a new directory DIR/ctx-<n> (the first n not taken) when it is destroyed.
 * Context creation fails, naming the path, when DIR cannot be created; a write that fails at destruction
 * is logged (OPDEV_LOG_LEVEL error). Without a profile, op calls cost nothing more than before.
 * A profile follows its context's threading rule: do not write it while another thread runs ops on it.
 * docs/ARCHITECTURE.md, "Profiling", has the formulas. */
typedef struct opdev_profile opdev_profile;

typedef struct opdev_profile_options {
  size_t struct_size;      /* sizeof(opdev_profile_options): lets the struct grow compatibly */
  double read_gbps;        /* memory bandwidth of the roofline in GB/s; 0 = measure this host */
  double peak_gflops;      /* float32 / float16 peak in GFLOP/s; 0 = measure this host */
  double peak_gflops_bf16; /* bfloat16 peak; 0 = peak_gflops when that is given, else measured. bfloat16 ops
                              are held to the larger of this and the float32 peak (a cpu without a faster
                              bfloat16 dot product computes them with float32 FMA) */
  int top;                 /* rows per table of the report; 0 = 15 */
} opdev_profile_options;

/* Fills *options with the defaults (call before setting fields). */
OPDEV_API void opdev_profile_options_init(opdev_profile_options* options);

/* Starts recording the op calls of ctx. options may be NULL (defaults). A context has at most one profile
 * at a time: INVALID_ARGUMENT if it already has one (an earlier opdev_profile_begin, or OPDEV_PROFILE). */
OPDEV_API opdev_status opdev_profile_begin(opdev_context* ctx, const opdev_profile_options* options,
                                           opdev_profile** out_profile);

/* Op calls recorded so far. */
OPDEV_API uint64_t opdev_profile_num_calls(const opdev_profile* profile);

/* Creates dir (and missing parents) and writes trace.json, op_summary.csv, fusion_candidates.csv and
 * report.txt into it, replacing files of those names. Recording goes on. An unwritable path is
 * INVALID_ARGUMENT with a message naming it. */
OPDEV_API opdev_status opdev_profile_write(opdev_profile* profile, const char* dir);

/* The report as text: totals and the roofline, the top operators by op and dtype and by label (without the
 * layer number), and the fusion candidates. *out_text is valid until the next call with this profile. */
OPDEV_API opdev_status opdev_profile_report(opdev_profile* profile, const char** out_text);

/* Stops recording and frees the profile (NULL is allowed). The context may have been destroyed before:
 * then recording stopped with it, and the profile could still be written. */
OPDEV_API void opdev_profile_end(opdev_profile* profile);

/* ------------------------------------------------------------------------------------------------ */
/* Operators. Shape comments use T tokens, H hidden size, D head_dim, E experts, k experts per token. */
/* ------------------------------------------------------------------------------------------------ */

/* --- Norms --------------------------------------------------------------------------------------- */

/* out = weight * cast_to_x_dtype(x_f32 * rsqrt(mean(x_f32^2) + eps)) over the last dimension.
 *   out    [..., H]  same dtype and shape as x; may alias x (same view)
 *   x      [..., H]  float32 | bfloat16 | float16; rank 1..8; leading dimensions may be strided
 *   weight [H]       same dtype as x, contiguous
 *   eps    > 0 and finite */
OPDEV_API opdev_status opdev_rms_norm(opdev_context* ctx, const DLTensor* out, const DLTensor* x,
                                      const DLTensor* weight, double eps);

/* residual_out = x + residual (added and rounded in the storage dtype), out = rms_norm(residual_out).
 *   out          [T, H]  may alias x
 *   residual_out [T, H]  may alias residual
 *   x, residual  [T, H]  float32 | bfloat16 | float16, same dtype
 *   weight       [H]     same dtype, contiguous */
OPDEV_API opdev_status opdev_add_rms_norm(opdev_context* ctx, const DLTensor* out, const DLTensor* residual_out,
                                          const DLTensor* x, const DLTensor* residual, const DLTensor* weight,
                                          double eps);

/* --- Position encoding --------------------------------------------------------------------------- */

/* Rotary embedding, in place on q and k.
 *   q             [T, Hq, D]  float32 | bfloat16 | float16 (in/out)
 *   k             [T, Hk, D]  same dtype (in/out), or NULL
 *   positions     [T]         int32 | int64, each in [0, P)
 *   cos_sin_cache [P, rot_dim] float32, contiguous; row p = [cos(p*f_0..f_{rot/2-1}), sin(same)]
 *   is_neox       1: pair i with i + rot_dim/2 (Qwen, Llama); 0: pair 2i with 2i+1 (GPT-J, DeepSeek MLA)
 * rot_dim must be even and <= D; dimensions past rot_dim pass through. q and k must not overlap. */
OPDEV_API opdev_status opdev_rope(opdev_context* ctx, const DLTensor* q, const DLTensor* k,
                                  const DLTensor* positions, const DLTensor* cos_sin_cache, int is_neox);

typedef enum opdev_rope_scaling_type {
  OPDEV_ROPE_SCALING_NONE = 0,   /* "default" */
  OPDEV_ROPE_SCALING_LINEAR = 1, /* positions divided by factor */
  OPDEV_ROPE_SCALING_YARN = 2,   /* YaRN as Hugging Face _compute_yarn_parameters defines it */
  OPDEV_ROPE_SCALING_MAX_ENUM = 0x7FFFFFFF
} opdev_rope_scaling_type;

/* Hugging Face `rope_scaling`. Fields that do not apply to `type` are ignored. */
typedef struct opdev_rope_scaling {
  opdev_rope_scaling_type type;
  double factor;                             /* >= 1 for linear and yarn */
  int64_t original_max_position_embeddings;  /* yarn: > 0 */
  double beta_fast;                          /* yarn: default 32 */
  double beta_slow;                          /* yarn: default 1 */
  double mscale;                             /* yarn: 0 = unset */
  double mscale_all_dim;                     /* yarn: 0 = unset */
  double attention_factor;                   /* yarn: 0 = derive from factor/mscale as HF does */
  int truncate;                              /* yarn: 1 (HF default) floors/ceils the correction range */
} opdev_rope_scaling;

/* Fills *scaling with type NONE and the Hugging Face defaults of every field. */
OPDEV_API void opdev_rope_scaling_init(opdev_rope_scaling* scaling);

/* Builds the cos/sin table used by opdev_rope.
 *   cos_sin_cache [P, rot_dim] float32, contiguous (output); rot_dim even
 *   theta         rope base (rope_theta), > 1
 *   scaling       NULL for the default rope
 * inv_freq_i = theta^(-2i/rot_dim) (adjusted by the scaling), row p = [cos(p*inv_freq), sin(p*inv_freq)]
 * times YaRN's attention factor when YaRN is used. */
OPDEV_API opdev_status opdev_rope_cache(opdev_context* ctx, const DLTensor* cos_sin_cache, double theta,
                                        const opdev_rope_scaling* scaling);

/* --- Activation ---------------------------------------------------------------------------------- */

/* out = cast(silu(gate_f32)) * up, gate = x[..., :d], up = x[..., d:] (Ascend SwiGlu).
 *   out [..., d]   same dtype as x
 *   x   [..., 2d]  float32 | bfloat16 | float16; rank 1..8 */
OPDEV_API opdev_status opdev_silu_and_mul(opdev_context* ctx, const DLTensor* out, const DLTensor* x);

/* --- Dense matrix products ----------------------------------------------------------------------- */

/* out = x * weight^T (+ bias), float32 accumulation.
 *   out    [M, N]
 *   x      [M, K]  float32 | bfloat16 | float16
 *   weight [N, K]  same dtype; the Hugging Face / PyTorch Linear layout [out_features, in_features]
 *   bias   [N]     same dtype, contiguous, or NULL
 * Rows of out, x and weight may be strided; out must not overlap any input. */
OPDEV_API opdev_status opdev_linear(opdev_context* ctx, const DLTensor* out, const DLTensor* x,
                                    const DLTensor* weight, const DLTensor* bias);

/* --- Mixture of experts -------------------------------------------------------------------------- */

typedef enum opdev_moe_scoring {
  OPDEV_MOE_SCORING_SOFTMAX = 0, /* Qwen3-MoE, Mixtral */
  OPDEV_MOE_SCORING_SIGMOID = 1, /* DeepSeek-V3 "noaux_tc" */
  OPDEV_MOE_SCORING_MAX_ENUM = 0x7FFFFFFF
} opdev_moe_scoring;

/* Router top-k.
 *   topk_weights    [T, k] float32 (output)
 *   topk_ids        [T, k] int32 (output); k = topk_ids.shape[1], 1 <= k <= E
 *   logits          [T, E] float32 | bfloat16 | float16
 *   correction_bias [E]    float32, or NULL; added to the scores for selection only
 *   n_group >= 1 divides E; 1 <= topk_group <= n_group; k <= topk_group * E / n_group
 * softmax: s = softmax(logits_f32); sigmoid: s = sigmoid(logits_f32). s' = s + correction_bias. With
 * n_group > 1 each group is scored by the sum of its two largest s' (its only s' if a group has one
 * expert) and only the topk_group best groups stay eligible. The k largest s' among eligible experts are
 * chosen, in descending order of s'; ties break toward the lower index (groups too); NaN ranks below
 * every number. Weights are the unbiased s; renormalize != 0 divides them by their sum; then all are
 * multiplied by routed_scaling_factor. */
OPDEV_API opdev_status opdev_moe_gating_topk(opdev_context* ctx, const DLTensor* topk_weights,
                                             const DLTensor* topk_ids, const DLTensor* logits,
                                             const DLTensor* correction_bias, opdev_moe_scoring scoring,
                                             int renormalize, int n_group, int topk_group,
                                             double routed_scaling_factor);

/* Groups the T*k (token, slot) pairs by expert: a stable sort by expert id of the flat index t*k + j.
 *   permuted_x     [T*k, H]  same dtype as x (output): permuted_x[r] = x[sorted_rows[r] / k]
 *   expert_offsets [E+1]     int64 (output): rows of expert e are expert_offsets[e] .. expert_offsets[e+1]
 *   sorted_rows    [T*k]     int32 (output): the flat index that row r came from
 *   x              [T, H]    float32 | bfloat16 | float16
 *   topk_ids       [T, k]    int32 | int64, each in [0, E) */
OPDEV_API opdev_status opdev_moe_permute(opdev_context* ctx, const DLTensor* permuted_x,
                                         const DLTensor* expert_offsets, const DLTensor* sorted_rows,
                                         const DLTensor* x, const DLTensor* topk_ids);

/* For each expert e: out[rows of e] = x[rows of e] * weight[e]^T, float32 accumulation (Ascend
 * GroupedMatmul). Experts with no rows cost nothing.
 *   out            [R, N]
 *   x              [R, K]     float32 | bfloat16 | float16
 *   weight         [E, N, K]  same dtype; the stack of the experts' Linear weights
 *   expert_offsets [E+1]      int64: 0 = o[0] <= o[1] <= ... <= o[E] = R */
OPDEV_API opdev_status opdev_grouped_matmul(opdev_context* ctx, const DLTensor* out, const DLTensor* x,
                                            const DLTensor* weight, const DLTensor* expert_offsets);

/* out[t] = sum_j topk_weights[t, j] * permuted_y[row of (t, j)], summed in float32 in slot order
 * j = 0..k-1 and rounded once (Ascend moe_finalize_routing).
 *   out          [T, H]
 *   permuted_y   [T*k, H]  float32 | bfloat16 | float16
 *   topk_weights [T, k]    float32
 *   sorted_rows  [T*k]     int32, a permutation of 0..T*k-1 (as opdev_moe_permute writes it) */
OPDEV_API opdev_status opdev_moe_unpermute(opdev_context* ctx, const DLTensor* out, const DLTensor* permuted_y,
                                           const DLTensor* topk_weights, const DLTensor* sorted_rows);

/* --- int8 W8A8: int8 weights and activations ------------------------------------------------------ */
/* vLLM's W8A8 scheme (scaled_int8_quant + cutlass_scaled_mm): weights int8 per output channel, symmetric,
 * w[n, k] ~ weight_scale[n] * weight[n, k]; activations int8 per row (token), symmetric, quantised at run
 * time by opdev_quantize_int8 (once per activation, then used by every product that reads it: q/k/v and
 * gate/up read the same x). Products accumulate exactly in int32, then are scaled and rounded once. Every
 * float32 step below is a single IEEE operation rounded to nearest even, so all backends agree bit for bit
 * on the int8 values and scales, and the matmuls' results do not depend on the kernel, the thread count or
 * the other rows of the batch. */

/* Dynamic per-row symmetric int8 quantisation. For each row m, in float32:
 *   a        = max_k |float32(x[m, k])|           (NaN if the row holds a NaN)
 *   scale[m] = a / 127.0f
 *   inv      = (a == 0) ? 0 : 127.0f / a
 *   r        = float32(x[m, k]) * inv
 *   out[m,k] = (r is NaN) ? 0 : clamp(round_half_to_even(r), -127, 127)
 * A row of zeros gets scale 0 and zeros. A row with a NaN gets scale NaN (and zeros), one with an infinity
 * (and no NaN) scale inf (and zeros): opdev_linear_w8a8 then makes that row of its output NaN.
 *   out   [M, K]  int8 (output)
 *   scale [M]     float32 (output), contiguous
 *   x     [M, K]  float32 | bfloat16 | float16 (the activation dtype)
 * Rows of out and x may be strided; out, scale and x must not overlap. */
OPDEV_API opdev_status opdev_quantize_int8(opdev_context* ctx, const DLTensor* out, const DLTensor* scale, const DLTensor* x);

/* out = x_scale[m] * weight_scale[n] * sum_k x[m, k] * weight[n, k] (+ bias[n]), the sum exact in int32
 * (acc). Then in float32 (vLLM's ScaledEpilogueBias order):
 *   t = float32(acc) * weight_scale[n]        (float32(acc) rounds to nearest even past 2^24)
 *   y = bias ? fmaf(x_scale[m], t, float32(bias[n])) : x_scale[m] * t
 * and y is rounded once to out's dtype.
 *   out          [M, N]  float32 | bfloat16 | float16 (the activation dtype)
 *   x            [M, K]  int8, any value (e.g. from opdev_quantize_int8)
 *   x_scale      [M]     float32, contiguous
 *   weight       [N, K]  int8, any value; the Linear layout [out_features, in_features]
 *   weight_scale [N]     float32, contiguous
 *   bias         [N]     out's dtype, contiguous, or NULL
 * K <= 131071 (so that no int32 sum of int8 products can overflow: 131071 * 128 * 128 < 2^31). Rows of out,
 * x and weight may be strided; out must not overlap any input. NaN or inf scales propagate through the
 * multiplications above (a NaN x_scale[m] makes row m NaN). */
OPDEV_API opdev_status opdev_linear_w8a8(opdev_context* ctx, const DLTensor* out, const DLTensor* x, const DLTensor* x_scale,
                                         const DLTensor* weight, const DLTensor* weight_scale, const DLTensor* bias);

/* grouped_matmul with int8 operands: for each expert e, rows r of e (expert_offsets[e] <= r <
 * expert_offsets[e+1]) get out[r, n] = the opdev_linear_w8a8 epilogue of sum_k x[r, k] * weight[e, n, k]
 * with x_scale[r] and weight_scale[e, n] (no bias). Experts with no rows are not read.
 *   out            [R, N]     float32 | bfloat16 | float16 (the activation dtype)
 *   x              [R, K]     int8
 *   x_scale        [R]        float32, contiguous
 *   weight         [E, N, K]  int8
 *   weight_scale   [E, N]     float32, contiguous
 *   expert_offsets [E+1]      int64: 0 = o[0] <= o[1] <= ... <= o[E] = R
 * K <= 131071. Rows of out, x and weight may be strided; out must not overlap any input. */
OPDEV_API opdev_status opdev_grouped_matmul_w8a8(opdev_context* ctx, const DLTensor* out, const DLTensor* x,
                                                 const DLTensor* x_scale, const DLTensor* weight,
                                                 const DLTensor* weight_scale, const DLTensor* expert_offsets);

/* --- KV cache and attention ---------------------------------------------------------------------- */
/* Paged KV cache layout: [num_blocks, block_size, Hk, D] for keys and the same for values (vLLM "NHD",
 * Ascend A2). A token's slot is block_id * block_size + offset. */

/* Writes token t's key/value at slot_mapping[t]; negative slots are padding and skipped.
 *   key_cache    [num_blocks, block_size, Hk, D] (in/out)
 *   value_cache  same shape and dtype, or NULL (key-only cache; then value must be NULL too)
 *   key          [T, Hk, D]  same dtype as the cache: float32 | bfloat16 | float16
 *   value        [T, Hk, D]  or NULL
 *   slot_mapping [T]         int32 | int64, each < num_blocks * block_size; distinct non-negative slots */
OPDEV_API opdev_status opdev_reshape_and_cache(opdev_context* ctx, const DLTensor* key_cache,
                                               const DLTensor* value_cache, const DLTensor* key,
                                               const DLTensor* value, const DLTensor* slot_mapping);

/* Attention over the paged cache, one op for prefill, chunked prefill and decode (the shape of
 * flash_attn_varlen_func with a block table). Sequence b owns query rows
 * cu_seqlens_q[b]..cu_seqlens_q[b+1] and its first seq_lens_kv[b] cache slots through block_table[b].
 *   out          [Tq, Hq, D]  same dtype as q
 *   softmax_lse  [Tq, Hq]     float32 log-sum-exp of each row's scaled scores, or NULL
 *   q            [Tq, Hq, D]  float32 | bfloat16 | float16
 *   key_cache    [num_blocks, block_size, Hk, D]  same dtype as q; Hq % Hk == 0
 *   value_cache  [num_blocks, block_size, Hk, D]
 *   block_table  [B, max_blocks]  int32; the first ceil(seq_lens_kv[b] / block_size) entries of row b
 *                must be in [0, num_blocks); later entries are not read
 *   cu_seqlens_q [B+1]  int32: 0, non-decreasing, last = Tq
 *   seq_lens_kv  [B]    int32 in [0, max_blocks * block_size]
 * Query head h reads kv head h / (Hq / Hk). Scores scale * q.k and the softmax are float32; P.V
 * accumulates in float32, and in bfloat16 / float16 P may be rounded to that dtype first (as
 * FlashAttention-2 and PyTorch's CPU flash attention do; the softmax sum uses float32 P). causal != 0
 * masks bottom-right aligned: query row i of a sequence with q_len queries sees keys
 * 0 .. kv_len - q_len + i. A row that sees no key gets out = 0 and lse = -inf. */
OPDEV_API opdev_status opdev_paged_attention(opdev_context* ctx, const DLTensor* out, const DLTensor* softmax_lse,
                                             const DLTensor* q, const DLTensor* key_cache,
                                             const DLTensor* value_cache, const DLTensor* block_table,
                                             const DLTensor* cu_seqlens_q, const DLTensor* seq_lens_kv,
                                             double scale, int causal);

/* --- Embedding, sampling, utilities -------------------------------------------------------------- */

/* out[t] = table[ids[t]].
 *   out   [T, H]  same dtype as table
 *   table [V, H]  float32 | bfloat16 | float16
 *   ids   [T]     int32 | int64, each in [0, V) */
OPDEV_API opdev_status opdev_embedding(opdev_context* ctx, const DLTensor* out, const DLTensor* table,
                                       const DLTensor* ids);

/* Draws one token per row.
 *   ids_out     [B]     int32 (output)
 *   logits      [B, V]  float32 | bfloat16 | float16
 *   temperature [B]     float32 >= 0; 0 = greedy (argmax, lowest index on ties; NaN ranks lowest)
 *   top_k       [B]     int32; <= 0 or >= V = no top-k filter
 *   top_p       [B]     float32 in (0, 1]; 1 = no top-p filter
 *   seeds       [B]     int64: per-request seed
 *   steps       [B]     int64: per-request counter (e.g. the number of tokens generated so far)
 * Otherwise: logits / temperature in float32, keep the top_k largest (ties toward the lower index), then
 * keep the smallest prefix (in descending probability) whose probability mass before the token is below
 * top_p, then draw from the kept tokens by the exponential race: argmax_i (l_i - log(E_i)) with
 * E_i = -log(u_i), u_i = ((x >> 8) + 0.5) / 2^24 in (0, 1), x the first word of Philox4x32-10 with key
 * (seed low, seed high) = seeds[b] and counter (i, 0, step low, step high) = steps[b].
 * The draw depends only on (logits row, temperature, top_k, top_p, seed, step): not on the batch, the
 * thread count or the backend. */
OPDEV_API opdev_status opdev_sample(opdev_context* ctx, const DLTensor* ids_out, const DLTensor* logits,
                                    const DLTensor* temperature, const DLTensor* top_k, const DLTensor* top_p,
                                    const DLTensor* seeds, const DLTensor* steps);

/* out = a + b elementwise in float32, rounded once. Any rank <= 8, equal shapes, any strides (stride 0
 * broadcasts an input); out, a and b may each be float32 | bfloat16 | float16. out may alias a or b. */
OPDEV_API opdev_status opdev_add(opdev_context* ctx, const DLTensor* out, const DLTensor* a, const DLTensor* b);

/* out = x converted to out's dtype (round to nearest even; NaN stays NaN). Any float dtype pair among
 * float32 | bfloat16 | float16, equal shapes, any strides. */
OPDEV_API opdev_status opdev_cast(opdev_context* ctx, const DLTensor* out, const DLTensor* x);

/* out = x, any dtype (the same for both), equal shapes, any strides (makes views contiguous). */
OPDEV_API opdev_status opdev_copy(opdev_context* ctx, const DLTensor* out, const DLTensor* x);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* OPDEV_OPDEV_H_ */
