"""PyTorch CPU peer for `polytune bench step`: one training step of the same Llama (HF layout:
RMSNorm, rotate-half RoPE, causal grouped-query attention, SwiGLU MLP, untied LM head), AdamW with
the study's betas. "f32" trains fp32; "bf16" is PyTorch's CPU mixed precision (fp32 weights and
optimizer, torch.autocast bf16), the usual way to train bf16 on a CPU in PyTorch.

Line protocol: prints "ready <torch version>", then for each JSON line
{"hidden","inter","layers","heads","kv","vocab","B","T","dtype","steps","threads"} prints
"ok <median ms per step>" (models are cached per request shape; the first step is a warm-up).
"""
import json
import math
import sys
import time

import torch
import torch.nn.functional as F


class Llama(torch.nn.Module):
    def __init__(s, c):
        super().__init__()
        h, i, v = c["hidden"], c["inter"], c["vocab"]
        s.H, s.KV, s.D = c["heads"], c["kv"], h // c["heads"]
        s.embed = torch.nn.Embedding(v, h)
        s.layers = torch.nn.ModuleList()
        for _ in range(c["layers"]):
            l = torch.nn.Module()
            l.n1 = torch.nn.Parameter(torch.ones(h))
            l.n2 = torch.nn.Parameter(torch.ones(h))
            l.q = torch.nn.Linear(h, s.H * s.D, bias=False)
            l.k = torch.nn.Linear(h, s.KV * s.D, bias=False)
            l.v = torch.nn.Linear(h, s.KV * s.D, bias=False)
            l.o = torch.nn.Linear(s.H * s.D, h, bias=False)
            l.gate = torch.nn.Linear(h, i, bias=False)
            l.up = torch.nn.Linear(h, i, bias=False)
            l.down = torch.nn.Linear(i, h, bias=False)
            s.layers.append(l)
        s.norm = torch.nn.Parameter(torch.ones(h))
        s.head = torch.nn.Linear(h, v, bias=False)
        for p in s.parameters():
            if p.dim() == 2:
                torch.nn.init.normal_(p, std=0.02)
        inv = 1.0 / (10000 ** (torch.arange(0, s.D, 2).float() / s.D))
        ang = torch.outer(torch.arange(c["T"]).float(), inv)
        emb = torch.cat([ang, ang], dim=-1)
        s.register_buffer("cos", emb.cos(), persistent=False)
        s.register_buffer("sin", emb.sin(), persistent=False)
        s.register_buffer("mask", torch.full((c["T"], c["T"]), float("-inf")).triu(1), persistent=False)

    @staticmethod
    def rms(x, w):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-5)).to(x.dtype) * w.to(x.dtype)

    def rope(s, x):
        x1, x2 = x.chunk(2, dim=-1)
        return x * s.cos.to(x.dtype) + torch.cat([-x2, x1], dim=-1) * s.sin.to(x.dtype)

    def forward(s, ids):
        B, T = ids.shape
        x = s.embed(ids)
        for l in s.layers:
            a = s.rms(x, l.n1)
            q = s.rope(l.q(a).view(B, T, s.H, s.D).transpose(1, 2))
            k = s.rope(l.k(a).view(B, T, s.KV, s.D).transpose(1, 2))
            v = l.v(a).view(B, T, s.KV, s.D).transpose(1, 2)
            k = k.repeat_interleave(s.H // s.KV, dim=1)
            v = v.repeat_interleave(s.H // s.KV, dim=1)
            att = (q @ k.transpose(-1, -2)) / math.sqrt(s.D) + s.mask.to(q.dtype)
            o = (att.float().softmax(-1).to(q.dtype) @ v).transpose(1, 2).reshape(B, T, s.H * s.D)
            x = x + l.o(o)
            m = s.rms(x, l.n2)
            x = x + l.down(F.silu(l.gate(m)) * l.up(m))
        return s.head(s.rms(x, s.norm))


def main():
    print("ready " + torch.__version__, flush=True)
    cache = {}
    for line in sys.stdin:
        try:
            c = json.loads(line)
            torch.set_num_threads(int(c["threads"]))
            key = json.dumps({k: c[k] for k in sorted(c) if k not in ("steps",)})
            if key not in cache:
                cache.clear()
                torch.manual_seed(0)
                m = Llama(c)
                opt = torch.optim.AdamW(m.parameters(), lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
                ids = torch.randint(0, c["vocab"], (c["B"], c["T"]))
                cache[key] = (m, opt, ids)
            m, opt, ids = cache[key]
            tgt = ids.roll(-1, dims=1)

            def step():
                opt.zero_grad(set_to_none=True)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=c["dtype"] == "bf16"):
                    logits = m(ids)
                loss = F.cross_entropy(logits.float().view(-1, c["vocab"]), tgt.view(-1))
                loss.backward()
                torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
                opt.step()

            step()
            ts = []
            for _ in range(max(1, int(c["steps"]))):
                t0 = time.perf_counter()
                step()
                ts.append((time.perf_counter() - t0) * 1e3)
            ts.sort()
            print("ok %.4f" % ts[len(ts) // 2], flush=True)
        except Exception as e:  # noqa: BLE001 - reported to the bench, which fails loudly
            print("error " + repr(e).replace("\n", " "), flush=True)


if __name__ == "__main__":
    main()
