"""Data and model parallelism with MindSpore's semi-auto parallel (Megatron-style layout).

The `[parallel]` section names data_parallel × model_parallel devices (CodeGeeX-13B: 192 × 8 on
1,536 Ascend 910). Each matmul gets a sharding strategy: the first matmul of attention and MLP is
split by output columns over the model-parallel group, the second by input rows, so one
all-reduce per sub-layer joins them; the batch dimension is split over data-parallel ranks.
Optimizer states can be sharded over data-parallel ranks and blocks recomputed in the backward.
"""
from __future__ import annotations

from trainer.config import ModelConfig, ParallelConfig
from trainer.errors import TrainerError
from trainer.model import padded_vocab


def check_layout(par: ParallelConfig, model: ModelConfig, vocab_size: int, world_size: int | None) -> None:
    """Refuse a layout that cannot be built, before anything is allocated."""
    mp, dp = par.model_parallel, par.data_parallel
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


def setup(par: ParallelConfig, model_cfg: ModelConfig, vocab_size: int) -> tuple[int, int]:
    """Initialise communication when more than one device is asked for; returns (rank, world size)."""
    import mindspore as ms

    world = par.data_parallel * par.model_parallel
    if world == 1:
        check_layout(par, model_cfg, vocab_size, None)
        return 0, 1
    from mindspore.communication import get_group_size, get_rank, init

    try:
        init()
    except Exception as exc:  # no launcher (msrun) or no devices: say so in one line
        raise TrainerError(f"parallel training needs `msrun` on {world} devices: {str(exc).splitlines()[0]}") from None
    check_layout(par, model_cfg, vocab_size, get_group_size())
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.SEMI_AUTO_PARALLEL, device_num=world,
                                 enable_parallel_optimizer=par.optimizer_shard, gradients_mean=True)
    return get_rank(), world


def apply(model_cell, par: ParallelConfig) -> dict[str, tuple]:
    """Shard the matmuls (when model or data parallel) and mark blocks for recompute."""
    chosen = strategies(model_cell, par.data_parallel, par.model_parallel) if par.data_parallel * par.model_parallel > 1 else {}
    if par.recompute:
        for block in list(model_cell.blocks) + [model_cell.top_query_layer]:
            block.recompute()
    return chosen
