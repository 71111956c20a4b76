#!/usr/bin/env python3
"""The PyTorch half of the one-shot GPU check (bench/gpu/run.sh): the same convolutions as
bench/gpu/ours.ts (read from its JSON lines, so the shapes cannot drift) forward, dx and dW, and a
seed patch-net training step (the network of tools/make-golden.py at the seed widths, Adam) at the
same batches — fp32 with TF32 off and cudnn.benchmark on. Writes JSON lines for report.mjs.

Timing: CUDA events (time.perf_counter + synchronize on the CPU), a warm-up of 3 launches (cudnn's
algorithm search happens there), then 5 samples of k back-to-back launches, k so a sample lasts
>= --sample-ms; the median ms per launch. Also: the GPU's name and a measured fp32 matrix-product
rate (8192^3, TF32 off) as a practical fp32 ceiling.

    python3 bench/gpu/torch_bench.py --ours ours.jsonl --out torch.jsonl --step-batches 16,64
"""
import argparse
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.backends.cudnn.benchmark = True

SEED_L1 = {"widths": [16, 32, 64, 128, 256], "downsample": [True, True, True, False, False], "patch": 512}
TINY_L1 = {"widths": [8, 8, 16, 16, 16], "downsample": [True, True, True, False, False], "patch": 64}


def feature_layers(c_in, widths, downsample):
    layers, c = [], c_in
    for w, d in zip(widths, downsample):
        layers += [nn.Conv2d(c, w, 3, 1, 1), nn.BatchNorm2d(w), nn.ReLU(), nn.Conv2d(w, w, 3, 1, 1), nn.BatchNorm2d(w), nn.ReLU()]
        if d:
            layers += [nn.Conv2d(w, w, 2, 2), nn.BatchNorm2d(w), nn.ReLU()]
        c = w
    layers.append(nn.Conv2d(c, 1, 1))
    return nn.Sequential(*layers)


class PatchNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        side = cfg["patch"] // (2 ** sum(cfg["downsample"]))
        self.features = feature_layers(3, cfg["widths"], cfg["downsample"])
        self.classifier = nn.Sequential(nn.Linear(side * side, 4))

    def forward(self, x):
        x = self.features(x)
        return F.log_softmax(self.classifier(x.view(x.size(0), -1)), dim=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", required=True, help="ours.jsonl from bench/gpu/ours.ts (the shapes)")
    ap.add_argument("--out", default="torch.jsonl")
    ap.add_argument("--step-batches", default="16,64")
    ap.add_argument("--config", default="seed")
    ap.add_argument("--sample-ms", type=float, default=50)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads when there is no GPU (0: torch's default)")
    args = ap.parse_args()

    cuda = torch.cuda.is_available()
    dev = torch.device("cuda" if cuda else "cpu")
    if not cuda and args.threads:
        torch.set_num_threads(args.threads)
    out = open(args.out, "w")

    def emit(row):
        out.write(json.dumps(row) + "\n")
        out.flush()
        print(json.dumps(row), flush=True)

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def timed(fn):
        for _ in range(3):
            fn()
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        once = (time.perf_counter() - t0) * 1000
        k = max(1, min(200, int(args.sample_ms / max(once, 0.01)) + 1))
        samples = []
        for _ in range(5):
            if cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                for _ in range(k):
                    fn()
                end.record()
                torch.cuda.synchronize()
                samples.append(start.elapsed_time(end) / k)
            else:
                t0 = time.perf_counter()
                for _ in range(k):
                    fn()
                samples.append((time.perf_counter() - t0) * 1000 / k)
        samples.sort()
        return samples[2]

    name = torch.cuda.get_device_name(0) if cuda else "cpu"
    emit({"kind": "device", "name": name, "torch": torch.__version__, "cudnn": torch.backends.cudnn.version() if cuda else None,
          "tf32": [torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32], "cudnn_benchmark": torch.backends.cudnn.benchmark,
          "threads": torch.get_num_threads()})

    g = torch.Generator(device="cpu").manual_seed(1)
    rand = lambda *shape: torch.rand(*shape, generator=g).sub_(0.5).to(dev)

    m = 8192 if cuda else 1024
    a, b = rand(m, m), rand(m, m)
    ms = timed(lambda: torch.mm(a, b))
    emit({"kind": "ceiling", "name": f"fp32 matmul {m}^3 (TF32 off)", "unit": "GFLOP/s", "value": 2 * m ** 3 / (ms * 1e6), "ms": ms})
    del a, b

    rows = [json.loads(line) for line in open(args.ours) if line.strip()]
    conv = torch.ops.aten.convolution_backward
    for r in rows:
        if r.get("kind") != "conv":
            continue
        s = r["shape"]
        ho = (s["h"] + 2 * s["pad"] - s["kh"]) // s["stride"] + 1
        wo = (s["w"] + 2 * s["pad"] - s["kw"]) // s["stride"] + 1
        x, w, bias = rand(s["n"], s["cIn"], s["h"], s["w"]), rand(s["cOut"], s["cIn"], s["kh"], s["kw"]), rand(s["cOut"])
        dy = rand(s["n"], s["cOut"], ho, wo)
        st, pd = [s["stride"]] * 2, [s["pad"]] * 2
        if r["dir"] == "forward":
            fn = lambda: F.conv2d(x, w, bias, st, pd)
        elif r["dir"] == "dx":
            fn = lambda: conv(dy, x, w, [s["cOut"]], st, pd, [1, 1], False, [0, 0], 1, [True, False, False])
        else:
            fn = lambda: conv(dy, x, w, [s["cOut"]], st, pd, [1, 1], False, [0, 0], 1, [False, True, False])
        with torch.no_grad():
            ms = timed(fn)
        emit({"kind": "conv", "dir": r["dir"], "label": r["label"], "shape": s, "flops": r["flops"], "ms": ms, "gflops": r["flops"] / (ms * 1e6)})
        del x, w, bias, dy

    cfg = SEED_L1 if args.config == "seed" else TINY_L1
    steps = {r["batch"]: r for r in rows if r.get("kind") == "step"}
    for batch in [int(v) for v in args.step_batches.split(",") if v]:
        torch.manual_seed(7)
        net = PatchNet(cfg).to(dev).train()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        x = rand(batch, 3, cfg["patch"], cfg["patch"])
        t = torch.arange(batch, device=dev) % 4

        def step():
            opt.zero_grad(set_to_none=False)
            loss = F.nll_loss(net(x), t)
            loss.backward()
            opt.step()

        ms = timed(step)
        flops = steps[batch]["flops"] if batch in steps else None
        emit({"kind": "step", "name": f"train step {args.config} patch net", "batch": batch, "flops": flops, "ms": ms,
              "gflops": flops / (ms * 1e6) if flops else None})
        del net, opt, x
        if cuda:
            torch.cuda.empty_cache()
    out.close()


if __name__ == "__main__":
    sys.exit(main())
