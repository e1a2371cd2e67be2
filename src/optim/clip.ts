/** Gradient clipping by global L2 norm (torch.nn.utils.clip_grad_norm_). */
import { type Tensor, noGrad } from "../tensor/index.ts";

/** Scales all gradients so their global norm is at most maxNorm; returns the norm before clipping. */
export function clipGradNorm(params: Tensor[], maxNorm: number, eps = 1e-6): number {
  const withGrad = params.filter((p) => p.grad);
  let sq = 0;
  for (const p of withGrad) {
    const g = p.grad!.to("float32").data();
    for (let i = 0; i < g.length; i++) sq += (g[i] as number) * (g[i] as number);
  }
  const norm = Math.sqrt(sq);
  const coef = maxNorm / (norm + eps);
  if (coef < 1) noGrad(() => withGrad.forEach((p) => p.grad!.mul_(coef)));
  return norm;
}
