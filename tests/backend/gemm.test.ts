/**
 * Native GEMM against a float64 triple loop: every transpose combination, batches with strides (incl.
 * broadcast stride 0), odd sizes, padded leading dimensions, offsets, alpha/beta (beta = 0 ignores NaN
 * in C), bfloat16 operands and outputs, every ISA path the CPU has (AMX tiles included), GRAFT_ISA
 * capping, and bounds checking.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { loadAddon } from "../../src/backend/native/addon.ts";
import { nativeGemm } from "../../src/backend/native/gemm.ts";
import type { GemmArgs } from "../../src/backend/Backend.ts";
import type { DType } from "../../src/core/dtype.ts";

const addon = loadAddon();
const ISAS = ["generic", "avx2", "avx512", "avx512bf16", "amx"];
const nativeIsa = addon.gemmIsa("native") as string;
/** The ISA paths this CPU can run, from generic up to the best one. */
const availableIsas = ISAS.slice(0, ISAS.indexOf(nativeIsa) + 1);

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bf16ToNumber = (h: number): number => {
  u32[0] = h << 16;
  return f32[0]!;
};
const numberToBf16Truncated = (x: number): number => {
  f32[0] = x;
  return u32[0]! >>> 16;
};

type Store = Float32Array | Uint16Array;
const decode = (s: Store, i: number): number => (s instanceof Uint16Array ? bf16ToNumber(s[i]!) : s[i]!);

function randomStore(dtype: DType, n: number, next: () => number): Store {
  if (dtype === "float32") return Float32Array.from({ length: n }, () => next() * 2 - 1);
  // Exactly representable bf16 inputs, so the reference sees the same values as the kernel.
  return Uint16Array.from({ length: n }, () => numberToBf16Truncated(next() * 2 - 1));
}

interface Case {
  dtype?: DType;
  cDtype?: DType;
  batch?: number;
  m: number;
  n: number;
  k: number;
  transA?: boolean;
  transB?: boolean;
  /** Extra elements per row beyond the stored row length. */
  padA?: number;
  padB?: number;
  padC?: number;
  offsetA?: number;
  offsetB?: number;
  offsetC?: number;
  /** "bcast" = stride 0; otherwise matrices are packed with a gap of 5 elements. */
  broadcastA?: boolean;
  broadcastB?: boolean;
  /** C laid out [m, batch, n]: ldc = batch * n, batch stride n (matrices interleave by rows). */
  interleaveC?: boolean;
  alpha?: number;
  beta?: number;
  /** Prior contents of C: random values (default) or NaN (only meaningful with beta = 0). */
  cInit?: "random" | "nan";
  seed?: number;
}

