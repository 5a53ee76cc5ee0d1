"""Per-device memory of a training layout, estimated from the config alone (nothing allocated).

What `codecorpus train --dry-run` prints before a job is started on devices that cannot be tried
here (the 13B layout of 192 × 8 Ascend 910 of 32 GB). Bytes per device:
- weights: fp32 master weights (4 bytes a parameter), split as `trainer.parallel.rules` splits them
  (the dense matmuls and the word embedding over the model-parallel group; LayerNorms, the row
  layers' biases and the position embeddings whole), then over the optimizer-shard group;
- optimizer states: Adam's two fp32 moments, split the same way;
- gradients: fp32, split over the model-parallel group only (MindSpore's parallel optimizer at its
  default level shards weights and states, not gradients);
- activations: per block, Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large
  Transformer Models", eq. 2, no sequence parallelism): s·b·h·(10 + 24/t) bytes plus the
  attention's s²·b·a/t elements at 11 bytes here (scores, mask added and softmax in fp32, fp16
  probabilities, dropout mask; their 5 bytes are for an fp16 softmax). With `recompute` a block
  keeps only its fp16 input (sliced over the model-parallel group, CodeGeeX's
  recompute_slice_activation) and one block's full activations live at a time in the backward.
  Plus the attention mask (fp32, b·s²) and the head: fp16 logits over the whole vocabulary (the
  head's rule keeps the table whole), the loss's fp32 buffers split by vocabulary, the logits'
  gradient. s = sequence, b = rows per data-parallel rank, h = hidden, a = heads, t = model_parallel.
Not counted: the framework's workspace, fragmentation, communication buffers.
"""
from __future__ import annotations

from codecorpus.trainer.config import TrainConfig
from codecorpus.trainer.model import padded_vocab

GIB = 2**30
DEVICE_MEMORY = {"Ascend": 32 * GIB}     # Ascend 910 (CodeGeeX's): 32 GB of HBM


def parameters_per_device(cfg: TrainConfig, vocab_size: int) -> int:
    """Parameters one device holds under the model-parallel rules (before optimizer sharding)."""
    m, t = cfg.model, cfg.parallel.model_parallel
    h, f = m.hidden_size, m.ffn_size
    split = 4 * h * h + 3 * h + 2 * h * f + f           # q, k, v, output, MLP weights; q, k, v, MLP-in biases
    whole = h + h + 4 * h                                # output and MLP-out biases, two LayerNorms
    block = split // t + whole
    return padded_vocab(vocab_size, m.vocab_multiple) * h // t + 2 * m.seq_length * h + (m.num_layers + 1) * block + 2 * h


def estimate(cfg: TrainConfig, vocab_size: int) -> dict[str, float]:
    """Bytes per device, by part, and their total."""
    m, tc, par = cfg.model, cfg.train, cfg.parallel
    s, b, h, a, t = m.seq_length, tc.batch_size, m.hidden_size, m.num_heads, par.model_parallel
    layers = m.num_layers + 1
    compute = 2 if tc.precision == "fp16" or (tc.precision == "auto" and tc.device == "Ascend") else 4
    params = parameters_per_device(cfg, vocab_size)
    shard = (par.optimizer_shard_size or par.data_parallel) if par.optimizer_shard else 1
    block = s * b * h * (10 + 24 / t) * compute / 2 + 11 * a * s * s * b / t
    if par.recompute:
        blocks = layers * s * b * h * compute / t + block
    else:
        blocks = layers * block
    vocab = padded_vocab(vocab_size, m.vocab_multiple)
    head = 2 * s * b * vocab * compute + 4 * s * b * vocab * 4 / t
    parts = {"weights": 4 * params / shard, "optimizer states": 8 * params / shard, "gradients": 4 * params,
             "activations": blocks + 4 * b * s * s + head}
    parts["total"] = sum(parts.values())
    return parts


def describe(cfg: TrainConfig, vocab_size: int) -> str:
    """One line: the estimate by part, against the device's memory where known."""
    parts = estimate(cfg, vocab_size)
    text = ", ".join(f"{name} {value / GIB:.2f}" for name, value in parts.items() if name != "total")
    line = f"memory per device (estimate, GiB): {text}; total {parts['total'] / GIB:.1f}"
    capacity = DEVICE_MEMORY.get(cfg.train.device)
    if capacity:
        verdict = "fits" if parts["total"] <= capacity else "does NOT fit"
        line += f" of {capacity / GIB:.0f} ({cfg.train.device} 910): {verdict}"
    return line
