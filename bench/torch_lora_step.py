"""PyTorch baseline for bench/loraStep.ts: one LoRA SFT step on a Qwen2-shaped model, random weights.

The model is written out here (as HF modeling_qwen2.py computes it: RMSNorm, GQA attention with RoPE and
q/k/v biases, SwiGLU, tied embeddings) so the baseline needs only torch. LoRA r=8, alpha=16 on q_proj and
v_proj, the base frozen, AdamW on the adapter, loss = cross-entropy over the full vocabulary.

Prints one JSON object per configuration: {"dtype", "batch", "seq", "tokens_per_s", "ms_per_step"}.
Run by bench/loraStep.ts as `/usr/bin/python3 bench/torch_lora_step.py --json '{...}'`.
"""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F
from torch import nn


class LoraLinear(nn.Module):
    def __init__(self, base: nn.Linear, r: int, alpha: float):
        super().__init__()
        self.base = base
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scale = alpha / r

    def forward(self, x):
        return self.base(x) + (x @ self.lora_A.t() @ self.lora_B.t()) * self.scale


def rope(x, cos, sin):
    d = x.shape[-1] // 2
    rot = torch.cat((-x[..., d:], x[..., :d]), dim=-1)
    return x * cos + rot * sin


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        C, H, Hkv, D, F_ = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"], c["intermediate_size"]
        self.H, self.Hkv, self.D = H, Hkv, D
        self.input_layernorm = RMSNorm(C)
        self.post_attention_layernorm = RMSNorm(C)
        self.q_proj = nn.Linear(C, H * D)
        self.k_proj = nn.Linear(C, Hkv * D)
        self.v_proj = nn.Linear(C, Hkv * D)
        self.o_proj = nn.Linear(H * D, C, bias=False)
        self.gate_proj = nn.Linear(C, F_, bias=False)
        self.up_proj = nn.Linear(C, F_, bias=False)
        self.down_proj = nn.Linear(F_, C, bias=False)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, T, self.H, self.D).transpose(1, 2)
        k = self.k_proj(h).view(B, T, self.Hkv, self.D).transpose(1, 2)
        v = self.v_proj(h).view(B, T, self.Hkv, self.D).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        rep = self.H // self.Hkv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True) if hasattr(F, "scaled_dot_product_attention") else attention(q, k, v)
        x = x + self.o_proj(o.transpose(1, 2).reshape(B, T, self.H * self.D))
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class RMSNorm(nn.Module):
    def __init__(self, n, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight


def attention(q, k, v):
    T = q.shape[-2]
    s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    return s.masked_fill(mask, float("-inf")).softmax(-1) @ v


class Qwen2(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList(Block(c) for _ in range(c["num_hidden_layers"]))
        self.norm = RMSNorm(c["hidden_size"])
        D = c["head_dim"]
        self.inv_freq = 1.0 / (c["rope_theta"] ** (torch.arange(0, D, 2).float() / D))

    def forward(self, ids):
        T = ids.shape[1]
        freqs = torch.outer(torch.arange(T).float(), self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        x = self.embed_tokens(ids)
        cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
        for layer in self.layers:
            x = layer(x, cos, sin)
        return self.norm(x) @ self.embed_tokens.weight.t()


def run(cfg, dtype_name, batch, seq, steps, warmup):
    torch.manual_seed(0)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype_name]
    model = Qwen2(cfg)
    for p in model.parameters():
        p.requires_grad_(False)
    for layer in model.layers:
        layer.q_proj = LoraLinear(layer.q_proj, 8, 16)
        layer.v_proj = LoraLinear(layer.v_proj, 8, 16)
    model = model.to(dtype)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    ids = torch.randint(0, cfg["vocab_size"], (batch, seq + 1))
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        logits = model(ids[:, :-1])
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    ms = 1000 * times[len(times) // 2]
    return {"dtype": dtype_name, "batch": batch, "seq": seq, "ms_per_step": ms, "tokens_per_s": batch * seq / (ms / 1000), "loss": loss.item()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", required=True, help='{"config": {...}, "dtypes": [...], "batches": [...], "seq": 256, "steps": 3, "warmup": 1, "threads": 2}')
    a = json.loads(ap.parse_args().json)
    torch.set_num_threads(a.get("threads", 2))
    for dtype in a["dtypes"]:
        for batch in a["batches"]:
            print(json.dumps(run(a["config"], dtype, batch, a["seq"], a["steps"], a["warmup"])), flush=True)


if __name__ == "__main__":
    main()
