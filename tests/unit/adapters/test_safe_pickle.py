"""The restricted unpickler: plain data loads, anything that could run code is refused."""

from __future__ import annotations

import os
import pickle

import pytest
from adapter_files import CodeRunningPayload, write_hostile_refs

from dataset_adapters.safe_pickle import load_data_pickle
from groundbench.errors import DataFormatError


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_plain_data_round_trips(tmp_path, protocol):
    data = [{"ref_id": 1, "sentences": [{"sent": "left dog", "tokens": ["left", "dog"]}],
             "split": "val", "score": 0.5, "flag": True, "none": None, "pair": (1, 2),
             "ids": {3, 4}, "frozen": frozenset({5})}]  # fmt: skip
    path = tmp_path / "refs.p"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    assert load_data_pickle(path) == data


def test_python2_byte_strings_decode_as_utf8(tmp_path):
    # Protocol-2 pickle as Python 2 writes it: SHORT_BINSTRING 'caf\xc3\xa9' inside a list.
    path = tmp_path / "py2.p"
    path.write_bytes(b"\x80\x02]q\x00U\x05caf\xc3\xa9q\x01a.")
    assert load_data_pickle(path) == ["café"]


def test_code_running_payload_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran.txt"
    root = write_hostile_refs(tmp_path / "data", marker)
    path = root / "refcoco" / "refs(unc).p"
    with pytest.raises(DataFormatError) as err:
        load_data_pickle(path)
    assert str(err.value) == (
        f"{path}: refused to unpickle: the file asks for the global __builtin__.exec, but "
        "dataset pickles may hold only lists, dicts, tuples, sets, strings and numbers; "
        "re-download the file from its official source"
    )
    assert not marker.exists()
    # control: the same payload does run under plain pickle, so the test can fail
    pickle.loads(pickle.dumps(CodeRunningPayload(marker)))
    assert marker.read_text() == "ran"


def test_os_system_payload_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, ("true",))

    path = tmp_path / "evil.p"
    path.write_bytes(pickle.dumps([Payload()], protocol=2))
    with pytest.raises(DataFormatError, match=r"asks for the global (posix|os|nt)\.system"):
        load_data_pickle(path)


def test_persistent_id_is_refused(tmp_path):
    path = tmp_path / "pid.p"
    path.write_bytes(b"\x80\x02X\x03\x00\x00\x00abcQ.")  # BINUNICODE 'abc' then BINPERSID
    with pytest.raises(DataFormatError, match="uses persistent ids"):
        load_data_pickle(path)


def test_truncated_pickle_is_a_clear_error(tmp_path):
    path = tmp_path / "refs.p"
    path.write_bytes(pickle.dumps([{"ref_id": 1, "x": "y" * 50}], protocol=2)[:20])
    with pytest.raises(DataFormatError, match=r"not a readable data pickle .*truncated or corrupt"):
        load_data_pickle(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataFormatError, match="does not exist; check the dataset root"):
        load_data_pickle(tmp_path / "nope.p")
