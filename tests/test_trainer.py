"""The MindSpore model and the shard reader: sizes, EOD resets, manifest checks, a few real steps."""
import json

import numpy as np
import pytest

from stages.pack import shard_schema, write_shard
from trainer.config import ModelConfig, TrainConfig, TrainSection
from trainer.data import ShardSamples
from trainer.errors import TrainerError
from trainer.model import parameter_count

EOD = 0


def make_run(tmp_path, rows: np.ndarray, vocab: int = 1000):
    (tmp_path / "shards").mkdir()
    write_shard(tmp_path / "shards" / "shard-00000.arrow", rows, shard_schema(rows.shape[1], vocab))
    manifest = {"format": "codecorpus-shards/1", "row_length": rows.shape[1], "seq_length": rows.shape[1] - 1,
                "tokenizer": {"vocab_size": vocab, "eod_id": EOD},
                "shards": [{"shard": "shard-00000.arrow", "rows": len(rows)}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def test_13b_config_has_codegeex_size():
    from pipeline.config import parse_toml
    cfg = TrainConfig.model_validate(parse_toml("configs/model-13b.toml"))
    assert 12.8e9 < parameter_count(cfg.model, 52_224) < 13.0e9


def test_parameter_count_matches_the_real_model():
    from trainer.model import CodeGeeX
    cfg = ModelConfig(hidden_size=32, num_layers=2, num_heads=2, ffn_size=64, seq_length=16)
    model = CodeGeeX(cfg, vocab_size=1500)
    assert model.vocab_rows == 2048
    assert parameter_count(cfg, 1500) == sum(int(np.prod(p.shape)) for p in model.trainable_params())


def test_windows_reset_positions_and_mask_eod(tmp_path):
    row = np.array([5, 6, 7, EOD, 8, 9, EOD, 3, 4] + list(range(10, 18)))  # 17 ids: seq 16, two windows of 8
    manifest = make_run(tmp_path, row[None, :])
    samples = ShardSamples(tmp_path, model_seq=8, eod_id=EOD, manifest=manifest)
    assert len(samples) == 2
    inputs, labels, positions, docs, loss_mask = samples[0]
    assert inputs.tolist() == [5, 6, 7, EOD, 8, 9, EOD, 3] and labels.tolist() == [6, 7, EOD, 8, 9, EOD, 3, 4]
    assert positions.tolist() == [0, 1, 2, 3, 0, 1, 2, 0]
    assert docs.tolist() == [0, 0, 0, 0, 1, 1, 1, 2]
    assert loss_mask.tolist() == [1, 1, 1, 0, 1, 1, 0, 1]


def test_mismatched_shards_are_refused(tmp_path):
    manifest = make_run(tmp_path, np.ones((4, 17), dtype=np.int64))
    with pytest.raises(TrainerError, match="must divide"):
        ShardSamples(tmp_path, model_seq=5, eod_id=EOD, manifest=manifest)
    manifest["shards"][0]["rows"] = 5
    with pytest.raises(TrainerError, match="manifest says 5"):
        ShardSamples(tmp_path, model_seq=8, eod_id=EOD, manifest=manifest)


def test_a_few_real_steps_lower_the_loss(tmp_path):
    from trainer.train import train
    rng = np.random.default_rng(0)
    pattern = rng.integers(1, 50, size=33)           # a repeated "document": learnable
    make_run(tmp_path, np.tile(pattern, (16, 1)), vocab=50)
    cfg = TrainConfig(model=ModelConfig(hidden_size=32, num_layers=1, num_heads=2, ffn_size=64, seq_length=32, dropout=0.0),
                      train=TrainSection(steps=30, batch_size=4, learning_rate=3e-3, warmup_steps=2, decay_steps=30,
                                         out_dir=str(tmp_path / "ckpt"), log_every=10))
    losses = train(cfg, str(tmp_path), echo=lambda *_: None)
    assert len(losses) == 30 and np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
