# fuzz_tokenizer (included by fuzz/CMakeLists.txt after OPDEV_FUZZ_FLAGS is set): the tokenizer sources
# compiled into the target with the fuzzing instrumentation, plus PCRE2 and utf8proc. The real Qwen3
# tokenizer is read at start from $OPDEV_TOKENIZER or the cache that scripts/fetch-tokenizer.sh fills.
find_package(PkgConfig REQUIRED)
pkg_check_modules(FUZZ_PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
pkg_check_modules(FUZZ_UTF8PROC REQUIRED IMPORTED_TARGET libutf8proc)
file(GLOB _opdev_tokenizer_sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/model/tokenizer*.cpp)
add_executable(fuzz_tokenizer ${CMAKE_CURRENT_LIST_DIR}/fuzz_tokenizer.cpp ${_opdev_tokenizer_sources})
target_include_directories(fuzz_tokenizer PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_compile_options(fuzz_tokenizer PRIVATE ${OPDEV_FUZZ_FLAGS})
target_link_options(fuzz_tokenizer PRIVATE ${OPDEV_FUZZ_FLAGS})
target_link_libraries(fuzz_tokenizer PRIVATE nlohmann_json::nlohmann_json PkgConfig::FUZZ_PCRE2 PkgConfig::FUZZ_UTF8PROC)
set(_opdev_tokenizer_cache $ENV{OPDEV_CACHE_DIR})
if(NOT _opdev_tokenizer_cache)
  set(_opdev_tokenizer_cache ${PROJECT_SOURCE_DIR}/.cache)
endif()
target_compile_definitions(fuzz_tokenizer PRIVATE OPDEV_FUZZ_TOKENIZER="${_opdev_tokenizer_cache}/tokenizer-qwen3/models")
