#include "napi_util.h"

namespace graft {

Args::Args(napi_env env, napi_callback_info info, const char* fn, size_t expected) : env_(env), fn_(fn) {
  size_t argc = expected;
  argv_.resize(expected);
  napi_get_cb_info(env, info, &argc, argv_.data(), nullptr, nullptr);
  if (argc < expected) fail("expected " + std::to_string(expected) + " arguments, got " + std::to_string(argc));
}

Args::Args(Args& parent, size_t i, const std::string& where, size_t expected)
    : env_(parent.env_), fn_(parent.fn_ + ": " + where), parent_(&parent) {
  if (!parent.ok_) {
    ok_ = false;
    return;
  }
  bool is = false;
  napi_is_array(env_, parent.argv_[i], &is);
  uint32_t n = 0;
  if (is) napi_get_array_length(env_, parent.argv_[i], &n);
  if (!is || (expected != kAll && n < expected)) {
    const std::string items = expected == kAll ? "" : " of " + std::to_string(expected) + " items";
    fail("expected an array" + items + (is ? ", got " + std::to_string(n) : ""));
    return;
  }
  argv_.resize(expected == kAll ? n : expected);
  for (uint32_t j = 0; j < argv_.size(); j++) napi_get_element(env_, parent.argv_[i], j, &argv_[j]);
}

void Args::fail(const std::string& message) {
  if (!ok_) return;
  ok_ = false;
  if (parent_ && !parent_->ok_) return;  // the parent threw already
  if (parent_) parent_->ok_ = false;
  std::string full = fn_ + ": " + message;
  napi_throw_error(env_, nullptr, full.c_str());
}

ArrayArg Args::array(size_t i) {
  ArrayArg out;
  if (!ok_) return out;
  bool is = false;
  napi_is_typedarray(env_, argv_[i], &is);
  if (!is) {
    fail("argument " + std::to_string(i) + " must be a typed array");
    return out;
  }
  napi_value buffer;
  size_t offset;
  napi_get_typedarray_info(env_, argv_[i], &out.type, &out.length, &out.data, &buffer, &offset);
  return out;
}

template <typename T>
static T* typed(Args& a, size_t i, napi_typedarray_type want, const char* name) {
  ArrayArg arr = a.array(i);
  if (!a.ok()) return nullptr;
  if (arr.type != want) {
    a.fail("argument " + std::to_string(i) + " must be a " + name);
    return nullptr;
  }
  return static_cast<T*>(arr.data);
}

float* Args::f32(size_t i) { return typed<float>(*this, i, napi_float32_array, "Float32Array"); }
uint16_t* Args::bf16(size_t i) { return typed<uint16_t>(*this, i, napi_uint16_array, "Uint16Array (bfloat16)"); }
int32_t* Args::i32(size_t i) { return typed<int32_t>(*this, i, napi_int32_array, "Int32Array"); }
uint8_t* Args::u8(size_t i) { return typed<uint8_t>(*this, i, napi_uint8_array, "Uint8Array"); }

bool Args::isNull(size_t i) {
  napi_valuetype t;
  napi_typeof(env_, argv_[i], &t);
  return t == napi_null || t == napi_undefined;
}

double Args::number(size_t i) {
  double v = 0;
  if (!ok_) return v;
  if (napi_get_value_double(env_, argv_[i], &v) != napi_ok) fail("argument " + std::to_string(i) + " must be a number");
  return v;
}

int64_t Args::integer(size_t i) {
  int64_t v = 0;
  if (!ok_) return v;
  if (napi_get_value_int64(env_, argv_[i], &v) != napi_ok) fail("argument " + std::to_string(i) + " must be an integer");
  return v;
}

bool Args::boolean(size_t i) {
  bool v = false;
  if (!ok_) return v;
  if (napi_get_value_bool(env_, argv_[i], &v) != napi_ok) fail("argument " + std::to_string(i) + " must be a boolean");
  return v;
}

std::vector<int64_t> Args::intList(size_t i) {
  std::vector<int64_t> out;
  if (!ok_) return out;
  bool is = false;
  napi_is_array(env_, argv_[i], &is);
  if (!is) {
    fail("argument " + std::to_string(i) + " must be an array of integers");
    return out;
  }
  uint32_t n = 0;
  napi_get_array_length(env_, argv_[i], &n);
  out.resize(n);
  for (uint32_t j = 0; j < n; j++) {
    napi_value el;
    napi_get_element(env_, argv_[i], j, &el);
    if (napi_get_value_int64(env_, el, &out[j]) != napi_ok) {
      fail("argument " + std::to_string(i) + " must be an array of integers");
      return out;
    }
  }
  return out;
}

napi_value undefinedValue(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

napi_value numberValue(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

void defineFunction(napi_env env, napi_value exports, const char* name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, nullptr, &fn);
  napi_set_named_property(env, exports, name, fn);
}

}  // namespace graft
