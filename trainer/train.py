"""`codecorpus train`: pretrain the CodeGeeX model on a build's shards (CodeGeeX-13B's recipe).

AdamWeightDecay (β 0.9/0.95, eps 1e-8, weight decay 0.1 except LayerNorm and biases), gradient
clipping at global norm 1.0, linear warm-up then cosine decay, gradient accumulation, fp16
compute with fp32 weights and a dynamic loss scale on Ascend (fp32 on CPU), a checkpoint per
rank every `checkpoint_every` steps, and exact resume: the model, the optimizer, the loss scale
and the position in the data all continue where the checkpoint left them, so no sample is seen
twice or skipped. Each rank logs every step (loss, the samples it trained on) to
`OUT/rank_N/steps.jsonl`. With data_parallel > 1 (trainer.parallel) one process runs per rank,
started by `codecorpus train … --nproc N` (trainer.launch) or msrun. The trainer needs only the
shards and the manifest.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from pathlib import Path

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from codecorpus.trainer import memory, parallel
from codecorpus.trainer.config import TrainConfig
from codecorpus.trainer.data import ShardSamples, check_shards, make_dataset, read_manifest
from codecorpus.trainer.errors import TrainerError
from codecorpus.trainer.model import CodeGeeX, LossCell, padded_vocab, parameter_count


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


def check_manifest(manifest: dict, cfg: TrainConfig, run: str) -> None:
    """Refuse shards the model cannot train on, before step 1."""
    if manifest.get("format") != "codecorpus-shards/1":
        raise TrainerError(f"unknown shard format {manifest.get('format')!r}; this trainer reads codecorpus-shards/1")
    if (manifest["row_length"] - 1) % cfg.model.seq_length:
        raise TrainerError(f"model.seq_length {cfg.model.seq_length} must divide the shards' sequence length "
                           f"{manifest['row_length'] - 1}")
    if not manifest["shards"]:
        raise TrainerError("the build produced no shards")
    tok = manifest["tokenizer"]
    tok_path = Path(run) / tok["path"]
    if tok_path.is_file() and hashlib.sha256(tok_path.read_bytes()).hexdigest() != tok["sha256"]:
        raise TrainerError(f"{tok_path} is not the tokenizer the shards were made with (sha256 differs from the manifest)")


def _param_groups(params, weight_decay: float) -> list[dict]:
    def exempt(name: str) -> bool:  # LayerNorm weights and biases, and all biases, get no decay
        return "layernorm" in name or name.endswith((".bias", ".beta", ".gamma"))

    decay = [p for p in params if not exempt(p.name)]
    no_decay = [p for p in params if exempt(p.name)]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def checkpoint_steps(ckpt_dir: Path) -> dict[int, Path]:
    """The finished checkpoints in a rank's folder, by step."""
    return {int(m.group(1)): p for p in ckpt_dir.glob("step_*.ckpt") if (m := re.fullmatch(r"step_(\d+)\.ckpt", p.name))}


def resume_point(out_dir: Path, world: int, rank: int) -> tuple[Path, int] | None:
    """The newest step that every rank's folder has a checkpoint of (a job killed while ranks were
    saving leaves them one step apart), as this rank's checkpoint and the step; None to start afresh."""
    common = set.intersection(*(set(checkpoint_steps(out_dir / f"rank_{r}")) for r in range(world)))
    if not common:
        return None
    step = max(common)
    return out_dir / f"rank_{rank}" / f"step_{step:07d}.ckpt", step


def _step_log(ckpt_dir: Path, step: int):
    """The rank's step log, opened for appending after the lines of steps ≤ `step` (a resumed run
    rewrites what it redoes)."""
    path = ckpt_dir / "steps.jsonl"
    kept = [line for line in (path.read_text().splitlines() if path.is_file() else []) if json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in kept))
    return path.open("a")


