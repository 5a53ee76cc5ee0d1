"""CodeGeeX's decoder in MindSpore (arXiv 2303.17568 and its repository), sizes from the config.

    word embedding + learned absolute position embedding
    → N pre-LayerNorm blocks: x + Attention(LN(x)), then x + MLP(LN(x)), MLP = Dense → FastGELU → Dense
    → final LayerNorm
    → top query layer: the same block, but its queries come from a separate learned position
      embedding (the "top query" embedding) while keys and values come from the hidden states
    → logits against the word embedding (the output head is tied to it); no LayerNorm after.

Attention is causal and never crosses an EOD (documents packed into one row do not see each
other); positions restart at every document.
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


def fast_gelu(x):
    return x * ops.sigmoid(1.702 * x)


class Attention(nn.Cell):
    def __init__(self, cfg: ModelConfig, separate_query: bool = False):
        super().__init__()
        h = cfg.hidden_size
        self.heads, self.head_dim = cfg.num_heads, h // cfg.num_heads
        self.separate_query = separate_query
        if separate_query:                     # the top query layer: q from the query embedding
            self.query = dense(cfg, h, h)
            self.key_value = dense(cfg, h, 2 * h)
        else:
            self.qkv = dense(cfg, h, 3 * h)
        self.dense = dense(cfg, h, h, output=True)
        self.dropout = nn.Dropout(p=cfg.dropout)

    def _split(self, x):  # (B, S, H) → (B, heads, S, head_dim)
        b, s, _ = x.shape
        return x.reshape(b, s, self.heads, self.head_dim).transpose(0, 2, 1, 3)

    def construct(self, x, mask, query_input=None):
        if self.separate_query:
            q = self.query(query_input)
            k, v = ops.split(self.key_value(x), x.shape[-1], axis=-1)
        else:
            q, k, v = ops.split(self.qkv(x), x.shape[-1], axis=-1)
        q, k, v = self._split(q), self._split(k), self._split(v)
        scores = ops.matmul(q, k.transpose(0, 1, 3, 2)) / math.sqrt(self.head_dim)
        scores = ops.masked_fill(scores.astype(ms.float32), ops.logical_not(mask), ms.Tensor(-1e4, ms.float32))
        probs = self.dropout(ops.softmax(scores, axis=-1)).astype(v.dtype)   # softmax in fp32 whatever the compute type
        out = ops.matmul(probs, v).transpose(0, 2, 1, 3)
        return self.dense(out.reshape(out.shape[0], out.shape[1], -1))


class MLP(nn.Cell):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.dense_in = dense(cfg, cfg.hidden_size, cfg.ffn_size)
        self.dense_out = dense(cfg, cfg.ffn_size, cfg.hidden_size, output=True)

    def construct(self, x):
        return self.dense_out(fast_gelu(self.dense_in(x)))


class Block(nn.Cell):
    def __init__(self, cfg: ModelConfig, top_query: bool = False):
        super().__init__()
        self.input_layernorm = nn.LayerNorm((cfg.hidden_size,), epsilon=cfg.layernorm_eps)
        self.attention = Attention(cfg, separate_query=top_query)
        self.post_attention_layernorm = nn.LayerNorm((cfg.hidden_size,), epsilon=cfg.layernorm_eps)
        self.mlp = MLP(cfg)
        self.dropout = nn.Dropout(p=cfg.dropout)

    def construct(self, x, mask, query_input=None):
        x = x + self.dropout(self.attention(self.input_layernorm(x), mask, query_input))
        return x + self.dropout(self.mlp(self.post_attention_layernorm(x)))


class CodeGeeX(nn.Cell):
    def __init__(self, cfg: ModelConfig, vocab_size: int):
        super().__init__()
        self.vocab_rows = padded_vocab(vocab_size, cfg.vocab_multiple)
        h = cfg.hidden_size
        self.word_embedding = Parameter(initializer(weight_init(cfg), (self.vocab_rows, h)), name="word_embedding")
        self.position_embedding = nn.Embedding(cfg.seq_length, h, embedding_table=weight_init(cfg))
        self.top_query_embedding = nn.Embedding(cfg.seq_length, h, embedding_table=weight_init(cfg))
        self.embedding_dropout = nn.Dropout(p=cfg.dropout)
        self.blocks = nn.CellList([Block(cfg) for _ in range(cfg.num_layers)])
        self.final_layernorm = nn.LayerNorm((h,), epsilon=cfg.layernorm_eps)
        self.top_query_layer = Block(cfg, top_query=True)
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
        seq = input_ids.shape[1]
        causal = ops.tril(ops.ones((seq, seq), ms.bool_))
        same_doc = ops.equal(doc_ids.expand_dims(2), doc_ids.expand_dims(1))
        mask = ops.logical_and(same_doc, causal).expand_dims(1)            # (B, 1, S, S)
        x = ops.gather(self.word_embedding, input_ids, 0) + self.position_embedding(position_ids)
        x = self.embedding_dropout(x).astype(self.compute_dtype)
        for block in self.blocks:
            x = block(x, mask)
        x = self.final_layernorm(x)
        x = self.top_query_layer(x, mask, self.top_query_embedding(position_ids))
        return ops.matmul(x, self.word_embedding.T.astype(x.dtype))          # tied output head


class LossCell(nn.Cell):
    """Mean next-token cross-entropy over the positions whose input is not EOD."""

    def __init__(self, model: CodeGeeX):
        super().__init__()
        self.model = model

    def construct(self, input_ids, labels, position_ids, doc_ids, loss_mask):
        logits = self.model(input_ids, position_ids, doc_ids)
        losses = ops.cross_entropy(logits.reshape(-1, logits.shape[-1]).astype(ms.float32), labels.reshape(-1), reduction="none")
        mask = loss_mask.reshape(-1)
        return (losses * mask).sum() / ops.maximum(mask.sum(), ms.Tensor(1.0, ms.float32))


def parameter_count(cfg: ModelConfig, vocab_size: int) -> int:
    """Parameters of the model, computed from the config alone (nothing allocated)."""
    h, f = cfg.hidden_size, cfg.ffn_size
    layernorm = 2 * h
    mlp = h * f + f + f * h + h
    attention = 4 * h * h + 4 * h          # q, k, v and output projections, with biases
    block = 2 * layernorm + attention + mlp
    embeddings = padded_vocab(vocab_size, cfg.vocab_multiple) * h + 2 * cfg.seq_length * h
    return embeddings + (cfg.num_layers + 1) * block + layernorm