/** Runs one case natively and compares every element of C (touched or not) with a float64 reference. */
function check(c: Case): void {
  const dtype = c.dtype ?? "float32";
  const cDtype = c.cDtype ?? "float32";
  const batch = c.batch ?? 1;
  const { m, n, k } = c;
  const transA = c.transA ?? false;
  const transB = c.transB ?? false;
  const [rowsA, colsA] = transA ? [k, m] : [m, k];
  const [rowsB, colsB] = transB ? [n, k] : [k, n];
  const lda = colsA + (c.padA ?? 0);
  const ldb = colsB + (c.padB ?? 0);
  const ldc = (c.interleaveC ? batch * n : n) + (c.padC ?? 0);
  const span = (rows: number, cols: number, ld: number) => (rows === 0 || cols === 0 ? 0 : (rows - 1) * ld + cols);
  const strideA = c.broadcastA ? 0 : span(rowsA, colsA, lda) + 5;
  const strideB = c.broadcastB ? 0 : span(rowsB, colsB, ldb) + 5;
  const strideC = c.interleaveC ? n : span(m, n, ldc) + 5;
  const offsetA = c.offsetA ?? 0;
  const offsetB = c.offsetB ?? 0;
  const offsetC = c.offsetC ?? 0;
  const next = rng(c.seed ?? 1234);
  const a = randomStore(dtype, offsetA + (batch - 1) * strideA + span(rowsA, colsA, lda) + 3, next);
  const b = randomStore(dtype, offsetB + (batch - 1) * strideB + span(rowsB, colsB, ldb) + 3, next);
  const cLen = offsetC + (batch - 1) * strideC + span(m, n, ldc) + 3;
  const cStore: Store = randomStore(cDtype, cLen, next);
  if (c.cInit === "nan") cStore.fill(cDtype === "float32" ? NaN : 0x7fc0);
  const before = Float64Array.from({ length: cLen }, (_, i) => decode(cStore, i));
  const alpha = c.alpha ?? 1;
  const beta = c.beta ?? 0;
  const args: GemmArgs = { batch, m, n, k, transA, transB, lda, ldb, ldc, offsetA, offsetB, offsetC, strideA, strideB, strideC, alpha, beta };

  nativeGemm(addon, a, b, cStore, dtype, cDtype, args);

  // Expected C and the magnitude each element's error is judged against.
  const want = Float64Array.from(before);
  const scale = new Float64Array(cLen);
  for (let bi = 0; bi < batch; bi++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        let mag = 0;
        for (let p = 0; p < k; p++) {
          const av = decode(a, offsetA + bi * strideA + (transA ? p * lda + i : i * lda + p));
          const bv = decode(b, offsetB + bi * strideB + (transB ? j * ldb + p : p * ldb + j));
          sum += av * bv;
          mag += Math.abs(av * bv);
        }
        const idx = offsetC + bi * strideC + i * ldc + j;
        const prior = beta === 0 ? 0 : beta * before[idx]!;
        want[idx] = alpha * sum + prior;
        scale[idx] = Math.abs(alpha) * mag + Math.abs(prior);
      }
    }
  }
  // fp32 accumulation of exact products (bf16 inputs give exact fp32 products): ~1e-4 relative to
  // the sum of magnitudes; a bf16 output adds its rounding (2^-9 relative, allow 2^-8).
  const rtol = dtype === "float32" ? 1e-4 : 1e-3;
  for (let i = 0; i < cLen; i++) {
    const got = decode(cStore, i);
    const tol = rtol * scale[i]! + (cDtype === "bfloat16" ? Math.abs(want[i]!) / 256 : 0) + 1e-6;
    if (!(Math.abs(got - want[i]!) <= tol) && !(Number.isNaN(got) && Number.isNaN(want[i]!))) {
      assert.fail(`C[${i}] = ${got}, expected ${want[i]} (tol ${tol}) for ${JSON.stringify({ ...c, dtype, cDtype, isa: addon.gemmIsa() })}`);
    }
  }
}

function withIsa(isa: string, fn: () => void): void {
  addon.gemmIsa(isa);
  try {
    fn();
  } finally {
    addon.gemmIsa("native");
  }
}

const TRANSPOSES: [boolean, boolean][] = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];

test("all transpose combinations, float32 and bfloat16, odd sizes, padded ld and offsets", () => {
  for (const dtype of ["float32", "bfloat16"] as const) {
    for (const cDtype of ["float32", "bfloat16"] as const) {
      for (const [transA, transB] of TRANSPOSES) {
        check({ dtype, cDtype, m: 33, n: 47, k: 37, transA, transB, padA: 3, padB: 1, padC: 2, offsetA: 5, offsetB: 2, offsetC: 7 });
      }
    }
  }
});

test("sizes 1, 7 and 33 in every dimension", () => {
  for (const m of [1, 7, 33])
    for (const n of [1, 7, 33])
      for (const k of [1, 7, 33])
        for (const dtype of ["float32", "bfloat16"] as const) check({ dtype, m, n, k, transA: m === 7, transB: k === 33 });
});

test("a 4865 dimension (one past many tile and block multiples)", () => {
  for (const dtype of ["float32", "bfloat16"] as const) {
    for (const [transA, transB] of TRANSPOSES) {
      check({ dtype, m: 4865, n: 3, k: 5, transA, transB });
      check({ dtype, m: 3, n: 4865, k: 5, transA, transB });
      check({ dtype, m: 5, n: 3, k: 4865, transA, transB, cDtype: "bfloat16" });
    }
  }
});

test("multi-threaded shapes spanning several MC / KC blocks, with beta accumulating across K blocks", () => {
  for (const dtype of ["float32", "bfloat16"] as const) {
    for (const [transA, transB] of TRANSPOSES) {
      check({ dtype, m: 300, n: 70, k: 600, transA, transB, alpha: 0.75, beta: 0.5, padC: 3, seed: 7 });
    }
    check({ dtype, cDtype: "bfloat16", m: 77, n: 300, k: 1030, transB: true, beta: -1, padA: 1 });
    // More than one NC column block (n > 4096) with K blocks, float32 and bfloat16 outputs.
    check({ dtype, cDtype: dtype, m: 45, n: 4100, k: 260, beta: 0.5, transB: dtype === "bfloat16" });
  }
});

