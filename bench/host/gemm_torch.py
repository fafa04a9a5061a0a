"""torch.matmul in bf16 on the CPU at the shapes of gemm-ours.cjs (PyTorch's own CPU GEMM: oneDNN,
with AMX where the CPU has it), on every CPU, as the addon runs. Prints one JSON line: {"torch", "threads", "<shape>": GFLOP/s}."""
import json
import os
import time

import torch

shapes = [("q_proj x·Wᵀ", 512, 4096, 4096, True), ("q_proj dY·W", 512, 4096, 4096, False),
          ("up_proj x·Wᵀ", 512, 11008, 4096, True), ("down_proj x·Wᵀ", 512, 4096, 11008, True)]
torch.set_num_threads(os.cpu_count() or 1)  # as many as the addon's OpenMP takes
res = {"torch": torch.__version__, "threads": torch.get_num_threads()}
with torch.no_grad():
    for name, M, N, K, tb in shapes:
        a = torch.rand(M, K, dtype=torch.bfloat16) * 2 - 1
        b = torch.rand(N, K, dtype=torch.bfloat16) * 2 - 1 if tb else torch.rand(K, N, dtype=torch.bfloat16) * 2 - 1
        f = (lambda: a @ b.t()) if tb else (lambda: a @ b)
        f()
        ms = []
        for _ in range(5):
            t = time.perf_counter()
            f()
            ms.append((time.perf_counter() - t) * 1e3)
        ms.sort()
        res[name] = round(2 * M * N * K / (ms[2] * 1e6), 1)
print(json.dumps(res, ensure_ascii=False))
