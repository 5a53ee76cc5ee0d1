"""CodeGeeX's decoder in MindSpore (arXiv 2303.17568 and its repository), sizes from the config.

    word embedding + learned absolute position embedding
    → N pre-LayerNorm blocks: x + Attention(LN(x)), then x + MLP(LN(x)), MLP = Dense → FastGELU → Dense
    → final LayerNorm
    → top query layer: the same block, but its queries come from a separate learned position
      embedding (the "top query" embedding) while keys and values come from the hidden states
    → logits against the word embedding (the output head is tied to it); no LayerNorm after.

Attention is causal and never crosses an EOD (documents packed into one row do not see each
other); positions restart at every document.

Every operation a model-parallel layout splits is a primitive held by its cell (`self.scores`,
`self.word_lookup`, a Dense's `matmul`…), as in CodeGeeX's MindSpore code, so that
`trainer.parallel.strategies` can give each one its sharding rule; on one device they are plain ops.
"""
from __future__ import annotations

import math

import mindspore as ms
from mindspore import Parameter, nn, ops
from mindspore.common.initializer import Normal, initializer

from codecorpus.trainer.config import ModelConfig


def padded_vocab(vocab_size: int, multiple: int) -> int:
    return int(math.ceil(vocab_size / multiple) * multiple)


def weight_init(cfg: ModelConfig, output: bool = False) -> Normal:
    """A weight's initialiser (cfg.init): "codegeex" N(0, 0.01) everywhere; "scaled" N(0, 0.02),
    a block's two output layers N(0, 0.02/√(2·layers))."""
    if cfg.init == "codegeex":
        return Normal(0.01)
    return Normal(0.02 / math.sqrt(2 * cfg.num_layers) if output else 0.02)


def dense(cfg: ModelConfig, n_in: int, n_out: int, output: bool = False) -> nn.Dense:
    """A Dense layer initialised as cfg.init says (biases: zero for "codegeex", MindSpore's default otherwise)."""
    return nn.Dense(n_in, n_out, weight_init=weight_init(cfg, output), bias_init="zeros" if cfg.init == "codegeex" else None)


def embedding(cfg: ModelConfig, rows: int, name: str) -> Parameter:
    return Parameter(initializer(weight_init(cfg), (rows, cfg.hidden_size)), name=name)


def fast_gelu(x):
    return x * ops.sigmoid(1.702 * x)


class Attention(nn.Cell):
    """Multi-head attention with separate query, key and value projections (as CodeGeeX's dense1/2/3),
    so a model-parallel split of their outputs hands each device whole heads."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        h = cfg.hidden_size
        self.heads, self.head_dim = cfg.num_heads, h // cfg.num_heads
        self.query, self.key, self.value = dense(cfg, h, h), dense(cfg, h, h), dense(cfg, h, h)
        self.dense = dense(cfg, h, h, output=True)
        self.split_heads = ops.Transpose()               # (B, S, heads, d) → (B, heads, S, d)
        self.scores = ops.BatchMatMul(transpose_b=True)  # q · kᵀ per head
        self.add_mask = ops.Add()
        self.softmax = ops.Softmax(-1)
        self.dropout = nn.Dropout(p=cfg.dropout)
        self.context = ops.BatchMatMul()                 # probabilities · v per head
        self.merge_heads = ops.Transpose()               # (B, heads, S, d) → (B, S, heads, d)

    def _heads(self, x):
        b, s, _ = x.shape
        return self.split_heads(x.reshape(b, s, self.heads, self.head_dim), (0, 2, 1, 3))

    def construct(self, x, mask_adder, query_input=None):
        """query_input: the top query layer's queries (the top query embedding); None: from x."""
        q = self._heads(self.query(x if query_input is None else query_input))
        k, v = self._heads(self.key(x)), self._heads(self.value(x))
        scores = self.scores(q, k).astype(ms.float32) * (1.0 / math.sqrt(self.head_dim))
        probs = self.dropout(self.softmax(self.add_mask(scores, mask_adder))).astype(v.dtype)  # softmax in fp32
        out = self.merge_heads(self.context(probs, v), (0, 2, 1, 3))
        return self.dense(out.reshape(out.shape[0], out.shape[1], -1))


class MLP(nn.Cell):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.dense_in = dense(cfg, cfg.hidden_size, cfg.ffn_size)
        self.dense_out = dense(cfg, cfg.ffn_size, cfg.hidden_size, output=True)

    def construct(self, x):
        return self.dense_out(fast_gelu(self.dense_in(x)))


class Block(nn.Cell):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.input_layernorm = nn.LayerNorm((cfg.hidden_size,), epsilon=cfg.layernorm_eps)
        self.attention = Attention(cfg)
        self.post_attention_layernorm = nn.LayerNorm((cfg.hidden_size,), epsilon=cfg.layernorm_eps)
        self.mlp = MLP(cfg)
        self.dropout = nn.Dropout(p=cfg.dropout)

    def construct(self, x, mask_adder, query_input=None):
        x = x + self.dropout(self.attention(self.input_layernorm(x), mask_adder, query_input))
        return x + self.dropout(self.mlp(self.post_attention_layernorm(x)))


