/**
 * A multi-layer bidirectional LSTM over one sequence (torch.nn.LSTM with bidirectional=True,
 * batch_first, for a batch of one): parameters weight_ih_l{k}[_reverse] [4H, in],
 * weight_hh_l{k}[_reverse] [4H, H], bias_ih / bias_hh [4H], gates i, f, g, o; init U(-1/√H, 1/√H).
 */
import type { Generator } from "../../core/rng.ts";
import { Module, dropout, init } from "../../nn/index.ts";
import * as T from "../../tensor/index.ts";
import type { Tensor } from "../../tensor/index.ts";

export class BiLSTM extends Module {
  constructor(
    readonly inputSize: number,
    readonly hiddenSize: number,
    readonly numLayers: number,
    readonly dropoutP: number,
    private readonly generator: Generator,
  ) {
    super();
    const bound = 1 / Math.sqrt(hiddenSize);
    for (let k = 0; k < numLayers; k++) {
      const inp = k === 0 ? inputSize : 2 * hiddenSize;
      for (const sfx of ["", "_reverse"]) {
        const u = (shape: number[]) => init.uniform_(T.zeros(shape), -bound, bound, generator);
        this.param(`weight_ih_l${k}${sfx}`, u([4 * hiddenSize, inp]));
        this.param(`weight_hh_l${k}${sfx}`, u([4 * hiddenSize, hiddenSize]));
        this.param(`bias_ih_l${k}${sfx}`, u([4 * hiddenSize]));
        this.param(`bias_hh_l${k}${sfx}`, u([4 * hiddenSize]));
      }
    }
  }

  /** x [S, in] → [S, 2H] (forward and backward hidden states, concatenated). */
  forward(x: Tensor): Tensor {
    let h = x;
    for (let k = 0; k < this.numLayers; k++) {
      if (k > 0) h = dropout(h, this.dropoutP, this.training, this.generator);
      h = T.cat([this.direction(h, k, ""), this.direction(h, k, "_reverse")], 1);
    }
    return h;
  }

  private direction(x: Tensor, k: number, sfx: string): Tensor {
    const H = this.hiddenSize;
    const S = x.shape[0]!;
    const p = (n: string) => this.getParameter(`${n}_l${k}${sfx}`)!;
    const xw = T.add(T.add(T.matmul(x, p("weight_ih").T), p("bias_ih")), p("bias_hh"));
    const whh = p("weight_hh").T;
    let h = T.zeros([1, H]);
    let c = T.zeros([1, H]);
    const out: Tensor[] = new Array<Tensor>(S);
    const order = sfx ? [...Array(S).keys()].reverse() : [...Array(S).keys()];
    for (const t of order) {
      const g = T.add(xw.slice(0, t, t + 1), T.matmul(h, whh));
      const i = T.sigmoid(g.slice(1, 0, H));
      const f = T.sigmoid(g.slice(1, H, 2 * H));
      const gg = T.tanh(g.slice(1, 2 * H, 3 * H));
      const o = T.sigmoid(g.slice(1, 3 * H, 4 * H));
      c = T.add(T.mul(f, c), T.mul(i, gg));
      h = T.mul(o, T.tanh(c));
      out[t] = h;
    }
    return T.cat(out, 0);
  }
}