test("batched with batch strides, broadcast stride 0 for A or B", () => {
  for (const dtype of ["float32", "bfloat16"] as const) {
    for (const batch of [2, 3, 5]) {
      check({ dtype, batch, m: 19, n: 37, k: 29, transB: true, offsetA: 1, offsetB: 3, offsetC: 2 });
      check({ dtype, batch, m: 64, n: 90, k: 70, broadcastB: true, beta: 1 });
      check({ dtype, batch, m: 21, n: 130, k: 50, broadcastA: true, transA: true, cDtype: "bfloat16" });
      check({ dtype, batch, m: 70, n: 40, k: 33, interleaveC: true, beta: 0.5 }); // e.g. heads written into [T, H, D]
    }
  }
});

test("alpha and beta: beta = 0 ignores NaN in C, k = 0 scales C, alpha = 0", () => {
  for (const dtype of ["float32", "bfloat16"] as const) {
    for (const cDtype of ["float32", "bfloat16"] as const) {
      check({ dtype, cDtype, m: 45, n: 70, k: 300, beta: 0, cInit: "nan", alpha: -2 });
      check({ dtype, cDtype, m: 20, n: 33, k: 9, beta: 0, cInit: "nan", padC: 4 });
      check({ dtype, cDtype, m: 30, n: 40, k: 20, alpha: 0.5, beta: -1.5 });
      check({ dtype, cDtype, m: 6, n: 9, k: 0, beta: 2 });
      check({ dtype, cDtype, m: 6, n: 9, k: 0, beta: 0, cInit: "nan" });
      check({ dtype, cDtype, m: 6, n: 9, k: 4, alpha: 0, beta: 3 });
    }
  }
});

test("every ISA path this CPU supports gives the same results", () => {
  for (const isa of availableIsas) {
    withIsa(isa, () => {
      assert.equal(addon.gemmIsa(), isa);
      for (const dtype of ["float32", "bfloat16"] as const) {
        for (const [transA, transB] of TRANSPOSES) {
          check({ dtype, m: 37, n: 53, k: 41, transA, transB, padA: 2, padB: 3, offsetC: 1, beta: 0.5 });
        }
        check({ dtype, cDtype: "bfloat16", batch: 3, m: 150, n: 61, k: 530, broadcastB: true, transB: true });
        check({ dtype, m: 7, n: 4865, k: 3, transA: true });
        check({ dtype, m: 9, n: 5, k: 17, beta: 0, cInit: "nan" });
      }
    });
  }
});

test("AMX bf16 kernel: tile and depth-block edges, every transpose, K blocks accumulating, bf16 output", (t) => {
  if (nativeIsa !== "amx") {
    t.skip("this CPU (or kernel) offers no AMX-BF16");
    return;
  }
  assert.match((addon.gemmKernel(1) as { name: string }).name, /^amx/);
  // The fp32 path never uses tiles.
  assert.doesNotMatch((addon.gemmKernel(0) as { name: string }).name, /amx/);
  // Sizes on both sides of the 16-row / 16-column tile, the 32 x 32 microtile and the 32-deep block.
  const shapes: [number, number, number][] = [
    [15, 17, 31],
    [16, 32, 32],
    [17, 33, 33],
    [31, 47, 63],
    [33, 65, 95],
    [64, 64, 64],
    [1, 33, 65],
    [65, 1, 7],
    [47, 31, 1],
  ];
  for (const [m, n, k] of shapes)
    for (const [transA, transB] of TRANSPOSES) check({ dtype: "bfloat16", m, n, k, transA, transB, padA: 1, padC: 3, seed: m * n + k });
  // Several 1024-deep K blocks (the later ones accumulate into C), several row chunks shared by the
  // threads, general alpha / beta, and a bf16 C.
  for (const [transA, transB] of TRANSPOSES) {
    check({ dtype: "bfloat16", m: 200, n: 70, k: 2100, transA, transB, alpha: 0.75, beta: 0.5, seed: 3 });
    check({ dtype: "bfloat16", cDtype: "bfloat16", m: 130, n: 45, k: 1100, transA, transB, beta: 1, seed: 4 });
  }
  check({ dtype: "bfloat16", m: 70, n: 50, k: 1030, beta: 1, alpha: 1, cInit: "random" }); // C += A B in place
  // A read in place by the tiles (not transposed, k a multiple of 32, alpha = 1, beta 0 or 1): three
  // whole 32-row panels and a 4-row packed tail, an edge column tile, K blocks, a padded lda, both B
  // layouts, float32 and bf16 C.
  for (const transB of [false, true]) {
    check({ dtype: "bfloat16", m: 100, n: 70, k: 2112, transB, padA: 32, beta: 1, seed: 5 });
    check({ dtype: "bfloat16", cDtype: "bfloat16", m: 100, n: 70, k: 2112, transB, padA: 3, seed: 6 });
    check({ dtype: "bfloat16", batch: 2, m: 500, n: 40, k: 64, transB, padC: 1, seed: 7 });
    // Several 256-column blocks (the last one partial) taken by the threads, K blocks of 512 accumulating.
    check({ dtype: "bfloat16", cDtype: "bfloat16", batch: 2, m: 40, n: 600, k: 1056, transB, beta: 1, seed: 8 });
  }
  check({ dtype: "bfloat16", batch: 3, m: 40, n: 33, k: 70, broadcastB: true, transB: true, beta: 0, cInit: "nan" });
});