class TrainStep(nn.Cell):
    """One optimizer step, compiled as one graph: the forward and backward of each of `accumulate`
    micro-batches (inputs stacked on a first axis), their gradients summed, averaged over data-parallel
    ranks (DATA_PARALLEL: `reducer`; semi-auto parallel inserts its own reductions), unscaled (fp16's
    dynamic loss scale: a step whose gradients overflow is skipped and the scale lowered), clipped to
    the global norm (in semi-auto parallel over every device's slices) and applied. Returns the
    summed loss (still scaled) and whether the step was applied."""

    def __init__(self, loss_cell, optimizer, scaler, reducer, accumulate: int, grad_clip: float, repeats=None):
        super().__init__(auto_prefix=False)
        self.optimizer, self.scaler, self.reducer = optimizer, scaler, reducer
        self.accumulate, self.grad_clip = accumulate, grad_clip
        # semi-auto parallel: each device holds slices of the gradients; `repeats` says how many devices
        # hold the same slice, so the all-reduced sum counts every element once (trainer.parallel.norm_repeats)
        self.repeats = tuple(float(repeats[p.name]) for p in optimizer.parameters) if repeats else (1.0,) * len(optimizer.parameters)
        self.all_reduce = ops.AllReduce() if repeats else None
        self.map = ops.HyperMap()

        def scaled_loss(*batch):
            loss = loss_cell(*batch) / accumulate
            return scaler.scale(loss) if scaler else loss

        self.grad_fn = ms.value_and_grad(scaled_loss, None, optimizer.parameters)

    @ms.jit
    def construct(self, input_ids, labels, position_ids, doc_ids, loss_mask):
        total, grads = self.grad_fn(input_ids[0], labels[0], position_ids[0], doc_ids[0], loss_mask[0])
        for i in range(1, self.accumulate):
            loss, more = self.grad_fn(input_ids[i], labels[i], position_ids[i], doc_ids[i], loss_mask[i])
            total = total + loss
            grads = self.map(ops.add, grads, more)
        if self.reducer is not None:
            grads = self.reducer(grads)
        finite = ms.Tensor(True)
        if self.scaler:
            grads = self.scaler.unscale(grads)
            finite = ms.amp.all_finite(grads)
            self.scaler.adjust(finite)
        if finite:
            self.optimizer(self.clip(grads))
        return total, finite

    def clip(self, grads):
        """Scale the gradients to a global norm of at most grad_clip."""
        total = ops.addn(self.map(_square_sum, grads, self.repeats))
        if self.all_reduce is not None:
            total = self.all_reduce(total)
        factor = self.grad_clip / ops.maximum(ops.sqrt(total), self.grad_clip)
        return self.map(ops.partial(_times, factor), grads)


_square_sum = ops.MultitypeFuncGraph("square_sum")
_times = ops.MultitypeFuncGraph("times")


@_square_sum.register("Tensor", "Number")
def _slice_square_sum(grad, repeats):
    """A gradient's sum of squares over the number of devices that hold the same slice."""
    return ops.reduce_sum(ops.square(grad.astype(ms.float32))) / repeats


@_times.register("Tensor", "Tensor")
def _scaled(factor, grad):
    return grad * factor.astype(grad.dtype)



