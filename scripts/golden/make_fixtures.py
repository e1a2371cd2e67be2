#!/usr/bin/python3
"""
Golden fixtures for tests/models/golden.test.ts, the way llm.c checks itself against PyTorch.

Tiny Qwen2, Llama (explicit head_dim, llama3 rope scaling, untied head), GPT-2 and BERT (masked LM
and sequence classification) written in plain PyTorch after HF transformers' modeling_qwen2.py,
modeling_llama.py, modeling_gpt2.py and modeling_bert.py (transformers is not needed). For each:
random weights from a fixed seed, then under tests/fixtures/golden/<name>/:

  config.json          HF config keys
  model.safetensors    weights with HF key names and layouts (GPT-2: Conv1D [in, out], no
                       "transformer." prefix and attn.bias buffers, as openai-community/gpt2)
  io.safetensors       input_ids, attention_mask, labels (token_type_ids for BERT), logits, loss
  grads.safetensors    d loss / d every parameter, HF names (named_parameters) and layouts

Run with Debian's torch: /usr/bin/python3 scripts/golden/make_fixtures.py
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "golden")
NEG = torch.finfo(torch.float32).min


# ---- safetensors writer (the format: u64 LE header size, JSON header, data) ---------------------

DTYPES = {torch.float32: "F32", torch.int64: "I64", torch.int32: "I32", torch.bfloat16: "BF16"}


def write_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        data = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---- Qwen2 / Llama (modeling_qwen2.py, modeling_llama.py) ---------------------------------------

class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(dtype)


def rope_inv_freq(cfg, dim):
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    sc = cfg.get("rope_scaling")
    if not sc:
        return inv
    # transformers modeling_rope_utils._compute_llama3_parameters
    assert sc["rope_type"] == "llama3"
    factor, low, high, old = sc["factor"], sc["low_freq_factor"], sc["high_freq_factor"], sc["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old / low, old / high
    wavelen = 2 * math.pi / inv
    inv_l = torch.where(wavelen > low_wavelen, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
    is_medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
    return torch.where(is_medium, smoothed, inv_l)


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def causal_mask(attention_mask, T):
    """[B, 1, T, T] additive mask: causal and key padding, finfo.min where hidden (HF eager)."""
    allowed = torch.tril(torch.ones(T, T, dtype=torch.bool))[None, None] & attention_mask.bool()[:, None, None, :]
    return torch.zeros(allowed.shape).masked_fill(~allowed, NEG)


class Qwen2Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, H, Hkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
        D = cfg.get("head_dim") or C // H
        qkv_bias = cfg["model_type"] == "qwen2" or cfg.get("attention_bias", False)
        o_bias = cfg["model_type"] != "qwen2" and cfg.get("attention_bias", False)
        self.H, self.Hkv, self.D = H, Hkv, D
        self.q_proj = nn.Linear(C, H * D, bias=qkv_bias)
        self.k_proj = nn.Linear(C, Hkv * D, bias=qkv_bias)
        self.v_proj = nn.Linear(C, Hkv * D, bias=qkv_bias)
        self.o_proj = nn.Linear(H * D, C, bias=o_bias)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.H, self.D).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.Hkv, self.D).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.Hkv, self.D).transpose(1, 2)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # apply_rotary_pos_emb, unsqueeze_dim=1
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(self.H // self.Hkv, dim=1)  # repeat_kv
        v = v.repeat_interleave(self.H // self.Hkv, dim=1)
        w = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.D) + mask
        w = F.softmax(w, dim=-1, dtype=torch.float32).to(q.dtype)
        o = torch.matmul(w, v).transpose(1, 2).reshape(B, T, self.H * self.D)
        return self.o_proj(o)


class Qwen2MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, I, b = cfg["hidden_size"], cfg["intermediate_size"], cfg.get("mlp_bias", False)
        self.gate_proj = nn.Linear(C, I, bias=b)
        self.up_proj = nn.Linear(C, I, bias=b)
        self.down_proj = nn.Linear(I, C, bias=b)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Qwen2DecoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.self_attn = Qwen2Attention(cfg)
        self.mlp = Qwen2MLP(cfg)
        self.input_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.post_attention_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])

    def forward(self, x, cos, sin, mask):
        h = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return h + self.mlp(self.post_attention_layernorm(h))


class Qwen2Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList([Qwen2DecoderLayer(cfg) for _ in range(cfg["num_hidden_layers"])])
        self.norm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])

    def forward(self, ids, attention_mask, position_ids):
        cfg = self.cfg
        D = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
        inv = rope_inv_freq(cfg, D)
        freqs = position_ids[:, :, None].float() * inv[None, None, :]  # Qwen2RotaryEmbedding
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        mask = causal_mask(attention_mask, ids.shape[1])
        h = self.embed_tokens(ids)
        for layer in self.layers:
            h = layer(h, cos, sin, mask)
        return self.norm(h)


class Qwen2ForCausalLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.model = Qwen2Model(cfg)
        self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)
        if cfg["tie_word_embeddings"]:
            self.lm_head.weight = self.model.embed_tokens.weight

    def forward(self, ids, attention_mask, position_ids):
        return self.lm_head(self.model(ids, attention_mask, position_ids)).float()


# ---- GPT-2 (modeling_gpt2.py) -----------------------------------------------------------------

class Conv1D(nn.Module):
    """HF pytorch_utils.Conv1D: weight [nx, nf], y = x @ W + b."""

    def __init__(self, nf, nx):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x):
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(x.shape[:-1] + (self.weight.shape[1],))


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class GPT2Attention(nn.Module):
    def __init__(self, cfg, layer_idx):
        super().__init__()
        C = cfg["n_embd"]
        self.H, self.D, self.layer_idx, self.cfg = cfg["n_head"], C // cfg["n_head"], layer_idx, cfg
        self.c_attn = Conv1D(3 * C, C)
        self.c_proj = Conv1D(C, C)

    def forward(self, x, mask):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.H, self.D).transpose(1, 2) for t in (q, k, v))
        w = torch.matmul(q, k.transpose(-1, -2))
        if self.cfg["scale_attn_weights"]:
            w = w / torch.full([], v.size(-1) ** 0.5, dtype=w.dtype)
        if self.cfg["scale_attn_by_inverse_layer_idx"]:
            w = w / float(self.layer_idx + 1)
        w = F.softmax(w + mask, dim=-1)
        o = torch.matmul(w, v).transpose(1, 2).reshape(B, T, C)
        return self.c_proj(o)


class GPT2MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C = cfg["n_embd"]
        inner = cfg.get("n_inner") or 4 * C
        self.c_fc = Conv1D(inner, C)
        self.c_proj = Conv1D(C, inner)

    def forward(self, x):
        return self.c_proj(gelu_new(self.c_fc(x)))


class GPT2Block(nn.Module):
    def __init__(self, cfg, i):
        super().__init__()
        C, eps = cfg["n_embd"], cfg["layer_norm_epsilon"]
        self.ln_1 = nn.LayerNorm(C, eps=eps)
        self.attn = GPT2Attention(cfg, i)
        self.ln_2 = nn.LayerNorm(C, eps=eps)
        self.mlp = GPT2MLP(cfg)

    def forward(self, x, mask):
        h = x + self.attn(self.ln_1(x), mask)
        return h + self.mlp(self.ln_2(h))


class GPT2Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.wte = nn.Embedding(cfg["vocab_size"], cfg["n_embd"])
        self.wpe = nn.Embedding(cfg["n_positions"], cfg["n_embd"])
        self.h = nn.ModuleList([GPT2Block(cfg, i) for i in range(cfg["n_layer"])])
        self.ln_f = nn.LayerNorm(cfg["n_embd"], eps=cfg["layer_norm_epsilon"])

    def forward(self, ids, attention_mask, position_ids):
        mask = causal_mask(attention_mask, ids.shape[1])
        h = self.wte(ids) + self.wpe(position_ids)
        for block in self.h:
            h = block(h, mask)
        return self.ln_f(h)


class GPT2LMHeadModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.transformer = GPT2Model(cfg)
        self.lm_head = nn.Linear(cfg["n_embd"], cfg["vocab_size"], bias=False)
        self.lm_head.weight = self.transformer.wte.weight

    def forward(self, ids, attention_mask, position_ids):
        return self.lm_head(self.transformer(ids, attention_mask, position_ids))


# ---- BERT (modeling_bert.py) ------------------------------------------------------------------

class BertEmbeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C = cfg["hidden_size"]
        self.word_embeddings = nn.Embedding(cfg["vocab_size"], C, padding_idx=cfg["pad_token_id"])
        self.position_embeddings = nn.Embedding(cfg["max_position_embeddings"], C)
        self.token_type_embeddings = nn.Embedding(cfg["type_vocab_size"], C)
        self.LayerNorm = nn.LayerNorm(C, eps=cfg["layer_norm_eps"])
        self.register_buffer("position_ids", torch.arange(cfg["max_position_embeddings"]).expand((1, -1)))

    def forward(self, ids, token_type_ids):
        T = ids.shape[1]
        e = self.word_embeddings(ids) + self.token_type_embeddings(token_type_ids)
        e = e + self.position_embeddings(self.position_ids[:, :T])
        return self.LayerNorm(e)


class BertSelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C = cfg["hidden_size"]
        self.H, self.D = cfg["num_attention_heads"], C // cfg["num_attention_heads"]
        self.query, self.key, self.value = nn.Linear(C, C), nn.Linear(C, C), nn.Linear(C, C)

    def forward(self, x, ext_mask):
        B, T, C = x.shape
        q, k, v = (m(x).view(B, T, self.H, self.D).permute(0, 2, 1, 3) for m in (self.query, self.key, self.value))
        w = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.D) + ext_mask
        return torch.matmul(F.softmax(w, dim=-1), v).permute(0, 2, 1, 3).reshape(B, T, C)


class BertResidualOutput(nn.Module):  # BertSelfOutput / BertOutput
    def __init__(self, cfg, fin):
        super().__init__()
        self.dense = nn.Linear(fin, cfg["hidden_size"])
        self.LayerNorm = nn.LayerNorm(cfg["hidden_size"], eps=cfg["layer_norm_eps"])

    def forward(self, h, residual):
        return self.LayerNorm(self.dense(h) + residual)


class BertAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.self = BertSelfAttention(cfg)
        self.output = BertResidualOutput(cfg, cfg["hidden_size"])

    def forward(self, x, m):
        return self.output(self.self(x, m), x)


class BertIntermediate(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg["hidden_size"], cfg["intermediate_size"])

    def forward(self, x):
        return F.gelu(self.dense(x))  # ACT2FN["gelu"]: erf


class BertLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.attention = BertAttention(cfg)
        self.intermediate = BertIntermediate(cfg)
        self.output = BertResidualOutput(cfg, cfg["intermediate_size"])

    def forward(self, x, m):
        a = self.attention(x, m)
        return self.output(self.intermediate(a), a)


class BertEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(cfg) for _ in range(cfg["num_hidden_layers"])])

    def forward(self, x, m):
        for l in self.layer:
            x = l(x, m)
        return x


class BertPooler(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg["hidden_size"], cfg["hidden_size"])

    def forward(self, h):
        return torch.tanh(self.dense(h[:, 0]))


class BertModel(nn.Module):
    def __init__(self, cfg, pooler):
        super().__init__()
        self.embeddings = BertEmbeddings(cfg)
        self.encoder = BertEncoder(cfg)
        self.pooler = BertPooler(cfg) if pooler else None

    def forward(self, ids, attention_mask, token_type_ids):
        ext = (1.0 - attention_mask[:, None, None, :].float()) * NEG  # get_extended_attention_mask
        h = self.encoder(self.embeddings(ids, token_type_ids), ext)
        return h, (self.pooler(h) if self.pooler is not None else None)


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg["hidden_size"], cfg["hidden_size"])
        self.LayerNorm = nn.LayerNorm(cfg["hidden_size"], eps=cfg["layer_norm_eps"])

    def forward(self, x):
        return self.LayerNorm(F.gelu(self.dense(x)))


class BertLMPredictionHead(nn.Module):
    def __init__(self, cfg, word_embeddings):
        super().__init__()
        self.transform = BertPredictionHeadTransform(cfg)
        self.decoder = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)
        self.decoder.weight = word_embeddings.weight
        self.bias = nn.Parameter(torch.zeros(cfg["vocab_size"]))

    def forward(self, h):
        return self.decoder(self.transform(h)) + self.bias


class BertOnlyMLMHead(nn.Module):
    def __init__(self, cfg, we):
        super().__init__()
        self.predictions = BertLMPredictionHead(cfg, we)


class BertForMaskedLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.bert = BertModel(cfg, pooler=False)
        self.cls = BertOnlyMLMHead(cfg, self.bert.embeddings.word_embeddings)

    def forward(self, ids, attention_mask, token_type_ids):
        return self.cls.predictions(self.bert(ids, attention_mask, token_type_ids)[0])


class BertForSequenceClassification(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.bert = BertModel(cfg, pooler=True)
        self.classifier = nn.Linear(cfg["hidden_size"], len(cfg["id2label"]))

    def forward(self, ids, attention_mask, token_type_ids):
        return self.classifier(self.bert(ids, attention_mask, token_type_ids)[1])


# ---- fixtures ---------------------------------------------------------------------------------

def randomize(model, gen):
    """Weights with enough spread that every path matters: N(0, 0.15) matrices, N(0, 0.5)
    embeddings, N(0, 0.1) biases, 1 + N(0, 0.1) norm weights."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("embeddings.weight") or name.endswith("embed_tokens.weight") or name.endswith("wte.weight") or name.endswith("wpe.weight"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
            elif "norm" in name.lower() or ".ln_" in name:
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + torch.randn(p.shape, generator=gen) * 0.1)
            elif p.ndim == 1:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.15)


