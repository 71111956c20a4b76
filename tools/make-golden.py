#!/usr/bin/env python3
"""PyTorch golden fixtures for lungpath's `tiny` preset (run by hand, not in CI).

Builds the two networks of MODEL-SPEC.md with torch modules (same state_dict names as lungpath),
initialises them as the original code does, runs ONE training step in train mode (dropout p=0,
since dropout masks cannot match torch's RNG) and writes, per network, a safetensors file with:
  input, target, init.<state>, logp, loss, grad.<param>, after.<state> (after one Adam step)
plus `<net>-torch-state.safetensors`: a plain torch state_dict, to prove torch -> lungpath loading.

With --check-ours DIR it instead loads the weights that tools/export-for-torch.ts wrote into the
torch modules with load_state_dict(strict=True), runs the same fixed input in eval mode, and
compares torch's log-probabilities with the ones lungpath recorded: lungpath -> torch.

Usage (Debian's python3-torch 1.13):  /usr/bin/python3 tools/make-golden.py [--out test/fixtures]
"""
import argparse
import json
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)

# The `tiny` preset of src/nn/config.ts (keep in step).
TINY = {
    "classes": ["NORM", "SCLC", "SC", "ADC"],
    "imageSize": 256,
    "patch": {"size": 64, "stride": 32},
    "level1": {"widths": [8, 8, 16, 16, 16], "downsample": [True, True, True, False, False]},
    "level2": {"patchStride": 64, "widths": [16, 16], "downsample": [True, False],
               "hidden": [32, 32, 16], "dropout": 0.5},
}


def feature_layers(c_in, widths, downsample):
    layers = []
    c = c_in
    for w, d in zip(widths, downsample):
        layers += [nn.Conv2d(c, w, 3, 1, 1), nn.BatchNorm2d(w), nn.ReLU(),
                   nn.Conv2d(w, w, 3, 1, 1), nn.BatchNorm2d(w), nn.ReLU()]
        if d:
            layers += [nn.Conv2d(w, w, 2, 2), nn.BatchNorm2d(w), nn.ReLU()]
        c = w
    layers.append(nn.Conv2d(c, 1, 1))
    return nn.Sequential(*layers)


def side(size, downsample):
    for d in downsample:
        if d:
            size //= 2
    return size


class Net(nn.Module):
    def __init__(self, features, classifier):
        super().__init__()
        self.features = features
        self.classifier = classifier

    def forward(self, x):
        x = self.features(x)
        x = x.view(x.size(0), -1)
        return F.log_softmax(self.classifier(x), dim=1)


