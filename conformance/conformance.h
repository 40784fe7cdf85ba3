// The conformance suite: every op on a backend, checked against the float64 ref backend.
//
// A numeric Case names its tensors (inputs, outputs, in/out), how their values are generated, their
// layout (compact or strided) and how to call the op. The runner materialises the tensors on the backend
// under test in the dtype under test, surrounded by guard bytes; runs the ref backend on float64 copies
// of exactly the same (already rounded) input values; and checks every output element against
//
//     |got - ref| <= atol + (rtol + n * u) * |ref| + mag_rtol * mag
//
// with (rtol, atol) PyTorch's assert_close defaults for the output dtype (float32 1.3e-6/1e-5, float16
// 1e-3/1e-5, bfloat16 1.6e-2/1e-5); n the number of intermediate roundings to the storage dtype that the
// op's contract prescribes and the float64 oracle does not make (rms_norm rounds the normalised value,
// silu_and_mul the silu), u that dtype's unit roundoff (2^-8 bfloat16, 2^-11 float16, 0 float32); and
// mag the same op evaluated by ref on absolute values of the inputs the case names (sum |terms| of a
// reduction: the standard forward-error bound for float32 accumulation; 0 when a case sets no mag). NaN/inf must match exactly (a NaN never passes against a number); integer outputs are
// exact, and so are float outputs a contract defines bit for bit (Tolerance::exact). Also checked: guard bytes around and between the elements of every output untouched, inputs
// unchanged, supports() true for the dtype.
//
// An ErrorCase calls an op with one bad argument and expects a status and a message fragment.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "opdev/opdev.hpp"

namespace opdev::conformance {

// ---- Tensor specifications -------------------------------------------------------------------------

enum class Role { Input, Output, InOut };

// Deterministic value generator: fills `n` logical values (row-major) for a tensor.
using Generator = std::function<void(std::vector<double>& values, uint64_t seed)>;

struct TensorSpec {
  std::string name;
  Role role = Role::Input;
  std::vector<int64_t> shape;
  bool activation = true;        // takes the dtype under test
  DLDataType fixed{};            // dtype when !activation (float32 tables, int32 ids, ...)
  Generator gen;                 // values (inputs and in/outs); outputs start as guard bytes
  int64_t row_pad = 0;           // > 0: leading dimensions strided with this many extra elements per row
  std::string alias_of;          // non-empty: this argument is the same view as that tensor (in place)
  bool absent = false;           // passed as NULL

  TensorSpec& dtype(DLDataType t) {
    activation = false;
    fixed = t;
    return *this;
  }
  TensorSpec& values(Generator g) {
    gen = std::move(g);
    return *this;
  }
  TensorSpec& values(std::vector<double> v) {
    gen = [v](std::vector<double>& out, uint64_t) { out = v; };
    return *this;
  }
  TensorSpec& uniform(double lo, double hi);
  TensorSpec& normal(double mean, double stddev);
  TensorSpec& integers(int64_t lo, int64_t hi);  // uniform integers in [lo, hi)
  TensorSpec& strided(int64_t pad) {
    row_pad = pad;
    return *this;
  }
};

// ---- Numeric cases -----------------------------------------------------------------------------------

// What a case's call sees: the context and the DLTensor of each named argument (NULL when absent).
class Call {
 public:
  opdev_context* ctx = nullptr;
  DLDataType dtype{};  // the dtype under test (float64 on the ref side)
  const DLTensor* operator[](const std::string& name) const;
  std::map<std::string, const DLTensor*> tensors;
};

struct Tolerance {
  // Adds mag_rtol * mag to the bound, mag = ref's outputs with these inputs replaced by their absolute
  // values (empty: no mag term). Keyed by dtype name; "*" for every dtype.
  std::vector<std::string> mag_inputs;
  std::map<std::string, double> mag_rtol;
  double mag_rtol_for(DLDataType t) const;
  // Intermediate roundings to the storage dtype the contract prescribes, per output name.
  std::map<std::string, int> roundings;
  // Float outputs the contract defines bit for bit (compared exactly, like integer outputs).
  std::set<std::string> exact;
};

struct Case {
  std::string op;    // canonical op name
  std::string name;  // what this case covers, e.g. "qwen3-0.6b T=16 strided"
  std::vector<TensorSpec> tensors;
  std::function<opdev_status(Call&)> call;
  Tolerance tol;
  std::vector<DLDataType> dtypes{kFloat32, kBFloat16, kFloat16};
  bool large = false;  // skipped by --quick (sanitizer runs)
  uint64_t seed = 0;   // 0: derived from op and name

