"""Data and model parallelism (CodeGeeX-13B: 192 × 8 on 1,536 Ascend 910).

The `[parallel]` section names data_parallel × model_parallel devices, one process each (`msrun`).
- model_parallel = 1: MindSpore's DATA_PARALLEL mode, on CPU, GPU and Ascend: every rank holds the
  whole model, reads its own slice of each global batch, and the gradients are averaged over ranks
  (a DistributedGradReducer all-reduce) before the identical optimizer step on every rank.
- model_parallel > 1: semi-auto parallel, Ascend and GPU only (MindSpore has no CPU backend for it),
  laid out as CodeGeeX's MindSpore code lays out its model (`rules`): the query/key/value and first
  MLP matmuls split their outputs over the model-parallel group, the attention output and second
  MLP matmuls their inputs (one all-reduce per sub-layer), attention by heads, the word embedding
  and the loss by vocabulary, the batch over data-parallel ranks. Every device reads its own rows
  (`data_slice`: CodeGeeX's full_batch = 0), and the gradients are summed over the data-parallel
  group, not averaged (the loss is already the mean over the global batch: CodeGeeX's
  gradients_mean = False). The whole training step is one compiled graph under `AutoParallel`
  (`wrap`). Nothing of this path can run on CPU; what can be checked without devices is checked by
  tests (the rows each rank reads, the rule of every op against CodeGeeX's, the memory estimate).
Optimizer states (and master weights) can be sharded over data-parallel ranks (`optimizer_shard`:
MindSpore's parallel optimizer, Ascend and GPU) and blocks recomputed in the backward (`recompute`:
any device; with model parallelism the kept block inputs are sliced over the group, as CodeGeeX's).
"""
from __future__ import annotations

import math

from codecorpus.trainer.config import ModelConfig, ParallelConfig
from codecorpus.trainer.errors import TrainerError
from codecorpus.trainer.model import padded_vocab

COLUMN_DENSE = ("query", "key", "value", "dense_in")   # outputs split over the model-parallel group
ROW_DENSE = ("dense", "dense_out")                     # inputs split: partial sums all-reduced


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
                 device: str | None = None, batch_size: int | None = None) -> None:
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
    if batch_size is not None and batch_size % mp:
        problems.append(f"train.batch_size ({batch_size}, per data-parallel rank) is not divisible by model_parallel ({mp}): "
                        "each device of a data-parallel rank reads batch_size / model_parallel rows")
    if problems:
        raise TrainerError("parallel layout: " + "; ".join(problems))


def data_slice(par: ParallelConfig, batch_size: int) -> tuple[int, int]:
    """(slices, rows per device): every device reads its own rows of each global batch of
    data_parallel × batch_size rows, device `rank` slice `rank` of `slices` (trainer.data.make_dataset).
    With model parallelism the devices of a data-parallel rank each read batch_size / model_parallel
    rows and MindSpore joins them into that rank's batch (CodeGeeX: full_batch = 0, each card a
    slice of the global batch); reading the same rows on every device would train on each row
    model_parallel times."""
    return par.data_parallel * par.model_parallel, batch_size // par.model_parallel


def describe(par: ParallelConfig, batch_size: int) -> str:
    """One line: the layout, the rows each device reads, how gradients and optimizer states are shared."""
    dp, mp = par.data_parallel, par.model_parallel
    slices, rows = data_slice(par, batch_size)
    line = (f"layout: {dp:,} data-parallel × {mp} model-parallel = {dp * mp:,} device{'s' if dp * mp > 1 else ''}; "
            f"each reads {rows} of the {dp * batch_size:,} sequences of a step")
    if dp > 1:
        line += "; gradients " + ("averaged over ranks (all-reduce)" if mp == 1 else "summed over data-parallel ranks")
    if par.optimizer_shard:
        line += f"; optimizer states sharded over {par.optimizer_shard_size or dp} ranks"
    if par.recompute:
        line += "; blocks recomputed" + (" (inputs kept sliced over the model-parallel group)" if mp > 1 else "")
    return line


def rules(dp: int, mp: int) -> dict[str, tuple]:
    """The sharding rule of every op a layout splits, by `role.op` (trainer.model holds the ops).
    Each tuple is the split of each input, dimension by dimension; CodeGeeX's, side by side,
    are in the README ("The 13B layout"). nn.Dense keeps its weight as out × in, so its
    column split is (mp, 1) on the weight and its row split (1, mp)."""
    heads, vocab = (dp, mp, 1, 1), (dp, mp)
    return {
        "CodeGeeX.word_lookup": ((mp, 1), (dp, 1)),     # vocabulary rows of the table over the group
        "CodeGeeX.position_lookup": ((1, 1), (dp, 1)),
        "CodeGeeX.top_query_lookup": ((1, 1), (dp, 1)),
        "CodeGeeX.head": ((dp, 1), (1, 1)),             # logits against the whole table (CodeGeeX: word_emb_dp = 1)
        "Dropout.dropout": ((dp, 1, 1),),
        "Attention.split_heads": ((dp, 1, mp, 1),),
        "Attention.scores": (heads, heads),
        "Attention.add_mask": (heads, (dp, 1, 1, 1)),
        "Attention.softmax": (heads,),
        "attention Dropout.dropout": (heads,),
        "Attention.context": (heads, heads),
        "Attention.merge_heads": (heads,),
        "column Dense.matmul": ((dp, 1), (mp, 1)),
        "column Dense.bias_add": ((dp, mp), (mp,)),
        "row Dense.matmul": ((dp, mp), (1, mp)),
        "row Dense.bias_add": ((dp, 1), (1,)),
        "LayerNorm.layer_norm": ((dp, 1, 1), (1,), (1,)),
        "LossCell.max": (vocab,),
        "LossCell.shift": (vocab, (dp, 1)),
        "LossCell.exp": (vocab,),
        "LossCell.sum": (vocab,),
        "LossCell.one_hot": (vocab, (), ()),
        "LossCell.pick": (vocab, vocab),
    }


