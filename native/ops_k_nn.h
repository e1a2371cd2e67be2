// Row kernels for softmax / log-softmax, fused cross-entropy, RMSNorm, LayerNorm, RoPE and AdamW.
// Included by ops_isa_*.cpp after ops_simd.h and ops_k_elementwise.h.

// Loads lanes [j, j + cnt) of a contiguous row; missing lanes get `pad`.
template <class T>
GRAFT_INLINE vf ldPad(const T* p, int64_t cnt, float pad) {
  if (cnt == W) return ld(p);
  float buf[W];
  for (int64_t l = 0; l < W; l++) buf[l] = l < cnt ? toF(p[l]) : pad;
  return ld(buf);
}
template <class T>
GRAFT_INLINE void stN(T* p, int64_t cnt, vf v) {
  stS(p, 1, cnt, v);
}

template <class T>
static float rowMax(const T* x, int64_t n) {
  vf m0 = splat(-__builtin_inff()), m1 = m0;
  int64_t j = 0;
  for (; j + 2 * W <= n; j += 2 * W) {
    m0 = vmax(m0, ld(x + j));
    m1 = vmax(m1, ld(x + j + W));
  }
  for (; j < n; j += W) m0 = vmax(m0, ldPad(x + j, chunk(n, j), -__builtin_inff()));
  return hmax(vmax(m0, m1));
}
// sum(exp(x - m)); with a non-null e (float rows only) also writes the exponentials there.
template <class T>
static float rowSumExp(const T* x, int64_t n, float m, float* e) {
  vf s0 = splat(0.0f), s1 = s0;
  int64_t j = 0;
  for (; j + 2 * W <= n; j += 2 * W) {
    vf e0 = vexp(ld(x + j) - m), e1 = vexp(ld(x + j + W) - m);
    if (e) {
      st(e + j, e0);
      st(e + j + W, e1);
    }
    s0 += e0;
    s1 += e1;
  }
  for (; j < n; j += W) {
    int64_t c = chunk(n, j);
    vf ev = vexp(ldPad(x + j, c, -__builtin_inff()) - m);
    if (e) stN(e + j, c, ev);
    s0 += ev;
  }
  return hsum(s0 + s1);
}

template <class T>
static void softmaxTyped(const T* X, T* Y, int64_t r0, int64_t r1, int64_t C, bool log) {
  for (int64_t r = r0; r < r1; r++) {
    const T* x = X + r * C;
    T* y = Y + r * C;
    float m = rowMax(x, C);
    if (m == -__builtin_inff()) m = 0.0f;  // all -inf: keep exp(x - m) well defined
    constexpr bool isF32 = sizeof(T) == 4;
    float* e = (isF32 && !log) ? reinterpret_cast<float*>(y) : nullptr;
    float s = rowSumExp(x, C, m, e);
    if (log) {
      float ls = m + logf(s);
      for (int64_t j = 0; j < C; j += W) {
        int64_t c = chunk(C, j);
        stN(y + j, c, ldS(x + j, 1, c) - ls);
      }
    } else {
      float inv = 1.0f / s;
      for (int64_t j = 0; j < C; j += W) {
        int64_t c = chunk(C, j);
        vf v = e ? ldS(e + j, 1, c) : vexp(ldS(x + j, 1, c) - m);
        stN(y + j, c, v * inv);
      }
    }
  }
}
static void softmaxRows(const void* x, void* y, DT dt, int64_t r0, int64_t r1, int64_t C, bool log) {
  GRAFT_FLOAT_DISPATCH(dt, T, softmaxTyped(static_cast<const T*>(x), static_cast<T*>(y), r0, r1, C, log));
}

template <class T>
static void softmaxBackwardTyped(const T* Y, const T* GY, T* GX, int64_t r0, int64_t r1, int64_t C, bool log) {
  for (int64_t r = r0; r < r1; r++) {
    const T* y = Y + r * C;
    const T* gy = GY + r * C;
    T* gx = GX + r * C;
    vf acc = splat(0.0f);
    for (int64_t j = 0; j < C; j += W) {
      int64_t c = chunk(C, j);
      vf g = ldS(gy + j, 1, c);
      acc += log ? g : g * ldS(y + j, 1, c);
    }
    float s = hsum(acc);
    for (int64_t j = 0; j < C; j += W) {
      int64_t c = chunk(C, j);
      vf g = ldS(gy + j, 1, c), yv = ldS(y + j, 1, c);
      stN(gx + j, c, log ? g - vexp(yv) * s : yv * (g - s));
    }
  }
}
static void softmaxBackwardRows(const void* y, const void* gy, void* gx, DT dt, int64_t r0, int64_t r1, int64_t C,
                                bool log) {
  GRAFT_FLOAT_DISPATCH(dt, T,
                       softmaxBackwardTyped(static_cast<const T*>(y), static_cast<const T*>(gy), static_cast<T*>(gx),
                                            r0, r1, C, log));
}

