"""`codecorpus train`: pretrain the CodeGeeX model on a build's shards (SPEC §8's recipe).

AdamWeightDecay (β 0.9/0.95, eps 1e-8, weight decay 0.1 except LayerNorm and biases), gradient
clipping at global norm 1.0, linear warm-up then cosine decay, one log line per step, a checkpoint
at the end (and every `checkpoint_every` steps). The trainer needs only the shards and the manifest.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from trainer.config import TrainConfig
from trainer.data import ShardSamples, make_dataset, read_manifest
from trainer.errors import TrainerError
from trainer.model import CodeGeeX, LossCell, padded_vocab, parameter_count


def learning_rates(cfg, steps: int) -> list[float]:
    """Linear warm-up to the peak, then cosine decay to the minimum over `decay_steps`."""
    lrs = []
    for step in range(steps):
        if cfg.warmup_steps and step < cfg.warmup_steps:
            lrs.append(cfg.learning_rate * (step + 1) / cfg.warmup_steps)
        else:
            progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.decay_steps - cfg.warmup_steps))
            lrs.append(cfg.min_learning_rate + 0.5 * (cfg.learning_rate - cfg.min_learning_rate) * (1 + math.cos(math.pi * progress)))
    return lrs


def check_manifest(manifest: dict, cfg: TrainConfig) -> None:
    """Refuse shards the model cannot train on, before step 1."""
    if manifest.get("format") != "codecorpus-shards/1":
        raise TrainerError(f"unknown shard format {manifest.get('format')!r}; this trainer reads codecorpus-shards/1")
    if (manifest["row_length"] - 1) % cfg.model.seq_length:
        raise TrainerError(f"model.seq_length {cfg.model.seq_length} must divide the shards' sequence length "
                           f"{manifest['row_length'] - 1}")
    if not manifest["shards"]:
        raise TrainerError("the build produced no shards")


def _param_groups(params, weight_decay: float) -> list[dict]:
    def exempt(name: str) -> bool:  # LayerNorm weights and biases, and all biases, get no decay
        return "layernorm" in name or name.endswith((".bias", ".beta", ".gamma"))

    decay = [p for p in params if not exempt(p.name)]
    no_decay = [p for p in params if exempt(p.name)]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def train(cfg: TrainConfig, run: str, overrides: dict | None = None, dry_run: bool = False, echo=print) -> list[float]:
    """Train for `train.steps` steps; returns the loss of every step."""
    if overrides:
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update=overrides)})
    manifest = read_manifest(run)
    check_manifest(manifest, cfg)
    vocab = manifest["tokenizer"]["vocab_size"]
    echo(f"model: {parameter_count(cfg.model, vocab):,} parameters, {cfg.model.num_layers} layers + top query layer, "
         f"hidden {cfg.model.hidden_size}, embedding rows {padded_vocab(vocab, cfg.model.vocab_multiple):,}")
    if dry_run:
        return []

    import mindspore as ms
    from mindspore import nn, ops

    tc = cfg.train
    ms.set_device(tc.device)
    ms.set_context(mode=ms.PYNATIVE_MODE)
    ms.set_seed(tc.seed)
    np.random.seed(tc.seed)

    samples = ShardSamples(run, cfg.model.seq_length, manifest["tokenizer"]["eod_id"], manifest)
    if len(samples) < tc.batch_size:
        raise TrainerError(f"only {len(samples)} samples in the shards, fewer than one batch of {tc.batch_size}")
    model = CodeGeeX(cfg.model, vocab)
    loss_cell = LossCell(model)
    lrs = learning_rates(tc, tc.steps)
    optimizer = nn.AdamWeightDecay(_param_groups(model.trainable_params(), tc.weight_decay), learning_rate=lrs,
                                   beta1=tc.beta1, beta2=tc.beta2, eps=tc.eps)
    grad_fn = ms.value_and_grad(loss_cell, None, optimizer.parameters)

    @ms.jit  # one compiled graph per step: about twice as fast as op-by-op on CPU
    def train_step(*batch):
        loss, grads = grad_fn(*batch)
        optimizer(ops.clip_by_global_norm(grads, tc.grad_clip))
        return loss

    out_dir = Path(tc.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    losses: list[float] = []
    tokens_per_step = tc.batch_size * cfg.model.seq_length
    step = 0
    while step < tc.steps:
        epoch_seed = tc.seed + step  # a fresh order each pass over the data
        for batch in make_dataset(samples, tc.batch_size, epoch_seed).create_tuple_iterator():
            t0 = time.perf_counter()
            loss = train_step(*batch)
            loss_value = float(loss.asnumpy())
            losses.append(loss_value)
            step += 1
            if step % tc.log_every == 0 or step == tc.steps:
                seconds = time.perf_counter() - t0
                echo(f"step {step:>6}/{tc.steps}  loss {loss_value:.4f}  lr {lrs[step - 1]:.3e}  "
                     f"tokens/s {tokens_per_step / seconds:,.0f}  loss scale 1 (fp32)")
            if tc.checkpoint_every and step % tc.checkpoint_every == 0:
                ms.save_checkpoint(model, str(out_dir / f"step_{step:07d}.ckpt"))
            if step >= tc.steps:
                break
    ms.save_checkpoint(model, str(out_dir / "last.ckpt"))
    echo(f"trained {step} steps; first loss {losses[0]:.4f}, last {losses[-1]:.4f}; checkpoint {out_dir / 'last.ckpt'}")
    return losses
