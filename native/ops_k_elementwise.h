// Elementwise kernels (cast, fill, unary, unary backward, binary, where) and reductions, over one
// strided row; the bindings split N-d views into rows. Included by ops_isa_*.cpp after ops_simd.h.

#define GRAFT_FLOAT_DISPATCH(dt, T, ...)         \
  do {                                           \
    if ((dt) == DT::BF16) {                      \
      using T = uint16_t;                        \
      __VA_ARGS__;                               \
    } else {                                     \
      using T = float;                           \
      __VA_ARGS__;                               \
    }                                            \
  } while (0)

GRAFT_INLINE int64_t chunk(int64_t n, int64_t i) { return n - i < W ? n - i : W; }

template <class T, class F>
static void map1(const T* x, int64_t sx, T* y, int64_t sy, int64_t n, F f) {
  for (int64_t i = 0; i < n; i += W) {
    int64_t c = chunk(n, i);
    stS(y + i * sy, sy, c, f(ldS(x + i * sx, sx, c)));
  }
}
template <class A, class B, class O, class F>
static void map2(const A* a, int64_t sa, const B* b, int64_t sb, O* o, int64_t so, int64_t n, F f) {
  for (int64_t i = 0; i < n; i += W) {
    int64_t c = chunk(n, i);
    stS(o + i * so, so, c, f(ldS(a + i * sa, sa, c), ldS(b + i * sb, sb, c)));
  }
}

// ---- cast / fill ----

template <class S, class D>
static void castTyped(const S* s, int64_t ss, D* d, int64_t ds, int64_t n) {
  for (int64_t i = 0; i < n; i += W) {
    int64_t c = chunk(n, i);
    stS(d + i * ds, ds, c, ldS(s + i * ss, ss, c));
  }
}
template <class T>
static void copySame(const T* s, int64_t ss, T* d, int64_t ds, int64_t n) {
  if (ss == 1 && ds == 1) {
    memmove(d, s, static_cast<size_t>(n) * sizeof(T));
    return;
  }
  for (int64_t i = 0; i < n; i++) d[i * ds] = s[i * ss];
}

static void castRow(const void* src, DT sdt, int64_t ss, void* dst, DT ddt, int64_t ds, int64_t n) {
  if (sdt == ddt) {
    if (sdt == DT::BF16) copySame(static_cast<const uint16_t*>(src), ss, static_cast<uint16_t*>(dst), ds, n);
    else if (sdt == DT::F32) copySame(static_cast<const float*>(src), ss, static_cast<float*>(dst), ds, n);
    else copySame(static_cast<const int32_t*>(src), ss, static_cast<int32_t*>(dst), ds, n);
    return;
  }
  auto withDst = [&](auto* s) {
    if (ddt == DT::F32) castTyped(s, ss, static_cast<float*>(dst), ds, n);
    else if (ddt == DT::BF16) castTyped(s, ss, static_cast<uint16_t*>(dst), ds, n);
    else castTyped(s, ss, static_cast<int32_t*>(dst), ds, n);
  };
  if (sdt == DT::F32) withDst(static_cast<const float*>(src));
  else if (sdt == DT::BF16) withDst(static_cast<const uint16_t*>(src));
  else withDst(static_cast<const int32_t*>(src));
}

template <class T>
static void fillTyped(T* d, int64_t ds, T v, int64_t n) {
  if (ds == 1) {
    for (int64_t i = 0; i < n; i++) d[i] = v;
  } else {
    for (int64_t i = 0; i < n; i++) d[i * ds] = v;
  }
}
static void fillRow(void* dst, DT dt, int64_t ds, double value, int64_t n) {
  if (dt == DT::F32) fillTyped(static_cast<float*>(dst), ds, static_cast<float>(value), n);
  else if (dt == DT::BF16) fillTyped(static_cast<uint16_t*>(dst), ds, f2bf(static_cast<float>(value)), n);
  else {
    double t = value < 0 ? -__builtin_floor(-value) : __builtin_floor(value);
    fillTyped(static_cast<int32_t*>(dst), ds, static_cast<int32_t>(t), n);
  }
}

// ---- unary ----