// ---- cross-entropy: one streaming pass per row, in L1-sized chunks (chunk max, then the chunk's
// sum of exp from cache, merged into a running max / sum) ----

constexpr int64_t kCeChunk = 2048;

template <class T>
static void crossEntropyTyped(const T* L, const int32_t* targets, int64_t r0, int64_t r1, int64_t V, int64_t ignore,
                              float eps, float* loss, float* lse) {
  for (int64_t r = r0; r < r1; r++) {
    const T* x = L + r * V;
    float M = -__builtin_inff(), Z = 0.0f;
    vf total = splat(0.0f);
    for (int64_t c0 = 0; c0 < V; c0 += kCeChunk) {
      const int64_t cn = V - c0 < kCeChunk ? V - c0 : kCeChunk;
      const T* xc = x + c0;
      vf m0 = splat(-__builtin_inff());
      for (int64_t j = 0; j < cn; j += W) {
        int64_t c = chunk(cn, j);
        vf v = ldPad(xc + j, c, -__builtin_inff());
        m0 = vmax(m0, v);
        if (eps != 0.0f) total += c == W ? v : ldS(xc + j, 1, c);
      }
      const float cm = hmax(m0);
      const float mNew = M > cm ? M : cm;
      if (mNew == -__builtin_inff()) continue;
      const float scale = M == -__builtin_inff() ? 0.0f : expf(M - mNew);
      Z = Z * scale + rowSumExp(xc, cn, mNew, nullptr);
      M = mNew;
    }
    const float l = M + logf(Z);
    lse[r] = l;
    int64_t t = targets[r];
    if (t == ignore) {
      loss[r] = 0.0f;
      continue;
    }
    float nll = l - toF(x[t]);
    loss[r] = eps == 0.0f ? nll : (1.0f - eps) * nll + eps * (l - hsum(total) / static_cast<float>(V));
  }
}
static void crossEntropyRows(const void* logits, DT dt, const int32_t* targets, int64_t r0, int64_t r1, int64_t V,
                             int64_t ignore, float eps, float* loss, float* lse) {
  GRAFT_FLOAT_DISPATCH(dt, T, crossEntropyTyped(static_cast<const T*>(logits), targets, r0, r1, V, ignore, eps, loss, lse));
}

template <class T>
static void crossEntropyBackwardTyped(const T* L, const int32_t* targets, const float* lse, const float* gLoss,
                                      int64_t r0, int64_t r1, int64_t V, int64_t ignore, float eps, T* G) {
  for (int64_t r = r0; r < r1; r++) {
    const T* x = L + r * V;
    T* g = G + r * V;
    int64_t t = targets[r];
    if (t == ignore) {
      for (int64_t j = 0; j < V; j += W) stN(g + j, chunk(V, j), splat(0.0f));
      continue;
    }
    float gl = gLoss[r], l = lse[r], off = eps / static_cast<float>(V);
    for (int64_t j = 0; j < V; j += W) {
      int64_t c = chunk(V, j);
      stN(g + j, c, gl * (vexp(ldS(x + j, 1, c) - l) - off));
    }
    float pt = expf(toF(x[t]) - l);
    fromF(gl * (pt - off - (1.0f - eps)), g + t);
  }
}
static void crossEntropyBackwardRows(const void* logits, DT dt, const int32_t* targets, const float* lse,
                                     const float* gLoss, int64_t r0, int64_t r1, int64_t V, int64_t ignore, float eps,
                                     void* g) {
  GRAFT_FLOAT_DISPATCH(dt, T,
                       crossEntropyBackwardTyped(static_cast<const T*>(logits), targets, lse, gLoss, r0, r1, V, ignore,
                                                 eps, static_cast<T*>(g)));
}

// ---- RMSNorm / LayerNorm ----

template <class T>
GRAFT_INLINE vf ldW(const T* w, int64_t j, int64_t c) {
  return w ? ldS(w + j, 1, c) : splat(1.0f);
}

