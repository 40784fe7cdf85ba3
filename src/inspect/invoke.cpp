// Op signatures (names and roles of every argument, as the front-ends report them to the profiler hook) and
// the generic invoker: (op, named tensors, named scalars) -> the C call. One switch over ops.def; the
// invoker test re-invokes captured calls of every op and requires bitwise-identical outputs, and compares
// these names with the ones the hook reports.
#include <cmath>

#include "inspect/inspect.h"

namespace opdev::inspect {

namespace {

using S = std::vector<std::string>;

OpSignature sig(opdev_op op, S tensors, int num_outputs, S inout, S scalars, S fixed_f32 = {}) {
  OpSignature s;
  s.op = op;
  s.name = opdev_op_name(op);
  s.tensors = std::move(tensors);
  for (size_t i = 0; i < s.tensors.size(); ++i) {
    bool io = false;
    for (const auto& n : inout) io = io || n == s.tensors[i];
    s.roles.push_back(io ? Role::InOut : int(i) < num_outputs ? Role::Out : Role::In);
  }
  s.scalars = std::move(scalars);
  s.fixed_float32 = std::move(fixed_f32);
  return s;
}

const S kScaling = {"theta",
                    "scaling.type",
                    "scaling.factor",
                    "scaling.original_max_position_embeddings",
                    "scaling.beta_fast",
                    "scaling.beta_slow",
                    "scaling.mscale",
                    "scaling.mscale_all_dim",
                    "scaling.attention_factor",
                    "scaling.truncate"};

std::vector<OpSignature> build_signatures() {
  std::vector<OpSignature> v(OPDEV_OP_COUNT);
  for (int i = 0; i < OPDEV_OP_COUNT; ++i) {
    const opdev_op op = opdev_op(i);
    switch (op) {
      case OPDEV_OP_RMS_NORM: v[i] = sig(op, {"out", "x", "weight"}, 1, {}, {"eps"}); break;
      case OPDEV_OP_ADD_RMS_NORM:
        v[i] = sig(op, {"out", "residual_out", "x", "residual", "weight"}, 2, {}, {"eps"});
        break;
      case OPDEV_OP_ROPE:
        v[i] = sig(op, {"q", "k", "positions", "cos_sin_cache"}, 2, {"q", "k"}, {"is_neox"}, {"cos_sin_cache"});
        break;
      case OPDEV_OP_ROPE_CACHE: v[i] = sig(op, {"cos_sin_cache"}, 1, {}, kScaling, {"cos_sin_cache"}); break;
      case OPDEV_OP_SILU_AND_MUL: v[i] = sig(op, {"out", "x"}, 1, {}, {}); break;
      case OPDEV_OP_LINEAR: v[i] = sig(op, {"out", "x", "weight", "bias"}, 1, {}, {}); break;
      case OPDEV_OP_MOE_GATING_TOPK:
        v[i] = sig(op, {"topk_weights", "topk_ids", "logits", "correction_bias"}, 2, {},
                   {"scoring", "renormalize", "n_group", "topk_group", "routed_scaling_factor"}, {"topk_weights", "correction_bias"});
        break;
      case OPDEV_OP_MOE_PERMUTE:
        v[i] = sig(op, {"permuted_x", "expert_offsets", "sorted_rows", "x", "topk_ids"}, 3, {}, {});
        break;
      case OPDEV_OP_GROUPED_MATMUL: v[i] = sig(op, {"out", "x", "weight", "expert_offsets"}, 1, {}, {}); break;
      case OPDEV_OP_MOE_UNPERMUTE:
        v[i] = sig(op, {"out", "permuted_y", "topk_weights", "sorted_rows"}, 1, {}, {}, {"topk_weights"});
        break;
      case OPDEV_OP_RESHAPE_AND_CACHE:
        v[i] = sig(op, {"key_cache", "value_cache", "key", "value", "slot_mapping"}, 2, {"key_cache", "value_cache"}, {});
        break;
      case OPDEV_OP_PAGED_ATTENTION:
        v[i] = sig(op, {"out", "softmax_lse", "q", "key_cache", "value_cache", "block_table", "cu_seqlens_q", "seq_lens_kv"}, 2, {},
                   {"scale", "causal"}, {"softmax_lse"});
        break;
      case OPDEV_OP_EMBEDDING: v[i] = sig(op, {"out", "table", "ids"}, 1, {}, {}); break;
      case OPDEV_OP_SAMPLE:
        v[i] = sig(op, {"ids_out", "logits", "temperature", "top_k", "top_p", "seeds", "steps"}, 1, {}, {}, {"temperature", "top_p"});
        break;
      case OPDEV_OP_ADD: v[i] = sig(op, {"out", "a", "b"}, 1, {}, {}); break;
      case OPDEV_OP_CAST: v[i] = sig(op, {"out", "x"}, 1, {}, {}); break;
      case OPDEV_OP_COPY: v[i] = sig(op, {"out", "x"}, 1, {}, {}); break;
      case OPDEV_OP_QUANTIZE_INT8: v[i] = sig(op, {"out", "scale", "x"}, 2, {}, {}, {"scale"}); break;
      case OPDEV_OP_LINEAR_W8A8:
        v[i] = sig(op, {"out", "x", "x_scale", "weight", "weight_scale", "bias"}, 1, {}, {}, {"x_scale", "weight_scale"});
        break;
      case OPDEV_OP_GROUPED_MATMUL_W8A8:
        v[i] = sig(op, {"out", "x", "x_scale", "weight", "weight_scale", "expert_offsets"}, 1, {}, {}, {"x_scale", "weight_scale"});
        break;
      // No default: -Wswitch names an op added to ops.def without a signature here.
      case OPDEV_OP_COUNT:
      case OPDEV_OP_MAX_ENUM: break;
    }
  }
  return v;
}

// Scalar conversions with range checks (the values come from files).
int to_int(const std::string& op, const std::string& name, double v) {
  if (!(std::isfinite(v) && v == std::floor(v) && std::fabs(v) <= 2147483647.0))
    throw InspectError(op + ": scalar '" + name + "' must be an integer, got " + std::to_string(v));
  return int(v);
}

}  // namespace

const char* role_name(Role r) {
  switch (r) {
    case Role::In: return "in";
    case Role::Out: return "out";
    case Role::InOut: return "inout";
  }
  return "?";
}

int OpSignature::num_outputs() const {
  int n = 0;
  for (Role r : roles) n += r != Role::In;
  return n;
}

const OpSignature& op_signature(opdev_op op) {
  static const std::vector<OpSignature> sigs = build_signatures();
  if (int(op) < 0 || int(op) >= OPDEV_OP_COUNT) throw InspectError("op value " + std::to_string(int(op)) + " is not in ops.def");
  const OpSignature& s = sigs[size_t(op)];
  if (s.tensors.empty()) throw InspectError(std::string("op '") + opdev_op_name(op) + "' has no signature in src/inspect (internal)");
  return s;
}

opdev_op op_from_name(const std::string& name) {
  const opdev_op op = opdev_op_from_name(name.c_str());
  if (op == OPDEV_OP_COUNT) {
    std::string known;
    for (int i = 0; i < OPDEV_OP_COUNT; ++i) known += std::string(known.empty() ? "" : ", ") + opdev_op_name(opdev_op(i));
    throw InspectError("unknown op '" + name + "' (known: " + known + ")");
  }
  return op;
}

opdev_status invoke(opdev_context* ctx, opdev_op op, const std::map<std::string, const DLTensor*>& tensors,
                    const std::map<std::string, double>& scalars) {
  const OpSignature& s = op_signature(op);
  const std::string opn = s.name;
  for (const auto& [name, t] : tensors) {
    bool known = false;
    for (const auto& n : s.tensors) known = known || n == name;
    if (!known) throw InspectError(opn + " has no tensor argument '" + name + "'");
  }
  for (const auto& [name, v] : scalars) {
    bool known = false;
    for (const auto& n : s.scalars) known = known || n == name;
    if (!known) throw InspectError(opn + " has no scalar argument '" + name + "'");
  }
  auto T = [&](const char* name) -> const DLTensor* {
    auto it = tensors.find(name);
    return it == tensors.end() ? nullptr : it->second;
  };
  auto D = [&](const char* name) -> double {
    auto it = scalars.find(name);
    if (it == scalars.end()) throw InspectError(opn + ": scalar '" + name + "' is missing");
    return it->second;
  };
  auto I = [&](const char* name) { return to_int(opn, name, D(name)); };

  switch (op) {
    case OPDEV_OP_RMS_NORM: return opdev_rms_norm(ctx, T("out"), T("x"), T("weight"), D("eps"));
    case OPDEV_OP_ADD_RMS_NORM:
      return opdev_add_rms_norm(ctx, T("out"), T("residual_out"), T("x"), T("residual"), T("weight"), D("eps"));
    case OPDEV_OP_ROPE: return opdev_rope(ctx, T("q"), T("k"), T("positions"), T("cos_sin_cache"), I("is_neox"));
    case OPDEV_OP_ROPE_CACHE: {
      opdev_rope_scaling sc;
      opdev_rope_scaling_init(&sc);
      sc.type = opdev_rope_scaling_type(I("scaling.type"));
      sc.factor = D("scaling.factor");
      const double omp = D("scaling.original_max_position_embeddings");
      if (!(std::isfinite(omp) && omp == std::floor(omp) && std::fabs(omp) < 9.0e15))
        throw InspectError(opn + ": scalar 'scaling.original_max_position_embeddings' must be an integer");
      sc.original_max_position_embeddings = int64_t(omp);
      sc.beta_fast = D("scaling.beta_fast");
      sc.beta_slow = D("scaling.beta_slow");
      sc.mscale = D("scaling.mscale");
      sc.mscale_all_dim = D("scaling.mscale_all_dim");
      sc.attention_factor = D("scaling.attention_factor");
      sc.truncate = I("scaling.truncate");
      return opdev_rope_cache(ctx, T("cos_sin_cache"), D("theta"), &sc);
    }
    case OPDEV_OP_SILU_AND_MUL: return opdev_silu_and_mul(ctx, T("out"), T("x"));
    case OPDEV_OP_LINEAR: return opdev_linear(ctx, T("out"), T("x"), T("weight"), T("bias"));
    case OPDEV_OP_MOE_GATING_TOPK:
      return opdev_moe_gating_topk(ctx, T("topk_weights"), T("topk_ids"), T("logits"), T("correction_bias"),
                                   opdev_moe_scoring(I("scoring")), I("renormalize"), I("n_group"), I("topk_group"),
                                   D("routed_scaling_factor"));
    case OPDEV_OP_MOE_PERMUTE:
      return opdev_moe_permute(ctx, T("permuted_x"), T("expert_offsets"), T("sorted_rows"), T("x"), T("topk_ids"));
    case OPDEV_OP_GROUPED_MATMUL: return opdev_grouped_matmul(ctx, T("out"), T("x"), T("weight"), T("expert_offsets"));
    case OPDEV_OP_MOE_UNPERMUTE: return opdev_moe_unpermute(ctx, T("out"), T("permuted_y"), T("topk_weights"), T("sorted_rows"));
    case OPDEV_OP_RESHAPE_AND_CACHE:
      return opdev_reshape_and_cache(ctx, T("key_cache"), T("value_cache"), T("key"), T("value"), T("slot_mapping"));
    case OPDEV_OP_PAGED_ATTENTION:
      return opdev_paged_attention(ctx, T("out"), T("softmax_lse"), T("q"), T("key_cache"), T("value_cache"), T("block_table"),
                                   T("cu_seqlens_q"), T("seq_lens_kv"), D("scale"), I("causal"));
    case OPDEV_OP_EMBEDDING: return opdev_embedding(ctx, T("out"), T("table"), T("ids"));
    case OPDEV_OP_SAMPLE:
      return opdev_sample(ctx, T("ids_out"), T("logits"), T("temperature"), T("top_k"), T("top_p"), T("seeds"), T("steps"));
    case OPDEV_OP_ADD: return opdev_add(ctx, T("out"), T("a"), T("b"));
    case OPDEV_OP_CAST: return opdev_cast(ctx, T("out"), T("x"));
    case OPDEV_OP_COPY: return opdev_copy(ctx, T("out"), T("x"));
    case OPDEV_OP_QUANTIZE_INT8: return opdev_quantize_int8(ctx, T("out"), T("scale"), T("x"));
    case OPDEV_OP_LINEAR_W8A8:
      return opdev_linear_w8a8(ctx, T("out"), T("x"), T("x_scale"), T("weight"), T("weight_scale"), T("bias"));
    case OPDEV_OP_GROUPED_MATMUL_W8A8:
      return opdev_grouped_matmul_w8a8(ctx, T("out"), T("x"), T("x_scale"), T("weight"), T("weight_scale"), T("expert_offsets"));
    case OPDEV_OP_COUNT:
    case OPDEV_OP_MAX_ENUM: break;
  }
  throw InspectError("op value " + std::to_string(int(op)) + " is not in ops.def");
}

}  // namespace opdev::inspect
