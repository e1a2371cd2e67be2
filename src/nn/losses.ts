/** Loss functions and modules with torch's reductions ("mean" | "sum" | "none"). */
import { ShapeError, fmtShape } from "../core/errors.ts";
import { sameShape } from "../core/shape.ts";
import * as T from "../tensor/index.ts";
import type { Tensor } from "../tensor/index.ts";

export type Reduction = "mean" | "sum" | "none";

function reduce(x: Tensor, reduction: Reduction): Tensor {
  return reduction === "mean" ? x.mean() : reduction === "sum" ? x.sum() : x;
}

function sameShapes(op: string, input: Tensor, target: Tensor): void {
  if (!sameShape(input.shape, target.shape)) {
    throw new ShapeError(op, `input ${fmtShape(input.shape)} and target ${fmtShape(target.shape)} must have the same shape`);
  }
}

export function mseLoss(input: Tensor, target: Tensor, reduction: Reduction = "mean"): Tensor {
  sameShapes("mseLoss", input, target);
  return reduce(T.square(T.sub(input, target)), reduction);
}

/** Binary cross-entropy on probabilities; logs are clamped at -100 as torch does. */
export function bceLoss(input: Tensor, target: Tensor, reduction: Reduction = "mean", weight?: Tensor): Tensor {
  sameShapes("bceLoss", input, target);
  const logP = T.maximum(T.log(input), -100);
  const log1mP = T.maximum(T.log(T.sub(1, input)), -100);
  let l = T.neg(T.add(T.mul(target, logP), T.mul(T.sub(1, target), log1mP)));
  if (weight) l = T.mul(l, weight);
  return reduce(l, reduction);
}

/** Numerically stable BCE on logits: max(x, 0) - x*y + log(1 + exp(-|x|)), with optional posWeight. */
export function bceWithLogitsLoss(input: Tensor, target: Tensor, reduction: Reduction = "mean", posWeight?: Tensor): Tensor {
  sameShapes("bceWithLogitsLoss", input, target);
  const softplusNeg = T.add(T.relu(T.neg(input)), T.log(T.add(T.exp(T.neg(T.abs(input))), 1))); // log(1 + e^-x)
  let l: Tensor;
  if (posWeight) {
    const lw = T.add(T.mul(T.sub(posWeight, 1), target), 1);
    l = T.add(T.mul(T.sub(1, target), input), T.mul(lw, softplusNeg));
  } else {
    l = T.add(T.mul(T.sub(1, target), input), softplusNeg);
  }
  return reduce(l, reduction);
}

export interface CrossEntropyLossOptions {
  ignoreIndex?: number;
  labelSmoothing?: number;
  reduction?: Reduction;
}

/**
 * Cross-entropy of logits [N, C] (or [..., C]) against class ids; a class dim other than the last is
 * not supported. Mean is over non-ignored targets.
 */
export function crossEntropyLoss(input: Tensor, target: Tensor, opts: CrossEntropyLossOptions = {}): Tensor {
  return T.crossEntropy(input, target, opts);
}

export class MSELoss {
  constructor(readonly reduction: Reduction = "mean") {}
  forward(input: Tensor, target: Tensor): Tensor {
    return mseLoss(input, target, this.reduction);
  }
}

export class BCELoss {
  constructor(readonly reduction: Reduction = "mean") {}
  forward(input: Tensor, target: Tensor): Tensor {
    return bceLoss(input, target, this.reduction);
  }
}

export class BCEWithLogitsLoss {
  constructor(
    readonly reduction: Reduction = "mean",
    readonly posWeight?: Tensor,
  ) {}
  forward(input: Tensor, target: Tensor): Tensor {
    return bceWithLogitsLoss(input, target, this.reduction, this.posWeight);
  }
}

export class CrossEntropyLoss {
  constructor(readonly opts: CrossEntropyLossOptions = {}) {}
  forward(input: Tensor, target: Tensor): Tensor {
    return crossEntropyLoss(input, target, this.opts);
  }
}