template <class T>
static void unaryTyped(int op, const T* x, int64_t sx, T* y, int64_t sy, int64_t n) {
  switch (op) {
    case kNeg: return map1(x, sx, y, sy, n, [](vf v) { return -v; });
    case kExp: return map1(x, sx, y, sy, n, [](vf v) { return vexp(v); });
    case kLog: return map1(x, sx, y, sy, n, [](vf v) { return lanes(v, [](float a) { return logf(a); }); });
    case kSqrt: return map1(x, sx, y, sy, n, [](vf v) { return vsqrt(v); });
    case kRsqrt: return map1(x, sx, y, sy, n, [](vf v) { return 1.0f / vsqrt(v); });
    case kTanh: return map1(x, sx, y, sy, n, [](vf v) { return vtanh(v); });
    case kSigmoid: return map1(x, sx, y, sy, n, [](vf v) { return vsigmoid(v); });
    case kSilu: return map1(x, sx, y, sy, n, [](vf v) { return v * vsigmoid(v); });
    case kGelu:  // 0.5 x (1 + tanh(u)) == x * sigmoid(2u), without the cancellation for x << 0
      return map1(x, sx, y, sy, n, [](vf v) { return v * vsigmoid(2.0f * kGeluC * (v + kGeluA * v * v * v)); });
    case kGeluErf: return map1(x, sx, y, sy, n, [](vf v) { return 0.5f * v * verfc(-v * kInvSqrt2); });
    case kRelu: return map1(x, sx, y, sy, n, [](vf v) { return v <= 0.0f ? splat(0.0f) : v; });  // NaN stays NaN
    case kAbs: return map1(x, sx, y, sy, n, [](vf v) { return vabs(v); });
    case kSin: return map1(x, sx, y, sy, n, [](vf v) { return lanes(v, [](float a) { return sinf(a); }); });
    case kCos: return map1(x, sx, y, sy, n, [](vf v) { return lanes(v, [](float a) { return cosf(a); }); });
    case kSquare: return map1(x, sx, y, sy, n, [](vf v) { return v * v; });
    case kReciprocal: return map1(x, sx, y, sy, n, [](vf v) { return 1.0f / v; });
  }
}
static void unaryRow(int op, const void* x, int64_t sx, void* y, int64_t sy, DT dt, int64_t n) {
  GRAFT_FLOAT_DISPATCH(dt, T, unaryTyped(op, static_cast<const T*>(x), sx, static_cast<T*>(y), sy, n));
}

template <class T>
static void unaryBackwardTyped(int op, const T* x, int64_t sx, const T* gy, int64_t sg, T* gx, int64_t so, int64_t n) {
  auto run = [&](auto f) { map2(x, sx, gy, sg, gx, so, n, f); };
  switch (op) {
    case kNeg: return run([](vf, vf g) { return -g; });
    case kExp: return run([](vf v, vf g) { return g * vexp(v); });
    case kLog: return run([](vf v, vf g) { return g / v; });
    case kSqrt: return run([](vf v, vf g) { return g * 0.5f / vsqrt(v); });
    case kRsqrt: return run([](vf v, vf g) { return g * -0.5f / (v * vsqrt(v)); });
    case kTanh: return run([](vf v, vf g) {
      vf t = vtanh(v);
      return g * (1.0f - t * t);
    });
    case kSigmoid: return run([](vf v, vf g) {
      vf s = vsigmoid(v);
      return g * s * (1.0f - s);
    });
    case kSilu: return run([](vf v, vf g) {
      vf s = vsigmoid(v);
      return g * s * (1.0f + v * (1.0f - s));
    });
    case kGelu: return run([](vf v, vf g) {
      vf u2 = 2.0f * kGeluC * (v + kGeluA * v * v * v);
      vf s = vsigmoid(u2);
      vf du2 = 2.0f * kGeluC * (1.0f + 3.0f * kGeluA * v * v);
      return g * (s + v * s * (1.0f - s) * du2);
    });
    case kGeluErf: return run([](vf v, vf g) {
      vf cdf = 0.5f * verfc(-v * kInvSqrt2);
      vf pdf = kInvSqrt2Pi * vexp(-0.5f * v * v);
      return g * (cdf + v * pdf);
    });
    case kRelu: return run([](vf v, vf g) { return v > 0.0f ? g : splat(0.0f); });
    case kAbs: return run([](vf v, vf g) { return v > 0.0f ? g : (v < 0.0f ? -g : splat(0.0f)); });
    case kSin: return run([](vf v, vf g) { return g * lanes(v, [](float a) { return cosf(a); }); });
    case kCos: return run([](vf v, vf g) { return -g * lanes(v, [](float a) { return sinf(a); }); });
    case kSquare: return run([](vf v, vf g) { return 2.0f * v * g; });
    case kReciprocal: return run([](vf v, vf g) { return -g / (v * v); });
  }
}
static void unaryBackwardRow(int op, const void* x, int64_t sx, const void* gy, int64_t sg, void* gx, int64_t so, DT dt,
                             int64_t n) {
  GRAFT_FLOAT_DISPATCH(dt, T,
                       unaryBackwardTyped(op, static_cast<const T*>(x), sx, static_cast<const T*>(gy), sg,
                                          static_cast<T*>(gx), so, n));
}

// ---- binary / where ----

