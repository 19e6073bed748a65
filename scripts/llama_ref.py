#!/usr/bin/env python3
"""Independent reference for the Llama forward pass of crates/llm: numpy (float64) on the
weights of a llama GGUF file as llama.cpp's gguf-py reads and dequantizes them.

Usage: llama_ref.py MODEL.gguf TOKENS OUT
  TOKENS: token ids, little-endian u32; OUT: the logits [n, vocab] as little-endian f32.
  Prints the perplexity of tokens[1:] (position t predicts token t+1).
Called by crates/llm/tests/smollm2.rs; it shares no code with the Rust pass. llama.cpp
semantics for general.architecture == llama: RMSNorm, RoPE on adjacent pairs (rope type
NORM) with llama.rope.freq_base, grouped-query causal attention, SwiGLU, tied head when
output.weight is absent.
"""
import sys

import numpy as np
import gguf


def main():
    path, tok_path, out_path = sys.argv[1:4]
    r = gguf.GGUFReader(path)
    meta = {k: f.contents() for k, f in r.fields.items() if not k.startswith("tokenizer.")}
    assert meta["general.architecture"] == "llama"
    W = {}
    for t in r.tensors:
        shape = [int(d) for d in reversed(t.shape)]
        W[t.name] = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64).reshape(shape)
    L = meta["llama.block_count"]
    H = meta["llama.embedding_length"]
    nh = meta["llama.attention.head_count"]
    nkv = meta.get("llama.attention.head_count_kv", nh)
    hd = H // nh
    eps = meta["llama.attention.layer_norm_rms_epsilon"]
    base = meta.get("llama.rope.freq_base", 10000.0)
    toks = np.fromfile(tok_path, dtype="<u4").astype(np.int64)
    n = len(toks)

    def rms(x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w

    inv = base ** (-np.arange(0, hd, 2) / hd)
    ang = np.arange(n)[:, None] * inv[None, :]
    cos, sin = np.cos(ang), np.sin(ang)

    def rope(x, heads):
        x = x.reshape(n, heads, hd // 2, 2)
        a, b = x[..., 0], x[..., 1]
        c, s = cos[:, None, :], sin[:, None, :]
        return np.stack([a * c - b * s, a * s + b * c], -1).reshape(n, heads, hd)

    x = W["token_embd.weight"][toks]
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for i in range(L):
        p = f"blk.{i}."
        xn = rms(x, W[p + "attn_norm.weight"])
        q = rope(xn @ W[p + "attn_q.weight"].T, nh)
        k = rope(xn @ W[p + "attn_k.weight"].T, nkv)
        v = (xn @ W[p + "attn_v.weight"].T).reshape(n, nkv, hd)
        rep = nh // nkv
        k = np.repeat(k, rep, axis=1)
        v = np.repeat(v, rep, axis=1)
        s = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(hd) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        ctx = np.einsum("hqk,khd->qhd", s, v).reshape(n, nh * hd)
        x = x + ctx @ W[p + "attn_output.weight"].T
        xn = rms(x, W[p + "ffn_norm.weight"])
        g = xn @ W[p + "ffn_gate.weight"].T
        u = xn @ W[p + "ffn_up.weight"].T
        x = x + (g / (1 + np.exp(-g)) * u) @ W[p + "ffn_down.weight"].T
    xn = rms(x, W["output_norm.weight"])
    head = W.get("output.weight", W["token_embd.weight"])
    logits = xn @ head.T
    logits.astype("<f4").tofile(out_path)
    m = logits.max(-1, keepdims=True)
    lse = np.log(np.exp(logits - m).sum(-1)) + m[:, 0]
    nll = lse[:-1] - logits[np.arange(n - 1), toks[1:]]
    print(f"{np.exp(nll.mean()):.10f}")


if __name__ == "__main__":
    main()