template <class T>
static void rmsnormTyped(const T* X, const T* w, T* Y, float* rstd, int64_t r0, int64_t r1, int64_t C, float eps) {
  for (int64_t r = r0; r < r1; r++) {
    const T* x = X + r * C;
    T* y = Y + r * C;
    vf acc = splat(0.0f);
    for (int64_t j = 0; j < C; j += W) {
      vf v = ldS(x + j, 1, chunk(C, j));
      acc += v * v;
    }
    float rs = 1.0f / sqrtf(hsum(acc) / static_cast<float>(C) + eps);
    rstd[r] = rs;
    for (int64_t j = 0; j < C; j += W) {
      int64_t c = chunk(C, j);
      stN(y + j, c, ldS(x + j, 1, c) * rs * ldW(w, j, c));
    }
  }
}
static void rmsnormRows(const void* x, const void* w, void* y, float* rstd, DT dt, int64_t r0, int64_t r1, int64_t C,
                        float eps) {
  GRAFT_FLOAT_DISPATCH(dt, T,
                       rmsnormTyped(static_cast<const T*>(x), static_cast<const T*>(w), static_cast<T*>(y), rstd, r0,
                                    r1, C, eps));
}

template <class T>
static void rmsnormBackwardTyped(const T* X, const T* w, const float* rstd, const T* GY, T* GX, float* gwAcc,
                                 int64_t r0, int64_t r1, int64_t C) {
  for (int64_t r = r0; r < r1; r++) {
    const T* x = X + r * C;
    const T* gy = GY + r * C;
    T* gx = GX + r * C;
    float rs = rstd[r];
    vf acc = splat(0.0f);
    for (int64_t j = 0; j < C; j += W) {
      int64_t c = chunk(C, j);
      acc += ldS(gy + j, 1, c) * ldW(w, j, c) * ldS(x + j, 1, c);
    }
    float k = rs * rs * rs * hsum(acc) / static_cast<float>(C);
    for (int64_t j = 0; j < C; j += W) {
      int64_t c = chunk(C, j);
      vf g = ldS(gy + j, 1, c), xv = ldS(x + j, 1, c);
      stN(gx + j, c, rs * g * ldW(w, j, c) - xv * k);
      if (gwAcc) stN(gwAcc + j, c, ldS(gwAcc + j, 1, c) + g * xv * rs);
    }
  }
}
static void rmsnormBackwardRows(const void* x, const void* w, const float* rstd, const void* gy, void* gx, float* gwAcc,
                                DT dt, int64_t r0, int64_t r1, int64_t C) {
  GRAFT_FLOAT_DISPATCH(dt, T,
                       rmsnormBackwardTyped(static_cast<const T*>(x), static_cast<const T*>(w), rstd,
                                            static_cast<const T*>(gy), static_cast<T*>(gx), gwAcc, r0, r1, C));
}

template <class T>
static void layernormTyped(const T* X, const T* w, const T* b, T* Y, float* mean, float* rstd, int64_t r0, int64_t r1,
                           int64_t C, float eps) {
  for (int64_t r = r0; r < r1; r++) {
    const T* x = X + r * C;
    T* y = Y + r * C;
    vf acc = splat(0.0f);
    for (int64_t j = 0; j < C; j += W) acc += ldS(x + j, 1, chunk(C, j));
    float mu = hsum(acc) / static_cast<float>(C);
    vf acc2 = splat(0.0f);
    for (int64_t j = 0; j < C; j += W) {
      int64_t c = chunk(C, j);
      vf d = ldS(x + j, 1, c) - mu;
      if (c < W) {
        for (int64_t l = c; l < W; l++) d[l] = 0.0f;
      }
      acc2 += d * d;
    }
    float rs = 1.0f / sqrtf(hsum(acc2) / static_cast<float>(C) + eps);
    mean[r] = mu;
    rstd[r] = rs;
    for (int64_t j = 0; j < C; j += W) {
      int64_t c = chunk(C, j);
      vf v = (ldS(x + j, 1, c) - mu) * rs * ldW(w, j, c);
      if (b) v += ldS(b + j, 1, c);
      stN(y + j, c, v);
    }
  }
}
static void layernormRows(const void* x, const void* w, const void* b, void* y, float* mean, float* rstd, DT dt,
                          int64_t r0, int64_t r1, int64_t C, float eps) {
  GRAFT_FLOAT_DISPATCH(dt, T,
                       layernormTyped(static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(b),
                                      static_cast<T*>(y), mean, rstd, r0, r1, C, eps));
}