template <class T>
static void binaryTyped(int op, const T* a, int64_t sa, const T* b, int64_t sb, T* o, int64_t so, int64_t n) {
  auto run = [&](auto f) { map2(a, sa, b, sb, o, so, n, f); };
  switch (op) {
    case kAdd: return run([](vf x, vf y) { return x + y; });
    case kSub: return run([](vf x, vf y) { return x - y; });
    case kMul: return run([](vf x, vf y) { return x * y; });
    case kDiv: return run([](vf x, vf y) { return x / y; });
    case kPow: return run([](vf x, vf y) {
      for (int j = 0; j < W; j++) x[j] = powf(x[j], y[j]);
      return x;
    });
    // NaN propagates as in torch.maximum / minimum
    case kMaximum: return run([](vf x, vf y) { return x != x ? x : (x > y || y != y ? (x > y ? x : y) : y); });
    case kMinimum: return run([](vf x, vf y) { return x != x ? x : (x < y || y != y ? (x < y ? x : y) : y); });
    case kEq: return run([](vf x, vf y) { return vmask(x == y); });
    case kNe: return run([](vf x, vf y) { return vmask(x != y); });
    case kLt: return run([](vf x, vf y) { return vmask(x < y); });
    case kLe: return run([](vf x, vf y) { return vmask(x <= y); });
    case kGt: return run([](vf x, vf y) { return vmask(x > y); });
    case kGe: return run([](vf x, vf y) { return vmask(x >= y); });
  }
}
static void binaryRow(int op, const void* a, int64_t sa, const void* b, int64_t sb, void* o, int64_t so, DT dt,
                      int64_t n) {
  GRAFT_FLOAT_DISPATCH(dt, T,
                       binaryTyped(op, static_cast<const T*>(a), sa, static_cast<const T*>(b), sb, static_cast<T*>(o),
                                   so, n));
}

template <class C, class T>
static void whereTyped(const C* c, int64_t sc, const T* a, int64_t sa, const T* b, int64_t sb, T* o, int64_t so,
                       int64_t n) {
  for (int64_t i = 0; i < n; i += W) {
    int64_t k = chunk(n, i);
    vf cv = ldS(c + i * sc, sc, k);
    vf r = cv != 0.0f ? ldS(a + i * sa, sa, k) : ldS(b + i * sb, sb, k);
    stS(o + i * so, so, k, r);
  }
}
static void whereRow(const void* c, DT cdt, int64_t sc, const void* a, int64_t sa, const void* b, int64_t sb, void* o,
                     int64_t so, DT dt, int64_t n) {
  GRAFT_FLOAT_DISPATCH(dt, T, {
    const T* ta = static_cast<const T*>(a);
    const T* tb = static_cast<const T*>(b);
    T* to = static_cast<T*>(o);
    if (cdt == DT::F32) whereTyped(static_cast<const float*>(c), sc, ta, sa, tb, sb, to, so, n);
    else if (cdt == DT::BF16) whereTyped(static_cast<const uint16_t*>(c), sc, ta, sa, tb, sb, to, so, n);
    else whereTyped(static_cast<const int32_t*>(c), sc, ta, sa, tb, sb, to, so, n);
  });
}

// ---- reductions over the middle axis of [outer, n, inner] ----

