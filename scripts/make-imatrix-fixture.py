#!/usr/bin/env python3
"""Write crates/calib/tests/fixtures/llama_imatrix.gguf with llama.cpp's own GGUF writer.

An independent writer for the reader test in crates/calib/tests/imatrix_files.rs: the PyPI
package `gguf` (maintained in the llama.cpp repository, gguf-py) writes a small importance
matrix laid out as llama-imatrix does (general.type = "imatrix", imatrix.datasets,
imatrix.chunk_count, imatrix.chunk_size; per entry F32 `<name>.in_sum2`, `<name>.counts`,
`<name>.in_sum`), with GGUF tensor names of a Llama-family model. Entries are 2-D
`[cols, 1]` tensors here (llama-imatrix writes 1-D for dense layers; both must read), and one
unrelated tensor and key are added, which readers must ignore.

Values: for entry k (0-based, in the order below) and column j, in_sum2 = (k + 1) * (j + 1),
in_sum = j - 1, counts = 4 * (k + 1); so E[x^2]_j = (j + 1) / 4.

Usage: pip install gguf==0.19.0 && scripts/make-imatrix-fixture.py OUT.gguf
"""
import sys

import numpy as np
import gguf

ENTRIES = [("blk.0.attn_q.weight", 8), ("blk.0.ffn_down.weight", 12), ("output.weight", 8)]


def main():
    out = sys.argv[1]
    w = gguf.GGUFWriter(out, arch=None)
    w.add_type("imatrix")
    w.add_array("imatrix.datasets", ["wiki.train.raw"])
    w.add_uint32("imatrix.chunk_count", 4)
    w.add_uint32("imatrix.chunk_size", 512)
    w.add_string("general.comment", "sop-calib reader fixture")
    for k, (name, cols) in enumerate(ENTRIES):
        j = np.arange(cols, dtype=np.float32)
        w.add_tensor(f"{name}.in_sum2", ((k + 1) * (j + 1)).reshape(1, cols))
        w.add_tensor(f"{name}.counts", np.array([[4.0 * (k + 1)]], dtype=np.float32))
        w.add_tensor(f"{name}.in_sum", (j - 1).reshape(1, cols))
    w.add_tensor("unrelated.weight", np.ones((2, 3), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
