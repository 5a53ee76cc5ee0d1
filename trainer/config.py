"""The model and training config (`configs/model-*.toml`), validated by pydantic."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Section):
    hidden_size: int = Field(default=128, ge=8)
    num_layers: int = Field(default=2, ge=1)          # decoder blocks, not counting the top query layer
    num_heads: int = Field(default=4, ge=1)
    ffn_size: int = Field(default=512, ge=8)
    seq_length: int = Field(default=256, ge=8)        # must divide the shards' sequence length
    vocab_multiple: int = Field(default=1024, ge=1)   # embedding rows padded to a multiple of this
    dropout: float = Field(default=0.1, ge=0, lt=1)
    layernorm_eps: float = Field(default=1e-5, gt=0)
    # "scaled": weights N(0, 0.02), the two output layers of a block N(0, 0.02/√(2·layers)) (GPT-2,
    # Megatron), biases MindSpore's default; "codegeex": every weight and embedding N(0, 0.01), biases
    # zero (CodeGeeX's MindSpore code: initializer("normal") and its transformer layers' defaults)
    init: Literal["scaled", "codegeex"] = "scaled"

    @model_validator(mode="after")
    def _heads_divide(self) -> "ModelConfig":
        if self.hidden_size % self.num_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must divide hidden_size ({self.hidden_size})")
        return self


class TrainSection(_Section):
    steps: int = Field(default=100, ge=1)
    batch_size: int = Field(default=4, ge=1)
    learning_rate: float = Field(default=1e-4, gt=0)
    min_learning_rate: float = Field(default=1e-6, ge=0)
    warmup_steps: int = Field(default=2000, ge=0)
    decay_steps: int = Field(default=200_000, ge=1)
    beta1: float = Field(default=0.9, gt=0, lt=1)
    beta2: float = Field(default=0.95, gt=0, lt=1)
    eps: float = Field(default=1e-8, gt=0)
    weight_decay: float = Field(default=0.1, ge=0)
    grad_clip: float = Field(default=1.0, gt=0)
    seed: int = 1234
    log_every: int = Field(default=1, ge=1)
    checkpoint_every: int = Field(default=0, ge=0)    # 0: only at the end
    resume: bool = True                               # continue from the newest checkpoint in out_dir
    grad_accumulation: int = Field(default=1, ge=1)   # micro-batches per optimizer step
    precision: Literal["auto", "fp32", "fp16"] = "auto"  # auto: fp16 on Ascend, fp32 elsewhere
    loss_scale: float = Field(default=2.0**32, gt=0)  # dynamic loss scale (fp16): start, ×factor, window
    loss_scale_factor: int = Field(default=2, ge=2)
    loss_scale_window: int = Field(default=1000, ge=1)
    out_dir: str = "runs/train"
    device: Literal["CPU", "Ascend", "GPU"] = "CPU"


class ParallelConfig(_Section):
    """MindSpore semi-auto parallel (Ascend): data_parallel × model_parallel devices."""
    data_parallel: int = Field(default=1, ge=1)
    model_parallel: int = Field(default=1, ge=1)
    optimizer_shard: bool = False   # shard optimizer states across data-parallel ranks
    optimizer_shard_size: int = Field(default=0, ge=0)  # ranks per optimizer-shard group; 0: the whole data-parallel group
    recompute: bool = False         # recompute each block's activations in the backward pass


class TrainConfig(_Section):
    model: ModelConfig = ModelConfig()
    train: TrainSection = TrainSection()
    parallel: ParallelConfig = ParallelConfig()