template <class T>
static void reduceTyped(int op, const T* x, int64_t o0, int64_t o1, int64_t n, int64_t inner, int64_t i0, int64_t i1,
                        void* outv) {
  bool isArg = op == kArgmax || op == kArgmin;
  bool isMax = op == kMax || op == kArgmax;
  const float fill = isMax ? -__builtin_inff() : __builtin_inff();
  for (int64_t o = o0; o < o1; o++) {
    const T* base = x + o * n * inner;
    for (int64_t i = i0; i < i1; i += W) {
      int64_t c = chunk(i1, i);
      vf acc = (op == kSum || op == kMean) ? splat(0.0f) : splat(fill);
      vi idx = vi{} + 0;
      if (inner == 1) {
        // one row: vector lanes run along n
        if (op == kSum || op == kMean) {
          vf a0 = acc, a1 = acc;
          int64_t j = 0;
          for (; j + 2 * W <= n; j += 2 * W) {
            a0 += ld(base + j);
            a1 += ld(base + j + W);
          }
          for (; j < n; j += W) a0 += ldS(base + j, 1, chunk(n, j));
          float s = hsum(a0 + a1);
          fromF(op == kMean ? s / static_cast<float>(n) : s, static_cast<T*>(outv) + o);
        } else {
          // One pass: each lane keeps its extreme and (arg ops) the first index it was seen at.
          vi nan = vi{} + 0, lane = vi{} + 0;
          for (int l = 0; l < W; l++) lane[l] = l;
          for (int64_t j = 0; j < n; j += W) {
            int64_t k = chunk(n, j);
            vf v = ldS(base + j, 1, k);
            if (k < W) {
              for (int64_t l = k; l < W; l++) v[l] = fill;
            }
            nan |= v != v;
            if (isArg) {
              const vi m = isMax ? (v > acc) : (v < acc);
              acc = m ? v : acc;
              idx = m ? (lane + static_cast<int32_t>(j)) : idx;
            } else {
              acc = isMax ? vmax(acc, v) : vmin(acc, v);
            }
          }
          bool anyNan = false;
          for (int l = 0; l < W; l++) anyNan = anyNan || nan[l] != 0;
          float best = isMax ? hmax(acc) : -hmax(-acc);
          // A NaN is the extreme (torch semantics): max/min return it, argmax/argmin its first index.
          // Otherwise the first index of the extreme is the least index among the lanes holding it.
          int64_t at = n;
          if (anyNan) {
            for (int64_t j = 0; j < n; j++) {
              if (toF(base[j]) != toF(base[j])) {
                at = j;
                best = toF(base[j]);
                break;
              }
            }
          } else if (isArg) {
            for (int l = 0; l < W; l++)
              if (acc[l] == best && idx[l] < at) at = idx[l];
          }
          if (isArg) static_cast<int32_t*>(outv)[o] = static_cast<int32_t>(at);
          else fromF(best, static_cast<T*>(outv) + o);
        }
        continue;
      }
      for (int64_t j = 0; j < n; j++) {
        vf v = ldS(base + j * inner + i, 1, c);
        switch (op) {
          case kSum:
          case kMean: acc += v; break;
          case kMax: acc = (v > acc || v != v) ? v : acc; break;
          case kMin: acc = (v < acc || v != v) ? v : acc; break;
          case kArgmax: {
            vi m = (acc == acc) & ((v > acc) | (v != v));
            acc = m ? v : acc;
            idx = m ? (vi{} + static_cast<int32_t>(j)) : idx;
            break;
          }
          case kArgmin: {
            vi m = (acc == acc) & ((v < acc) | (v != v));
            acc = m ? v : acc;
            idx = m ? (vi{} + static_cast<int32_t>(j)) : idx;
            break;
          }
        }
      }
      if (isArg) {
        int32_t* out = static_cast<int32_t*>(outv) + o * inner + i;
        for (int64_t l = 0; l < c; l++) out[l] = idx[l];
      } else {
        if (op == kMean) acc /= static_cast<float>(n);
        stS(static_cast<T*>(outv) + o * inner + i, 1, c, acc);
      }
    }
  }
}
static void reduceRows(int op, const void* x, DT dt, int64_t o0, int64_t o1, int64_t n, int64_t inner, int64_t i0,
                       int64_t i1, void* out) {
  GRAFT_FLOAT_DISPATCH(dt, T, reduceTyped(op, static_cast<const T*>(x), o0, o1, n, inner, i0, i1, out));
}

// ---- SwiGLU (Llama / Qwen2 MLP): o = silu(g) * u; backward gg = go * u * silu'(g), gu = go * silu(g) ----

template <class T>
static void swigluTyped(const T* g, const T* u, T* o, int64_t i0, int64_t i1) {
  for (int64_t i = i0; i < i1; i += W) {
    const int64_t c = chunk(i1, i);
    const vf x = ldS(g + i, 1, c);
    stS(o + i, 1, c, x * vsigmoid(x) * ldS(u + i, 1, c));
  }
}
static void swigluRange(const void* g, const void* u, void* o, DT dt, int64_t i0, int64_t i1) {
  GRAFT_FLOAT_DISPATCH(dt, T, swigluTyped(static_cast<const T*>(g), static_cast<const T*>(u), static_cast<T*>(o), i0, i1));
}
template <class T>
static void swigluBackwardTyped(const T* g, const T* u, const T* go, T* gg, T* gu, int64_t i0, int64_t i1) {
  for (int64_t i = i0; i < i1; i += W) {
    const int64_t c = chunk(i1, i);
    const vf x = ldS(g + i, 1, c), s = vsigmoid(x), d = ldS(go + i, 1, c);
    stS(gg + i, 1, c, d * ldS(u + i, 1, c) * s * (1.0f + x * (1.0f - s)));
    stS(gu + i, 1, c, d * x * s);
  }
}
static void swigluBackwardRange(const void* g, const void* u, const void* go, void* gg, void* gu, DT dt, int64_t i0,
                                int64_t i1) {
  GRAFT_FLOAT_DISPATCH(dt, T,
                       swigluBackwardTyped(static_cast<const T*>(g), static_cast<const T*>(u), static_cast<const T*>(go),
                                           static_cast<T*>(gg), static_cast<T*>(gu), i0, i1));
}
