/**
 * bfloat16 logits for the loss: `forward(ids, { upcastLogits: false })` of a bf16 causal LM returns the
 * lm_head's bf16 logits (the default stays float32, exactly their upcast), and causalLMLoss /
 * maskedLMLoss read bf16 logits directly: loss and every parameter gradient are bit-identical to the
 * float32-logits route, on every backend, for qwen2 and gpt2.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import "../../src/backend/index.ts";
import { setDefaultBackend } from "../../src/backend/registry.ts";
import { availableBackends } from "../helpers/backends.ts";
import { Generator } from "../../src/core/rng.ts";
import { type CausalLM, causalLMLoss, createModel, maskedLMLoss } from "../../src/models/index.ts";
import * as T from "../../src/tensor/index.ts";

const backends = availableBackends();

const CONFIGS = {
  qwen2: {
    model_type: "qwen2",
    vocab_size: 300,
    hidden_size: 16,
    intermediate_size: 32,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    max_position_embeddings: 64,
    tie_word_embeddings: true,
  },
  gpt2: { model_type: "gpt2", vocab_size: 300, n_embd: 32, n_layer: 2, n_head: 2, n_positions: 64 },
};

/** Loss and parameter gradients of one forward + backward. */
function lossAndGrads(model: CausalLM, ids: T.Tensor, labels: T.Tensor, upcastLogits: boolean, loss = causalLMLoss) {
  for (const p of model.parameters()) p.grad = null;
  const logits = model.forward(ids, { upcastLogits });
  const l = loss(logits, labels);
  l.backward();
  const grads = new Map<string, number[]>();
  for (const [name, p] of model.namedParameters()) grads.set(name, p.grad ? p.grad.toArray() : []);
  return { logits, loss: l.item(), grads };
}

for (const name of backends) {
  for (const [arch, config] of Object.entries(CONFIGS)) {
    test(`${name}: ${arch} bf16 logits (upcastLogits: false) give the float32 route's loss and gradients exactly`, () => {
      setDefaultBackend(name);
      const model = createModel(config, { seed: 7, dtype: "bfloat16" }) as CausalLM;
      model.eval(); // no dropout: both routes see the same forward
      const ids = T.randint(0, config.vocab_size, [2, 12], { generator: new Generator(5), dtype: "int32" });
      const labels = T.tensor(
        ids.toArray().map((id, i) => (i % 5 === 3 ? -100 : id)),
        { dtype: "int32" },
      ).reshape([2, 12]);
      for (const loss of [causalLMLoss, maskedLMLoss]) {
        const up = lossAndGrads(model, ids, labels, true, loss);
        const bf = lossAndGrads(model, ids, labels, false, loss);
        assert.equal(up.logits.dtype, "float32");
        assert.equal(bf.logits.dtype, "bfloat16");
        assert.deepEqual(bf.logits.shape, [2, 12, config.vocab_size]);
        assert.deepEqual(bf.logits.to("float32").toArray(), up.logits.toArray(), "float32 logits are the exact upcast");
        assert.ok(Number.isFinite(up.loss) && up.loss > 0);
        assert.equal(bf.loss, up.loss, `${loss.name}: loss`);
        let nonZero = 0;
        for (const [p, g] of up.grads) {
          assert.deepEqual(bf.grads.get(p), g, `${loss.name}: gradient of ${p}`);
          if (g.some((x) => x !== 0)) nonZero++;
        }
        assert.ok(nonZero > 10, "gradients reach the parameters");
      }
      // The default forward is unchanged: float32 logits.
      assert.equal(model.forward(ids).dtype, "float32");
    });
  }
}

test("float32 models ignore upcastLogits: false (logits are float32 either way)", () => {
  const model = createModel(CONFIGS.qwen2, { seed: 7 }) as CausalLM;
  const ids = T.tensor([[1, 2, 3]], { dtype: "int32" });
  assert.equal(model.forward(ids, { upcastLogits: false }).dtype, "float32");
});