def left_padded_batch(gen, vocab, B, T, pads, pad_id):
    ids = torch.randint(1, vocab, (B, T), generator=gen)
    mask = torch.ones(B, T, dtype=torch.int64)
    for b, n in enumerate(pads):
        ids[b, :n] = pad_id
        mask[b, :n] = 0
    # positions as HF generate() builds them for left padding
    pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
    labels = ids.masked_fill(mask == 0, -100)
    # The first real token of a left-padded row is "predicted" from a padding position, whose
    # output is arbitrary (a fully masked attention row); keep it out of the loss.
    for b, n in enumerate(pads):
        if n:
            labels[b, n] = -100
    return ids, mask, pos, labels


def causal_lm_loss(logits, labels):
    """transformers loss_utils.ForCausalLMLoss: shift labels left, pad with -100, mean CE."""
    shift = F.pad(labels, (0, 1), value=-100)[..., 1:]
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), shift.reshape(-1), ignore_index=-100)


def save(name, cfg, model, weights, io, loss):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(d, "model.safetensors"), weights, {"format": "pt"})
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    write_safetensors(os.path.join(d, "grads.safetensors"), grads)
    write_safetensors(os.path.join(d, "io.safetensors"), {**io, "loss": loss.detach().reshape(1)})
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    print(f"{name}: loss {loss.item():.6f}, {len(grads)} gradients, {size / 1024:.0f} KiB")


