// Uses the installed opdev: rms_norm of [3, 4] on the cpu backend, checked against the definition.
#include <cmath>
#include <cstdio>

#include <opdev/opdev.hpp>

int main() {
  try {
    opdev::Context ctx("cpu");
    float x[2] = {3.0f, 4.0f}, w[2] = {1.0f, 2.0f}, out[2] = {0, 0};
    opdev::TensorRef tx(x, opdev::kFloat32, {1, 2}), tw(w, opdev::kFloat32, {2}), to(out, opdev::kFloat32, {1, 2});
    opdev::check(opdev_rms_norm(ctx, to, tx, tw, 1e-6));
    const double r = 1.0 / std::sqrt((9.0 + 16.0) / 2.0 + 1e-6);
    const double e0 = 3.0 * r, e1 = 2.0 * 4.0 * r;
    if (std::fabs(out[0] - e0) > 1e-6 || std::fabs(out[1] - e1) > 1e-6) {
      std::printf("consumer: wrong result %g %g, expected %g %g\n", out[0], out[1], e0, e1);
      return 1;
    }
    std::printf("consumer: opdev %s rms_norm ok\n", opdev_version_string());
    return 0;
  } catch (const std::exception& e) {
    std::printf("consumer: %s\n", e.what());
    return 1;
  }
}
