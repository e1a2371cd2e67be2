/** The package entry point: the namespaces a user imports from "graft" work together. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Generator, data, models, nn, noGrad, optim, peft, tensor } from "../../src/index.ts";

test('import { tensor, nn, optim, data } from "graft": a linear fit through the DataLoader converges', () => {
  const g = new Generator(3);
  const x = tensor.randn([64, 3], { generator: g });
  const wTrue = tensor.tensor([[1.5], [-2], [0.5]]);
  const y = x.matmul(wTrue).add(0.25);
  const model = new nn.Linear(3, 1, { generator: g });
  const opt = new optim.SGD(model.parameters(), { lr: 0.1 });
  const loader = new data.DataLoader(new data.TensorDataset(x, y), { batchSize: 16, shuffle: true, seed: 1 });
  const mse = new nn.MSELoss();
  for (let epoch = 0; epoch < 60; epoch++) {
    for (const [xb, yb] of loader as Iterable<[tensor.Tensor, tensor.Tensor]>) {
      opt.zeroGrad();
      mse.forward(model.forward(xb), yb).backward();
      opt.step();
    }
  }
  const w = model.weight.toArray();
  assert.ok(Math.abs(w[0]! - 1.5) < 1e-3 && Math.abs(w[1]! + 2) < 1e-3 && Math.abs(w[2]! - 0.5) < 1e-3, JSON.stringify(w));
  assert.ok(Math.abs(model.bias!.item() - 0.25) < 1e-3);
});

test('import { models, peft } from "graft": LoRA on a tiny Qwen2 starts as the identity and trains only its adapter', () => {
  const base = models.createModel(
    { model_type: "qwen2", vocab_size: 64, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1 },
    { seed: 7 },
  ) as models.CausalLM;
  const ids = tensor.tensor([[1, 5, 9, 3]], { dtype: "int32" });
  const before = noGrad(() => base.forward(ids)).toArray();
  const lora = peft.applyPeft(base, "lora", { r: 4, lora_alpha: 8 });
  assert.deepEqual(noGrad(() => lora.forward(ids)).toArray(), before);
  // Default targets q_proj [16 → 16] and v_proj [16 → 8] in 2 layers: r·(in + out) each.
  assert.equal(lora.trainableParameters().reduce((n, p) => n + p.numel, 0), 2 * (4 * (16 + 16) + 4 * (16 + 8)));
  for (const m of ["lora", "qlora", "adalora", "ia3", "prompt", "ptuning", "prefix", "adapter"]) assert.doesNotThrow(() => peft.peftMethod(m), m);
  assert.equal(peft.peftMethod("prefix").name, "prefix-tuning");
});