  TensorSpec& input(const std::string& n, std::vector<int64_t> shape);
  TensorSpec& output(const std::string& n, std::vector<int64_t> shape);
  TensorSpec& inout(const std::string& n, std::vector<int64_t> shape);
  TensorSpec& absent(const std::string& n);
  // Relative mag term for the listed inputs: the same bound for every dtype, or per dtype.
  Case& mag(std::vector<std::string> inputs, double rtol_all);
  Case& mag(std::vector<std::string> inputs, std::map<std::string, double> rtol_by_dtype);
  // `output` carries n contract roundings to the storage dtype (see the bound above).
  Case& roundings(const std::string& output, int n) {
    tol.roundings[output] = n;
    return *this;
  }
  // `output` is compared exactly (a float output that the contract defines bit for bit).
  Case& exact(const std::string& output) {
    tol.exact.insert(output);
    return *this;
  }
};

// ---- Contract tolerances -------------------------------------------------------------------------------

// The tolerance terms the op contracts prescribe, in one place: the cases (cases/*.cpp) use these constants
// and `opdev replay` checks a recorded call against ref with contract_tolerance(op).
namespace contract {
// Forward-error term of a float32 accumulation: mag_rtol on the same op evaluated on absolute values
// (linear, grouped_matmul, paged_attention over value_cache, moe_unpermute).
inline constexpr double kAccumulationRtol = 1.3e-6;
inline constexpr int kRmsNormRoundings = 1;     // the normalised value is rounded before * weight
inline constexpr int kAddRmsNormRoundings = 2;  // and the sum x + residual before it
inline constexpr int kSiluAndMulRoundings = 1;  // silu(gate) is rounded before * up
// linear_w8a8 / grouped_matmul_w8a8: the int32 sum is exact; the float32 epilogue rounds float32(acc), the
// product with weight_scale and the fma with x_scale (and bias): at most 3 roundings of 2^-24 relative to
// |acc * x_scale * weight_scale| + |bias|, which is the mag term (the op on absolute inputs). 4 * 2^-24 covers
// them with the second-order terms.
inline constexpr double kW8A8EpilogueRtol = 0x1.0p-22;
// paged_attention in bfloat16 / float16 may round the softmax weights P to the input dtype before P.V (as
// FlashAttention-2 and PyTorch's CPU flash attention do; the sum l keeps float32 P): |P' - P| <= u P adds
// u * sum_j P_j |v_j| / l, i.e. u times the mag term (the op on |value_cache|), to the accumulation's.
inline std::map<std::string, double> paged_attention_mag_rtol() {
  return {{"*", kAccumulationRtol}, {"bfloat16", kAccumulationRtol + 0x1.0p-8}, {"float16", kAccumulationRtol + 0x1.0p-11}};
}
}  // namespace contract

// The tolerance terms of `op`'s outputs, named as in its signature (opdev.h; outputs such as rms_norm's
// "out" even where a case names the aliased in/out "x"). Empty terms for ops whose bound is the output
// dtype's (rtol, atol) alone or exact. Throws std::invalid_argument for an unknown op name.
Tolerance contract_tolerance(const std::string& op);

// ---- Error cases -------------------------------------------------------------------------------------

// Helper for error cases: allocates zero-filled device tensors on the context.
class ErrorEnv {
 public:
  explicit ErrorEnv(opdev_context* ctx) : ctx_(ctx) {}
  ~ErrorEnv();
  ErrorEnv(const ErrorEnv&) = delete;
  ErrorEnv& operator=(const ErrorEnv&) = delete;
  opdev_context* ctx() const { return ctx_; }
  // A compact tensor of the shape (values zero, or `fill` converted to the dtype for index/float data).
  const DLTensor* tensor(std::vector<int64_t> shape, DLDataType dtype, std::vector<double> values = {});
  // A view with explicit strides into a fresh buffer large enough for it.
  const DLTensor* strided(std::vector<int64_t> shape, std::vector<int64_t> strides, DLDataType dtype);
  // A view sharing another tensor's memory (for aliasing errors), optionally offset by elements.
  const DLTensor* view_of(const DLTensor* base, std::vector<int64_t> shape, int64_t elem_offset = 0,
                          std::vector<int64_t> strides = {});
  // A compact view of another dtype over another tensor's memory, byte_offset bytes in (overlap errors
  // between tensors of different dtypes).
  const DLTensor* view_as(const DLTensor* base, DLDataType dtype, std::vector<int64_t> shape, int64_t byte_offset = 0);
  // A tensor whose shape claims an absurd size (the data pointer is valid but tiny).
  const DLTensor* huge(std::vector<int64_t> shape, DLDataType dtype);
  // A tensor with NULL data but a non-empty shape.
  const DLTensor* null_data(std::vector<int64_t> shape, DLDataType dtype);
  // A host tensor (wrong device for device backends; same as tensor() for host backends).
  DLDataType act = kFloat32;  // the activation dtype to use (bfloat16 where float32 is unsupported)

