#!/usr/bin/env python3
"""PyTorch fixture for the label-smoothed loss (run by hand, not in CI).

torch.nn.functional.cross_entropy(z, t, label_smoothing=eps) with reduction 'mean', its loss and
gradient with respect to z, for a few shapes and strengths; written as JSON to
test/fixtures/label-smoothing-torch.json. test/kernels/loss.test.ts runs lungpath's fused
log-softmax/NLL kernel on the same logits and compares.

Usage (Debian's python3-torch 1.13):  /usr/bin/python3 tools/make-loss-golden.py [--out FILE]
"""
import argparse
import json

import torch
import torch.nn.functional as F

parser = argparse.ArgumentParser()
parser.add_argument("--out", default="test/fixtures/label-smoothing-torch.json")
args = parser.parse_args()

torch.manual_seed(0)
cases = []
for n, classes, eps, scale in [(1, 4, 0.1, 3.0), (16, 4, 0.1, 4.0), (5, 7, 0.25, 10.0), (9, 3, 0.9, 2.0), (7, 4, 0.0, 3.0)]:
    # Logits rounded to 6 decimals as stored, so the fixture's loss and gradient are theirs exactly.
    z = torch.round((torch.rand(n, classes, dtype=torch.float64) * 2 - 1) * scale * 1e6) / 1e6
    z.requires_grad_()
    t = torch.randint(0, classes, (n,))
    loss = F.cross_entropy(z, t, label_smoothing=eps)
    loss.backward()
    cases.append({
        "n": n, "classes": classes, "smoothing": eps,
        "logits": z.detach().flatten().tolist(), "targets": t.tolist(),
        "loss": loss.item(), "grad": z.grad.flatten().tolist(),
    })

with open(args.out, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f, indent=1)
    f.write("\n")
print(f"wrote {len(cases)} cases to {args.out} (torch {torch.__version__})")
