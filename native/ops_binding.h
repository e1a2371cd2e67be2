// Argument helpers shared by the ops bindings: typed arrays checked against a dtype code and a
// required length, and strided views walked row by row (in parallel) for the elementwise kernels.
#pragma once
#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "napi_util.h"
#include "ops_kernels.h"
#include "threadpool.h"

namespace graft {

inline size_t dtSize(DT dt) { return dt == DT::BF16 ? 2 : 4; }

inline float bf16ToF32(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint16_t f32ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
// Element `at` of a float32 or bfloat16 array, as float.
inline float elementF32(const void* base, DT dt, int64_t at) {
  return dt == DT::F32 ? static_cast<const float*>(base)[at] : bf16ToF32(static_cast<const uint16_t*>(base)[at]);
}
inline const char* dtName(DT dt) { return dt == DT::F32 ? "float32" : dt == DT::BF16 ? "bfloat16" : "int32"; }

// dtype code argument: 0 float32, 1 bfloat16, 2 int32 (only where `allowInt`).
inline DT dtArg(Args& a, size_t i, bool allowInt = false) {
  int64_t c = a.integer(i);
  if (a.ok() && (c < 0 || c > (allowInt ? 2 : 1))) a.fail("unsupported dtype code " + std::to_string(c));
  return static_cast<DT>(c);
}

// A typed array of dtype `dt` with at least `need` elements (need < 0: no length check).
inline void* bufArg(Args& a, size_t i, DT dt, int64_t need, const char* name) {
  ArrayArg arr = a.array(i);
  if (!a.ok()) return nullptr;
  napi_typedarray_type want =
      dt == DT::F32 ? napi_float32_array : dt == DT::BF16 ? napi_uint16_array : napi_int32_array;
  if (arr.type != want) {
    a.fail(std::string(name) + " must be a " +
           (dt == DT::F32 ? "Float32Array" : dt == DT::BF16 ? "Uint16Array (bfloat16)" : "Int32Array") + " for " +
           dtName(dt));
    return nullptr;
  }
  if (need >= 0 && static_cast<int64_t>(arr.length) < need) {
    a.fail(std::string(name) + " has " + std::to_string(arr.length) + " elements, needs " + std::to_string(need));
    return nullptr;
  }
  return arr.data;
}
inline void* optBufArg(Args& a, size_t i, DT dt, int64_t need, const char* name) {
  if (!a.ok() || a.isNull(i)) return nullptr;
  return bufArg(a, i, dt, need, name);
}

inline bool nonNegative(Args& a, std::initializer_list<std::pair<const char*, int64_t>> dims) {
  for (auto& d : dims) {
    if (a.ok() && d.second < 0) a.fail(std::string(d.first) + " must be >= 0, got " + std::to_string(d.second));
  }
  return a.ok();
}

struct ViewArg {
  char* base = nullptr;
  DT dt = DT::F32;
  int64_t offset = 0;
  std::vector<int64_t> strides;
};

// Reads (data, offset, strides) at argument i, i + 1, i + 2 and checks every element of `shape` is inside.
inline ViewArg viewArg(Args& a, size_t i, DT dt, const std::vector<int64_t>& shape, const char* name) {
  ViewArg v;
  v.dt = dt;
  void* data = bufArg(a, i, dt, -1, name);
  v.offset = a.integer(i + 1);
  v.strides = a.intList(i + 2);
  if (!a.ok()) return v;
  v.base = static_cast<char*>(data);
  if (v.strides.size() != shape.size()) {
    a.fail(std::string(name) + " has " + std::to_string(v.strides.size()) + " strides for a " +
           std::to_string(shape.size()) + "-d shape");
    return v;
  }
  int64_t lo = v.offset, hi = v.offset, numel = 1;
  for (size_t d = 0; d < shape.size(); d++) {
    if (shape[d] < 0) {
      a.fail("negative dimension " + std::to_string(shape[d]));
      return v;
    }
    numel *= shape[d];
    int64_t span = (shape[d] - 1) * v.strides[d];
    if (span < 0) lo += span;
    else hi += span;
  }
  ArrayArg arr = a.array(i);
  if (numel > 0 && (lo < 0 || hi >= static_cast<int64_t>(arr.length))) {
    a.fail(std::string(name) + " view (offset " + std::to_string(v.offset) + ") reaches elements [" +
           std::to_string(lo) + ", " + std::to_string(hi) + "] of an array of " + std::to_string(arr.length));
  }
  return v;
}

// Drops dimensions of size 1 and merges runs that are contiguous in every view, so dense tensors become
// one long row. Returns false when the shape has no elements. At least one dimension is always left.
template <size_t K>
bool coalesce(const std::vector<int64_t>& shape, const std::array<const ViewArg*, K>& views, std::vector<int64_t>& dims,
              std::vector<std::array<int64_t, K>>& st) {
  dims.clear();
  st.clear();
  for (size_t d = 0; d < shape.size(); d++) {
    if (shape[d] == 0) return false;
    if (shape[d] == 1) continue;
    std::array<int64_t, K> s;
    for (size_t k = 0; k < K; k++) s[k] = views[k]->strides[d];
    if (!dims.empty()) {
      bool merge = true;
      for (size_t k = 0; k < K; k++) merge = merge && st.back()[k] == s[k] * shape[d];
      if (merge) {
        dims.back() *= shape[d];
        st.back() = s;
        continue;
      }
    }
    dims.push_back(shape[d]);
    st.push_back(s);
  }
  if (dims.empty()) {
    dims.push_back(1);
    st.push_back({});
  }
  return true;
}

inline char* elementPtr(const ViewArg& v, int64_t off) {
  return v.base + (v.offset + off) * static_cast<int64_t>(dtSize(v.dt));
}

// Walks `shape` over K views row by row: fn(ptrs, innerStrides, n), rows in parallel.
template <size_t K, class F>
void forEachRow(const std::vector<int64_t>& shape, const std::array<const ViewArg*, K>& views, F fn) {
  std::vector<int64_t> dims;
  std::vector<std::array<int64_t, K>> st;
  if (!coalesce(shape, views, dims, st)) return;
  const size_t nd = dims.size();
  const int64_t n = dims[nd - 1];
  int64_t rows = 1;
  for (size_t d = 0; d + 1 < nd; d++) rows *= dims[d];
  std::array<int64_t, K> inner = st[nd - 1];
  // Few long rows (a dense tensor coalesces to one): split each row into pieces so every thread works.
  constexpr int64_t kPiece = 16384;
  if (rows < numThreads() && n >= 2 * kPiece) {
    const int64_t pieces = (n + kPiece - 1) / kPiece;
    parallelFor(rows * pieces, 1, [&](int64_t t0, int64_t t1, int) {
      for (int64_t t = t0; t < t1; t++) {
        int64_t rem = t / pieces;
        const int64_t c0 = (t % pieces) * kPiece;
        std::array<int64_t, K> off{};
        for (size_t d = nd - 1; d-- > 0;) {
          const int64_t i = rem % dims[d];
          rem /= dims[d];
          for (size_t k = 0; k < K; k++) off[k] += i * st[d][k];
        }
        std::array<char*, K> ptrs;
        for (size_t k = 0; k < K; k++) ptrs[k] = elementPtr(*views[k], off[k] + c0 * inner[k]);
        fn(ptrs, inner, std::min(kPiece, n - c0));
      }
    });
    return;
  }
  parallelFor(rows, std::max<int64_t>(1, 32768 / std::max<int64_t>(n, 1)), [&](int64_t r0, int64_t r1, int) {
    std::vector<int64_t> idx(nd, 0);
    int64_t rem = r0;
    for (size_t d = nd - 1; d-- > 0;) {
      idx[d] = rem % dims[d];
      rem /= dims[d];
    }
    for (int64_t r = r0; r < r1; r++) {
      std::array<char*, K> ptrs;
      for (size_t k = 0; k < K; k++) {
        int64_t off = 0;
        for (size_t d = 0; d + 1 < nd; d++) off += idx[d] * st[d][k];
        ptrs[k] = elementPtr(*views[k], off);
      }
      fn(ptrs, inner, n);
      for (size_t d = nd - 1; d-- > 0;) {
        if (++idx[d] < dims[d]) break;
        idx[d] = 0;
      }
    }
  });
}

// Reads B, Hq, Hkv, T, S, D, scale, causal, keyMask starting at argument i.
inline AttnShape attnShapeArg(Args& a, size_t i) {
  AttnShape s{};
  s.B = a.integer(i);
  s.Hq = a.integer(i + 1);
  s.Hkv = a.integer(i + 2);
  s.T = a.integer(i + 3);
  s.S = a.integer(i + 4);
  s.D = a.integer(i + 5);
  s.scale = static_cast<float>(a.number(i + 6));
  s.causal = a.boolean(i + 7);
  if (!nonNegative(a, {{"B", s.B}, {"Hq", s.Hq}, {"Hkv", s.Hkv}, {"T", s.T}, {"S", s.S}, {"D", s.D}})) return s;
  if (s.Hkv == 0 || s.Hq % s.Hkv != 0) {
    a.fail("Hq " + std::to_string(s.Hq) + " must be a positive multiple of Hkv " + std::to_string(s.Hkv));
    return s;
  }
  if (!a.isNull(i + 8)) {
    ArrayArg m = a.array(i + 8);
    if (!a.ok()) return s;
    if (m.type != napi_uint8_array) a.fail("keyMask must be a Uint8Array");
    else if (static_cast<int64_t>(m.length) < s.B * s.S)
      a.fail("keyMask has " + std::to_string(m.length) + " elements, needs " + std::to_string(s.B * s.S));
    s.keyMask = static_cast<const uint8_t*>(m.data);
  }
  return s;
}

// The attention operands at arguments 0-4: q and out [B, Hq, T, D], k and v [B, Hkv, S, D] (dense, of
// dtype dt), lse [B, Hq, T] float32.
struct AttnBuffers {
  const void* q;
  const void* k;
  const void* v;
  void* out;
  float* lse;
};

inline AttnBuffers attnBuffersArg(Args& a, DT dt, const AttnShape& s) {
  const int64_t nq = s.B * s.Hq * s.T * s.D, nk = s.B * s.Hkv * s.S * s.D;
  AttnBuffers b{};
  b.q = bufArg(a, 0, dt, nq, "q");
  b.k = bufArg(a, 1, dt, nk, "k");
  b.v = bufArg(a, 2, dt, nk, "v");
  b.out = bufArg(a, 3, dt, nq, "out");
  b.lse = static_cast<float*>(bufArg(a, 4, DT::F32, s.B * s.Hq * s.T, "lse"));
  return b;
}

void registerElementwise(napi_env env, napi_value exports);
void registerNn(napi_env env, napi_value exports);

}  // namespace graft
