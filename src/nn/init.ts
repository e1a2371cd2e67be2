/** Parameter initialisers (in place, no autograd), with torch's fan computations and gains. */
import { ShapeError, fmtShape } from "../core/errors.ts";
import { type Generator, defaultGenerator } from "../core/rng.ts";
import { Tensor, noGrad, rand, randn } from "../tensor/index.ts";

export type Nonlinearity = "linear" | "sigmoid" | "tanh" | "relu" | "leaky_relu";

export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case "linear":
    case "sigmoid":
      return 1;
    case "tanh":
      return 5 / 3;
    case "relu":
      return Math.SQRT2;
    case "leaky_relu": {
      const slope = param ?? 0.01;
      return Math.sqrt(2 / (1 + slope * slope));
    }
  }
}

/** fan_in, fan_out of a weight [out, in, ...receptive]. */
export function fans(t: Tensor): [number, number] {
  if (t.ndim < 2) throw new ShapeError("init", `fan in and fan out need at least 2 dims, got ${fmtShape(t.shape)}`);
  const receptive = t.shape.slice(2).reduce((a, b) => a * b, 1);
  return [t.shape[1]! * receptive, t.shape[0]! * receptive];
}

export function uniform_(t: Tensor, low = 0, high = 1, generator: Generator = defaultGenerator): Tensor {
  noGrad(() => t.copy_(rand(t.shape, { low, high, generator, dtype: "float32" })));
  return t;
}

export function normal_(t: Tensor, mean = 0, std = 1, generator: Generator = defaultGenerator): Tensor {
  noGrad(() => t.copy_(randn(t.shape, { mean, std, generator, dtype: "float32" })));
  return t;
}

export function constant_(t: Tensor, value: number): Tensor {
  noGrad(() => t.fill_(value));
  return t;
}

export const zeros_ = (t: Tensor) => constant_(t, 0);
export const ones_ = (t: Tensor) => constant_(t, 1);

export interface KaimingOptions {
  a?: number;
  mode?: "fan_in" | "fan_out";
  nonlinearity?: Nonlinearity;
  generator?: Generator;
}

/** He uniform: bound = gain * sqrt(3 / fan). With a = sqrt(5) this is nn.Linear's default init. */
export function kaimingUniform_(t: Tensor, opts: KaimingOptions = {}): Tensor {
  const [fanIn, fanOut] = fans(t);
  const gain = calculateGain(opts.nonlinearity ?? "leaky_relu", opts.a ?? 0);
  const bound = gain * Math.sqrt(3 / (opts.mode === "fan_out" ? fanOut : fanIn));
  return uniform_(t, -bound, bound, opts.generator);
}

export function kaimingNormal_(t: Tensor, opts: KaimingOptions = {}): Tensor {
  const [fanIn, fanOut] = fans(t);
  const gain = calculateGain(opts.nonlinearity ?? "leaky_relu", opts.a ?? 0);
  return normal_(t, 0, gain / Math.sqrt(opts.mode === "fan_out" ? fanOut : fanIn), opts.generator);
}

export function xavierUniform_(t: Tensor, gain = 1, generator?: Generator): Tensor {
  const [fanIn, fanOut] = fans(t);
  const bound = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform_(t, -bound, bound, generator);
}

export function xavierNormal_(t: Tensor, gain = 1, generator?: Generator): Tensor {
  const [fanIn, fanOut] = fans(t);
  return normal_(t, 0, gain * Math.sqrt(2 / (fanIn + fanOut)), generator);
}
