// Safetensors: every malformed-file case gets its own specific error; valid files (hand-written bytes
// and SafetensorsWriter output) parse to the right tensors; random corruption never crashes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>

#include "model/safetensors.h"
#include "model_error_testing.h"

using namespace opdev::model;
namespace fs = std::filesystem;

namespace {

using opdev::model::testing::error_of;

using Bytes = std::vector<uint8_t>;

// A safetensors image: 8-byte length, the header text as given (no padding), then `data`.
Bytes image(const std::string& header, const Bytes& data, uint64_t declared = UINT64_MAX) {
  uint64_t n = declared == UINT64_MAX ? header.size() : declared;
  Bytes b(8);
  for (int i = 0; i < 8; ++i) b[i] = uint8_t(n >> (8 * i));
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), data.begin(), data.end());
  return b;
}
Bytes zeros(size_t n) { return Bytes(n, 0); }

std::vector<StTensor> parse(const Bytes& b, std::map<std::string, std::string>* meta = nullptr) {
  std::vector<StTensor> t;
  parse_safetensors(b.data(), b.size(), "model.safetensors", &t, meta);
  return t;
}

std::string parse_error(const Bytes& b) {
  return error_of([&] { parse(b); });
}
std::string entry(const std::string& name, const std::string& dtype, const std::string& shape, const std::string& offsets) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/opdev_st_XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  void write(const std::string& name, const Bytes& b) const {
    std::ofstream(file(name), std::ios::binary).write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
  }

 private:
  std::string path_;
};

Bytes read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

TEST(Safetensors, HandWrittenValidFile) {
  // Two tensors listed out of data order; little-endian F32 1.5 and BF16 values.
  Bytes data = {0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x20, 0x40, 0x80, 0x3F, 0x00, 0xC0};
  std::string h = "{" + entry("b", "BF16", "[2]", "[8,12]") + "," + entry("a", "F32", "[1,2]", "[0,8]") +
                  ",\"__metadata__\":{\"format\":\"pt\"}}";
  std::map<std::string, std::string> meta;
  Bytes img = image(h, data);
  auto t = parse(img, &meta);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].name, "a");  // data order
  EXPECT_EQ(t[0].dtype, StDtype::F32);
  EXPECT_EQ(t[0].shape, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(t[0].nbytes, 8u);
  EXPECT_EQ(t[0].data, img.data() + 8 + h.size());
  float f;
  std::memcpy(&f, t[0].data, 4);
  EXPECT_EQ(f, 1.5f);
  std::memcpy(&f, t[0].data + 4, 4);
  EXPECT_EQ(f, 2.5f);
  EXPECT_EQ(t[1].name, "b");
  EXPECT_EQ(t[1].dtype, StDtype::BF16);
  EXPECT_EQ(t[1].offset, 8u);
  EXPECT_EQ(t[1].data[0], 0x80);
  EXPECT_EQ(meta.at("format"), "pt");
}

TEST(Safetensors, EmptyAndZeroSizedTensors) {
  EXPECT_TRUE(parse(image("{}", {})).empty());
  EXPECT_TRUE(parse(image("{\"__metadata__\":null}", {})).empty());
  // Zero-element tensors share an offset; whitespace around the JSON is fine.
  std::string h = "  {" + entry("e1", "F16", "[0,4]", "[0,0]") + "," + entry("e2", "U8", "[3,0]", "[0,0]") + "," +
                  entry("s", "I64", "[]", "[0,8]") + "}   ";
  auto t = parse(image(h, zeros(8)));
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[2].name, "s");
  EXPECT_TRUE(t[2].shape.empty());
  EXPECT_EQ(t[2].nbytes, 8u);
}

