"""Data and model parallelism (CodeGeeX-13B: 192 × 8 on 1,536 Ascend 910).

The `[parallel]` section names data_parallel × model_parallel devices, one process each (`msrun`).
- model_parallel = 1: MindSpore's DATA_PARALLEL mode, on CPU, GPU and Ascend: every rank holds the
  whole model, reads its own slice of each global batch, and the gradients are averaged over ranks
  (a DistributedGradReducer all-reduce) before the identical optimizer step on every rank.
- model_parallel > 1: semi-auto parallel (Megatron-style layout), Ascend and GPU only (MindSpore has
  no CPU backend for it). Each matmul gets a sharding strategy: the first matmul of attention and
  MLP is split by output columns over the model-parallel group, the second by input rows, so one
  all-reduce per sub-layer joins them; the batch dimension is split over data-parallel ranks.
Optimizer states can be sharded over data-parallel ranks (`optimizer_shard`: MindSpore's parallel
optimizer, Ascend and GPU, either mode) and blocks recomputed in the backward (`recompute`: any
device and mode).
"""
from __future__ import annotations

from codecorpus.trainer.config import ModelConfig, ParallelConfig
from codecorpus.trainer.errors import TrainerError
from codecorpus.trainer.model import padded_vocab


def check_device(device: str) -> None:
    """Refuse a `train.device` this machine's MindSpore cannot use (mindspore.hal.is_available), before
    any process starts: without it, every rank would die and a launcher wait for them."""
    if device == "CPU":
        return
    import logging

    import mindspore.hal

    logging.disable(logging.WARNING)      # is_available logs each plugin it could not load; the line below says it all
    try:
        available = mindspore.hal.is_available(device)
    finally:
        logging.disable(logging.NOTSET)
    if not available:
        raise TrainerError(f"train.device = {device!r}, but MindSpore finds no {device} on this machine "
                           "(set train.device = \"CPU\" for a smoke run, or run where the devices are)")


def check_layout(par: ParallelConfig, model: ModelConfig, vocab_size: int, world_size: int | None,
                 device: str | None = None) -> None:
    """Refuse a layout that cannot be built, before anything is allocated."""
    mp, dp = par.model_parallel, par.data_parallel
    if device == "CPU" and mp > 1:
        raise TrainerError(f"parallel.model_parallel = {mp} needs Ascend or GPU (MindSpore's semi-auto parallel has no CPU "
                           "backend); on CPU use data_parallel only (model_parallel = 1)")
    if device == "CPU" and par.optimizer_shard and dp * mp > 1:
        raise TrainerError("parallel.optimizer_shard needs Ascend or GPU (MindSpore's parallel optimizer); set it to false on CPU")
    problems = []
    if world_size is not None and dp * mp != world_size:
        problems.append(f"data_parallel × model_parallel = {dp * mp}, but {world_size} devices were launched")
    for name, value in (("model.num_heads", model.num_heads), ("model.ffn_size", model.ffn_size),
                        ("embedding rows", padded_vocab(vocab_size, model.vocab_multiple))):
        if value % mp:
            problems.append(f"{name} ({value}) is not divisible by model_parallel ({mp})")
    if problems:
        raise TrainerError("parallel layout: " + "; ".join(problems))


def strategies(model_cell, dp: int, mp: int) -> dict[str, tuple]:
    """Set the sharding strategy of every Dense matmul; returns {cell name: strategy} for inspection.

    nn.Dense computes x · Wᵀ (W is out × in): column parallel splits W's rows ((dp, 1), (mp, 1)),
    row parallel splits its columns ((dp, mp), (1, mp)).
    """
    column = ((dp, 1), (mp, 1))
    row = ((dp, mp), (1, mp))
    chosen: dict[str, tuple] = {}
    for name, cell in model_cell.cells_and_names():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("qkv", "query", "key_value", "dense_in"):
            strategy = column
        elif leaf in ("dense", "dense_out"):
            strategy = row
        else:
            continue
        cell.matmul.shard(strategy)
        chosen[name] = strategy
    return chosen


def setup(par: ParallelConfig, model_cfg: ModelConfig, vocab_size: int, device: str) -> tuple[int, int]:
    """Initialise communication when more than one device is asked for (the layout was checked before:
    train's first step); returns (rank, world size)."""
    import mindspore as ms

    world = par.data_parallel * par.model_parallel
    if world == 1:
        return 0, 1
    from mindspore.communication import get_group_size, get_rank, init

    try:
        init()
    except Exception as exc:  # no launcher (msrun) or no devices: say so in one line
        raise TrainerError(f"parallel training needs {world} processes (`codecorpus train … --nproc {world}`, or msrun): "
                           f"{str(exc).splitlines()[0]}") from None
    check_layout(par, model_cfg, vocab_size, get_group_size(), device)
    mode = ms.ParallelMode.DATA_PARALLEL if par.model_parallel == 1 else ms.ParallelMode.SEMI_AUTO_PARALLEL
    ms.set_auto_parallel_context(parallel_mode=mode, device_num=world, enable_parallel_optimizer=par.optimizer_shard,
                                 gradients_mean=True)
    return get_rank(), world


def gradient_reducer(parameters, par: ParallelConfig):
    """The all-reduce that averages gradients over data-parallel ranks (DATA_PARALLEL mode: the
    functional training step does it explicitly), or None."""
    if par.model_parallel > 1 or par.data_parallel == 1:
        return None
    from mindspore import nn

    return nn.DistributedGradReducer(parameters, mean=True, degree=par.data_parallel)


def apply(model_cell, par: ParallelConfig) -> dict[str, tuple]:
    """Shard the matmuls (semi-auto parallel: model_parallel > 1) and mark blocks for recompute."""
    chosen = strategies(model_cell, par.data_parallel, par.model_parallel) if par.model_parallel > 1 else {}
    if par.recompute:
        for block in list(model_cell.blocks) + [model_cell.top_query_layer]:
            block.recompute()
    return chosen
