from groundbench.evaluation.cache import RecordWriter, cache_dir, cache_key, read_records


def test_records_survive_a_cut_line_and_merge_ranks(tmp_path):
    key = cache_key("p", "m", "d")
    w0, w1 = RecordWriter(tmp_path, key, 0), RecordWriter(tmp_path, key, 1)
    w0.write([{"id": "a", "values": {}}])
    w1.write([{"id": "b", "values": {}}])
    w0.close(), w1.close()
    with (tmp_path / f"records.{key}.rank0.jsonl").open("a") as f:
        f.write('{"id": "c", "val')  # a crash mid-write
    assert sorted(read_records(tmp_path, key)) == ["a", "b"]
    assert read_records(tmp_path, cache_key("p", "m", "other")) == {}
    assert cache_dir(tmp_path / "out").name == "out.partial"
