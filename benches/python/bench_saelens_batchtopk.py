#!/usr/bin/env python3
"""Time SAELens's BatchTopK and Matryoshka BatchTopK training steps on CPU, for
`cargo xtask bench-compare` (the shared baselines time TopK, JumpReLU and ReLU only).

The step is sae_lens.training.sae_trainer.SAETrainer.step() on a BatchTopKTrainingSAE or a
MatryoshkaBatchTopKTrainingSAE (prefix widths d_sae/8, d_sae/2, d_sae, as `sae bench --arch
matryoshka`): forward with the batch's top k*B, MSE (+ inner-level MSE), AuxK when latents are
dead, backward, Adam, the threshold EMA and the dead-latent bookkeeping. With --dead-frac F a
fixed random fraction of latents is marked dead before every step, so AuxK runs.

Prints one 'SUMMARY anchor ...' line in the format of shared/baseline/bench_anchor.py.
"""
import argparse
import os
import statistics
import time

ap = argparse.ArgumentParser()
ap.add_argument("--arch", choices=["batchtopk", "matryoshka"], default="batchtopk")
ap.add_argument("--mode", choices=["train", "encode"], default="train")
ap.add_argument("--d-in", type=int, default=384)
ap.add_argument("--d-sae", type=int, default=6144)
ap.add_argument("--k", type=int, default=32)
ap.add_argument("--batch", type=int, default=4096)
ap.add_argument("--dead-frac", type=float, default=0.0)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--warmup", type=int, default=2)
ap.add_argument("--reps", type=int, default=7)
ap.add_argument("--pool", type=int, default=4)
args = ap.parse_args()

os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
os.environ.setdefault("WANDB_MODE", "disabled")
import torch  # noqa: E402
import sae_lens  # noqa: E402
from sae_lens.config import SAETrainerConfig  # noqa: E402
from sae_lens.training.sae_trainer import SAETrainer  # noqa: E402

torch.set_num_threads(args.threads)
torch.manual_seed(0)
B, D, M, K = args.batch, args.d_in, args.d_sae, args.k
xs = [torch.randn(B, D) for _ in range(args.pool)]
forced_dead = torch.rand(M, generator=torch.Generator().manual_seed(1)) < args.dead_frac

if args.arch == "batchtopk":
    from sae_lens.saes.batchtopk_sae import BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig
    sae = BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(d_in=D, d_sae=M, k=float(K)))
else:
    from sae_lens.saes.matryoshka_batchtopk_sae import (
        MatryoshkaBatchTopKTrainingSAE, MatryoshkaBatchTopKTrainingSAEConfig)
    sae = MatryoshkaBatchTopKTrainingSAE(MatryoshkaBatchTopKTrainingSAEConfig(
        d_in=D, d_sae=M, k=float(K), matryoshka_widths=[M // 8, M // 2, M]))

cfg = SAETrainerConfig(total_training_samples=B * 10**6, train_batch_size_samples=B,
                       lr=2e-4, lr_end=2e-5, device="cpu")
trainer = SAETrainer(cfg=cfg, sae=sae, data_provider=iter(()))


def train_step(x):
    if args.dead_frac > 0:
        trainer.n_forward_passes_since_fired[forced_dead] = cfg.dead_feature_window + 1
    trainer.step(x)
    trainer.n_training_steps += 1


def infer(x):
    with torch.inference_mode():
        return sae.encode(x)


fn = train_step if args.mode == "train" else infer
for i in range(args.warmup):
    fn(xs[i % len(xs)])
ts = []
for i in range(args.reps):
    t0 = time.perf_counter()
    fn(xs[(args.warmup + i) % len(xs)])
    ts.append(time.perf_counter() - t0)
med, lo, hi = statistics.median(ts), min(ts), max(ts)
auxk = int(args.mode == "train" and args.dead_frac > 0)
print(f"SUMMARY anchor lib=saelens version={sae_lens.__version__} arch={args.arch} mode={args.mode} "
      f"auxk={auxk} d_in={D} d_sae={M} k={K} batch={B} threads={args.threads} reps={args.reps} "
      f"ms_median={med*1e3:.2f} ms_min={lo*1e3:.2f} ms_max={hi*1e3:.2f} steps_per_s={1/med:.4f} "
      f"tok_per_s_median={B/med:.0f} tok_per_s_min={B/hi:.0f} tok_per_s_max={B/lo:.0f} "
      f"torch={torch.__version__}")
