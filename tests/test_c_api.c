/* The C interface used from plain C99: contexts, an op, errors, version, backends, profiling. Expected
 * values come from the op's definition computed here, not from opdev. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "opdev/opdev.h"

static int failures = 0;
#define EXPECT(cond)                                                   \
  do {                                                                 \
    if (!(cond)) {                                                     \
      fprintf(stderr, "%s:%d: expectation failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                      \
    }                                                                  \
  } while (0)

int main(void) {
  int major = -1, minor = -1, patch = -1;
  opdev_version(&major, &minor, &patch);
  EXPECT(major == OPDEV_VERSION_MAJOR && minor == OPDEV_VERSION_MINOR && patch == OPDEV_VERSION_PATCH);
  EXPECT(strcmp(opdev_op_name(OPDEV_OP_RMS_NORM), "rms_norm") == 0);
  EXPECT(opdev_op_from_name("paged_attention") == OPDEV_OP_PAGED_ATTENTION);
  EXPECT(opdev_backend_count() >= 2);

  opdev_context_options opts;
  opdev_context_options_init(&opts);
  opts.num_threads = 2;
  opdev_context* ctx = NULL;
  EXPECT(opdev_context_create("cpu", &opts, &ctx) == OPDEV_STATUS_SUCCESS);
  EXPECT(ctx != NULL);
  if (!ctx) return 1;
  EXPECT(opdev_context_num_threads(ctx) == 2);
  EXPECT(opdev_context_device(ctx).device_type == kDLCPU);

  /* rms_norm of two rows of [3, 4, 12] (rms of row 0 = sqrt(169/3)). */
  float x[6] = {3, 4, 12, -1, 0, 1};
  float w[3] = {1, 0.5f, 2};
  float out[6] = {0};
  int64_t xs[2] = {2, 3}, ws[1] = {3};
  DLTensor tx, tw, tout;
  memset(&tx, 0, sizeof tx);
  tx.data = x;
  tx.device.device_type = kDLCPU;
  tx.ndim = 2;
  tx.dtype.code = kDLFloat;
  tx.dtype.bits = 32;
  tx.dtype.lanes = 1;
  tx.shape = xs;
  tout = tx;
  tout.data = out;
  tw = tx;
  tw.data = w;
  tw.ndim = 1;
  tw.shape = ws;
  EXPECT(opdev_rms_norm(ctx, &tout, &tx, &tw, 1e-6) == OPDEV_STATUS_SUCCESS);
  EXPECT(strcmp(opdev_last_error(), "") == 0);
  for (int r = 0; r < 2; ++r) {
    double ss = 0;
    for (int i = 0; i < 3; ++i) ss += (double)x[3 * r + i] * x[3 * r + i];
    double inv = 1.0 / sqrt(ss / 3.0 + 1e-6);
    for (int i = 0; i < 3; ++i) EXPECT(fabs(out[3 * r + i] - w[i] * x[3 * r + i] * inv) < 1e-6);
  }

  /* Errors: status and a message naming the argument. */
  EXPECT(opdev_rms_norm(ctx, &tout, NULL, &tw, 1e-6) == OPDEV_STATUS_INVALID_ARGUMENT);
  EXPECT(strstr(opdev_last_error(), "opdev_rms_norm: x: expected a tensor, got NULL") != NULL);
  EXPECT(opdev_rms_norm(ctx, &tout, &tx, &tw, -1.0) == OPDEV_STATUS_INVALID_ARGUMENT);
  EXPECT(strstr(opdev_last_error(), "eps") != NULL);
  EXPECT(strcmp(opdev_status_string(OPDEV_STATUS_OUT_OF_RANGE), "OPDEV_STATUS_OUT_OF_RANGE") == 0);

  /* Profiling: record two calls (one labelled), write the files, read the report. */
  {
    opdev_profile_options po;
    opdev_profile* prof = NULL;
    const char* text = NULL;
    char dir[] = "/tmp/opdev_c_api_XXXXXX";
    char path[256];
    FILE* f;
    opdev_profile_options_init(&po);
    EXPECT(po.struct_size == sizeof po);
    po.read_gbps = 10.0;
    po.peak_gflops = 100.0;
    EXPECT(opdev_profile_begin(ctx, &po, &prof) == OPDEV_STATUS_SUCCESS);
    EXPECT(prof != NULL);
    EXPECT(opdev_context_set_label(ctx, "layers.0.input_layernorm") == OPDEV_STATUS_SUCCESS);
    EXPECT(opdev_rms_norm(ctx, &tout, &tx, &tw, 1e-6) == OPDEV_STATUS_SUCCESS);
    EXPECT(opdev_context_set_label(ctx, NULL) == OPDEV_STATUS_SUCCESS);
    EXPECT(opdev_rms_norm(ctx, &tout, &tx, &tw, 1e-6) == OPDEV_STATUS_SUCCESS);
    EXPECT(opdev_profile_num_calls(prof) == 2);
    EXPECT(opdev_profile_report(prof, &text) == OPDEV_STATUS_SUCCESS);
    EXPECT(text != NULL && strstr(text, "rms_norm") != NULL && strstr(text, "input_layernorm") != NULL);
    EXPECT(mkdtemp(dir) != NULL);
    EXPECT(opdev_profile_write(prof, dir) == OPDEV_STATUS_SUCCESS);
    snprintf(path, sizeof path, "%s/trace.json", dir);
    f = fopen(path, "rb");
    EXPECT(f != NULL);
    if (f) fclose(f);
    EXPECT(opdev_profile_write(prof, NULL) == OPDEV_STATUS_INVALID_ARGUMENT);
    EXPECT(strstr(opdev_last_error(), "opdev_profile_write: dir") != NULL);
    opdev_profile_end(prof);
    EXPECT(opdev_rms_norm(ctx, &tout, &tx, &tw, 1e-6) == OPDEV_STATUS_SUCCESS); /* no profile any more */
    {
      const char* names[] = {"trace.json", "op_summary.csv", "fusion_candidates.csv", "report.txt"};
      int i;
      for (i = 0; i < 4; ++i) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        EXPECT(remove(path) == 0);
      }
      EXPECT(remove(dir) == 0);
    }
  }

  opdev_context* bad = NULL;
  EXPECT(opdev_context_create("no-such-backend", NULL, &bad) == OPDEV_STATUS_NOT_FOUND);
  EXPECT(bad == NULL);
  EXPECT(strstr(opdev_last_error(), "cpu") != NULL); /* lists the backends this build has */

  opdev_context_destroy(ctx);
  opdev_context_destroy(NULL); /* allowed */
  if (failures) {
    fprintf(stderr, "test_c_api: %d failed\n", failures);
    return 1;
  }
  printf("test_c_api: 1 passed, 0 failed\n");
  return 0;
}
