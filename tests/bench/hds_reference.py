#!/usr/bin/env python3
"""The HDS U-ResNet of docs/design.md §3 written independently in Python PyTorch.

Three uses:
  check-export FILE [--reference-names F]
      torch.load an `hds-trainer export --layout reference --probe` file of the paper model,
      load its state_dict with strict=True into this model, and compare the probe logits.
  check-bundle BUNDLE FILM.pgm INFER.json
      build the network a model bundle (`hds-trainer export --bundle`) describes, load its weights
      strictly, run it on a PGM film of exactly the network's input size with no blank columns
      (so that the preprocessing is the grey scale and the bundle's normalisation alone), and
      compare the mass probability and the mask's pixel count with what `hds-trainer infer` wrote
      for that film.
  bench --batch B --height H --width W --steps N [--threads T] [--device cuda] [--precision bf16]
        [--channels-last] [--compile MODE] [--rounds R] [--ready FILE --go FILE]
      time a full training step (forward, HDS loss, backward, SGD), as `hds-trainer bench` does,
      and print one JSON line a round ("impl": "pytorch"): the PyTorch baselines of
      tests/bench/RESULTS.md, eager or compiled. --ready/--go let tests/bench/gpu.sh compile
      while it builds hds and time once nothing else runs.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

WIDTHS = (16, 32, 64, 128, 128, 128, 128, 128, 64, 32, 16)
STAGE_DROPOUT = (0.2, 0.2, 0.2, 0.5, 0.5, 0.5, 0.5, 0.5, 0.2, 0.2, 0.2)
HEAD_DROPOUT = (0.5, 0.5, 0.5, 0.2, 0.2, 0.2)
HEAD_WEIGHTS = (3.5, 3.0, 2.5, 2.0, 1.5, 1.0)
ALPHA, MU = 0.03, 1e-6


def up2():
    return nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)


def bn_relu_conv(cin, cout, bias=False):
    return [nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, cout, 1, bias=bias)]


class Block(nn.Module):
    def __init__(self, c, p):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c)
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.drop = nn.Dropout2d(p)

    def forward(self, x):
        y = self.conv1(F.relu(self.bn1(x)))
        return x + self.conv2(self.drop(F.relu(self.bn2(y))))


class Adapter(nn.Module):
    """BN -> ReLU -> 1x1 conv, kept in a Sequential named `model`."""

    def __init__(self, cin, cout, bias):
        super().__init__()
        self.model = nn.Sequential(*bn_relu_conv(cin, cout, bias))

    def forward(self, x):
        return self.model(x)


class Fusion(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv2 = Adapter(2 * c, c, False)

    def forward(self, up, skip):
        return self.conv2(torch.cat([up, skip], 1))


def down(cin, cout):
    return nn.Sequential(*(bn_relu_conv(cin, cout) if cin != cout else []), nn.MaxPool2d(2))


class Trunk(nn.Module):
    def __init__(self, widths=WIDTHS, blocks=2):
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.ModuleList(Block(w, p) for _ in range(blocks)) for w, p in zip(widths, STAGE_DROPOUT))
        self.downs = nn.ModuleList(down(widths[k], widths[k + 1]) for k in range(5))
        self.ups = nn.ModuleList(
            nn.Sequential(*(bn_relu_conv(widths[5 + k], widths[6 + k])
                            if widths[5 + k] != widths[6 + k] else []), up2()) for k in range(5))
        self.fusions = nn.ModuleList(Fusion(widths[6 + k]) for k in range(5))
        self.inconv = nn.Conv2d(1, widths[0], 3, padding=1, bias=False)

    def forward(self, x):
        def stage(s, x):
            for block in self.blocks[s]:
                x = block(x)
            return x
        x, skips = self.inconv(x), []
        for k in range(5):
            x = stage(k, x)
            skips.append(x)
            x = self.downs[k](x)
        x = stage(5, x)
        feats = [x]
        for k in range(5):
            x = self.fusions[k](self.ups[k](x), skips[4 - k])
            x = stage(6 + k, x)
            feats.append(x)
        return feats


def seg_head(i, c):
    return nn.Sequential(Block(c, HEAD_DROPOUT[i]), Adapter(c, 2, True), *[up2() for _ in range(5 - i)])


def cls_head(i, c):
    layers, w = [], c
    for _ in range(2):
        nxt = min(2 * w, 128)
        layers += [down(w, nxt) if nxt != w else nn.MaxPool2d(2), Block(nxt, HEAD_DROPOUT[i])]
        w = nxt
    if i >= 1:
        layers.append(nn.AvgPool2d(2 ** i))
    return nn.Sequential(*layers, Adapter(w, 2, True))


class HdsNet(nn.Module):
    def __init__(self, widths=WIDTHS, blocks=2):
        super().__init__()
        self.trunk = Trunk(widths, blocks)
        self.exit_seg = nn.ModuleList(seg_head(i, widths[5 + i]) for i in range(6))
        self.exit_cls = nn.ModuleList(cls_head(i, widths[5 + i]) for i in range(6))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        feats = self.trunk(x)
        return ([h(f) for h, f in zip(self.exit_seg, feats)],
                [h(f) for h, f in zip(self.exit_cls, feats)])


def hds_loss(seg, cls, mask, label):
    total = 0
    for i in range(6):
        total = total + HEAD_WEIGHTS[i] * F.cross_entropy(seg[i], mask)
        inst = cls[i].flatten(2)
        idx = inst[:, 0, :].argmin(1).detach()
        chosen = inst.gather(2, idx.view(-1, 1, 1).expand(-1, 2, 1)).squeeze(2)
        mil = F.cross_entropy(chosen, label) + MU * inst.softmax(1)[:, 1].sum() / inst.shape[0]
        total = total + ALPHA * HEAD_WEIGHTS[i] * mil
    return total


def check_export(path, reference_names):
    data = torch.load(path)
    state = data["state_dict"]
    if reference_names:
        names = [line.split()[0] for line in open(reference_names) if line.strip() and not line.startswith("#")]
        if list(state.keys()) != names:
            sys.exit(f"{path}: state_dict keys differ from {reference_names}")
    model = HdsNet()
    model.load_state_dict(state, strict=True)
    model.eval()
    with torch.no_grad():
        seg, cls = model(data["probe_input"])
    seg, cls = torch.stack(seg), torch.stack(cls)
    for name, ours, theirs in (("probe_seg", seg, data["probe_seg"]), ("probe_cls", cls, data["probe_cls"])):
        if ours.shape != theirs.shape:
            sys.exit(f"{name}: shape {tuple(theirs.shape)} in the file, {tuple(ours.shape)} here")
        err = (ours - theirs).abs().max().item()
        if not torch.allclose(ours, theirs, rtol=1e-4, atol=1e-5):
            sys.exit(f"{name}: max abs difference {err:.3g} exceeds the tolerance")
        print(f"{name}: max abs difference {err:.3g}")
    print(f"{path}: {len(state)} entries load strictly; probe reproduced")


def read_pgm(path):
    """A binary (P5) PGM as a float tensor of its levels, and its maximum level."""
    data = open(path, "rb").read()
    fields, at = [], 2
    if data[:2] != b"P5":
        sys.exit(f"{path}: not a binary PGM")
    while len(fields) < 3:
        while data[at:at + 1].isspace():
            at += 1
        if data[at:at + 1] == b"#":
            at = data.index(b"\n", at)
            continue
        end = at
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(int(data[at:end]))
        at = end
    cols, rows, maxval = fields
    at += 1
    wide = maxval > 255
    count = rows * cols
    raw = data[at:at + count * (2 if wide else 1)]
    if wide:
        levels = [raw[2 * i] << 8 | raw[2 * i + 1] for i in range(count)]
    else:
        levels = list(raw)
    return torch.tensor(levels, dtype=torch.float32).view(rows, cols), maxval


def check_bundle(bundle, film, infer_json):
    meta = json.load(open(f"{bundle}/configs/metadata.json"))["hds"]
    model = HdsNet(meta["model"]["widths"], meta["model"]["blocks_per_stage"])
    model.load_state_dict(torch.load(f"{bundle}/{meta['weights']}")["state_dict"], strict=True)
    model.eval()
    levels, maxval = read_pgm(film)
    rows, cols = meta["preprocessing"]["image_rows"], meta["preprocessing"]["image_cols"]
    if tuple(levels.shape) != (rows, cols):
        sys.exit(f"{film}: {tuple(levels.shape)}; this check needs the network's size {(rows, cols)}")
    grey = levels / maxval
    if (grey.max(0).values <= meta["preprocessing"]["blank_threshold"]).any():
        sys.exit(f"{film}: has blank columns; this check needs none")
    x = (grey - meta["normalisation"]["mean"]) / meta["normalisation"]["std"]
    with torch.no_grad():
        seg, cls = model(x.view(1, 1, rows, cols))
    foreground = seg[-1].softmax(1)[0, 1]
    instances = cls[-1].flatten(2)[0]  # [2, N]
    if meta["mil_rule"] == "MIN_BACKGROUND_LOGIT":
        chosen = instances[0].argmin()
    else:
        chosen = instances.softmax(0)[1].argmax()
    probability = instances[:, chosen].softmax(0)[1].item()
    theirs = json.load(open(infer_json))
    mask_pixels = sum(lesion["area_pixels"] for lesion in theirs["lesions"])
    threshold, margin = meta["threshold"], 1e-4
    surely = int((foreground > threshold + margin).sum())
    maybe = int((foreground > threshold - margin).sum())
    print(f"mass probability: {probability:.6f} here, {theirs['mass_probability']:.6f} by infer")
    print(f"mask pixels: {surely}..{maybe} here, {mask_pixels} by infer")
    if abs(probability - theirs["mass_probability"]) > 1e-4:
        sys.exit("the mass probabilities differ")
    if not surely <= mask_pixels <= maybe:
        sys.exit("the masks differ")
    print(f"{bundle}: weights load strictly; infer's outputs reproduced")


class StepLoss(nn.Module):
    """Forward pass and HDS loss as one module, so that torch.compile sees (and fuses) both: the six
    segmentation maps at full resolution and their cross-entropies are most of the step's memory
    traffic."""

    def __init__(self, model, precision):
        super().__init__()
        self.model = model
        self.precision = precision

    def forward(self, x, mask, label):
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            seg, cls = self.model(x)
        return hds_loss([s.float() for s in seg], [c.float() for c in cls], mask, label)


def sgd(params, device):
    # PyTorch's fastest SGD where it has one (one fused kernel for all parameters on CUDA).
    options = dict(lr=0.01, momentum=0.9, weight_decay=5e-4)
    if device.type == "cuda":
        try:
            return torch.optim.SGD(params, fused=True, **options)
        except (TypeError, RuntimeError):
            return torch.optim.SGD(params, foreach=True, **options)
    return torch.optim.SGD(params, **options)


def wait_for(path, limit_s):
    deadline = time.monotonic() + limit_s
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            sys.exit(f"bench: {path} did not appear within {limit_s} s")
        time.sleep(0.1)


def bench(args):
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            sys.exit("bench --device cuda: this PyTorch sees no CUDA device")
        torch.backends.cudnn.benchmark = True
    if args.compile and not hasattr(torch, "compile"):
        sys.exit(f"bench --compile: torch.compile needs PyTorch 2 (this is {torch.__version__})")
    torch.manual_seed(1)
    layout = torch.channels_last if args.channels_last else torch.contiguous_format
    model = HdsNet().to(device, memory_format=layout).train()
    opt = sgd(model.parameters(), device)
    step_loss = StepLoss(model, args.precision)
    if args.compile:
        step_loss = torch.compile(step_loss, mode=args.compile, dynamic=False)
    x = torch.randn(args.batch, 1, args.height, args.width, device=device).to(memory_format=layout)
    mask = torch.randint(0, 2, (args.batch, args.height, args.width), device=device)
    label = torch.randint(0, 2, (args.batch,), device=device)

    def step():
        start = time.perf_counter()
        if args.compile and hasattr(torch.compiler, "cudagraph_mark_step_begin"):
            torch.compiler.cudagraph_mark_step_begin()
        loss = step_loss(x, mask, label)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()  # waits for the device, as hds-trainer bench does
        return (time.perf_counter() - start) * 1000

    setup_start = time.perf_counter()
    for _ in range(args.warmup):
        step()
    setup_s = time.perf_counter() - setup_start  # with torch.compile: mostly compilation
    if device.type == "cuda":
        torch.cuda.empty_cache()  # hold only what the step needs while others are timed
    if args.ready:
        open(args.ready, "w").close()
    if args.go:
        wait_for(args.go, args.go_limit_s)
    for round_index in range(1, args.rounds + 1):
        ms = statistics.median(step() for _ in range(args.steps))
        print(json.dumps({
            "impl": "pytorch", "torch": torch.__version__, "round": round_index,
            "device": device.type, "batch": args.batch, "height": args.height,
            "width": args.width, "steps": args.steps, "threads": torch.get_num_threads(),
            "precision": args.precision.upper(), "channels_last": args.channels_last,
            "compile": args.compile or "eager", "warmup_s": round(setup_s, 1),
            "median_step_ms": ms, "patches_per_second": args.batch * 1000 / ms}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check-export")
    c.add_argument("file")
    c.add_argument("--reference-names")
    k = sub.add_parser("check-bundle")
    k.add_argument("bundle")
    k.add_argument("film")
    k.add_argument("infer_json")
    b = sub.add_parser("bench")
    for name, default in (("batch", 2), ("height", 256), ("width", 192), ("steps", 10), ("warmup", 2),
                          ("threads", 0), ("rounds", 1), ("go-limit-s", 1200)):
        b.add_argument("--" + name, type=int, default=default)
    b.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    b.add_argument("--precision", default="fp32", choices=("fp32", "bf16"),
                   help="bf16: autocast of the forward pass, losses and weights in float32")
    b.add_argument("--channels-last", action="store_true", help="NHWC model and input")
    b.add_argument("--compile", metavar="MODE",
                   help="torch.compile forward and loss with this mode (default, reduce-overhead, ...)")
    b.add_argument("--ready", metavar="FILE", help="create FILE once warmed up (and compiled)")
    b.add_argument("--go", metavar="FILE", help="then wait for FILE before timing")
    args = parser.parse_args()
    if args.command == "check-export":
        check_export(args.file, args.reference_names)
    elif args.command == "check-bundle":
        check_bundle(args.bundle, args.film, args.infer_json)
    else:
        bench(args)


if __name__ == "__main__":
    main()
