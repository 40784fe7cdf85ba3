// Front-end of sample: validate (the per-row parameters too, when they are visible on the host), then
// dispatch.
#include <cmath>

#include "ops/dispatch.h"

using namespace opdev;

extern "C" {

OPDEV_API opdev_status opdev_sample(opdev_context* ctx, const DLTensor* ids_out, const DLTensor* logits, const DLTensor* temperature,
                                    const DLTensor* top_k, const DLTensor* top_p, const DLTensor* seeds, const DLTensor* steps) {
  return api_call("opdev_sample", [&] {
    OpCheck c(ctx);
    sample_args a;
    a.ids_out = c.tensor("ids_out", ids_out);
    a.logits = c.tensor("logits", logits);
    a.temperature = c.tensor("temperature", temperature);
    a.top_k = c.tensor("top_k", top_k);
    a.top_p = c.tensor("top_p", top_p);
    a.seeds = c.tensor("seeds", seeds);
    a.steps = c.tensor("steps", steps);
    c.rank(a.logits, 2);
    c.activation_dtype(a.logits);
    const int64_t B = a.logits.size(0), V = a.logits.size(1);
    c.expect(V >= 1, OPDEV_STATUS_INVALID_ARGUMENT, "logits: expected a vocabulary of at least one token (V >= 1), got shape ",
             a.logits.shape_str());
    c.expect(V <= (int64_t(1) << 31), OPDEV_STATUS_INVALID_ARGUMENT, "logits: V = ", V, " token ids do not fit the int32 ids_out (V <= 2^31)");
    c.inner_contiguous(a.logits);
    struct Param {
      const TensorView* v;
      DType dtype;
    };
    for (const Param& p : {Param{&a.ids_out, DType::I32}, Param{&a.temperature, DType::F32}, Param{&a.top_k, DType::I32},
                           Param{&a.top_p, DType::F32}, Param{&a.seeds, DType::I64}, Param{&a.steps, DType::I64}}) {
      c.shape(*p.v, {B});
      c.dtype(*p.v, p.dtype);
      c.contiguous(*p.v);
    }
    c.writable(a.ids_out);
    for (const TensorView* v : {&a.logits, &a.temperature, &a.top_k, &a.top_p, &a.seeds, &a.steps}) c.disjoint(a.ids_out, *v);
    if (c.host_visible()) {
      const float* temp = a.temperature.ptr<const float>();
      const float* tp = a.top_p.ptr<const float>();
      for (int64_t b = 0; b < B; ++b) {
        c.expect(std::isfinite(temp[b]) && temp[b] >= 0, OPDEV_STATUS_INVALID_ARGUMENT, "temperature[", b, "] = ", temp[b],
                 " is outside [0, inf) (expected a finite temperature >= 0; 0 is greedy)");
        c.expect(tp[b] > 0 && tp[b] <= 1, OPDEV_STATUS_INVALID_ARGUMENT, "top_p[", b, "] = ", tp[b],
                 " is outside (0, 1] (1 disables the top-p filter)");
      }
    }
    // Reads every logit once. Per logit: one comparison for a greedy row; scale, exp, sum and compare for
    // a sampled row (4 when the temperatures are not visible on the host).
    auto cost = [&] {
      double params = 0, per_logit = 4.0 * double(B);
      for (const TensorView* v : {&a.ids_out, &a.temperature, &a.top_k, &a.top_p, &a.seeds, &a.steps}) params += nbytes(*v);
      if (c.host_visible()) {
        per_logit = 0;
        for (int64_t b = 0; b < B; ++b) per_logit += a.temperature.ptr<const float>()[b] == 0 ? 1.0 : 4.0;
      }
      return OpCost{nbytes(a.logits) + params, per_logit * double(V)};
    };
    return dispatch(c, a, a.logits.dtype, B == 0, cost,
                    {{"ids_out", ids_out},
                     {"logits", logits},
                     {"temperature", temperature},
                     {"top_k", top_k},
                     {"top_p", top_p},
                     {"seeds", seeds},
                     {"steps", steps}});
  });
}

}  // extern "C"
