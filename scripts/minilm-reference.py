#!/usr/bin/env python3
"""Reference sentence embeddings of all-MiniLM-L6-v2, computed with numpy alone.

Writes the JSON fixture that crates/calib/tests/forward.rs checks the Rust forward pass
against. The pipeline is the one sentence-transformers runs for this model (modules.json:
Transformer -> mean Pooling -> Normalize; max_seq_length 256), re-implemented here
independently of the Rust code:
  * tokenizer: the original BERT "BasicTokenizer + WordpieceTokenizer" algorithm (clean text,
    CJK spacing, lowercase, NFD accent stripping, punctuation split, greedy longest-match
    WordPiece with "##" continuations, [UNK] for words over 100 chars or with no match),
    reading vocab.txt;
  * model: Hugging Face BertModel (absolute position embeddings, token type 0, post-LayerNorm
    encoder, exact erf GELU, LayerNorm eps from config.json), all in float64;
  * pooling: mean over all tokens (no padding), then L2 normalization.
torch / sentence-transformers are not needed (the PyPI torch wheel with its CUDA dependencies
is several GB); only numpy.

Usage: scripts/minilm-reference.py [MODEL_DIR] > crates/calib/tests/fixtures/minilm_reference.json
MODEL_DIR defaults to $SOP_CACHE/minilm or ~/.cache/sop/minilm (see scripts/fetch-weights).
"""
import hashlib
import json
import math
import os
import struct
import sys
import unicodedata

import numpy as np

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Quantization maps 32-bit floating-point weights onto a small codebook, e.g. NF4 or E2M3!",
    "Crème brûlée, naïve café owners & their über-cool résumés (since 1999).",
    "Tokyo (東京) is the capital of Japan; its population exceeds 13,960,000 people.",
    "A sentence with an unknowable glyph \u2603 and a tab\tand trailing spaces   ",
    "In 1962, after more than a century of rule by France, Algerians achieved independence, "
    "and the National Liberation Front, established in 1954 as part of the struggle, has "
    "largely dominated politics since; the country's economy still depends on hydrocarbons.",
]
MAX_SEQ_LEN = 256


# ---------------------------------------------------------------- tokenizer (BERT reference)
def _is_whitespace(c):
    if c in (" ", "\t", "\n", "\r"):
        return True
    return unicodedata.category(c) == "Zs"


def _is_control(c):
    if c in ("\t", "\n", "\r"):
        return False
    return unicodedata.category(c) in ("Cc", "Cf")


def _is_punctuation(c):
    cp = ord(c)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(c).startswith("P")


def _is_cjk(cp):
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def basic_tokenize(text):
    out = []
    for c in text:
        cp = ord(c)
        if cp == 0 or cp == 0xFFFD or _is_control(c):
            continue
        out.append(" " if _is_whitespace(c) else c)
    text = "".join(out)
    text = "".join(f" {c} " if _is_cjk(ord(c)) else c for c in text)
    tokens = []
    for word in text.split():
        word = word.lower()
        word = "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")
        cur = ""
        for c in word:
            if _is_punctuation(c):
                if cur:
                    tokens.append(cur)
                    cur = ""
                tokens.append(c)
            else:
                cur += c
        if cur:
            tokens.append(cur)
    return tokens


def wordpiece(word, vocab):
    if len(word) > 100:
        return ["[UNK]"]
    pieces, start = [], 0
    while start < len(word):
        end, cur = len(word), None
        while start < end:
            sub = word[start:end]
            if start > 0:
                sub = "##" + sub
            if sub in vocab:
                cur = sub
                break
            end -= 1
        if cur is None:
            return ["[UNK]"]
        pieces.append(cur)
        start = end
    return pieces


def tokenize(text, vocab):
    ids = [vocab["[CLS]"]]
    for w in basic_tokenize(text):
        ids.extend(vocab[p] for p in wordpiece(w, vocab))
    ids = ids[: MAX_SEQ_LEN - 1]
    ids.append(vocab["[SEP]"])
    return ids


# ---------------------------------------------------------------- model
def load_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        a, b = info["data_offsets"]
        tensors[name] = np.frombuffer(blob[base + a : base + b], dtype="<f4").reshape(info["shape"]).astype(np.float64)
    return tensors, hashlib.sha256(blob).hexdigest()


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


_erf = np.vectorize(math.erf)


def gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def embed(ids, t, cfg):
    eps = cfg["layer_norm_eps"]
    heads = cfg["num_attention_heads"]
    n = len(ids)
    x = t["embeddings.word_embeddings.weight"][ids]
    x = x + t["embeddings.position_embeddings.weight"][:n] + t["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"], eps)

    def lin(name, v):
        return v @ t[name + ".weight"].T + t[name + ".bias"]

    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q = lin(p + "attention.self.query", x)
        k = lin(p + "attention.self.key", x)
        v = lin(p + "attention.self.value", x)
        d = q.shape[1] // heads
        ctx = np.empty_like(q)
        for h in range(heads):
            s = slice(h * d, (h + 1) * d)
            sc = q[:, s] @ k[:, s].T / math.sqrt(d)
            sc = np.exp(sc - sc.max(-1, keepdims=True))
            sc /= sc.sum(-1, keepdims=True)
            ctx[:, s] = sc @ v[:, s]
        a = lin(p + "attention.output.dense", ctx)
        x = layer_norm(a + x, t[p + "attention.output.LayerNorm.weight"], t[p + "attention.output.LayerNorm.bias"], eps)
        inter = gelu(lin(p + "intermediate.dense", x))
        o = lin(p + "output.dense", inter)
        x = layer_norm(o + x, t[p + "output.LayerNorm.weight"], t[p + "output.LayerNorm.bias"], eps)
    e = x.mean(0)
    return e / np.linalg.norm(e)


def main():
    if len(sys.argv) > 1:
        model_dir = sys.argv[1]
    else:
        cache = os.environ.get("SOP_CACHE") or os.path.join(os.environ["HOME"], ".cache", "sop")
        model_dir = os.path.join(cache, "minilm")
    with open(os.path.join(model_dir, "vocab.txt"), encoding="utf-8") as f:
        vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    tensors, sha = load_safetensors(os.path.join(model_dir, "model.safetensors"))
    out = {
        "generator": "scripts/minilm-reference.py (numpy, float64)",
        "model_sha256": sha,
        "max_seq_len": MAX_SEQ_LEN,
        "sentences": [],
    }
    for s in SENTENCES:
        ids = tokenize(s, vocab)
        e = embed(ids, tensors, cfg)
        out["sentences"].append({"text": s, "ids": ids, "embedding": [float(f"{v:.8g}") for v in e]})
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
