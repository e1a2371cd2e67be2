// Helpers for reading N-API arguments. Kernels receive typed arrays (zero copy) and numbers.
// Every helper throws a JS error naming the function and the argument on bad input.
#pragma once
#include <node_api.h>

#include <cstdint>
#include <string>
#include <vector>

namespace graft {

struct ArrayArg {
  void* data = nullptr;       // first element of the typed array's view
  size_t length = 0;          // elements
  napi_typedarray_type type;  // napi_float32_array, napi_uint16_array (bf16), napi_int32_array, ...
};

class Args {
 public:
  Args(napi_env env, napi_callback_info info, const char* fn, size_t expected);
  // The elements of parent's argument i (a JS array of `expected` items, or of any length with kAll)
  // read as arguments: errors say "<fn>: <where>: message" and fail the parent too.
  static constexpr size_t kAll = SIZE_MAX;
  Args(Args& parent, size_t i, const std::string& where, size_t expected = kAll);
  bool ok() const { return ok_; }
  size_t count() const { return argv_.size(); }
  ArrayArg array(size_t i);                   // any typed array
  float* f32(size_t i);                       // Float32Array
  uint16_t* bf16(size_t i);                   // Uint16Array holding bfloat16 bits
  int32_t* i32(size_t i);                     // Int32Array
  uint8_t* u8(size_t i);                      // Uint8Array
  bool isNull(size_t i);                      // null or undefined
  double number(size_t i);
  int64_t integer(size_t i);
  bool boolean(size_t i);
  std::vector<int64_t> intList(size_t i);     // plain JS array of numbers
  void fail(const std::string& message);      // throws "<fn>: message"
  napi_env env() const { return env_; }

 private:
  napi_env env_;
  std::string fn_;
  std::vector<napi_value> argv_;
  bool ok_ = true;
  Args* parent_ = nullptr;
};

napi_value undefinedValue(napi_env env);
napi_value numberValue(napi_env env, double v);
void defineFunction(napi_env env, napi_value exports, const char* name, napi_callback cb);

}  // namespace graft
