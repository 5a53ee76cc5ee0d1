"""The MindSpore model and the shard reader: sizes, EOD resets, manifest checks, a few real steps."""
import json
from pathlib import Path

import numpy as np
import pytest

from codecorpus.stages.pack import shard_schema, write_shard
from codecorpus.trainer.config import ModelConfig, TrainConfig, TrainSection
from codecorpus.trainer.data import ShardSamples
from codecorpus.trainer.errors import TrainerError
from codecorpus.trainer.model import parameter_count

EOD = 0


def make_run(tmp_path, rows: np.ndarray, vocab: int = 1000):
    (tmp_path / "shards").mkdir()
    write_shard(tmp_path / "shards" / "shard-00000.arrow", rows, shard_schema(rows.shape[1], vocab))
    manifest = {"format": "codecorpus-shards/1", "row_length": rows.shape[1], "seq_length": rows.shape[1] - 1,
                "tokenizer": {"vocab_size": vocab, "eod_id": EOD, "path": "tokenizer/tokenizer.json", "sha256": "0" * 64},
                "shards": [{"shard": "shard-00000.arrow", "rows": len(rows)}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def test_13b_config_has_codegeex_size():
    from codecorpus.pipeline.config import parse_toml
    cfg = TrainConfig.model_validate(parse_toml("configs/model-13b.toml"))
    assert 12.8e9 < parameter_count(cfg.model, 52_224) < 13.0e9


def test_13b_config_trains_850b_tokens_with_codegeex_initialisation():
    """CodeGeeX trained 850B tokens (3,072 × 2,048 a step) on a schedule that decays over 200,000 steps."""
    from codecorpus.pipeline.config import parse_toml
    cfg = TrainConfig.model_validate(parse_toml("configs/model-13b.toml"))
    tokens = cfg.train.steps * cfg.train.batch_size * cfg.parallel.data_parallel * cfg.model.seq_length
    assert 849e9 < tokens < 851e9 and cfg.train.decay_steps == 200_000
    assert cfg.model.init == "codegeex"


@pytest.mark.parametrize("init", ["scaled", "codegeex"])
def test_initialisation_as_configured(init):
    """"codegeex": every weight and embedding N(0, 0.01) and zero biases, as CodeGeeX's MindSpore code;
    "scaled": N(0, 0.02) with a block's output layers at 0.02/√(2·layers), biases MindSpore's default."""
    from codecorpus.trainer.model import CodeGeeX
    cfg = ModelConfig(hidden_size=256, num_layers=8, num_heads=4, ffn_size=1024, seq_length=64, init=init)
    params = {p.name: p.asnumpy() for p in CodeGeeX(cfg, vocab_size=4000).trainable_params()}
    weights = {k: v for k, v in params.items() if (k.endswith(".weight") and v.ndim == 2) or "embedding" in k}
    biases = {k: v for k, v in params.items() if k.endswith(".bias") and "layernorm" not in k}
    assert len(weights) == 3 + 9 * 6 and len(biases) == 9 * 6          # q, k, v, output, MLP in and out per block
    for name, w in weights.items():
        output = name.endswith(("attention.dense.weight", "dense_out.weight"))
        expected = 0.01 if init == "codegeex" else (0.02 / np.sqrt(16) if output else 0.02)
        assert abs(w.std() / expected - 1) < 0.05 and abs(w.mean()) < 5 * expected / np.sqrt(w.size), name   # 5σ of the mean
    assert all((b == 0).all() for b in biases.values()) == (init == "codegeex")


def test_parameter_count_matches_the_real_model():
    from codecorpus.trainer.model import CodeGeeX
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


TINY = ModelConfig(hidden_size=32, num_layers=1, num_heads=2, ffn_size=64, seq_length=32, dropout=0.0)


def learnable_run(tmp_path, rows=16):
    rng = np.random.default_rng(0)
    data = np.tile(rng.integers(1, 50, size=33), (rows, 1))   # a repeated "document": learnable
    data[1::2] = rng.integers(1, 50, size=(rows // 2, 33))   # and some noise, so batches differ
    make_run(tmp_path, data, vocab=50)
    return str(tmp_path)


def run_train(run, out, **train_kwargs):
    from codecorpus.trainer.train import train
    settings = dict(steps=30, batch_size=4, learning_rate=3e-3, warmup_steps=2, decay_steps=30, out_dir=str(out), log_every=10)
    settings.update(train_kwargs)
    lines = []
    losses = train(TrainConfig(model=TINY, train=TrainSection(**settings)), run, echo=lines.append)
    return losses, lines


def test_a_few_real_steps_lower_the_loss(tmp_path):
    losses, lines = run_train(learnable_run(tmp_path), tmp_path / "ckpt")
    assert len(losses) == 30 and np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    assert any("tokens/s" in line and "loss scale" in line for line in lines)


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    run = learnable_run(tmp_path)                     # 16 rows → 16 samples → 4 batches an epoch
    straight, _ = run_train(run, tmp_path / "a", steps=7, checkpoint_every=3)
    first, _ = run_train(run, tmp_path / "b", steps=3, checkpoint_every=3)
    rest, lines = run_train(run, tmp_path / "b", steps=7, checkpoint_every=3)   # resumes at step 3, crosses an epoch
    assert any("resumed" in line and "step 3" in line for line in lines)
    np.testing.assert_allclose(first + rest, straight, rtol=1e-5)
    # resumed once more in a process of its own, whose stderr holds what MindSpore's logger printed: no warning
    import subprocess
    import sys
    script = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\nfrom test_trainer import run_train\n"
              f"run_train({run!r}, {str(tmp_path / 'b')!r}, steps=8, checkpoint_every=3)\n")
    resumed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0 and "WARNING" not in resumed.stderr, resumed.stderr[-2000:]


@pytest.mark.parametrize("damage, words", [
    ("missing", "listed in the manifest but missing"),
    ("cut to half", "not a whole shard"),
    ("another run's", "sha256 differs"),
])
def test_dry_run_finds_a_damaged_shard_and_training_says_one_line(tmp_path, damage, words):
    """`train --dry-run` reads every shard (present, whole, the manifest's sha256); training on a cut
    shard stops with the same kind of line instead of pyarrow's traceback."""
    import hashlib

    from codecorpus.trainer.train import train
    run = learnable_run(tmp_path)
    shard = tmp_path / "shards" / "shard-00000.arrow"
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["shards"][0]["sha256"] = hashlib.sha256(shard.read_bytes()).hexdigest()
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    cfg = TrainConfig(model=TINY, train=TrainSection(steps=1, batch_size=4, out_dir=str(tmp_path / "ckpt")))
    assert train(cfg, run, dry_run=True, echo=lambda *_: None) == []          # whole: passes
    if damage == "missing":
        shard.unlink()
    elif damage == "cut to half":
        shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    else:
        rows = np.random.default_rng(1).integers(1, 50, size=(16, 33))        # same shape, other ids
        write_shard(shard, rows, shard_schema(33, 50))
    with pytest.raises(TrainerError, match=words):
        train(cfg, run, dry_run=True, echo=lambda *_: None)
    if damage != "another run's":
        with pytest.raises(TrainerError, match=words):
            train(cfg, run, echo=lambda *_: None)


def test_a_device_this_machine_lacks_is_refused_before_anything_runs(tmp_path):
    from codecorpus.trainer.train import train
    run = learnable_run(tmp_path)
    cfg = TrainConfig(model=TINY, train=TrainSection(steps=1, batch_size=4, device="GPU", out_dir=str(tmp_path / "ckpt")))
    with pytest.raises(TrainerError, match="no GPU on this machine"):
        train(cfg, run, dry_run=True, echo=lambda *_: None)


def test_gradient_accumulation_equals_the_larger_batch(tmp_path):
    run = learnable_run(tmp_path)
    big, _ = run_train(run, tmp_path / "a", steps=4, batch_size=4)
    accumulated, _ = run_train(run, tmp_path / "b", steps=4, batch_size=2, grad_accumulation=2)
    np.testing.assert_allclose(accumulated, big, rtol=1e-4)


def test_fp16_with_dynamic_loss_scale(tmp_path):
    losses, lines = run_train(learnable_run(tmp_path), tmp_path / "ckpt", steps=12, precision="fp16",
                              loss_scale=2.0**32, loss_scale_window=1000, log_every=1)
    scales = [float(line.split("loss scale ")[1].split()[0]) for line in lines if line.startswith("step")]
    assert scales[0] == 2.0**32 and scales[-1] < scales[0]   # overflow at 2^32 in fp16: the scale comes down
    assert all(np.isfinite(losses))


def test_shards_made_with_another_tokenizer_are_refused(tmp_path):
    run = learnable_run(tmp_path)
    (tmp_path / "tokenizer").mkdir()
    (tmp_path / "tokenizer" / "tokenizer.json").write_text("{}")  # not the tokenizer whose sha256 the manifest holds
    with pytest.raises(TrainerError, match="not the tokenizer"):
        run_train(run, tmp_path / "ckpt", steps=1)


def test_parallel_without_a_launcher_is_a_clear_error(tmp_path):
    from codecorpus.trainer.config import ParallelConfig
    from codecorpus.trainer.train import train
    run = learnable_run(tmp_path)
    cfg = TrainConfig(model=TINY, train=TrainSection(steps=1, out_dir=str(tmp_path / "c")), parallel=ParallelConfig(data_parallel=2))
    with pytest.raises(TrainerError, match="msrun"):
        train(cfg, run, echo=lambda *_: None)


def test_recompute_changes_memory_not_results(tmp_path):
    from codecorpus.trainer.config import ParallelConfig
    from codecorpus.trainer.train import train
    run = learnable_run(tmp_path)
    losses = []
    for recompute in (False, True):
        cfg = TrainConfig(model=TINY, train=TrainSection(steps=3, batch_size=4, learning_rate=3e-3, warmup_steps=1,
                                                         out_dir=str(tmp_path / f"c{recompute}")),
                          parallel=ParallelConfig(recompute=recompute))
        losses.append(train(cfg, run, echo=lambda *_: None))
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