def _role(name: str, cell) -> str:
    from mindspore import nn

    leaf = name.rsplit(".", 1)[-1]
    if isinstance(cell, nn.Dense):
        return "column Dense" if leaf in COLUMN_DENSE else "row Dense" if leaf in ROW_DENSE else "Dense"
    if isinstance(cell, nn.Dropout):
        return "attention Dropout" if name.endswith("attention.dropout") else "Dropout"
    if isinstance(cell, nn.LayerNorm):
        return "LayerNorm"
    return type(cell).__name__


def strategies(root, dp: int, mp: int) -> dict[str, tuple]:
    """Give every op of `root` (the LossCell, or the model alone) its rule; returns {cell.op: rule}."""
    table = rules(dp, mp)
    chosen: dict[str, tuple] = {}
    for name, cell in root.cells_and_names():
        role = _role(name, cell)
        for key, rule in table.items():
            if key.rsplit(".", 1)[0] == role:
                op = key.rsplit(".", 1)[1]
                getattr(cell, op).shard(rule)
                chosen[f"{name}.{op}".lstrip(".")] = rule
    return chosen


def parameter_splits(root, chosen: dict[str, tuple]) -> dict[str, int]:
    """Into how many slices each parameter of `root` is split by the rule of the op that reads it
    (a Dense's weight and bias, a LayerNorm's gamma and beta, an embedding table's lookup)."""
    splits = {}
    for name, _ in root.parameters_and_names():
        cell, leaf = name.rsplit(".", 1)
        if leaf.endswith("_embedding"):
            rule = chosen[f"{cell}.{leaf.removesuffix('_embedding')}_lookup"][0]
        else:
            op, operand = {"weight": ("matmul", 1), "bias": ("bias_add", 1), "gamma": ("layer_norm", 1),
                           "beta": ("layer_norm", 2)}[leaf]
            rule = chosen[f"{cell}.{op}"][operand]
        splits[name] = math.prod(rule)
    return splits


def optimizer_sharded(name: str, shape: tuple) -> bool:
    """Whether the parallel optimizer shards a parameter: the dense weights only (CodeGeeX keeps
    biases and embedding tables whole, `parallel_optimizer = False`; LayerNorms are below its size
    threshold)."""
    return name.endswith(".weight") and len(shape) == 2


def norm_repeats(root, par: ParallelConfig, chosen: dict[str, tuple]) -> dict[str, int]:
    """How many devices hold the same slice of each parameter's gradient where the step clips it
    (semi-auto parallel: after MindSpore's reduction, each device has its slice; with the parallel
    optimizer, a dense weight's gradient is further split over the shard group). The global norm
    sums each slice's squares divided by this count, then all-reduces: every device gets the same
    norm, each gradient element counted once (CodeGeeX's GlobalNorm, src/utils.py). `chosen`: the
    rules `strategies` gave root's ops."""
    world = par.data_parallel * par.model_parallel
    shard = (par.optimizer_shard_size or par.data_parallel) if par.optimizer_shard else 1
    splits = parameter_splits(root, chosen)
    return {name: world // (splits[name] * (shard if optimizer_sharded(name, p.shape) else 1))
            for name, p in root.parameters_and_names()}


def setup(par: ParallelConfig, model_cfg: ModelConfig, vocab_size: int, device: str, batch_size: int) -> tuple[int, int]:
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
    check_layout(par, model_cfg, vocab_size, get_group_size(), device, batch_size)
    if par.model_parallel == 1:
        ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, device_num=world, gradients_mean=True)
    else:
        from mindspore.parallel import set_algo_parameters

        set_algo_parameters(elementwise_op_strategy_follow=True)   # ops without a rule follow their input (CodeGeeX)
    return get_rank(), world


def gradient_reducer(parameters, par: ParallelConfig):
    """The all-reduce that averages gradients over data-parallel ranks (DATA_PARALLEL mode: the
    training step does it explicitly), or None."""
    if par.model_parallel > 1 or par.data_parallel == 1:
        return None
    from mindspore import nn

    return nn.DistributedGradReducer(parameters, mean=True, degree=par.data_parallel)


def apply(loss_cell, par: ParallelConfig) -> dict[str, tuple]:
    """Shard every op (semi-auto parallel: model_parallel > 1) and mark blocks for recompute."""
    mp = par.model_parallel
    chosen = strategies(loss_cell, par.data_parallel, mp) if mp > 1 else {}
    if par.optimizer_shard:
        for name, param in loss_cell.parameters_and_names():
            param.parallel_optimizer = optimizer_sharded(name, param.shape)
    if par.recompute:
        model = loss_cell.model
        for block in list(model.blocks) + [model.top_query_layer]:
            block.recompute(**({"recompute_slice_activation": True} if mp > 1 else {}))
    return chosen


def wrap(step_cell, par: ParallelConfig):
    """The training step as MindSpore compiles it: under `AutoParallel` in semi-auto parallel (the
    outermost cell of a functional-API step must be; gradients summed, not averaged; each device's
    inputs its slice of the global batch; optimizer sharding over groups of `optimizer_shard_size`),
    else the cell itself (trainer.train compiles it with ms.jit)."""
    if par.model_parallel == 1:
        return step_cell
    from mindspore.parallel.auto_parallel import AutoParallel

    net = AutoParallel(step_cell, parallel_mode="semi_auto")
    net.dataset_strategy("data_parallel")
    if par.optimizer_shard:
        net.hsdp(shard_size=par.optimizer_shard_size or -1)
    return net