class CodeGeeX(nn.Cell):
    def __init__(self, cfg: ModelConfig, vocab_size: int):
        super().__init__()
        self.vocab_rows = padded_vocab(vocab_size, cfg.vocab_multiple)
        self.word_embedding = embedding(cfg, self.vocab_rows, "word_embedding")
        self.position_embedding = embedding(cfg, cfg.seq_length, "position_embedding")
        self.top_query_embedding = embedding(cfg, cfg.seq_length, "top_query_embedding")
        self.word_lookup, self.position_lookup, self.top_query_lookup = ops.Gather(), ops.Gather(), ops.Gather()
        self.embedding_dropout = nn.Dropout(p=cfg.dropout)
        self.blocks = nn.CellList([Block(cfg) for _ in range(cfg.num_layers)])
        self.final_layernorm = nn.LayerNorm((cfg.hidden_size,), epsilon=cfg.layernorm_eps)
        self.top_query_layer = Block(cfg)
        self.head = ops.MatMul(transpose_b=True)        # logits = hidden · word_embeddingᵀ (tied)
        self.compute_dtype = ms.float32

    def use_fp16(self) -> None:
        """fp16 compute with fp32 master weights (Ascend): matmuls in fp16, LayerNorm and softmax in fp32."""
        self.compute_dtype = ms.float16
        for block in list(self.blocks) + [self.top_query_layer]:
            block.to_float(ms.float16)
        for _, cell in self.cells_and_names():
            if isinstance(cell, nn.LayerNorm):
                cell.to_float(ms.float32)

    def construct(self, input_ids, position_ids, doc_ids):
        b, seq = input_ids.shape
        causal = ops.tril(ops.ones((seq, seq), ms.bool_))
        same_doc = ops.equal(doc_ids.expand_dims(2), doc_ids.expand_dims(1))
        visible = ops.logical_and(same_doc, causal).expand_dims(1)           # (B, 1, S, S)
        mask_adder = (1.0 - visible.astype(ms.float32)) * -10000.0           # added to the attention scores
        x = self.word_lookup(self.word_embedding, input_ids, 0) + self.position_lookup(self.position_embedding, position_ids, 0)
        x = self.embedding_dropout(x).astype(self.compute_dtype)
        for block in self.blocks:
            x = block(x, mask_adder)
        x = self.final_layernorm(x)
        top_query = self.top_query_lookup(self.top_query_embedding, position_ids, 0).astype(x.dtype)
        x = self.top_query_layer(x, mask_adder, top_query)
        logits = self.head(x.reshape(b * seq, -1), self.word_embedding.astype(x.dtype))
        return logits.reshape(b, seq, -1)


class LossCell(nn.Cell):
    """Mean next-token cross-entropy over the positions whose input is not EOD, written with ops that
    split by vocabulary (max, exp, sum over a model-parallel slice of the logits; the label's logit
    picked by a one-hot product), as CodeGeeX's CrossEntropyLoss."""

    def __init__(self, model: CodeGeeX):
        super().__init__()
        self.model = model
        self.max = ops.ReduceMax(keep_dims=True)
        self.shift = ops.Sub()
        self.exp = ops.Exp()
        self.sum = ops.ReduceSum(keep_dims=True)
        self.one_hot = ops.OneHot()
        self.pick = ops.Mul()
        self.on, self.off = ms.Tensor(1.0, ms.float32), ms.Tensor(0.0, ms.float32)

    def construct(self, input_ids, labels, position_ids, doc_ids, loss_mask):
        logits = self.model(input_ids, position_ids, doc_ids)
        logits = logits.reshape(-1, logits.shape[-1]).astype(ms.float32)
        shifted = self.shift(logits, self.max(logits, -1))                              # stable log-sum-exp
        log_z = ops.log(self.sum(self.exp(shifted), -1)).reshape(-1)
        target = self.pick(shifted, self.one_hot(labels.reshape(-1), logits.shape[-1], self.on, self.off)).sum(-1)
        mask = loss_mask.reshape(-1)
        return ((log_z - target) * mask).sum() / ops.maximum(mask.sum(), ms.Tensor(1.0, ms.float32))


def parameter_count(cfg: ModelConfig, vocab_size: int) -> int:
    """Parameters of the model, computed from the config alone (nothing allocated)."""
    h, f = cfg.hidden_size, cfg.ffn_size
    layernorm = 2 * h
    mlp = h * f + f + f * h + h
    attention = 4 * h * h + 4 * h          # q, k, v and output projections, with biases
    block = 2 * layernorm + attention + mlp
    embeddings = padded_vocab(vocab_size, cfg.vocab_multiple) * h + 2 * cfg.seq_length * h
    return embeddings + (cfg.num_layers + 1) * block + layernorm