 private:
  opdev_context* ctx_;
  std::vector<void*> buffers_;
  std::vector<std::unique_ptr<TensorRef>> refs_;
  void* alloc(size_t nbytes);
};

struct ErrorCase {
  std::string op;
  std::string name;              // "wrong rank of x"
  opdev_status expected;         // e.g. OPDEV_STATUS_INVALID_ARGUMENT
  std::string message;           // a fragment the message must contain, e.g. "x: expected rank 2"
  bool host_index_check = false; // needs index data visible on the host (range checks)
  std::function<opdev_status(ErrorEnv&)> call;
};

// ---- Registry ----------------------------------------------------------------------------------------

struct Registry {
  std::vector<Case> cases;
  std::vector<ErrorCase> errors;
};
// All registered cases (built on first use).
Registry& registry();

void add(Case c);
void add_error(ErrorCase e);
void add_error(std::string op, std::string name, opdev_status expected, std::string message,
               std::function<opdev_status(ErrorEnv&)> call, bool host_index_check = false);

// Every case file defines register_<family>() (cases/<family>.cpp); cases/families.def lists them and
// registry() calls each once, explicitly.
#define OPDEV_CONFORMANCE_FAMILY(family) void register_##family();
#include "cases/families.def"
#undef OPDEV_CONFORMANCE_FAMILY

// A case's tensors materialised on a context in one dtype, ready to call repeatedly (benchmarks).
struct Materialised;
class Instance {
 public:
  Instance(const Case& c, opdev_context* ctx, DLDataType act);
  ~Instance();
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;
  opdev_status run();

 private:
  const Case* case_;
  std::unique_ptr<Materialised> m_;
};

// ---- Running -----------------------------------------------------------------------------------------

struct Options {
  std::string backend = "cpu";
  std::vector<std::string> ops;       // empty: all
  std::vector<DLDataType> dtypes;     // empty: each case's own list
  std::string filter;                 // substring of the case name
  bool quick = false;                 // skip large cases
  bool errors = true;                 // run the error cases
  bool numeric = true;                // run the numeric cases
  bool verbose = false;               // print every case
  int num_threads = 0;
};

struct Result {
  std::string op, name, dtype;
  bool passed = false;
  bool skipped = false;     // e.g. the backend does not support the dtype (never counted as passed)
  std::string detail;       // why it failed / was skipped
  double max_err_ratio = 0; // max over elements of |got - ref| / bound (<= 1 passes)
  double nmse = 0;          // worst output's normalised mean squared error vs ref
  double seconds = 0;
};

struct Summary {
  std::vector<Result> results;
  int passed = 0, failed = 0, skipped = 0;
};

// Runs the selected cases; prints progress and failures to stderr when verbose.
Summary run(const Options& options);
// One table row per op x dtype (+ error cases): cases passed / failed / skipped and the worst error ratio.
void print_summary(const Summary& s, const Options& options, FILE* out);

// Exposed for unit tests of the comparator itself.
struct CompareStats {
  int64_t bad = 0;          // elements outside the bound (NaN mismatches included)
  int64_t first_bad = -1;
  double max_ratio = 0, nmse = 0;
  std::string first_bad_detail;
};
CompareStats compare(const std::vector<double>& got, const std::vector<double>& ref, const std::vector<double>& mag,
                     DLDataType dtype, double mag_rtol, int roundings, bool exact);
double default_rtol(DLDataType t);
double default_atol(DLDataType t);
double unit_roundoff(DLDataType t);  // 2^-8 bfloat16, 2^-11 float16, 0 otherwise

// Conversions between double values and storage bits of a dtype (the harness's own, round to nearest
// even), for preparing inputs and reading outputs.
void encode(double v, DLDataType t, void* dst);
double decode(DLDataType t, const void* src);

// Small deterministic RNG (splitmix64) for generators.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed) {}
  uint64_t next();
  double uniform();  // [0, 1)
  double normal();
};

}  // namespace opdev::conformance