def decoder_fixture(name, cfg, cls, seed, hf_weights):
    gen = torch.Generator().manual_seed(seed)
    model = cls(cfg)
    randomize(model, gen)
    model.eval()
    ids, mask, pos, labels = left_padded_batch(gen, cfg["vocab_size"], 2, 9, [0, 3], 0)
    logits = model(ids, mask, pos)
    loss = causal_lm_loss(logits, labels)
    io = {"input_ids": ids.to(torch.int32), "attention_mask": mask.to(torch.int32), "labels": labels.to(torch.int32), "logits": logits.detach()}
    save(name, cfg, model, hf_weights(model), io, loss)


def qwen2_weights(model):
    # save_pretrained drops the tied lm_head copy
    sd = model.state_dict()
    if model.lm_head.weight is model.model.embed_tokens.weight:
        sd.pop("lm_head.weight")
    return sd


def gpt2_weights(model):
    # as openai-community/gpt2: no "transformer." prefix, causal-mask buffers, no lm_head
    sd = {k[len("transformer."):]: v for k, v in model.state_dict().items() if k.startswith("transformer.")}
    n = model.transformer.wpe.weight.shape[0]
    for i in range(len(model.transformer.h)):
        sd[f"h.{i}.attn.bias"] = torch.tril(torch.ones(n, n, dtype=torch.uint8)).view(1, 1, n, n).float()
        sd[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    return sd


def bert_fixture(name, cfg, cls, seed):
    gen = torch.Generator().manual_seed(seed)
    model = cls(cfg)
    randomize(model, gen)
    model.eval()
    B, T = 2, 10
    ids = torch.randint(5, cfg["vocab_size"], (B, T), generator=gen)
    mask = torch.ones(B, T, dtype=torch.int64)
    mask[1, 7:] = 0  # right padding
    ids[1, 7:] = cfg["pad_token_id"]
    types = torch.zeros(B, T, dtype=torch.int64)
    types[:, 5:] = 1
    types[1, 7:] = 0
    logits = model(ids, mask, types)
    if cls is BertForMaskedLM:
        labels = torch.full((B, T), -100, dtype=torch.int64)
        for b, t in [(0, 1), (0, 4), (0, 8), (1, 2), (1, 5)]:
            labels[b, t] = ids[b, t]
        loss = F.cross_entropy(logits.reshape(-1, cfg["vocab_size"]), labels.reshape(-1), ignore_index=-100)
    else:
        labels = torch.tensor([1, 2])
        loss = F.cross_entropy(logits, labels)
    io = {
        "input_ids": ids.to(torch.int32),
        "attention_mask": mask.to(torch.int32),
        "token_type_ids": types.to(torch.int32),
        "labels": labels.to(torch.int32),
        "logits": logits.detach(),
    }
    sd = model.state_dict()
    sd.pop("cls.predictions.decoder.weight", None)  # tied to the word embeddings; not saved
    save(name, cfg, model, sd, io, loss)


def main():
    torch.manual_seed(0)
    qwen2 = {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "vocab_size": 256,
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "hidden_act": "silu",
        "max_position_embeddings": 128,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "tie_word_embeddings": True,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "torch_dtype": "float32",
    }
    decoder_fixture("qwen2", qwen2, Qwen2ForCausalLM, 1, qwen2_weights)

    llama = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": 192,
        "hidden_size": 48,
        "intermediate_size": 80,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 1,
        "head_dim": 16,
        "hidden_act": "silu",
        "max_position_embeddings": 128,
        "rms_norm_eps": 1e-5,
        "rope_theta": 500000.0,
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "bos_token_id": 1,
        "eos_token_id": [2, 3],
        "torch_dtype": "float32",
    }
    decoder_fixture("llama", llama, Qwen2ForCausalLM, 2, qwen2_weights)

    gpt2 = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": 200,
        "n_embd": 48,
        "n_head": 4,
        "n_layer": 2,
        "n_positions": 32,
        "n_ctx": 32,
        "activation_function": "gelu_new",
        "layer_norm_epsilon": 1e-5,
        "resid_pdrop": 0.1,
        "embd_pdrop": 0.1,
        "attn_pdrop": 0.1,
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "bos_token_id": 199,
        "eos_token_id": 199,
    }
    decoder_fixture("gpt2", gpt2, GPT2LMHeadModel, 3, gpt2_weights)

    bert = {
        "architectures": ["BertForMaskedLM"],
        "model_type": "bert",
        "vocab_size": 160,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 64,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 64,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
    }
    bert_fixture("bert", bert, BertForMaskedLM, 4)
    bert_cls = {**bert, "architectures": ["BertForSequenceClassification"], "id2label": {"0": "neg", "1": "neu", "2": "pos"}, "label2id": {"neg": 0, "neu": 1, "pos": 2}}
    bert_fixture("bert_cls", bert_cls, BertForSequenceClassification, 5)


if __name__ == "__main__":
    sys.exit(main())
