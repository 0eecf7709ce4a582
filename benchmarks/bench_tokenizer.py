"""Tokenizer throughput: encode / decode frames per second (batch 1 and 64) and training iterations/s.

Usage::

    python benchmarks/bench_tokenizer.py [--presets cpu,paper] [--device cpu] [--threads N] [--repeats 3]

Encode/decode use the window length of 64 frames (batch 64) and a 196-frame clip (batch 1), random
weights (throughput does not depend on training). Training it/s is one optimiser step on a batch of the
preset's batch size (``paper`` on a CPU: 4; ``--train-batch`` overrides both). Prints a table; the
numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import time

import torch


def _time(fn, repeats: int) -> float:
    fn()                                                             # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bench_preset(name: str, device: str, repeats: int, train_batch: int | None,
                 large_batch: int = 64) -> list[tuple]:
    from remomask.tokenizer import MotionTokenizer, TokenizerConfig
    from remomask.tokenizer.train import TrainConfig, tokenizer_loss

    torch.manual_seed(0)
    model = MotionTokenizer(TokenizerConfig.preset(name)).to(device)
    model(torch.randn(8, 64, 263, device=device))                    # initialise codebooks
    model.eval()
    rows = []
    for batch, frames in ((1, 196), (large_batch, 64)):
        x = torch.randn(batch, frames, 263, device=device)
        with torch.no_grad():
            ids = model.encode(x)
            t_enc = _time(lambda: model.encode(x), repeats)
            t_dec = _time(lambda: model.decode(ids), repeats)
        rows.append((name, f"encode b{batch}x{frames}", batch * frames / t_enc, "frames/s"))
        rows.append((name, f"decode b{batch}x{frames}", batch * frames / t_dec, "frames/s"))
    model.train()
    bs = train_batch or TrainConfig.preset_defaults(name).batch_size
    if train_batch is None and name == "paper" and not device.startswith("cuda"):
        bs = 4  # batch 256 of the 94M-parameter model takes minutes per step on a CPU
    x = torch.randn(bs, 64, 263, device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        loss, _ = tokenizer_loss(model(x), x, slice(4, 67))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    t = _time(step, repeats)
    rows.append((name, f"train step b{bs}", 1.0 / t, "it/s"))
    params = sum(p.numel() for p in model.parameters())
    rows.append((name, "parameters", params / 1e6, "M"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="cpu,paper")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--train-batch", type=int, default=None, help="Override the presets' batch size.")
    ap.add_argument("--large-batch", type=int, default=64, help="Batch of 64-frame windows for encode/decode.")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for name in args.presets.split(","):
        rows += bench_preset(name, args.device, args.repeats, args.train_batch, args.large_batch)
    print(f"device {args.device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'preset':<7} {'measure':<22} {'value':>12}  unit")
    for name, what, value, unit in rows:
        print(f"{name:<7} {what:<22} {value:>12.2f}  {unit}")


if __name__ == "__main__":
    main()
