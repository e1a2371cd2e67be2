/**
 * Rotary embeddings for decoder models, HF `rotate_half` layout. Unscaled RoPE runs the fused
 * `rope` kernel; `rope_scaling` of type "linear" or "llama3" (Llama 3.1+) changes the inverse
 * frequencies, which the kernel does not take, so those run as cos/sin products over tensor ops.
 */
import { ModelError } from "./types.ts";
import * as T from "../tensor/index.ts";
import type { Tensor } from "../tensor/index.ts";

/** config.json `rope_scaling`, verbatim. */
export interface RopeScaling {
  rope_type?: string;
  type?: string;
  factor?: number;
  low_freq_factor?: number;
  high_freq_factor?: number;
  original_max_position_embeddings?: number;
}

export interface RopeConfig {
  headDim: number;
  theta: number;
  scaling?: RopeScaling | null;
}

/** The inverse frequencies theta^(-2i/D), adjusted for rope_scaling (HF rope_init_fn). Null when unscaled. */
export function scaledInvFreq(cfg: RopeConfig): Float64Array | null {
  const kind = cfg.scaling?.rope_type ?? cfg.scaling?.type ?? "default";
  if (kind === "default") return null;
  const half = cfg.headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(cfg.theta, (2 * i) / cfg.headDim);
  const s = cfg.scaling!;
  const factor = s.factor ?? 1;
  if (kind === "linear") return inv.map((f) => f / factor);
  if (kind === "llama3") {
    const low = s.low_freq_factor ?? 1;
    const high = s.high_freq_factor ?? 4;
    const oldLen = s.original_max_position_embeddings ?? 8192;
    const lowWavelen = oldLen / low;
    const highWavelen = oldLen / high;
    return inv.map((f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highWavelen) return f;
      if (wavelen > lowWavelen) return f / factor;
      const smooth = (oldLen / wavelen - low) / (high - low);
      return (1 - smooth) * (f / factor) + smooth * f;
    });
  }
  throw new ModelError(`rope_scaling type "${kind}" is not supported (supported: default, linear, llama3)`);
}

/** Applies RoPE to x [B, T, H, D] at int32 positions [B, T]. */
export function applyRope(x: Tensor, positions: Tensor, cfg: RopeConfig, invFreq: Float64Array | null): Tensor {
  if (!invFreq) return T.rope(x, positions, { theta: cfg.theta });
  const [B, Tn, , D] = x.shape as [number, number, number, number];
  const half = D / 2;
  const pos = positions.to("int32").data() as Int32Array;
  const cos = new Float32Array(B * Tn * half);
  const sin = new Float32Array(B * Tn * half);
  for (let bt = 0; bt < B * Tn; bt++) {
    for (let i = 0; i < half; i++) {
      const a = pos[bt]! * invFreq[i]!;
      cos[bt * half + i] = Math.cos(a);
      sin[bt * half + i] = Math.sin(a);
    }
  }
  const c = T.fromArray(cos, [B, Tn, 1, half]).to(x.dtype);
  const s = T.fromArray(sin, [B, Tn, 1, half]).to(x.dtype);
  const x1 = x.slice(-1, 0, half);
  const x2 = x.slice(-1, half, D);
  return T.cat([T.sub(T.mul(x1, c), T.mul(x2, s)), T.add(T.mul(x2, c), T.mul(x1, s))], -1);
}
