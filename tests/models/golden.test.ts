/**
 * Golden tests against PyTorch (as llm.c's test_gpt2.c): tests/fixtures/golden/<arch>/ holds tiny
 * models written by scripts/golden/make_fixtures.py (plain-PyTorch re-implementations of HF's
 * modeling_qwen2/llama/gpt2/bert) with HF key names and layouts, their inputs, logits, loss and
 * the gradient of the loss w.r.t. every weight. Here graft loads each with loadModel (strict, through
 * the architecture's sanitize()) and must reproduce all of them within 1e-4 in float32.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import "../../src/backend/index.ts";
import { loadSafetensors } from "../../src/formats/index.ts";
import { BertForMaskedLM, BertForSequenceClassification, type CausalLM, causalLMLoss, entryToTensor, loadModel, modelEntry } from "../../src/models/index.ts";
import type { Tensor } from "../../src/tensor/index.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const dirOf = (name: string) => path.join(here, "..", "fixtures", "golden", name);
const TOL = 1e-4;

function readTensors(file: string): Map<string, Tensor> {
  const { tensors } = loadSafetensors(file);
  return new Map(Object.entries(tensors).map(([k, e]) => [k, entryToTensor(k, e)]));
}

/** Max |a - b| over the elements where keep(i) holds; fails on shape mismatch. */
function maxDiff(name: string, actual: Tensor, expected: Tensor, keep: (i: number) => boolean = () => true): number {
  assert.deepEqual([...actual.shape], [...expected.shape], `${name}: shape`);
  const a = actual.toArray();
  const e = expected.toArray();
  let worst = 0;
  for (let i = 0; i < a.length; i++) if (keep(i)) worst = Math.max(worst, Math.abs(a[i]! - e[i]!));
  assert.ok(Number.isFinite(worst), `${name}: non-finite values`);
  return worst;
}

/** Compares every parameter gradient with PyTorch's (HF names and layouts, mapped by sanitize()). */
function checkGrads(arch: string, model: ReturnType<typeof loadModel>): number {
  const grads = modelEntry(model.config.model_type).sanitize(readTensors(path.join(dirOf(arch), "grads.safetensors")), model.config, model);
  const params = model.namedParameters();
  assert.deepEqual(params.map(([k]) => k).sort(), [...grads.keys()].sort(), `${arch}: gradient names`);
  let worst = 0;
  for (const [name, p] of params) {
    assert.ok(p.grad, `${arch}: ${name} has no gradient`);
    const d = maxDiff(`${arch} grad ${name}`, p.grad, grads.get(name)!);
    assert.ok(d <= TOL, `${arch}: gradient of ${name} differs by ${d}`);
    worst = Math.max(worst, d);
  }
  return worst;
}

for (const arch of ["qwen2", "llama", "gpt2"]) {
  test(`golden ${arch}: logits, loss and every weight gradient match PyTorch`, () => {
    const io = readTensors(path.join(dirOf(arch), "io.safetensors"));
    const model = loadModel(dirOf(arch)) as unknown as CausalLM;
    model.eval();
    const mask = io.get("attention_mask")!;
    const logits = model.forward(io.get("input_ids")!, { attentionMask: mask });
    const V = logits.shape[2]!;
    const m = mask.toArray();
    // Padded query positions are ignored: PyTorch's fully masked rows are arbitrary there.
    const dLogits = maxDiff(`${arch} logits`, logits, io.get("logits")!, (i) => m[Math.floor(i / V)] === 1);
    const loss = causalLMLoss(logits, io.get("labels")!);
    const dLoss = Math.abs(loss.item() - io.get("loss")!.item());
    loss.backward();
    const dGrad = checkGrads(arch, model);
    console.log(`golden ${arch}: max |Δ| logits ${dLogits.toExponential(2)}, loss ${dLoss.toExponential(2)}, grads ${dGrad.toExponential(2)}`);
    assert.ok(dLogits <= TOL, `${arch}: logits differ by ${dLogits}`);
    assert.ok(dLoss <= TOL, `${arch}: loss differs by ${dLoss}`);
  });
}

for (const arch of ["bert", "bert_cls"]) {
  test(`golden ${arch}: logits, loss and every weight gradient match PyTorch`, () => {
    const io = readTensors(path.join(dirOf(arch), "io.safetensors"));
    const model = loadModel(dirOf(arch));
    model.eval();
    const inputs = { attentionMask: io.get("attention_mask")!, tokenTypeIds: io.get("token_type_ids")! };
    let logits: Tensor;
    let loss: Tensor;
    if (model instanceof BertForMaskedLM) {
      logits = model.forward(io.get("input_ids")!, inputs);
      loss = BertForMaskedLM.loss(logits, io.get("labels")!);
    } else {
      assert.ok(model instanceof BertForSequenceClassification);
      logits = model.forward(io.get("input_ids")!, inputs);
      loss = model.loss(logits, io.get("labels")!);
    }
    const dLogits = maxDiff(`${arch} logits`, logits, io.get("logits")!);
    const dLoss = Math.abs(loss.item() - io.get("loss")!.item());
    loss.backward();
    const dGrad = checkGrads(arch, model);
    console.log(`golden ${arch}: max |Δ| logits ${dLogits.toExponential(2)}, loss ${dLoss.toExponential(2)}, grads ${dGrad.toExponential(2)}`);
    assert.ok(dLogits <= TOL, `${arch}: logits differ by ${dLogits}`);
    assert.ok(dLoss <= TOL, `${arch}: loss differs by ${dLoss}`);
  });
}