test("AMX bf16 X W^T with few rows of X (run as C^T = W X^T, W read in place): edges, K slices, batches, bf16 C", (t) => {
  if (nativeIsa !== "amx") {
    t.skip("this CPU (or kernel) offers no AMX-BF16");
    return;
  }
  // transB, bf16, k a multiple of 32, m <= 512, 2m <= n, over 2 MFLOP: the transposed path. Rows of W past the
  // last whole 32 (n % 32), columns of C past the last whole tile (m % 32), padded leading dimensions
  // (W's rows in place at a stride that is not 64-byte aligned), several K slices (k = 2112 with m = 300
  // packs X in slices of 864), alpha / beta merging into C, a NaN-filled C with beta = 0, a bf16 C.
  check({ dtype: "bfloat16", m: 37, n: 200, k: 160, transB: true, padA: 3, padB: 5, padC: 2, seed: 11 });
  check({ dtype: "bfloat16", m: 5, n: 1000, k: 256, transB: true, seed: 12 });
  check({ dtype: "bfloat16", m: 300, n: 650, k: 2112, transB: true, alpha: 0.5, beta: 0.25, seed: 13 });
  check({ dtype: "bfloat16", cDtype: "bfloat16", m: 64, n: 1030, k: 96, transB: true, beta: 1, seed: 14 });
  check({ dtype: "bfloat16", cDtype: "bfloat16", m: 33, n: 300, k: 160, transB: true, cInit: "nan", seed: 15 });
  check({ dtype: "bfloat16", batch: 3, m: 20, n: 200, k: 256, transB: true, broadcastB: true, interleaveC: true, seed: 16 });
  check({ dtype: "bfloat16", batch: 2, m: 45, n: 128, k: 128, transB: true, offsetA: 7, offsetB: 3, offsetC: 5, seed: 17 });
});

test("bf16 GEMM on AMX / vdpbf16ps stays within bf16 rounding of the fp32 GEMM", () => {
  // fp32 operands, the fp32 kernel's product; the same operands rounded to bf16 through the bf16
  // kernel must differ by no more than the inputs' rounding (bf16's unit roundoff is 2^-8, so each
  // product is off by at most (1 + 2^-8)^2 - 1 relative) plus both sides' fp32 summation error
  // (k * 2^-24 relative, each).
  const toBf16 = (x: number): number => {
    f32[0] = x;
    const bits = u32[0]!;
    return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
  };
  const shapes: [number, number, number][] = [
    [1, 4865, 7],
    [7, 1, 4865],
    [33, 4865, 1],
    [4865, 7, 33],
    [37, 45, 1029],
  ];
  const bf16Isas = availableIsas.filter((isa) => isa === "avx512bf16" || isa === "amx");
  for (const [m, n, k] of shapes) {
    for (const [transA, transB] of TRANSPOSES) {
      const next = rng(m + 3 * n + 7 * k + (transA ? 1 : 0) + (transB ? 2 : 0));
      const a = Float32Array.from({ length: m * k }, () => next() * 2 - 1);
      const b = Float32Array.from({ length: k * n }, () => next() * 2 - 1);
      const args: GemmArgs = {
        batch: 1, m, n, k, transA, transB, lda: transA ? m : k, ldb: transB ? k : n, ldc: n,
        offsetA: 0, offsetB: 0, offsetC: 0, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 0,
      };
      const want = new Float32Array(m * n);
      nativeGemm(addon, a, b, want, "float32", "float32", args);
      // Sum of |a| |b| per output element (the error bound's scale), from the fp32 kernel too.
      const mag = new Float32Array(m * n);
      nativeGemm(addon, a.map(Math.abs), b.map(Math.abs), mag, "float32", "float32", args);
      const ah = Uint16Array.from(a, toBf16);
      const bh = Uint16Array.from(b, toBf16);
      for (const isa of bf16Isas) {
        withIsa(isa, () => {
          const got = new Float32Array(m * n);
          nativeGemm(addon, ah, bh, got, "bfloat16", "float32", args);
          for (let i = 0; i < m * n; i++) {
            const tol = mag[i]! * (2 ** -7 + 2 ** -16 + 2 * k * 2 ** -24) + 1e-6;
            if (!(Math.abs(got[i]! - want[i]!) <= tol))
              assert.fail(`${isa} ${m}x${n}x${k} transA=${transA} transB=${transB}: C[${i}] = ${got[i]}, fp32 ${want[i]} (tol ${tol})`);
          }
        });
      }
    }
  }
});