TEST(Safetensors, DtypeTable) {
  const std::pair<const char*, size_t> all[] = {{"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
                                                {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
                                                {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8}};
  for (const auto& d : all) {
    StDtype t;
    ASSERT_TRUE(st_dtype_from_name(d.first, &t)) << d.first;
    EXPECT_STREQ(st_dtype_name(t), d.first);
    EXPECT_EQ(st_dtype_size(t), d.second) << d.first;
    auto parsed = parse(image("{" + entry("x", d.first, "[3]", "[0," + std::to_string(3 * d.second) + "]") + "}",
                              zeros(3 * d.second)));
    EXPECT_EQ(parsed.at(0).dtype, t);
  }
  StDtype t;
  EXPECT_FALSE(st_dtype_from_name("bf16", &t));  // case matters, as in the reference
  EXPECT_FALSE(st_dtype_from_name("F4", &t));
}

TEST(Safetensors, FileTooShortForLength) {
  EXPECT_ERROR(parse_error({}), "file is 0 bytes, too short");
  EXPECT_ERROR(parse_error(Bytes(7, 0)), "file is 7 bytes, too short");
  EXPECT_ERROR(parse_error(Bytes(7, 0)), "model.safetensors: ");
}

TEST(Safetensors, HeaderLengthLimit) {
  EXPECT_ERROR(parse_error(image("{}", {}, 100000001)), "header length 100000001 exceeds the limit of 100000000");
  EXPECT_ERROR(parse_error(image("{}", {}, UINT64_MAX - 1)), "exceeds the limit");
}

TEST(Safetensors, HeaderLengthPastEof) {
  EXPECT_ERROR(parse_error(image("{}", {}, 3)), "header length 3 runs past the end of the file (10 bytes)");
  EXPECT_ERROR(parse_error(image("{}", {}, 1000)), "runs past the end of the file");
}

TEST(Safetensors, TruncatedData) {
  std::string h = "{" + entry("w", "F32", "[4]", "[0,16]") + "}";
  EXPECT_ERROR(parse_error(image(h, zeros(10))), "tensor 'w': data_offsets [0, 16] run past the end of the data (10 bytes");
  EXPECT_ERROR(parse_error(image(h, {})), "run past the end of the data (0 bytes");
}

TEST(Safetensors, InvalidJson) {
  EXPECT_ERROR(parse_error(image("{\"a\":", {})), "header is not valid JSON");
  EXPECT_ERROR(parse_error(image("{'a':1}", {})), "header is not valid JSON");
  EXPECT_ERROR(parse_error(image("{} x", {})), "header is not valid JSON");
  EXPECT_ERROR(parse_error(image("", {})), "header is not valid JSON");
  EXPECT_ERROR(parse_error(image("{" + entry("w", "U8", "[1e999]", "[0,1]") + "}", zeros(1))),
               "header is not valid JSON: number overflow parsing '1e999'");
  EXPECT_ERROR(parse_error(image(std::string("{}\0", 3), {})), "header is not valid JSON: NUL byte at offset 2");
  EXPECT_ERROR(parse_error(image(std::string("{}\0{\"x\":1}", 10), {})), "NUL byte");  // nlohmann alone would stop at the NUL
}

TEST(Safetensors, JsonNotAnObject) {
  EXPECT_ERROR(parse_error(image("[1,2]", {})), "header is not a JSON object (it is an array)");
  EXPECT_ERROR(parse_error(image("\"x\"", {})), "header is not a JSON object (it is a string)");
  EXPECT_ERROR(parse_error(image("42", {})), "header is not a JSON object (it is a number)");
  EXPECT_ERROR(parse_error(image("null", {})), "header is not a JSON object (it is null)");
}

TEST(Safetensors, NonUtf8Header) {
  std::string h = "{\"w\xff\":{}}";
  EXPECT_ERROR(parse_error(image(h, {})), "header is not valid UTF-8 (byte 3 of the header)");
  EXPECT_ERROR(parse_error(image("{\"\xc0\xaf\":1}", {})), "not valid UTF-8");      // overlong '/'
  EXPECT_ERROR(parse_error(image("{\"\xed\xa0\x80\":1}", {})), "not valid UTF-8");  // surrogate
  EXPECT_ERROR(parse_error(image("{\"\xe2\x82\":1}", {})), "not valid UTF-8");      // cut short
  // Valid multi-byte names are fine.
  auto t = parse(image("{" + entry("h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "U8", "[1]", "[0,1]") + "}", zeros(1)));
  EXPECT_EQ(t.at(0).name, "h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
}

TEST(Safetensors, BadDtype) {
  EXPECT_ERROR(parse_error(image("{" + entry("w", "BF17", "[1]", "[0,2]") + "}", zeros(2))),
               "tensor 'w': unknown dtype 'BF17' (one of BOOL, U8");
  EXPECT_ERROR(parse_error(image("{\"w\":{\"dtype\":2,\"shape\":[1],\"data_offsets\":[0,2]}}", zeros(2))),
               "tensor 'w': dtype must be a string, got a number");
}

TEST(Safetensors, BadShape) {
  EXPECT_ERROR(parse_error(image("{" + entry("w", "U8", "[2,-1]", "[0,2]") + "}", zeros(2))),
               "tensor 'w': shape holds the negative number -1");
  EXPECT_ERROR(parse_error(image("{" + entry("w", "U8", "[2.5]", "[0,2]") + "}", zeros(2))),
               "tensor 'w': shape holds 2.5, which is not an integer");
  EXPECT_ERROR(parse_error(image("{" + entry("w", "U8", "[2.0]", "[0,2]") + "}", zeros(2))), "not an integer");
  EXPECT_ERROR(parse_error(image("{" + entry("w", "U8", "[18446744073709551616]", "[0,2]") + "}", zeros(2))),
               "not an integer that fits in 64 bits");
  EXPECT_ERROR(parse_error(image("{" + entry("w", "U8", "\"2\"", "[0,2]") + "}", zeros(2))),
               "tensor 'w': shape must be an array");
  EXPECT_ERROR(parse_error(image("{" + entry("w", "U8", "[[2]]", "[0,2]") + "}", zeros(2))),
               "tensor 'w': shape holds an array");
  EXPECT_ERROR(parse_error(image("{" + entry("w", "U8", "[\"2\"]", "[0,2]") + "}", zeros(2))),
               "tensor 'w': shape holds a string");
}

TEST(Safetensors, BadDataOffsets) {
  auto err = [](const std::string& offsets, size_t data = 4, const std::string& shape = "[4]") {
    return parse_error(image("{" + entry("w", "U8", shape, offsets) + "}", zeros(data)));
  };
  EXPECT_ERROR(err("[4]"), "tensor 'w': data_offsets must hold exactly 2 integers [begin, end], got 1");
  EXPECT_ERROR(err("[0,2,4]"), "data_offsets must hold exactly 2 integers [begin, end], got more");
  EXPECT_ERROR(err("[]"), "got 0");
  EXPECT_ERROR(err("[4,0]"), "tensor 'w': data_offsets [4, 0] end before they begin");
  EXPECT_ERROR(err("[-1,3]"), "data_offsets holds the negative number -1");
  EXPECT_ERROR(err("{\"b\":0}"), "data_offsets must be an array");
  EXPECT_ERROR(err("[1,5]", 5), "tensor 'w': data_offsets [1, 5] do not start at 0");
  EXPECT_ERROR(err("[0,4]", 3), "data_offsets [0, 4] run past the end of the data (3 bytes");
}

TEST(Safetensors, GapsAndOverlaps) {
  std::string gap = "{" + entry("a", "U8", "[4]", "[0,4]") + "," + entry("b", "U8", "[4]", "[6,10]") + "}";
  EXPECT_ERROR(parse_error(image(gap, zeros(10))),
               "tensor 'b': data_offsets [6, 10] leave a gap of 2 bytes after tensor 'a' [0, 4]");
  std::string overlap = "{" + entry("a", "U8", "[4]", "[0,4]") + "," + entry("b", "U8", "[4]", "[2,6]") + "}";
  EXPECT_ERROR(parse_error(image(overlap, zeros(6))), "tensor 'b': data_offsets [2, 6] overlap tensor 'a' [0, 4]");
  std::string same = "{" + entry("a", "U8", "[4]", "[0,4]") + "," + entry("b", "U8", "[4]", "[0,4]") + "}";
  EXPECT_ERROR(parse_error(image(same, zeros(8))), "overlap tensor 'a' [0, 4]");
}

TEST(Safetensors, ByteCountMismatch) {
  EXPECT_ERROR(parse_error(image("{" + entry("x", "BF16", "[2,3]", "[0,10]") + "}", zeros(10))),
               "model.safetensors: tensor 'x': data_offsets [0, 10] hold 10 bytes but shape [2, 3] of BF16 needs 12");
}

TEST(Safetensors, SizeOverflow) {
  EXPECT_ERROR(parse_error(image("{" + entry("x", "F32", "[4611686018427387904,4]", "[0,16]") + "}", zeros(16))),
               "tensor 'x': shape [4611686018427387904, 4] has more elements than fit in 64 bits");
  EXPECT_ERROR(parse_error(image("{" + entry("x", "BF16", "[2305843009213693952,4]", "[0,16]") + "}", zeros(16))),
               "of BF16 is more bytes than fit in 64 bits");
  // The reference folds left to right: an overflow before a 0 still counts.
  EXPECT_ERROR(parse_error(image("{" + entry("x", "U8", "[4294967296,4294967296,0]", "[0,0]") + "}", {})),
               "more elements than fit");
  EXPECT_ERROR(parse_error(image("{" + entry("x", "U8", "[0,9223372036854775808]", "[0,0]") + "}", {})),
               "more elements than fit");
}

TEST(Safetensors, DuplicateNamesAndFields) {
  std::string h = "{" + entry("w", "U8", "[1]", "[0,1]") + "," + entry("w", "U8", "[1]", "[1,2]") + "}";
  EXPECT_ERROR(parse_error(image(h, zeros(2))), "tensor 'w' appears twice in the header");
  EXPECT_ERROR(parse_error(image("{\"w\":{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", zeros(1))),
               "tensor 'w': field 'dtype' appears twice");
  EXPECT_ERROR(parse_error(image("{\"__metadata__\":{},\"__metadata__\":{}}", {})), "'__metadata__' appears twice");
  EXPECT_ERROR(parse_error(image("{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}", {})), "__metadata__: key 'a' appears twice");
}

TEST(Safetensors, UnknownAndMissingFields) {
  EXPECT_ERROR(parse_error(image("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"align\":8}}", zeros(1))),
               "tensor 'w': unknown field 'align' (an entry holds only dtype, shape and data_offsets)");
  EXPECT_ERROR(parse_error(image("{\"w\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", zeros(1))),
               "tensor 'w': missing field 'shape'");
  EXPECT_ERROR(parse_error(image("{\"w\":{\"shape\":[1],\"data_offsets\":[0,1]}}", zeros(1))), "missing field 'dtype'");
  EXPECT_ERROR(parse_error(image("{\"w\":{\"dtype\":\"U8\",\"shape\":[1]}}", zeros(1))), "missing field 'data_offsets'");
  EXPECT_ERROR(parse_error(image("{\"w\":[1]}", {})), "tensor 'w': entry must be an object {dtype, shape, data_offsets}, got an array");
  EXPECT_ERROR(parse_error(image("{\"w\":null}", {})), "tensor 'w': entry must be an object");
}

TEST(Safetensors, TrailingBytes) {
  std::string h = "{" + entry("w", "U8", "[4]", "[0,4]") + "}";
  EXPECT_ERROR(parse_error(image(h, zeros(7))), "3 trailing bytes after the last tensor's data");
  EXPECT_ERROR(parse_error(image("{}", zeros(1))), "1 trailing bytes");
}

TEST(Safetensors, MetadataMustBeStrings) {
  EXPECT_ERROR(parse_error(image("{\"__metadata__\":{\"format\":1}}", {})),
               "__metadata__: value of 'format' must be a string, got a number");
  EXPECT_ERROR(parse_error(image("{\"__metadata__\":{\"a\":{\"b\":\"c\"}}}", {})), "value of 'a' must be a string, got an object");
  EXPECT_ERROR(parse_error(image("{\"__metadata__\":{\"a\":null}}", {})), "value of 'a' must be a string, got null");
  EXPECT_ERROR(parse_error(image("{\"__metadata__\":[\"a\"]}", {})), "__metadata__ must be an object of strings, got an array");
  std::map<std::string, std::string> meta;
  parse(image("{\"__metadata__\":{\"a\":\"\",\"b\":\"x\\u00e9\"}}", {}), &meta);
  EXPECT_EQ(meta.at("a"), "");
  EXPECT_EQ(meta.at("b"), "x\xc3\xa9");
}

TEST(Safetensors, WriterRoundTrip) {
  TempDir dir;
  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  w.add("w.1", StDtype::BF16, {2, 3}, Bytes{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  w.add("empty", StDtype::F32, {0}, Bytes{});
  w.add("streamed \"quoted\"", StDtype::U8, {5}, [](uint8_t* dst, size_t n) {
    for (size_t i = 0; i < n; ++i) dst[i] = uint8_t(100 + i);
  });
  EXPECT_EQ(w.data_bytes(), 17u);
  std::vector<std::pair<uint64_t, uint64_t>> progress;
  w.write(dir.file("a.safetensors"), [&](uint64_t d, uint64_t t) { progress.emplace_back(d, t); });

  // Independent look at the bytes: the length, 8-byte alignment, space padding, offsets in add order.
  Bytes b = read_all(dir.file("a.safetensors"));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | b[i];
  EXPECT_EQ((8 + n) % 8, 0u);
  EXPECT_EQ(b.size(), 8 + n + 17);
  std::string header(b.begin() + 8, b.begin() + 8 + long(n));
  size_t content = header.find_last_not_of(' ') + 1;  // then at most 7 spaces of padding
  EXPECT_LT(header.size() - content, 8u);
  auto j = nlohmann::json::parse(header);
  EXPECT_EQ(j["w.1"]["data_offsets"], nlohmann::json::array({0, 12}));
  EXPECT_EQ(j["streamed \"quoted\""]["data_offsets"], nlohmann::json::array({12, 17}));
  EXPECT_EQ(j["__metadata__"]["format"], "pt");
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back().first, b.size());
  EXPECT_EQ(progress.back().second, b.size());

  auto f = SafetensorsFile::open(dir.file("a.safetensors"));
  EXPECT_EQ(f->file_size(), b.size());
  ASSERT_EQ(f->tensors().size(), 3u);
  const StTensor* t = f->find("w.1");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t->data) % 8, 0u);
  EXPECT_EQ(Bytes(t->data, t->data + 12), (Bytes{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
  const StTensor* s = f->find("streamed \"quoted\"");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->data[4], 104);
  EXPECT_EQ(f->find("nope"), nullptr);
  EXPECT_EQ(f->metadata().at("format"), "pt");
}

// Byte-exact against the reference writer (the expected bytes of huggingface/safetensors' own tests
// test_serialization, test_empty and test_serialization_forced_alignement), and the reference's doc
// example parses.
TEST(Safetensors, WriterMatchesReferenceBytes) {
  TempDir dir;
  Bytes floats;
  for (float f : {0.0f, 1.0f, 2.0f, 3.0f, 4.0f, 5.0f}) {
    uint8_t b[4];
    std::memcpy(b, &f, 4);
    floats.insert(floats.end(), b, b + 4);
  }
  auto written = [&](const std::function<void(SafetensorsWriter&)>& fill) {
    SafetensorsWriter w;
    fill(w);
    w.write(dir.file("k.safetensors"));
    return read_all(dir.file("k.safetensors"));
  };
  auto with_header = [](const std::string& h, uint64_t n, const Bytes& data) { return image(h + std::string(n - h.size(), ' '), data); };
  EXPECT_EQ(written([&](SafetensorsWriter& w) { w.add("attn.0", StDtype::F32, {1, 2, 3}, floats); }),
            with_header("{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}", 64, floats));
  EXPECT_EQ(written([&](SafetensorsWriter& w) { w.add("attn0", StDtype::F32, {1, 1, 2, 3}, floats); }),
            with_header("{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],\"data_offsets\":[0,24]}}", 72, floats));
  EXPECT_EQ(written([](SafetensorsWriter&) {}), (Bytes{8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32}));
  EXPECT_EQ(written([](SafetensorsWriter& w) { w.set_metadata("framework", "pt"); }),
            with_header("{\"__metadata__\":{\"framework\":\"pt\"}}", 40, {}));
  std::string doc = "{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";
  ASSERT_EQ(doc.size(), size_t('<'));
  auto t = parse(image(doc, zeros(16)));
  EXPECT_EQ(t.at(0).shape, (std::vector<int64_t>{2, 2}));
}

TEST(Safetensors, WriterRejectsBadInput) {
  SafetensorsWriter w;
  w.add("a", StDtype::U8, {2}, Bytes{1, 2});
  EXPECT_ERROR(error_of([&] { w.add("a", StDtype::U8, {2}, Bytes{1, 2}); }), "tensor 'a' added twice");
  EXPECT_ERROR(error_of([&] { w.add("b", StDtype::F32, {2}, Bytes{1, 2}); }), "2 bytes given, its shape and dtype need 8");
  EXPECT_ERROR(error_of([&] { w.add("c", StDtype::U8, {-1}, Bytes{}); }), "negative dimension -1");
  EXPECT_ERROR(error_of([&] { w.add("d", StDtype::F64, {int64_t(1) << 62, 8}, Bytes{}); }), "size overflows");
  EXPECT_ERROR(error_of([&] { w.write("/nonexistent-dir/x.safetensors"); }), "/nonexistent-dir/x.safetensors: cannot create");
}

TEST(Safetensors, OpenErrors) {
  TempDir dir;
  EXPECT_ERROR(error_of([&] { SafetensorsFile::open(dir.file("missing.safetensors")); }),
               "missing.safetensors: cannot open: No such file or directory");
  fs::create_directory(dir.file("d.safetensors"));
  EXPECT_ERROR(error_of([&] { SafetensorsFile::open(dir.file("d.safetensors")); }), "not a regular file (it is a directory)");
  dir.write("empty.safetensors", {});
  EXPECT_ERROR(error_of([&] { SafetensorsFile::open(dir.file("empty.safetensors")); }),
               "empty.safetensors: file is 0 bytes, too short");
  dir.write("trunc.safetensors", image("{" + entry("w", "F32", "[4]", "[0,16]") + "}", zeros(15)));
  EXPECT_ERROR(error_of([&] { SafetensorsFile::open(dir.file("trunc.safetensors")); }),
               "trunc.safetensors: tensor 'w': data_offsets [0, 16] run past the end of the data (15 bytes");
  if (::geteuid() != 0) {  // root reads anything
    dir.write("secret.safetensors", image("{}", {}));
    fs::permissions(dir.file("secret.safetensors"), fs::perms::none);
    EXPECT_ERROR(error_of([&] { SafetensorsFile::open(dir.file("secret.safetensors")); }), "Permission denied");
  }
}

// Every prefix of a valid file but the whole is an error; random byte corruption is either accepted or
// a ModelError, never a crash, another exception or an out-of-bounds read (run under ASan).
TEST(Safetensors, CorruptionNeverCrashes) {
  std::string h = "{\"__metadata__\":{\"format\":\"pt\"}," + entry("a", "F32", "[2,2]", "[0,16]") + "," +
                  entry("b", "BF16", "[3]", "[16,22]") + "}";
  Bytes good = image(h, zeros(22));
  ASSERT_NO_THROW(parse(good));
  for (size_t len = 0; len < good.size(); ++len) {
    Bytes cut(good.begin(), good.begin() + long(len));
    EXPECT_NE(parse_error(cut), "<no error>") << "prefix of " << len << " bytes accepted";
  }
  std::mt19937_64 rng(12345);
  int accepted = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    Bytes b = good;
    int flips = 1 + int(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      size_t pos = rng() % b.size();
      b[pos] = uint8_t(rng() % 3 == 0 ? "0123456789[]{},:\"-"[rng() % 18] : rng());
    }
    try {
      auto t = parse(b);
      ++accepted;
      for (const auto& x : t) ASSERT_LE(x.data + x.nbytes, b.data() + b.size());
    } catch (const ModelError&) {
    }
  }
  EXPECT_GT(accepted, 0);  // some flips land in the data and keep the file valid
}
