#!/usr/bin/env python3
"""Independent reference for GGUF model reading: llama.cpp's gguf-py (PyPI `gguf`).

Usage: gguf_ref.py make OUT.gguf       -> a GGUF model file written by gguf-py's GGUFWriter:
                                          random (seeded) blocks of F32, F16, BF16, Q8_0, Q4_0,
                                          Q4_1, Q4_K, Q5_K, Q6_K tensors with llama.cpp names,
                                          1-D norms, an IQ2_XXS tensor (`blk.1.odd.weight`)
       gguf_ref.py dequant IN.gguf DIR [NAME...]
                                       -> every tensor (or the NAMEd ones) of IN dequantized by
                                          gguf.quants.dequantize, as DIR/<name>.f32 (raw
                                          little-endian f32, C order) and DIR/index.txt
                                          (name, type name, shape outermost first)
Called by crates/model/tests/gguf.rs; it only reads and writes, the Rust test compares.
"""
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

# Byte offsets of the f16 scale fields in each block type (random bytes there could be
# NaN/Inf; real files hold finite scales).
HALF_FIELDS = {
    T.Q8_0: [0],
    T.Q4_0: [0],
    T.Q4_1: [0, 2],
    T.Q4_K: [0, 2],
    T.Q5_K: [0, 2],
    T.Q6_K: [208],
}


def random_blocks(rng, qtype, rows, cols):
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    nblk = rows * cols // block
    raw = rng.integers(0, 256, size=(nblk, size), dtype=np.uint8)
    for off in HALF_FIELDS.get(qtype, []):
        h = (rng.standard_normal(nblk) * 0.05).astype(np.float16)
        raw[:, off : off + 2] = h.view(np.uint8).reshape(nblk, 2)
    return raw.reshape(rows, cols // block * size)


def make(out):
    rng = np.random.default_rng(20261203)
    w = gguf.GGUFWriter(out, "llama")
    w.add_block_count(2)
    rows, cols = 8, 512
    # First in the data section: its size is not checked on open (an unconverted type), so
    # the truncation tests cut into tensors after it.
    w.add_tensor("blk.1.odd.weight", random_blocks(rng, T.IQ2_XXS, rows, cols), raw_dtype=T.IQ2_XXS)
    w.add_tensor("token_embd.weight", random_blocks(rng, T.Q8_0, 16, cols), raw_dtype=T.Q8_0)
    w.add_tensor("output_norm.weight", rng.standard_normal(cols).astype(np.float32))
    w.add_tensor("output.weight", rng.standard_normal((16, cols)).astype(np.float32))
    w.add_tensor("blk.0.attn_norm.weight", rng.standard_normal(cols).astype(np.float32))
    w.add_tensor("blk.0.attn_q.weight", rng.standard_normal((rows, cols)).astype(np.float32))
    w.add_tensor("blk.0.attn_k.weight", rng.standard_normal((rows, cols)).astype(np.float16))
    bf = (rng.standard_normal((rows, cols)).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    w.add_tensor("blk.0.attn_v.weight", bf.view(np.uint8).reshape(rows, cols * 2), raw_dtype=T.BF16)
    for name, qt in [
        ("blk.0.attn_output.weight", T.Q4_0),
        ("blk.0.ffn_gate.weight", T.Q4_1),
        ("blk.0.ffn_up.weight", T.Q4_K),
        ("blk.0.ffn_down.weight", T.Q5_K),
        ("blk.1.attn_q.weight", T.Q6_K),
        ("blk.1.attn_k.weight", T.Q8_0),
    ]:
        w.add_tensor(name, random_blocks(rng, qt, rows, cols), raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def dequant(src, out, names):
    os.makedirs(out, exist_ok=True)
    r = gguf.GGUFReader(src)
    lines = []
    for t in r.tensors:
        if t.tensor_type == T.IQ2_XXS or (names and t.name not in names):
            continue
        v = gguf.quants.dequantize(t.data, t.tensor_type).astype("<f4")
        shape = [int(d) for d in reversed(t.shape)]
        v.reshape(-1).tofile(os.path.join(out, t.name + ".f32"))
        lines.append(f"{t.name} {t.tensor_type.name} {' '.join(map(str, shape))}\n")
    with open(os.path.join(out, "index.txt"), "w") as f:
        f.writelines(lines)


def main():
    mode = sys.argv[1]
    if mode == "make":
        make(sys.argv[2])
    elif mode == "dequant":
        dequant(sys.argv[2], sys.argv[3], set(sys.argv[4:]))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