template <class T>
static void layernormBackwardTyped(const T* X, const T* w, const float* mean, const float* rstd, const T* GY, T* GX,
                                   float* gwAcc, float* gbAcc, int64_t r0, int64_t r1, int64_t C) {
  for (int64_t r = r0; r < r1; r++) {
    const T* x = X + r * C;
    const T* gy = GY + r * C;
    T* gx = GX + r * C;
    float mu = mean[r], rs = rstd[r];
    vf a0 = splat(0.0f), a1 = splat(0.0f);
    for (int64_t j = 0; j < C; j += W) {
      int64_t c = chunk(C, j);
      vf dxh = ldS(gy + j, 1, c) * ldW(w, j, c);
      vf xh = (ldS(x + j, 1, c) - mu) * rs;
      a0 += dxh;
      a1 += dxh * xh;
    }
    float m0 = hsum(a0) / static_cast<float>(C), m1 = hsum(a1) / static_cast<float>(C);
    for (int64_t j = 0; j < C; j += W) {
      int64_t c = chunk(C, j);
      vf g = ldS(gy + j, 1, c);
      vf xh = (ldS(x + j, 1, c) - mu) * rs;
      stN(gx + j, c, rs * (g * ldW(w, j, c) - m0 - xh * m1));
      if (gwAcc) stN(gwAcc + j, c, ldS(gwAcc + j, 1, c) + g * xh);
      if (gbAcc) stN(gbAcc + j, c, ldS(gbAcc + j, 1, c) + g);
    }
  }
}
static void layernormBackwardRows(const void* x, const void* w, const float* mean, const float* rstd, const void* gy,
                                  void* gx, float* gwAcc, float* gbAcc, DT dt, int64_t r0, int64_t r1, int64_t C) {
  GRAFT_FLOAT_DISPATCH(dt, T,
                       layernormBackwardTyped(static_cast<const T*>(x), static_cast<const T*>(w), mean, rstd,
                                              static_cast<const T*>(gy), static_cast<T*>(gx), gwAcc, gbAcc, r0, r1, C));
}

// ---- RoPE ----

template <class T>
static void ropeTyped(const T* X, T* O, const float* cosSin, int64_t r0, int64_t r1, int64_t H, int64_t D, int64_t rd,
                      bool interleaved) {
  int64_t half = rd / 2;
  for (int64_t r = r0; r < r1; r++) {
    const float* cs = cosSin + r * rd;
    const float* sn = cs + half;
    for (int64_t h = 0; h < H; h++) {
      const T* x = X + (r * H + h) * D;
      T* o = O + (r * H + h) * D;
      if (interleaved) {
        for (int64_t i = 0; i < half; i++) {
          float x0 = toF(x[2 * i]), x1 = toF(x[2 * i + 1]);
          fromF(x0 * cs[i] - x1 * sn[i], o + 2 * i);
          fromF(x1 * cs[i] + x0 * sn[i], o + 2 * i + 1);
        }
      } else {
        for (int64_t i = 0; i < half; i += W) {
          int64_t c = chunk(half, i);
          vf x0 = ldS(x + i, 1, c), x1 = ldS(x + i + half, 1, c);
          vf cv = ldS(cs + i, 1, c), sv = ldS(sn + i, 1, c);
          stN(o + i, c, x0 * cv - x1 * sv);
          stN(o + i + half, c, x1 * cv + x0 * sv);
        }
      }
      if (o != x) {
        for (int64_t i = rd; i < D; i++) o[i] = x[i];
      }
    }
  }
}
static void ropeRows(const void* x, void* out, DT dt, const float* cosSin, int64_t r0, int64_t r1, int64_t H, int64_t D,
                     int64_t rd, bool interleaved) {
  GRAFT_FLOAT_DISPATCH(dt, T,
                       ropeTyped(static_cast<const T*>(x), static_cast<T*>(out), cosSin, r0, r1, H, D, rd, interleaved));
}

// ---- AdamW (torch semantics: decoupled decay, then the bias-corrected Adam step) ----

static void adamwRange(float* p, const float* g, float* m, float* v, int64_t i0, int64_t i1, float lr, float b1,
                       float omb1, float b2, float omb2, float eps, float decay, float bc1, float bc2) {
  float stepSize = lr / bc1, bc2Sqrt = sqrtf(bc2);
  for (int64_t i = i0; i < i1; i += W) {
    int64_t c = chunk(i1, i);
    vf gv = ldS(g + i, 1, c);
    vf mv = b1 * ldS(m + i, 1, c) + omb1 * gv;
    vf vv = b2 * ldS(v + i, 1, c) + omb2 * gv * gv;
    vf pv = ldS(p + i, 1, c) * decay;
    pv -= stepSize * mv / (vsqrt(vv) / bc2Sqrt + eps);
    stN(m + i, c, mv);
    stN(v + i, c, vv);
    stN(p + i, c, pv);
  }
}
