// Front-ends of rope and rope_cache: validate, then dispatch. Also opdev_rope_scaling_init.
#include <cmath>
#include <cstring>
#include <type_traits>

#include "ops/dispatch.h"

using namespace opdev;

namespace {

const char* scaling_type_name(opdev_rope_scaling_type t) {
  switch (t) {
    case OPDEV_ROPE_SCALING_NONE: return "none";
    case OPDEV_ROPE_SCALING_LINEAR: return "linear";
    case OPDEV_ROPE_SCALING_YARN: return "yarn";
    case OPDEV_ROPE_SCALING_MAX_ENUM: break;
  }
  return "?";
}

// The fields that apply to the scaling type, with Hugging Face's ranges (its _validate_*_parameters).
void check_scaling(const opdev_rope_scaling& s) {
  // A C caller may pass any integer; reading it as the enum would be undefined for values outside the
  // enumeration's range, so read the bytes.
  std::underlying_type_t<opdev_rope_scaling_type> type;
  std::memcpy(&type, &s.type, sizeof type);
  OpCheck::expect(type == OPDEV_ROPE_SCALING_NONE || type == OPDEV_ROPE_SCALING_LINEAR || type == OPDEV_ROPE_SCALING_YARN,
                  OPDEV_STATUS_INVALID_ARGUMENT,
                  "scaling.type: expected OPDEV_ROPE_SCALING_NONE (0), OPDEV_ROPE_SCALING_LINEAR (1) or OPDEV_ROPE_SCALING_YARN (2), got ",
                  int64_t(type));
  if (s.type == OPDEV_ROPE_SCALING_NONE) return;
  OpCheck::expect(std::isfinite(s.factor) && s.factor >= 1, OPDEV_STATUS_INVALID_ARGUMENT, "scaling.factor: expected a finite value >= 1 for ",
                  scaling_type_name(s.type), " scaling, got ", s.factor);
  if (s.type != OPDEV_ROPE_SCALING_YARN) return;
  OpCheck::expect(s.original_max_position_embeddings > 0, OPDEV_STATUS_INVALID_ARGUMENT,
                  "scaling.original_max_position_embeddings: expected a value > 0 for yarn scaling, got ", s.original_max_position_embeddings);
  // The correction range takes log(original / (beta * 2 pi)): a beta <= 0 has no meaning.
  OpCheck::expect(std::isfinite(s.beta_fast) && s.beta_fast > 0, OPDEV_STATUS_INVALID_ARGUMENT,
                  "scaling.beta_fast: expected a finite value > 0 (Hugging Face default 32), got ", s.beta_fast);
  OpCheck::expect(std::isfinite(s.beta_slow) && s.beta_slow > 0, OPDEV_STATUS_INVALID_ARGUMENT,
                  "scaling.beta_slow: expected a finite value > 0 (Hugging Face default 1), got ", s.beta_slow);
  OpCheck::expect(std::isfinite(s.mscale) && s.mscale >= 0, OPDEV_STATUS_INVALID_ARGUMENT,
                  "scaling.mscale: expected a finite value >= 0 (0 = unset), got ", s.mscale);
  OpCheck::expect(std::isfinite(s.mscale_all_dim) && s.mscale_all_dim >= 0, OPDEV_STATUS_INVALID_ARGUMENT,
                  "scaling.mscale_all_dim: expected a finite value >= 0 (0 = unset), got ", s.mscale_all_dim);
  OpCheck::expect(std::isfinite(s.attention_factor) && s.attention_factor >= 0, OPDEV_STATUS_INVALID_ARGUMENT,
                  "scaling.attention_factor: expected a finite value >= 0 (0 = derived from factor and mscale), got ", s.attention_factor);
}

}  // namespace