def init_weights(net):
    """The original code's init: Kaiming normal conv, BN 1/0, Linear N(0, 0.01), zero biases."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def patch_net(cfg):
    fmap = side(cfg["patch"]["size"], cfg["level1"]["downsample"])
    return Net(feature_layers(3, cfg["level1"]["widths"], cfg["level1"]["downsample"]),
               nn.Sequential(nn.Linear(fmap * fmap, len(cfg["classes"]))))


def image_net(cfg, dropout):
    fmap = side(cfg["patch"]["size"], cfg["level1"]["downsample"])
    per_row = (cfg["imageSize"] - cfg["patch"]["size"]) // cfg["level2"]["patchStride"] + 1
    k = per_row * per_row
    m2 = side(fmap, cfg["level2"]["downsample"])
    layers, width = [], m2 * m2
    for h in cfg["level2"]["hidden"]:
        layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
        width = h
    layers.append(nn.Linear(width, len(cfg["classes"])))
    return Net(feature_layers(k, cfg["level2"]["widths"], cfg["level2"]["downsample"]), nn.Sequential(*layers)), k, fmap


DTYPES = {np.dtype("float32"): "F32", np.dtype("int64"): "I64"}
NP_DTYPES = {"F32": np.float32, "I64": np.int64}


def write_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, arr in tensors.items():
        arr = np.array(arr, order="C", copy=True)  # keeps 0-d shapes (ascontiguousarray makes them 1-d)
        raw = arr.tobytes()
        header[name] = {"dtype": DTYPES[arr.dtype], "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + b:8 + n + e], dtype=NP_DTYPES[info["dtype"]]).reshape(info["shape"]).copy()
    return out, meta


def state_arrays(net, prefix):
    return {f"{prefix}{k}": v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}


def one_step(net, x, target, path, cfg):
    net.train()
    init = state_arrays(net, "init.")
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999))
    opt.zero_grad()
    logp = net(x)
    loss = F.nll_loss(logp, target)
    loss.backward()
    grads = {f"grad.{k}": p.grad.detach().numpy().copy() for k, p in net.named_parameters()}
    opt.step()
    tensors = {"input": x.numpy(), "target": target.numpy().astype(np.int64),
               "logp": logp.detach().numpy(), "loss": loss.detach().numpy().reshape(1)}
    tensors.update(init)
    tensors.update(grads)
    tensors.update(state_arrays(net, "after."))
    write_safetensors(path, tensors, {"config": json.dumps(cfg), "torch": torch.__version__})
    print(f"wrote {path}: loss {loss.item():.6f}")


def check_ours(folder):
    worst = 0.0
    for level in ("level1", "level2"):
        path = f"{folder}/{level}.safetensors"
        arrays, meta = read_safetensors(path)
        cfg = json.loads(meta["config"])
        net = patch_net(cfg) if level == "level1" else image_net(cfg, cfg["level2"]["dropout"])[0]
        result = net.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()}, strict=True)
        net.eval()
        shape = json.loads(meta["check_input_shape"])
        n = int(np.prod(shape))
        x = torch.from_numpy((0.5 + 0.5 * np.sin(0.01 * np.arange(n))).astype(np.float32).reshape(shape))
        with torch.no_grad():
            ours = np.array(json.loads(meta["check_logp"]), dtype=np.float64)
            theirs = net(x).numpy().reshape(-1).astype(np.float64)
        diff = float(np.max(np.abs(ours - theirs)))
        worst = max(worst, diff)
        print(f"{level}: load_state_dict(strict=True): {result}; torch logp {np.round(theirs, 6).tolist()}; max |diff| vs lungpath {diff:.2e}")
    if worst > 1e-4:
        print("FAIL: outputs differ by more than 1e-4")
        return 1
    print("OK: lungpath weights load into torch and give the same outputs (within 1e-4)")
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="test/fixtures")
    ap.add_argument("--check-ours", default=None, help="folder written by tools/export-for-torch.ts")
    args = ap.parse_args()
    cfg = json.loads(json.dumps(TINY))

    if args.check_ours:
        return check_ours(args.check_ours)

    torch.manual_seed(1234)
    net1 = patch_net(cfg)
    init_weights(net1)
    x1 = torch.rand(3, 3, cfg["patch"]["size"], cfg["patch"]["size"])
    t1 = torch.tensor([0, 2, 3])
    write_safetensors(f"{args.out}/tiny-level1-torch-state.safetensors", state_arrays(net1, ""), {"config": json.dumps(cfg)})
    one_step(net1, x1, t1, f"{args.out}/golden-tiny-level1.safetensors", cfg)

    cfg2 = json.loads(json.dumps(cfg))
    cfg2["level2"]["dropout"] = 0.0
    net2, k, fmap = image_net(cfg2, 0.0)
    init_weights(net2)
    x2 = torch.randn(2, k, fmap, fmap)
    t2 = torch.tensor([1, 3])
    write_safetensors(f"{args.out}/tiny-level2-torch-state.safetensors", state_arrays(net2, ""), {"config": json.dumps(cfg)})
    one_step(net2, x2, t2, f"{args.out}/golden-tiny-level2.safetensors", cfg2)


if __name__ == "__main__":
    sys.exit(main())
