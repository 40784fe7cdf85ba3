// Front-end of embedding: validate (ids in range when they are visible on the host), then dispatch.
#include "ops/dispatch.h"

using namespace opdev;

extern "C" {

OPDEV_API opdev_status opdev_embedding(opdev_context* ctx, const DLTensor* out, const DLTensor* table, const DLTensor* ids) {
  return api_call("opdev_embedding", [&] {
    OpCheck c(ctx);
    embedding_args a;
    a.out = c.tensor("out", out);
    a.table = c.tensor("table", table);
    a.ids = c.tensor("ids", ids);
    c.rank(a.table, 2);
    c.activation_dtype(a.table);
    c.rank(a.ids, 1);
    c.index_dtype(a.ids);
    c.shape(a.out, {a.ids.size(0), a.table.size(1)});
    c.same_dtype(a.out, a.table);
    c.inner_contiguous(a.table);
    c.inner_contiguous(a.out);
    c.contiguous(a.ids);
    c.writable(a.out);
    c.disjoint(a.out, a.table);
    c.disjoint(a.out, a.ids);
    if (c.host_visible()) c.index_range(a.ids, 0, a.table.size(0), "the vocabulary size V = table.shape[0]");
    // One table row read and one output row written per token.
    auto cost = [&] { return OpCost{2.0 * nbytes(a.out) + nbytes(a.ids), 0.0}; };
    return dispatch(c, a, a.table.dtype, a.out.empty(), cost, {{"out", out}, {"table", table}, {"ids", ids}});
  });
}

}  // extern "C"