def train(cfg: TrainConfig, run: str, overrides: dict | None = None, dry_run: bool = False, echo=print) -> list[float]:
    """Train up to `train.steps` optimizer steps; returns the loss of every step run here."""
    if overrides:
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update=overrides)})
    manifest = read_manifest(run)
    check_manifest(manifest, cfg, run)
    vocab = manifest["tokenizer"]["vocab_size"]
    tc, par = cfg.train, cfg.parallel
    parallel.check_layout(par, cfg.model, vocab, None, tc.device, tc.batch_size)
    echo(f"model: {parameter_count(cfg.model, vocab):,} parameters, {cfg.model.num_layers} layers + top query layer, "
         f"hidden {cfg.model.hidden_size}, embedding rows {padded_vocab(vocab, cfg.model.vocab_multiple):,}")
    if dry_run:
        echo(parallel.describe(par, tc.batch_size))
        echo(memory.describe(cfg, vocab))
    parallel.check_device(tc.device)
    if dry_run:
        shards = check_shards(run, manifest)
        chain = len(manifest.get("base", {}).get("chain", []))
        echo(f"shards: {len(shards)} checked ({sum(e['rows'] for _, e in shards):,} rows, sha256 as the manifests list)"
             + (f", of {chain + 1} runs (an increment and its chain)" if chain else ""))
        return []

    ms.set_device(tc.device)
    ms.set_context(mode=ms.GRAPH_MODE if par.data_parallel * par.model_parallel > 1 else ms.PYNATIVE_MODE)
    rank, world = parallel.setup(par, cfg.model, vocab, tc.device, tc.batch_size)
    ms.set_seed(tc.seed)
    np.random.seed(tc.seed)
    fp16 = tc.precision == "fp16" or (tc.precision == "auto" and tc.device == "Ascend")

    samples = ShardSamples(run, cfg.model.seq_length, manifest["tokenizer"]["eod_id"], manifest)
    slices, rows = parallel.data_slice(par, tc.batch_size)
    batches_per_epoch = len(samples) // slices // rows
    if batches_per_epoch < 1:
        raise TrainerError(f"only {len(samples)} samples in the shards, fewer than one batch of {tc.batch_size} per rank")

    model = CodeGeeX(cfg.model, vocab)
    if fp16:
        model.use_fp16()
    loss_cell = LossCell(model)
    chosen = parallel.apply(loss_cell, par)
    lrs = learning_rates(tc, tc.steps)
    optimizer = nn.AdamWeightDecay(_param_groups(model.trainable_params(), tc.weight_decay), learning_rate=lrs,
                                   beta1=tc.beta1, beta2=tc.beta2, eps=tc.eps)
    scaler = ms.amp.DynamicLossScaler(tc.loss_scale, tc.loss_scale_factor, tc.loss_scale_window) if fp16 else None
    accumulate = tc.grad_accumulation
    repeats = parallel.norm_repeats(loss_cell, par, chosen) if par.model_parallel > 1 else None
    train_step = parallel.wrap(TrainStep(loss_cell, optimizer, scaler, parallel.gradient_reducer(optimizer.parameters, par),
                                         accumulate, tc.grad_clip, repeats), par)

    ckpt_dir = Path(tc.out_dir) / f"rank_{rank}"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    (ckpt_dir / "process.json").write_text(json.dumps({"rank": rank, "world": world, "pid": os.getpid()}))
    step = 0
    found = resume_point(Path(tc.out_dir), world, rank) if tc.resume else None
    if found:
        path, step = found
        state = ms.load_checkpoint(str(path))
        # the schedule comes from the config (its length follows train.steps): the optimizer keeps its own
        own = {p.name: p for p in optimizer.get_parameters()}
        state["learning_rate"] = own.get("learning_rate", state.get("learning_rate"))
        not_loaded, _ = ms.load_param_into_net(optimizer, state)
        if not_loaded:
            raise TrainerError(f"{path} does not fit this model: {len(not_loaded)} parameters missing, e.g. {not_loaded[0]}")
        if scaler and "loss_scale" in state:
            scaler.scale_value.set_data(ms.Tensor(float(state["loss_scale"].asnumpy()), ms.float32))
        echo(f"resumed from {path} at step {step}")

    def save(name: str) -> None:
        """Written under another name, then renamed: a job killed while saving leaves no torn checkpoint."""
        extra = {"loss_scale": float(scaler.scale_value.asnumpy()) if scaler else 1.0}
        ms.save_checkpoint(optimizer, str(ckpt_dir / f"partial-{name}"), append_dict=extra)
        (ckpt_dir / f"partial-{name}").replace(ckpt_dir / name)

    def micro_batches(consumed: int):
        """Every micro-batch of this rank from position `consumed` on; each epoch has its own seeded order."""
        while True:
            epoch, offset = divmod(consumed, batches_per_epoch)
            for batch in make_dataset(samples, rows, tc.seed + epoch, slices, rank, offset).create_tuple_iterator():
                yield batch
                consumed += 1

    losses: list[float] = []
    tokens_per_step = tc.batch_size * cfg.model.seq_length * accumulate * par.data_parallel
    stream = micro_batches(step * accumulate)  # resuming skips exactly the micro-batches already trained on
    log = _step_log(ckpt_dir, step)
    while step < tc.steps:
        t0 = time.perf_counter()
        micro = [next(stream) for _ in range(accumulate)]
        seen = [i for *_, sample in micro for i in sample.asnumpy().tolist()]
        stacked = [ops.stack([m[k] for m in micro]) for k in range(5)]     # (micro-batches, rows, …) per input
        scale = float(scaler.scale_value.asnumpy()) if scaler else 1.0
        total, _ = train_step(*stacked)
        step += 1
        loss_value = float(total.asnumpy()) / scale
        losses.append(loss_value)
        seconds = time.perf_counter() - t0
        log.write(json.dumps({"step": step, "loss": loss_value, "tokens_per_s": tokens_per_step / par.data_parallel / seconds,
                              "samples": seen}) + "\n")
        log.flush()
        if step % tc.log_every == 0 or step == tc.steps:
            echo(f"step {step:>6}/{tc.steps}  loss {loss_value:.4f}  lr {lrs[step - 1]:.3e}  "
                 f"tokens/s {tokens_per_step / seconds:,.0f}  loss scale {scale:.0f}{'' if fp16 else ' (fp32)'}")
        if tc.checkpoint_every and step % tc.checkpoint_every == 0:
            save(f"step_{step:07d}.ckpt")
    save(f"step_{step:07d}.ckpt")
    log.close()
    if losses:
        echo(f"trained to step {step}; first loss here {losses[0]:.4f}, last {losses[-1]:.4f}; checkpoints in {ckpt_dir}")
    return losses
