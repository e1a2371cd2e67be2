/**
 * Backend-parameterised test helpers: run one test body on several backends with identical seeded
 * inputs and compare what each wrote against the reference backend's results.
 */
import assert from "node:assert/strict";
import { type DType, type Storage, bf16ToF32, f32ToBf16 } from "../../src/core/dtype.ts";
import type { Backend, View } from "../../src/backend/Backend.ts";
import { Generator } from "../../src/core/rng.ts";
import { getBackend, listBackends } from "../../src/backend/registry.ts";

/** The registered backends that load here (native is absent when the add-on is not built). */
export function availableBackends(): string[] {
  return listBackends().filter((name) => {
    try {
      getBackend(name);
      return true;
    } catch {
      return false;
    }
  });
}

export interface Tolerance {
  rtol: number;
  atol: number;
}

/** Default tolerances: float32 kernels vs the float64 reference, and one bfloat16 rounding step. */
export function tolFor(dtype: DType, scale = 1): Tolerance {
  if (dtype === "bfloat16") return { rtol: 1.6e-2 * scale, atol: 1e-2 * scale };
  return { rtol: 1e-5 * scale, atol: 1e-6 * scale };
}

/** Storage of `dtype` holding f(i) (or seeded standard normals), bf16 rounded. */
export function randStorage(dtype: DType, n: number, g: Generator, f: (x: number) => number = (x) => x): Storage {
  const vals = Array.from({ length: n }, () => f(g.normal()));
  return fromValues(dtype, vals);
}

export function fromValues(dtype: DType, vals: ArrayLike<number>): Storage {
  const n = vals.length;
  switch (dtype) {
    case "float32":
      return Float32Array.from(vals);
    case "float64":
      return Float64Array.from(vals);
    case "bfloat16":
      return Uint16Array.from({ length: n }, (_, i) => f32ToBf16(vals[i]!));
    case "int32":
      return Int32Array.from({ length: n }, (_, i) => Math.trunc(vals[i]!));
    case "int64":
      return BigInt64Array.from({ length: n }, (_, i) => BigInt(Math.trunc(vals[i]!)));
  }
}

export function toNumbers(s: Storage): number[] {
  if (s instanceof Uint16Array) return Array.from(s, (b) => bf16ToF32(b));
  if (s instanceof BigInt64Array) return Array.from(s, (b) => Number(b));
  return Array.from(s as ArrayLike<number>);
}

/** Asserts |actual - expected| <= atol + rtol * |expected| elementwise (NaN and infinities must match). */
export function assertClose(name: string, actual: Storage, expected: Storage, tol: Tolerance): void {
  assert.equal(actual.constructor.name, expected.constructor.name, `${name}: storage type`);
  assert.equal(actual.length, expected.length, `${name}: length`);
  const a = toNumbers(actual);
  const e = toNumbers(expected);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = e[i]!;
    if (x === y || (Number.isNaN(x) && Number.isNaN(y))) continue;
    const excess = Math.abs(x - y) - (tol.atol + tol.rtol * Math.abs(y));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    assert.fail(`${name}: element ${worst} is ${a[worst]}, expected ${e[worst]} (rtol ${tol.rtol}, atol ${tol.atol})`);
  }
}

/** A View over `data` (contiguous strides unless given). */
export function makeView(data: Storage, dtype: DType, shape: number[], strides?: number[], offset = 0): View {
  const st = strides ?? contiguous(shape);
  return { data, dtype, shape, strides: st, offset };
}

export function contiguous(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/** Outputs a test body wrote, by name. */
export type Outputs = Record<string, Storage>;

/**
 * Runs `body` once per backend; each run builds its inputs from a fresh Generator(seed), so every
 * backend sees the same numbers. Returns the outputs of every run, the reference's first.
 */
export function runOnBackends(backends: Backend[], seed: number, body: (be: Backend, g: Generator) => Outputs): Outputs[] {
  return backends.map((be) => body(be, new Generator(seed)));
}

/** Runs `body` on `reference` and `candidate` and compares every output of the candidate to the reference's. */
export function compareBackends(
  reference: Backend,
  candidate: Backend,
  name: string,
  seed: number,
  tol: Tolerance | ((output: string) => Tolerance),
  body: (be: Backend, g: Generator) => Outputs,
): void {
  const [want, got] = runOnBackends([reference, candidate], seed, body);
  for (const key of Object.keys(want!)) {
    assertClose(`${candidate.name} ${name} ${key}`, got![key]!, want![key]!, typeof tol === "function" ? tol(key) : tol);
  }
}
