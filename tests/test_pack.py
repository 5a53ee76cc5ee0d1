"""Packing into rows of seq + 1 ids, and the Arrow shard format."""
import numpy as np
import pyarrow as pa

from codecorpus.stages.pack import add_pack_keys, pack_group, pack_rows, read_shard, shard_schema, write_shard


def test_pack_rows_concatenates_and_pads_only_the_end():
    docs = [np.arange(1, 6), np.arange(10, 13), np.arange(20, 30)]
    rows, padding = pack_rows(np.concatenate(docs), 4, eod_id=0)
    assert rows.shape == (5, 4) and padding == 2
    assert rows.reshape(-1)[:18].tolist() == list(range(1, 6)) + list(range(10, 13)) + list(range(20, 30))
    assert rows[-1].tolist()[-2:] == [0, 0]


def test_shard_round_trip_uint16(tmp_path):
    rows = np.random.default_rng(0).integers(0, 52224, size=(3000, 2049))
    sha = write_shard(tmp_path / "s.arrow", rows, shard_schema(2049, 52224))
    table = read_shard(tmp_path / "s.arrow")
    assert table.schema.field("input_ids").type == pa.list_(pa.uint16(), 2049)
    assert np.array_equal(np.stack(table.column("input_ids").to_numpy(zero_copy_only=False)), rows)
    assert len(sha) == 64


def test_pack_group_is_independent_of_input_order(tmp_path):
    rng = np.random.default_rng(1)
    tokens = [list(rng.integers(1, 500, size=rng.integers(5, 40))) + [0] for _ in range(50)]
    table = pa.table({"id": [f"f{i}" for i in range(50)], "source": ["s"] * 50, "language": ["Python"] * 50,
                      "tokens": pa.array(tokens, pa.large_list(pa.int32())), "num_tokens": [len(t) for t in tokens]})
    keyed = add_pack_keys(table, seed=7, num_groups=1)
    a = pack_group(keyed, str(tmp_path), 17, 1000, 0).to_pylist()[0]
    (tmp_path / a["shard"]).rename(tmp_path / "first.arrow")
    b = pack_group(keyed.take(np.random.default_rng(2).permutation(50)), str(tmp_path), 17, 1000, 0).to_pylist()[0]
    assert a["sha256"] == b["sha256"] and a["tokens"] == sum(len(t) for t in tokens)


def test_one_file_per_row_with_sliding_windows():
    from codecorpus.stages.pack import file_rows
    tokens = np.arange(1, 11, dtype=np.int32)               # 10 ids, rows of 4, stride 3
    rows, padding = file_rows(tokens, 4, 3, eod_id=0)
    assert rows.tolist() == [[1, 2, 3, 4], [4, 5, 6, 7], [7, 8, 9, 10]] and padding == 0
    rows, padding = file_rows(np.array([5, 6], np.int32), 4, 3, eod_id=0)
    assert rows.tolist() == [[5, 6, 0, 0]] and padding == 2


def test_pack_false_keeps_files_apart(tmp_path):
    tokens = [[1, 2, 3, 0], [4, 5, 6, 7, 8, 9, 0]]
    table = pa.table({"id": ["a", "b"], "source": ["s"] * 2, "language": ["C"] * 2,
                      "tokens": pa.array(tokens, pa.large_list(pa.int32())), "num_tokens": [4, 7]})
    entry = pack_group(add_pack_keys(table, seed=1, num_groups=1), str(tmp_path), 5, 100, 0, pack=False).to_pylist()[0]
    rows = np.stack(read_shard(tmp_path / entry["shard"]).column("input_ids").to_numpy(zero_copy_only=False))
    assert entry["rows"] == 3 and entry["tokens"] == 11
    for row in rows.tolist():   # no row mixes the two files
        assert not (set(row) & {1, 2, 3} and set(row) & {4, 5, 6, 7, 8, 9})


def test_hf_datasets_reads_a_shard(tmp_path):
    """Shards are Arrow IPC streams, the format `datasets` caches in: Dataset.from_file maps them as they are."""
    from datasets import Dataset
    rows = np.random.default_rng(3).integers(0, 52224, size=(1500, 33))
    write_shard(tmp_path / "s.arrow", rows, shard_schema(33, 52224))
    ds = Dataset.from_file(str(tmp_path / "s.arrow"))
    assert len(ds) == 1500 and ds.features["input_ids"].length == 33
    assert np.array_equal(np.asarray(ds.with_format("numpy")["input_ids"]), rows)
