"""The protocol's split_metrics key: MaxBoxAccV2 and the split its thresholds are chosen on."""

from __future__ import annotations

import pytest

from groundbench.errors import ProtocolError
from groundbench.protocol import load_protocol, protocol_from_mapping

BASE = {
    "schema": 1,
    "dataset": {"adapter": "native", "split": "test"},
    "metrics": [{"name": "soft_iou"}],
}


def _protocol(split_metrics):
    return protocol_from_mapping({**BASE, "split_metrics": split_metrics})


def test_defaults_are_filled_and_the_key_is_hashed():
    p = _protocol({"maxboxacc": {"calibration_split": "val"}})
    assert p.split_metrics == {"maxboxacc": {"calibration_split": "val", "deltas": [0.3, 0.5, 0.7]}}
    # order of the deltas, and 1 vs 1.0, leave the hash alone
    same = _protocol({"maxboxacc": {"deltas": [0.5, 0.3, 0.7], "calibration_split": "val"}})
    assert same.hash == p.hash
    one = _protocol({"maxboxacc": {"deltas": [1], "calibration_split": "val"}})
    assert one.hash == _protocol({"maxboxacc": {"deltas": [1.0], "calibration_split": "val"}}).hash
    assert one.hash != p.hash
    assert _protocol({"maxboxacc": {"calibration_split": "dev"}}).hash != p.hash
    assert _protocol({"maxboxacc": {}}).split_metrics["maxboxacc"]["calibration_split"] is None
    # PxAP takes no setting; either metric may come alone
    both = _protocol({"pxap": {}, "maxboxacc": {"calibration_split": "val"}})
    assert both.split_metrics == {**p.split_metrics, "pxap": {}} and both.hash != p.hash
    assert _protocol({"pxap": None}).split_metrics == {"pxap": {}}
    # a protocol without the key hashes as before it existed
    assert "split_metrics" not in protocol_from_mapping(BASE).canonical


def test_the_shipped_wsol_protocol_is_synth_test_albef_plus_the_split_metrics():
    wsol, albef = load_protocol("synth_test.wsol").canonical, load_protocol("synth_test.albef")
    assert wsol.pop("split_metrics") == {
        "maxboxacc": {"calibration_split": "val", "deltas": [0.3, 0.5, 0.7]},
        "pxap": {},
    }
    assert wsol == albef.canonical


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            {"maxboxacc": {"calibration_split": "test"}},
            "inline: split_metrics.maxboxacc.calibration_split is 'test', the evaluated split "
            "itself; name another split (e.g. val), or null for the uncalibrated maximum only",
        ),
        (
            {"pxa": {}},
            "inline: unknown key split_metrics.pxa; valid keys under split_metrics: maxboxacc, "
            "pxap; did you mean 'pxap'?",
        ),
        (
            {"maxboxacc": {"calibraton_split": "val"}},
            "inline: unknown key split_metrics.maxboxacc.calibraton_split; valid keys under "
            "split_metrics.maxboxacc: calibration_split, deltas; did you mean "
            "'calibration_split'?",
        ),
        (
            {"maxboxacc": {"deltas": [0.5, 1.5]}},
            "inline: split_metrics.maxboxacc.deltas must be a list of distinct IoU levels in "
            "(0, 1], got [0.5, 1.5]",
        ),
        (
            {"maxboxacc": {"deltas": [0.5, 0.5]}},
            "inline: split_metrics.maxboxacc.deltas must be a list of distinct IoU levels in "
            "(0, 1], got [0.5, 0.5]",
        ),
        (
            [],
            "inline: split_metrics must be a mapping like {maxboxacc: {calibration_split: "
            "val}}, got []",
        ),
    ],
)
def test_bad_values_name_the_key_and_the_fix(value, message):
    with pytest.raises(ProtocolError) as err:
        _protocol(value)
    assert str(err.value) == message
