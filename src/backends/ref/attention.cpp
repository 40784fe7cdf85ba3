// ref: paged_attention in float64, one query row and head at a time: all visible scores, their max,
// exp, the sum, the weighted sum of values. No tiling, no online softmax.
#include <limits>

#include "backends/ref/ref_common.h"

namespace opdev::ref {

opdev_status paged_attention(ExecContext&, const paged_attention_args& a) {
  const int64_t Hq = a.q.size(1), D = a.q.size(2);
  const int64_t BS = a.key_cache.size(1), Hk = a.key_cache.size(2);
  const int64_t B = a.seq_lens_kv.size(0), group = Hq / Hk;
  std::vector<double> s, o(static_cast<size_t>(D));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t q0 = get_index(a.cu_seqlens_q, {b}), q_len = get_index(a.cu_seqlens_q, {b + 1}) - q0;
    const int64_t kv_len = get_index(a.seq_lens_kv, {b});
    for (int64_t i = 0; i < q_len; ++i) {
      // Bottom-right aligned causal mask: row i sees keys 0 .. kv_len - q_len + i.
      int64_t n = kv_len;
      if (a.causal) {
        const int64_t last = kv_len - q_len + i;
        n = last < 0 ? 0 : (last + 1 < kv_len ? last + 1 : kv_len);
      }
      const int64_t t = q0 + i;
      for (int64_t h = 0; h < Hq; ++h) {
        const int64_t kh = h / group;
        double lse = -std::numeric_limits<double>::infinity();
        for (int64_t d = 0; d < D; ++d) o[size_t(d)] = 0;
        if (n > 0) {
          s.assign(size_t(n), 0.0);
          double m = -std::numeric_limits<double>::infinity();
          for (int64_t j = 0; j < n; ++j) {
            const int64_t blk = get_index(a.block_table, {b, j / BS}), pos = j % BS;
            double dot = 0;
            for (int64_t d = 0; d < D; ++d) dot += get(a.q, {t, h, d}) * get(a.key_cache, {blk, pos, kh, d});
            s[size_t(j)] = a.scale * dot;
            if (s[size_t(j)] > m) m = s[size_t(j)];
          }
          double l = 0;
          for (int64_t j = 0; j < n; ++j) {
            const double p = std::exp(s[size_t(j)] - m);
            l += p;
            const int64_t blk = get_index(a.block_table, {b, j / BS}), pos = j % BS;
            for (int64_t d = 0; d < D; ++d) o[size_t(d)] += p * get(a.value_cache, {blk, pos, kh, d});
          }
          for (int64_t d = 0; d < D; ++d) o[size_t(d)] /= l;
          lse = m + std::log(l);
        }
        for (int64_t d = 0; d < D; ++d) set(a.out, {t, h, d}, o[size_t(d)]);
        if (a.softmax_lse.present) set(a.softmax_lse, {t, h}, lse);
      }
    }
  }
  return OPDEV_STATUS_SUCCESS;
}

}  // namespace opdev::ref
