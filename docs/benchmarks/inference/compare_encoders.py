"""Two task encoders compared on Pendulum's shipped mapping (notes of 2026-12-06).

The product of per-transition Gaussians (what meta-rl ships) against a mean-pooling set
encoder (DeepSets: a mean of per-transition features, then an MLP to the belief), both
trained on the same probes for 3,000 Adam steps, then scored on the mapping's 6 test tasks:
the zero-shot normalised score of the prediction for the inferred descriptor, with probes
of 50, 100 and 200 steps, against the known descriptor's. The random and oracle returns
come from the published fine-tune benchmark (`pendulum-finetune/test/results.json`).

    python docs/benchmarks/inference/compare_encoders.py   # about 10 minutes on 2 cores
"""

import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from meta_rl.evaluation import evaluate_params
from meta_rl.mapping.checkpoint import TrainedMapping
from meta_rl.training.inference import InferenceConfig, _probes, split_tasks

torch.set_num_threads(1)
HERE = Path(__file__).resolve().parent
t = TrainedMapping.load("pendulum")
c = InferenceConfig()
tr, va = split_tasks(t)
X = _probes(t, tr, c, 0)
V = _probes(t, va, c, 10**6)
T = _probes(t, t.info["split"]["test"], InferenceConfig(probes_per_task=1), 123)
sp = t.task_space
P = c.probes_per_task
Y = np.repeat(np.stack([sp.to_descriptor(x, extrapolate=True) for x in tr]), P, 0)
YV = np.repeat(np.stack([sp.to_descriptor(x, extrapolate=True) for x in va]), P, 0)
flat = X.reshape(-1, X.shape[-1])
mu, sd = flat.mean(0), flat.std(0)
x = torch.tensor((X - mu) / sd, dtype=torch.float32)
v = torch.tensor((V - mu) / sd, dtype=torch.float32)
y, yv = torch.tensor(Y, dtype=torch.float32), torch.tensor(YV, dtype=torch.float32)
k = y.shape[1]


class Sets(nn.Module):
    def __init__(s, w, k, h=128, pool="mean"):
        super().__init__()
        s.phi = nn.Sequential(
            nn.Linear(w, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, h)
        )
        s.rho = nn.Sequential(
            nn.Linear(h + 1, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 2 * k)
        )
        s.k = k

    def forward(s, x, mask):
        f = s.phi(x) * mask[..., None]
        n = mask.sum(-1, keepdim=True).clamp_min(1)
        h = torch.cat([f.sum(-2) / n, torch.log(n) / 5], -1)
        o = s.rho(h)
        return o[..., : s.k], torch.nn.functional.softplus(o[..., s.k :]) + 1e-3


class Prod(nn.Module):
    def __init__(s, w, k, h=128):
        super().__init__()
        s.net = nn.Sequential(
            nn.Linear(w, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 2 * k)
        )
        s.k = k

    def forward(s, x, mask):
        o = s.net(x)
        m = o[..., : s.k]
        p = o[..., s.k :].clamp(-8, 8).exp() * mask[..., None]
        t = 1 + p.sum(-2)
        return (p * m).sum(-2) / t, t.rsqrt()


def run(kind, updates, lr=1e-3, seed=0):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net = Sets(x.shape[-1], k) if kind == "sets" else Prod(x.shape[-1], k)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps = torch.arange(x.shape[1])
    t0 = time.time()
    for _ in range(updates):
        pick = torch.randint(len(x), (64,), generator=g)
        L = torch.randint(20, 201, (64, 1), generator=g)
        m, s = net(x[pick], (steps[None] < L).float())
        loss = (0.5 * ((y[pick] - m) / s) ** 2 + torch.log(s)).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = {}
        for L in (50, 200):
            m, s = net(v, (steps[None] < L).float().expand(len(v), -1))
            err = m - yv
            r2 = 1 - (err**2).mean(0) / yv.var(0, unbiased=False)
            out[L] = (np.round(err.pow(2).mean(0).sqrt().numpy(), 3), np.round(r2.numpy(), 2))
    print(kind, updates, f"{time.time() - t0:.0f}s", out, flush=True)
    return net


res = json.loads((HERE.parent / "pendulum-finetune/test/results.json").read_text())["rows"]
test = torch.tensor((T - mu) / sd, dtype=torch.float32)
steps = torch.arange(200)
for kind in ("prod", "sets"):
    net = run(kind, 3000)
    out = []
    for L in (50, 100, 200):
        with torch.no_grad():
            m, s = net(test, (steps[None] < L).float().expand(len(test), -1))
        sk, si = [], []
        for i, row in enumerate(res):
            task = row["task"]
            known = evaluate_params(t.spec, t.predict(task), t.family, task, episodes=10, seed=0)
            pred = t.predict_descriptor(m[i].numpy())
            inf = evaluate_params(t.spec, pred, t.family, task, episodes=10, seed=0)

            def n(value, row=row):
                return (value - row["random"]) / (row["oracle"] - row["random"])

            sk.append(n(known))
            si.append(n(inf))
        out.append((L, round(np.mean(sk), 3), round(np.mean(si), 3), np.round(si, 2)))
    print(kind, out, flush=True)
