// N-API bindings of the elementwise kernels (copy, fill, unary, unaryBackward, binary, where) and
// reduce, plus the add-on's registerOps entry and the ISA selection of the kernel table.
#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu.h"
#include "ops_binding.h"

namespace graft {

const OpsKernels& kernels() {
  static const OpsKernels table = [] {
    OpsKernels k{};
    switch (detectIsa()) {
      case Isa::Avx512Bf16:
      case Isa::Avx512: ops_avx512::fillKernels(k); break;
      case Isa::Avx2: ops_avx2::fillKernels(k); break;
      default: ops_generic::fillKernels(k); break;
    }
    return k;
  }();
  return table;
}

namespace {

int64_t opArg(Args& a, size_t i, int64_t count) {
  int64_t op = a.integer(i);
  if (a.ok() && (op < 0 || op >= count)) a.fail("unknown op code " + std::to_string(op));
  return op;
}

// copy(src, srcOffset, srcStrides, srcDtype, dst, dstOffset, dstStrides, dstDtype, shape)
napi_value Copy(napi_env env, napi_callback_info info) {
  Args a(env, info, "copy", 9);
  std::vector<int64_t> shape = a.intList(8);
  DT sdt = dtArg(a, 3, true), ddt = dtArg(a, 7, true);
  ViewArg src = viewArg(a, 0, sdt, shape, "src");
  ViewArg dst = viewArg(a, 4, ddt, shape, "dst");
  if (!a.ok()) return undefinedValue(env);
  const OpsKernels& k = kernels();
  std::vector<int64_t> dims;
  std::vector<std::array<int64_t, 2>> st;
  if (coalesce<2>(shape, {&src, &dst}, dims, st) && dims.size() == 2 && st[1][0] != 1 && st[1][1] == 1 &&
      st[0][0] == 1) {
    // A 2-d transpose: copy 32 x 32 tiles so both sides stay in cache.
    constexpr int64_t kTile = 32;
    const int64_t R = dims[0], C = dims[1];
    const int64_t tilesR = (R + kTile - 1) / kTile, tilesC = (C + kTile - 1) / kTile;
    parallelFor(tilesR * tilesC, std::max<int64_t>(1, 32768 / (kTile * kTile)), [&](int64_t t0, int64_t t1, int) {
      for (int64_t t = t0; t < t1; t++) {
        const int64_t r0 = (t / tilesC) * kTile, c0 = (t % tilesC) * kTile;
        const int64_t nc = std::min(kTile, C - c0);
        for (int64_t r = r0; r < std::min(R, r0 + kTile); r++) {
          k.castRow(elementPtr(src, r * st[0][0] + c0 * st[1][0]), sdt, st[1][0],
                    elementPtr(dst, r * st[0][1] + c0), ddt, 1, nc);
        }
      }
    });
    return undefinedValue(env);
  }
  forEachRow<2>(shape, {&src, &dst}, [&](const std::array<char*, 2>& p, const std::array<int64_t, 2>& s, int64_t n) {
    k.castRow(p[0], sdt, s[0], p[1], ddt, s[1], n);
  });
  return undefinedValue(env);
}

// fill(dst, offset, strides, dtype, shape, value)
napi_value Fill(napi_env env, napi_callback_info info) {
  Args a(env, info, "fill", 6);
  std::vector<int64_t> shape = a.intList(4);
  DT dt = dtArg(a, 3, true);
  ViewArg dst = viewArg(a, 0, dt, shape, "dst");
  double value = a.number(5);
  if (!a.ok()) return undefinedValue(env);
  const OpsKernels& k = kernels();
  forEachRow<1>(shape, {&dst}, [&](const std::array<char*, 1>& p, const std::array<int64_t, 1>& s, int64_t n) {
    k.fillRow(p[0], dt, s[0], value, n);
  });
  return undefinedValue(env);
}

// unary(op, x, xOffset, xStrides, out, outOffset, outStrides, shape, dtype)
napi_value Unary(napi_env env, napi_callback_info info) {
  Args a(env, info, "unary", 9);
  int op = static_cast<int>(opArg(a, 0, kUnaryCount));
  std::vector<int64_t> shape = a.intList(7);
  DT dt = dtArg(a, 8);
  ViewArg x = viewArg(a, 1, dt, shape, "x");
  ViewArg out = viewArg(a, 4, dt, shape, "out");
  if (!a.ok()) return undefinedValue(env);
  const OpsKernels& k = kernels();
  forEachRow<2>(shape, {&x, &out}, [&](const std::array<char*, 2>& p, const std::array<int64_t, 2>& s, int64_t n) {
    k.unaryRow(op, p[0], s[0], p[1], s[1], dt, n);
  });
  return undefinedValue(env);
}

// unaryBackward(op, x, xOffset, xStrides, gy, gyOffset, gyStrides, gx, gxOffset, gxStrides, shape, dtype)
napi_value UnaryBackward(napi_env env, napi_callback_info info) {
  Args a(env, info, "unaryBackward", 12);
  int op = static_cast<int>(opArg(a, 0, kUnaryCount));
  std::vector<int64_t> shape = a.intList(10);
  DT dt = dtArg(a, 11);
  ViewArg x = viewArg(a, 1, dt, shape, "x");
  ViewArg gy = viewArg(a, 4, dt, shape, "gy");
  ViewArg gx = viewArg(a, 7, dt, shape, "gx");
  if (!a.ok()) return undefinedValue(env);
  const OpsKernels& k = kernels();
  forEachRow<3>(shape, {&x, &gy, &gx},
                [&](const std::array<char*, 3>& p, const std::array<int64_t, 3>& s, int64_t n) {
                  k.unaryBackwardRow(op, p[0], s[0], p[1], s[1], p[2], s[2], dt, n);
                });
  return undefinedValue(env);
}

// binary(op, a, aOffset, aStrides, b, bOffset, bStrides, out, outOffset, outStrides, shape, dtype)
napi_value Binary(napi_env env, napi_callback_info info) {
  Args a(env, info, "binary", 12);
  int op = static_cast<int>(opArg(a, 0, kBinaryCount));
  std::vector<int64_t> shape = a.intList(10);
  DT dt = dtArg(a, 11);
  ViewArg va = viewArg(a, 1, dt, shape, "a");
  ViewArg vb = viewArg(a, 4, dt, shape, "b");
  ViewArg out = viewArg(a, 7, dt, shape, "out");
  if (!a.ok()) return undefinedValue(env);
  const OpsKernels& k = kernels();
  forEachRow<3>(shape, {&va, &vb, &out},
                [&](const std::array<char*, 3>& p, const std::array<int64_t, 3>& s, int64_t n) {
                  k.binaryRow(op, p[0], s[0], p[1], s[1], p[2], s[2], dt, n);
                });
  return undefinedValue(env);
}

// where(cond, condOffset, condStrides, condDtype, a, aOffset, aStrides, b, bOffset, bStrides,
//       out, outOffset, outStrides, shape, dtype)
napi_value Where(napi_env env, napi_callback_info info) {
  Args a(env, info, "where", 15);
  std::vector<int64_t> shape = a.intList(13);
  DT cdt = dtArg(a, 3, true), dt = dtArg(a, 14);
  ViewArg c = viewArg(a, 0, cdt, shape, "cond");
  ViewArg va = viewArg(a, 4, dt, shape, "a");
  ViewArg vb = viewArg(a, 7, dt, shape, "b");
  ViewArg out = viewArg(a, 10, dt, shape, "out");
  if (!a.ok()) return undefinedValue(env);
  const OpsKernels& k = kernels();
  forEachRow<4>(shape, {&c, &va, &vb, &out},
                [&](const std::array<char*, 4>& p, const std::array<int64_t, 4>& s, int64_t n) {
                  k.whereRow(p[0], cdt, s[0], p[1], s[1], p[2], s[2], p[3], s[3], dt, n);
                });
  return undefinedValue(env);
}

// reduce(op, x, dtype, outer, n, inner, out): out is Int32Array for argmax/argmin, else x's dtype.
napi_value Reduce(napi_env env, napi_callback_info info) {
  Args a(env, info, "reduce", 7);
  int op = static_cast<int>(opArg(a, 0, kReduceCount));
  DT dt = dtArg(a, 2);
  int64_t outer = a.integer(3), n = a.integer(4), inner = a.integer(5);
  if (!nonNegative(a, {{"outer", outer}, {"n", n}, {"inner", inner}})) return undefinedValue(env);
  if (n == 0) a.fail("cannot reduce an axis of length 0");
  const void* x = bufArg(a, 1, dt, outer * n * inner, "x");
  bool isArg = op == kArgmax || op == kArgmin;
  void* out = bufArg(a, 6, isArg ? DT::I32 : dt, outer * inner, "out");
  if (!a.ok()) return undefinedValue(env);
  const OpsKernels& k = kernels();
  const int64_t total = outer * n * inner;
  const int nt = numThreads();
  if (outer == 1 && inner == 1 && nt > 1 && n >= (1 << 16) && op >= kMax) {
    // One long row (a vocabulary's logits): each thread reduces a slice, then the slices' extremes
    // are combined (the first NaN wins, else the extreme, ties to the earlier slice).
    std::vector<int32_t> at(static_cast<size_t>(nt), 0);
    const int64_t slice = (n + nt - 1) / nt;
    const size_t es = dtSize(dt);
    parallelFor(nt, 1, [&](int64_t c0, int64_t c1, int) {
      for (int64_t c = c0; c < c1; c++) {
        const int64_t j0 = c * slice, len = std::min(n, j0 + slice) - j0;
        if (len <= 0) continue;
        int32_t i = 0;
        const char* base = static_cast<const char*>(x) + j0 * es;
        if (isArg) k.reduce(op, base, dt, 0, 1, len, 1, 0, 1, &i);
        else k.reduce(kArgmax + (op - kMax), base, dt, 0, 1, len, 1, 0, 1, &i);  // max -> argmax, min -> argmin
        at[static_cast<size_t>(c)] = static_cast<int32_t>(j0 + i);
      }
    });
    const bool isMax = op == kMax || op == kArgmax;
    int64_t best = at[0];
    for (int c = 1; c < nt && c * slice < n; c++) {
      const float b = elementF32(x, dt, best), v = elementF32(x, dt, at[static_cast<size_t>(c)]);
      if (b != b) break;
      if (v != v || (isMax ? v > b : v < b)) best = at[static_cast<size_t>(c)];
    }
    if (isArg) static_cast<int32_t*>(out)[0] = static_cast<int32_t>(best);
    else std::memcpy(out, static_cast<const char*>(x) + best * es, es);
    return undefinedValue(env);
  }
  if (outer < numThreads() && inner >= 256 && total > 32768) {
    // few, wide outer slices (e.g. a column sum): split the inner axis in 64-column strips
    const int64_t strips = (inner + 63) / 64;
    parallelFor(strips, 1, [&](int64_t s0, int64_t s1, int) {
      k.reduce(op, x, dt, 0, outer, n, inner, s0 * 64, std::min(inner, s1 * 64), out);
    });
  } else {
    parallelFor(outer, std::max<int64_t>(1, 32768 / std::max<int64_t>(n * inner, 1)),
                [&](int64_t o0, int64_t o1, int) { k.reduce(op, x, dt, o0, o1, n, inner, 0, inner, out); });
  }
  return undefinedValue(env);
}

}  // namespace

void registerElementwise(napi_env env, napi_value exports) {
  defineFunction(env, exports, "copy", Copy);
  defineFunction(env, exports, "fill", Fill);
  defineFunction(env, exports, "unary", Unary);
  defineFunction(env, exports, "unaryBackward", UnaryBackward);
  defineFunction(env, exports, "binary", Binary);
  defineFunction(env, exports, "where", Where);
  defineFunction(env, exports, "reduce", Reduce);
}

void registerOps(napi_env env, napi_value exports) {
  registerElementwise(env, exports);
  registerNn(env, exports);
}

}  // namespace graft