extern "C" {

OPDEV_API void opdev_rope_scaling_init(opdev_rope_scaling* scaling) {
  if (!scaling) return;
  // Hugging Face: rope_type "default", factor 1, beta_fast 32, beta_slow 1, truncate True; mscale,
  // mscale_all_dim and attention_factor unset; original_max_position_embeddings has no default of its
  // own (HF falls back to the model's max_position_embeddings, which this struct does not carry).
  *scaling = opdev_rope_scaling{};
  scaling->type = OPDEV_ROPE_SCALING_NONE;
  scaling->factor = 1.0;
  scaling->original_max_position_embeddings = 0;
  scaling->beta_fast = 32.0;
  scaling->beta_slow = 1.0;
  scaling->mscale = 0.0;
  scaling->mscale_all_dim = 0.0;
  scaling->attention_factor = 0.0;
  scaling->truncate = 1;
}

OPDEV_API opdev_status opdev_rope(opdev_context* ctx, const DLTensor* q, const DLTensor* k, const DLTensor* positions,
                                  const DLTensor* cos_sin_cache, int is_neox) {
  return api_call("opdev_rope", [&] {
    OpCheck c(ctx);
    rope_args a;
    a.q = c.tensor("q", q);
    a.k = c.optional("k", k);
    a.positions = c.tensor("positions", positions);
    a.cos_sin_cache = c.tensor("cos_sin_cache", cos_sin_cache);
    c.rank(a.q, 3);
    c.activation_dtype(a.q);
    const int64_t T = a.q.size(0), D = a.q.size(2);
    if (a.k.present) {
      c.rank(a.k, 3);
      c.same_dtype(a.k, a.q);
      c.dim(a.k, 0, T, "tokens T of q");
      c.dim(a.k, 2, D, "head_dim D of q");
    }
    c.rank(a.positions, 1);
    c.index_dtype(a.positions);
    c.dim(a.positions, 0, T, "tokens T of q");
    c.rank(a.cos_sin_cache, 2);
    c.dtype(a.cos_sin_cache, DType::F32);
    c.contiguous(a.cos_sin_cache);
    const int64_t P = a.cos_sin_cache.size(0), rot = a.cos_sin_cache.size(1);
    c.expect(rot % 2 == 0, OPDEV_STATUS_INVALID_ARGUMENT, "cos_sin_cache: expected an even rot_dim (dimension 1), got ", rot);
    c.expect(rot <= D, OPDEV_STATUS_INVALID_ARGUMENT, "cos_sin_cache: expected rot_dim (dimension 1) <= head_dim D = ", D,
             " of q, got ", rot);
    c.inner_contiguous(a.q);
    c.writable(a.q);
    c.disjoint(a.q, a.positions);
    c.disjoint(a.q, a.cos_sin_cache);
    if (a.k.present) {
      c.inner_contiguous(a.k);
      c.writable(a.k);
      // Typically both are views of one fused qkv buffer with the same row stride: core's overlap test
      // is exact for that layout.
      c.disjoint(a.q, a.k);
      c.disjoint(a.k, a.positions);
      c.disjoint(a.k, a.cos_sin_cache);
    }
    c.expect(is_neox == 0 || is_neox == 1, OPDEV_STATUS_INVALID_ARGUMENT,
             "is_neox: expected 1 (NeoX: pair i with i + rot_dim/2) or 0 (GPT-J: pair 2i with 2i+1), got ", is_neox);
    a.is_neox = is_neox == 1;
    if (c.host_visible()) c.index_range(a.positions, 0, P, "the rows P of cos_sin_cache");
    const int64_t heads = a.q.size(1) + (a.k.present ? a.k.size(1) : 0);
    const bool empty = T == 0 || rot == 0 || heads == 0;
    auto cost = [&] {
      // Only the first rot_dim elements of each head are read and written; a token reads its cache row.
      const double rotated = double(T) * double(heads) * double(rot);
      const double rows = double(T < P ? T : P);
      return OpCost{2.0 * rotated * double(a.q.itemsize()) + nbytes(a.positions) + rows * double(rot) * 4.0, 3.0 * rotated};
    };
    return dispatch(c, a, a.q.dtype, empty, cost,
                    {{"q", q}, {"k", k}, {"positions", positions}, {"cos_sin_cache", cos_sin_cache}}, {{"is_neox", double(is_neox)}});
  });
}

OPDEV_API opdev_status opdev_rope_cache(opdev_context* ctx, const DLTensor* cos_sin_cache, double theta,
                                        const opdev_rope_scaling* scaling) {
  return api_call("opdev_rope_cache", [&] {
    OpCheck c(ctx);
    rope_cache_args a;
    a.cos_sin_cache = c.tensor("cos_sin_cache", cos_sin_cache);
    c.rank(a.cos_sin_cache, 2);
    c.dtype(a.cos_sin_cache, DType::F32);
    c.contiguous(a.cos_sin_cache);
    c.writable(a.cos_sin_cache);
    const int64_t rot = a.cos_sin_cache.size(1);
    c.expect(rot % 2 == 0, OPDEV_STATUS_INVALID_ARGUMENT, "cos_sin_cache: expected an even rot_dim (dimension 1), got ", rot);
    c.expect(std::isfinite(theta) && theta > 1, OPDEV_STATUS_INVALID_ARGUMENT, "theta: expected a finite value > 1, got ", theta);
    a.theta = theta;
    if (scaling) {
      check_scaling(*scaling);
      a.scaling = *scaling;
    } else {
      opdev_rope_scaling_init(&a.scaling);
    }
    // One cos or sin and one scaling per element (transcendentals counted as one operation).
    auto cost = [&] { return OpCost{nbytes(a.cos_sin_cache), 2.0 * double(a.cos_sin_cache.numel)}; };
    const opdev_rope_scaling& sc = a.scaling;
    return dispatch(c, a, a.cos_sin_cache.dtype, a.cos_sin_cache.empty(), cost, {{"cos_sin_cache", cos_sin_cache}},
                    {{"theta", theta},
                     {"scaling.type", double(sc.type)},
                     {"scaling.factor", sc.factor},
                     {"scaling.original_max_position_embeddings", double(sc.original_max_position_embeddings)},
                     {"scaling.beta_fast", sc.beta_fast},
                     {"scaling.beta_slow", sc.beta_slow},
                     {"scaling.mscale", sc.mscale},
                     {"scaling.mscale_all_dim", sc.mscale_all_dim},
                     {"scaling.attention_factor", sc.attention_factor},
                     {"scaling.truncate", double(sc.truncate)}});
  });
}

}  // extern "C"