test("GRAFT_ISA caps the level in a fresh process: avx512 turns off every bf16 kernel, avx512bf16 AMX", (t) => {
  if (nativeIsa !== "amx" && nativeIsa !== "avx512bf16") {
    t.skip("the CPU has no bf16 instructions to turn off");
    return;
  }
  const addonModule = fileURLToPath(new URL("../../src/backend/native/addon.ts", import.meta.url));
  const probe = (isa: string): { level: string; bf16: string } => {
    const code =
      `import { loadAddon } from ${JSON.stringify(addonModule)};` +
      `const a = loadAddon(); console.log(JSON.stringify({ level: a.gemmIsa(), bf16: a.gemmKernel(1).name }));`;
    const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
      env: { ...process.env, GRAFT_ISA: isa },
      encoding: "utf8",
    });
    return JSON.parse(out.trim().split("\n").pop()!) as { level: string; bf16: string };
  };
  const off = probe("avx512");
  assert.equal(off.level, "avx512");
  assert.match(off.bf16, /bf16->f32/); // bf16 converted to fp32 while packing
  const noAmx = probe("avx512bf16");
  assert.equal(noAmx.level, "avx512bf16");
  assert.match(noAmx.bf16, /^avx512bf16/);
});

test("peakFlops reports a positive rate where the ISA has FMA", () => {
  if (nativeIsa === "generic") return;
  assert.ok((addon.peakFlops(0.02) as number) > 0);
  const bf16 = addon.peakFlopsBf16(0.02) as number;
  assert.ok(nativeIsa === "avx512bf16" || nativeIsa === "amx" ? bf16 > 0 : bf16 === 0);
});

test("out-of-bounds and malformed arguments throw errors naming gemm", () => {
  const base: GemmArgs = {
    batch: 1, m: 4, n: 5, k: 6, transA: false, transB: false, lda: 6, ldb: 5, ldc: 5,
    offsetA: 0, offsetB: 0, offsetC: 0, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 0,
  };
  const a = new Float32Array(24), b = new Float32Array(30), c = new Float32Array(20);
  nativeGemm(addon, a, b, c, "float32", "float32", base); // in bounds
  const bad: [Partial<GemmArgs>, RegExp][] = [
    [{ offsetA: 1 }, /gemm.*A/],
    [{ offsetB: 1 }, /gemm.*B/],
    [{ offsetC: 1 }, /gemm.*C/],
    [{ lda: 7 }, /gemm.*A/],
    [{ transA: true }, /gemm.*A/], // stored [6, 4] with lda 6 needs 34 elements
    [{ transB: true, ldb: 7 }, /gemm.*B/], // stored [5, 6] with ldb 7 needs 34
    [{ ldc: 4 }, /gemm.*C/],
    [{ batch: 2, strideA: 0, strideB: 0, strideC: 20 }, /gemm.*C/],
    [{ batch: 2, strideA: 24, strideC: 0 }, /gemm/],
    [{ batch: 2, ldc: 10, strideC: 0 }, /gemm.*C.*batch stride/], // two outputs on the same elements
    [{ m: -1 }, /gemm/],
    [{ strideA: -1 }, /gemm/],
  ];
  for (const [patch, re] of bad) {
    assert.throws(() => nativeGemm(addon, a, b, c, "float32", "float32", { ...base, ...patch }), re, JSON.stringify(patch));
  }
  // Typed array kinds must match the dtypes.
  assert.throws(() => nativeGemm(addon, a, b, c, "bfloat16", "float32", base), /gemm/);
  assert.throws(() => nativeGemm(addon, a, b, new Uint16Array(20), "float32", "float32", base), /gemm/);
  assert.throws(() => addon.gemm(a, b, c, 2, 0, 1, 4, 5, 6, false, false, 6, 5, 5, 0, 0, 0, 0, 0, 0, 1, 0), /gemm/);
  assert.throws(() => nativeGemm(addon, a, b, c, "float64", "float32", base), /gemm/);
  // Nothing was written by the failed calls.
  assert.ok(c.every((x) => x === 0));
});
