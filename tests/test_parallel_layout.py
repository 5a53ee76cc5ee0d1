"""The 13B model-parallel layout, checked without devices (MindSpore compiles semi-auto parallel only
for Ascend and GPU): the rows each rank reads, the sharding rule of every op against CodeGeeX's, and
the per-device memory estimate `train --dry-run` prints."""
import re

import numpy as np
import pytest

from codecorpus.trainer.config import ModelConfig, ParallelConfig, TrainConfig
from codecorpus.trainer.errors import TrainerError

SMALL = ModelConfig(hidden_size=64, num_layers=2, num_heads=8, ffn_size=256, seq_length=16)


@pytest.mark.parametrize("dp,mp", [(1, 1), (4, 1), (2, 2), (1, 4), (2, 4)])
def test_every_device_reads_its_own_rows_and_a_step_is_the_whole_global_batch(dp, mp):
    """CodeGeeX (full_batch = 0): each of the dp × mp devices reads distinct rows, batch_size / mp of
    them, and MindSpore joins a data-parallel rank's devices (ranks d·mp … d·mp + mp − 1) into that
    rank's batch_size rows; a step of any layout trains on the same sequences as one process with
    the whole global batch."""
    from codecorpus.trainer.data import reading_order
    from codecorpus.trainer.parallel import data_slice

    batch, n, seed = 4, 203, 7
    slices, rows = data_slice(ParallelConfig(data_parallel=dp, model_parallel=mp), batch)
    assert slices == dp * mp and rows * mp == batch                     # what MindSpore expects per device
    reads = [reading_order(n, rows, seed, slices, rank) for rank in range(dp * mp)]
    whole = reading_order(n, dp * batch, seed)                          # one process, batch dp × batch_size
    for step in range(len(whole) // (dp * batch)):
        per_device = [r[step * rows:(step + 1) * rows] for r in reads]
        flat = np.concatenate(per_device)
        assert len(set(flat.tolist())) == len(flat) == dp * batch       # no row read twice in a step
        assert set(flat.tolist()) == set(whole[step * dp * batch:(step + 1) * dp * batch].tolist())
        groups = [np.concatenate(per_device[d * mp:(d + 1) * mp]) for d in range(dp)]
        assert all(len(set(g.tolist())) == batch for g in groups)


def test_a_batch_the_model_parallel_group_cannot_share_is_refused():
    from codecorpus.trainer.parallel import check_layout
    with pytest.raises(TrainerError, match=r"train.batch_size \(6, per data-parallel rank\) is not divisible by model_parallel \(4\)"):
        check_layout(ParallelConfig(data_parallel=2, model_parallel=4), SMALL, 1000, None, batch_size=6)
    with pytest.raises(TrainerError, match="num_heads"):
        check_layout(ParallelConfig(model_parallel=3), SMALL, 1000, None)
    with pytest.raises(TrainerError, match="16 devices were launched"):
        check_layout(ParallelConfig(data_parallel=2, model_parallel=2), SMALL, 1000, 16)


def codegeex_rules(dp: int, mp: int) -> dict[str, tuple]:
    """CodeGeeX's rules in its own conventions, transcribed from THUDM/CodeGeeX
    codegeex/mindspore/src/pangu_alpha.py and the MindSpore 1.8 layers its blocks are
    (mindspore/nn/transformer/transformer.py MultiHeadAttention, FeedForward,
    TransformerEncoderLayer; loss.py CrossEntropyLoss, built with dp_mp_config)."""
    return {
        "word gather": ((mp, 1), (dp, 1)),            # EmbeddingLayer: word_embedding.gather.shard(((mp, 1), (dp, 1)))
        "position gather": ((1, 1), (dp, 1)),         # VocabEmbedding with vocab_emb_dp = True
        "top query gather": ((1, 1), (dp, 1)),        # PanguAlpha_Model.top_query_embedding, same copied config
        "head matmul": ((dp, 1), (1, 1)),             # PanGuHead, vocab_emb_dp (train.py: word_emb_dp defaults to 1)
        "dense1/2/3 matmul": ((dp, 1), (mp, 1)),      # q, k, v: _Linear, transpose_b: W is out × in
        "dense1/2/3 bias": ((dp, mp), (mp,)),
        "projection matmul": ((dp, mp), (mp, 1)),     # attention and FFN projection: _Linear(transpose_b=False), W in × out
        "projection bias": ((dp, 1), (1,)),
        "mapping matmul": ((dp, 1), (1, mp)),         # FeedForward.mapping, W in × out
        "mapping bias": ((dp, mp), (mp,)),
        "transpose": ((dp, 1, mp, 1),),
        "merger_head_transpose": ((dp, mp, 1, 1),),
        "batch_matmul": ((dp, mp, 1, 1), (dp, mp, 1, 1)),
        "softmax": ((dp, mp, 1, 1),),
        "prob_dropout": ((dp, mp, 1, 1),),
        "add (mask adder, scores)": ((dp, 1, 1, 1), (dp, mp, 1, 1)),
        "layernorm": ((dp, 1),),                      # _LayerNorm on (batch·seq, hidden)
        "dropout": ((dp, 1),),                        # hidden dropout on (batch·seq, hidden)
        "embedding dropout": ((dp, 1, 1),),
        "loss max/exp/sum": ((dp, mp),),
        "loss sub": ((dp, mp), (dp, 1)),
        "loss onehot": ((dp, mp), (), ()),
        "loss mul": ((dp, mp), (dp, mp)),
    }


def same(rule):
    return rule


def weight_transposed(rule):      # their W is in × out, nn.Dense's out × in
    return (rule[0], tuple(reversed(rule[1])))


def operands_swapped(rule):
    return (rule[1], rule[0])


def three_d(rule):                # their (batch·seq, hidden) is our (batch, seq, hidden): the batch split stays first
    return tuple((r[0], 1, *r[1:]) for r in rule)


def layernorm_3d(rule):           # and ops.LayerNorm also takes gamma and beta, whole
    return three_d(rule) + ((1,), (1,))


OURS = {   # our op (its cell path without block numbers) → CodeGeeX's op, and how its rule reads in our conventions
    "model.word_lookup": ("word gather", same), "model.position_lookup": ("position gather", same),
    "model.top_query_lookup": ("top query gather", same), "model.head": ("head matmul", same),
    "model.embedding_dropout.dropout": ("embedding dropout", same),
    "attention.query.matmul": ("dense1/2/3 matmul", same), "attention.key.matmul": ("dense1/2/3 matmul", same),
    "attention.value.matmul": ("dense1/2/3 matmul", same), "attention.query.bias_add": ("dense1/2/3 bias", same),
    "attention.key.bias_add": ("dense1/2/3 bias", same), "attention.value.bias_add": ("dense1/2/3 bias", same),
    "attention.dense.matmul": ("projection matmul", weight_transposed), "attention.dense.bias_add": ("projection bias", same),
    "mlp.dense_in.matmul": ("mapping matmul", weight_transposed), "mlp.dense_in.bias_add": ("mapping bias", same),
    "mlp.dense_out.matmul": ("projection matmul", weight_transposed), "mlp.dense_out.bias_add": ("projection bias", same),
    "attention.split_heads": ("transpose", same), "attention.merge_heads": ("merger_head_transpose", same),
    "attention.scores": ("batch_matmul", same), "attention.context": ("batch_matmul", same),
    "attention.softmax": ("softmax", same), "attention.dropout.dropout": ("prob_dropout", same),
    "attention.add_mask": ("add (mask adder, scores)", operands_swapped),
    "input_layernorm.layer_norm": ("layernorm", layernorm_3d), "post_attention_layernorm.layer_norm": ("layernorm", layernorm_3d),
    "model.final_layernorm.layer_norm": ("layernorm", layernorm_3d), "dropout.dropout": ("dropout", three_d),
    "max": ("loss max/exp/sum", same), "exp": ("loss max/exp/sum", same), "sum": ("loss max/exp/sum", same),
    "shift": ("loss sub", same), "one_hot": ("loss onehot", same), "pick": ("loss mul", same),
}


def kind(op: str) -> str:
    return re.sub(r"^model\.(blocks\.\d+|top_query_layer)\.", "", op)      # a block's ops: one kind for every block


def test_every_op_the_layout_splits_has_codegeex_rule():
    """The table of every sharded op of the model and its loss, 192 × 8 as the 13B config, each rule
    equal to CodeGeeX's once their layout conventions are put into ours; every parameter is read
    by an op that has a rule."""
    from codecorpus.trainer.model import CodeGeeX, LossCell
    from codecorpus.trainer.parallel import parameter_splits, strategies

    dp, mp = 192, 8
    loss_cell = LossCell(CodeGeeX(SMALL, 1000))
    chosen = strategies(loss_cell, dp, mp)
    theirs = codegeex_rules(dp, mp)
    kinds = set()
    for op, rule in chosen.items():
        ours = kind(op)
        name, convert = OURS[ours]
        assert rule == convert(theirs[name]), (op, rule, name, theirs[name])
        kinds.add(ours)
    assert kinds == set(OURS)                    # every op of the table is in the model
    assert len(chosen) == 3 * 22 + 4 + 1 + 1 + 6  # 3 blocks × 22 ops; lookups and head; embedding dropout; final LayerNorm; loss
    splits = parameter_splits(loss_cell, chosen)          # a KeyError names a parameter whose op has no rule
    assert set(splits) == {name for name, _ in loss_cell.parameters_and_names()}


def test_parameters_per_device_follow_the_rules():
    """The estimate's parameter count per device equals the real model's parameters, each divided by
    how many ways its op's rule splits it."""
    from codecorpus.trainer.memory import parameters_per_device
    from codecorpus.trainer.model import CodeGeeX, LossCell
    from codecorpus.trainer.parallel import parameter_splits, strategies

    loss_cell = LossCell(CodeGeeX(SMALL, 1000))
    splits = parameter_splits(loss_cell, strategies(loss_cell, 2, 4))
    held = sum(int(np.prod(param.shape)) // splits[name] for name, param in loss_cell.parameters_and_names())
    cfg = TrainConfig(model=SMALL, parallel=ParallelConfig(data_parallel=2, model_parallel=4))
    assert parameters_per_device(cfg, 1000) == held


def test_the_13b_layout_fits_a_32_gb_device_by_the_estimate(tmp_path):
    """`--dry-run` prints the layout and the estimate before it checks the device (this machine has no
    Ascend): CodeGeeX's layout fits 32 GB; without recompute, or without model parallelism, it does not."""
    from tests.test_trainer import make_run
    from codecorpus.pipeline.config import parse_toml
    from codecorpus.trainer.memory import GIB, estimate
    from codecorpus.trainer.train import train

    cfg = TrainConfig.model_validate(parse_toml("configs/model-13b.toml"))
    make_run(tmp_path, np.zeros((2, 2049), np.int32), vocab=52_224)
    lines = []
    with pytest.raises(TrainerError, match="finds no Ascend"):
        train(cfg, str(tmp_path), dry_run=True, echo=lines.append)
    assert lines[1].startswith("layout: 192 data-parallel × 8 model-parallel = 1,536 devices; each reads 2 of the 3,072 sequences")
    assert re.search(r"total 2\d\.\d of 32 \(Ascend 910\): fits$", lines[2]), lines[2]
    parts = estimate(cfg, 52_224)
    assert 6 < parts["gradients"] / GIB < 6.2 and 0.35 < parts["weights"] / GIB < 0.4   # 1.63B parameters a device
    no_recompute = cfg.model_copy(update={"parallel": cfg.parallel.model_copy(update={"recompute": False})})
    assert estimate(no_recompute, 52_224)["total"] > 32 * GIB
    data_only = cfg.model_copy(update={"parallel": cfg.parallel.model_copy(update={"data_parallel": 1536, "model_parallel": 1}),
                                       "train": cfg.train.model_copy(update={"batch_size": 2})})
    assert estimate(data_only, 52_224)["gradients"] > 32 * GIB                          # 12.9B fp32 gradients alone


def test_the_global_norm_counts_every_gradient_slice_once():
    """Clipping in semi-auto parallel: each device sums its gradient slices' squares divided by how many
    devices hold that slice, then all-reduces (CodeGeeX's GlobalNorm, src/utils.py:136-202, at 192 × 8
    with optimizer shards of 16: dense weights 1,536 / (8 × 16) = 12, row-parallel biases, LayerNorms
    and position tables 1,536). Where CodeGeeX's counts differ, they miscount: its q/k/v and MLP-in
    biases are kept out of the optimizer shard (pangu_alpha.py:344-347) yet counted as sharded, and
    its word table is counted whole although its lookup splits it over the model-parallel group."""
    from codecorpus.trainer.model import CodeGeeX, LossCell
    from codecorpus.trainer.parallel import norm_repeats, strategies

    par = ParallelConfig(data_parallel=192, model_parallel=8, optimizer_shard=True, optimizer_shard_size=16)
    loss_cell = LossCell(CodeGeeX(SMALL, 1000))
    chosen = strategies(loss_cell, 192, 8)
    repeats = norm_repeats(loss_cell, par, chosen)
    expected = {"attention.query.weight": 12, "attention.dense.weight": 12, "mlp.dense_in.weight": 12, "mlp.dense_out.weight": 12,
                "attention.dense.bias": 1536, "mlp.dense_out.bias": 1536, "input_layernorm.gamma": 1536,
                "model.position_embedding": 1536, "model.top_query_embedding": 1536,
                "attention.value.bias": 192, "mlp.dense_in.bias": 192, "model.word_embedding": 192}
    for suffix, count in expected.items():
        found = {n: r for n, r in repeats.items() if n.endswith(suffix)}
        assert found and set(found.values()) == {count}, (suffix, found)
    unsharded = norm_repeats(loss_cell, par.model_copy(update={"optimizer_shard": False}), chosen)
    assert {unsharded[n] for n in repeats if n.endswith("mlp.dense_in.weight")} == {192}
