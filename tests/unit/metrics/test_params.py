"""Metric parameters declared at registration and checked once against that declaration."""

from __future__ import annotations

import math

import pytest
import torch

from groundbench.errors import GroundbenchError, ProtocolError
from groundbench.metrics import METRICS, Param, Params, declaration, register_metric
from groundbench.metrics.params import params_from_signature, signature_defaults
from groundbench.metrics.suite import check_spec
from groundbench.registry import Entry, Registry


def test_every_metric_declares_exactly_its_signature_parameters():
    for name in METRICS.names():
        declared = METRICS.meta(name)["params"]
        assert isinstance(declared, Params)
        assert declared.defaults() == signature_defaults(METRICS.get(name))


def test_registration_refuses_a_signature_that_disagrees(monkeypatch):
    monkeypatch.setattr("groundbench.metrics.METRICS", Registry("metrics"))

    def metric(heatmap, *, region=None, iou=0.25):
        return None

    with pytest.raises(GroundbenchError) as exc:
        register_metric(
            "odd",
            needs=("heatmap",),
            higher_is_better=True,
            range=(0.0, 1.0),
            params=Params(Param("iou", 0.5)),
        )(metric)
    assert str(exc.value) == (
        "metric 'odd': its keyword parameters {'iou': 0.25} differ from the declared "
        "{'iou': 0.5}; declare each parameter once, with the signature's default"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1, None),
        (True, "box_acc.iou must be a number, got True"),
        ("0.5", "box_acc.iou must be a number, got '0.5'"),
        (0, "box_acc.iou: 0.0 is out of range; use a value in (0, 1]"),
        (math.nan, "box_acc.iou: nan is out of range; use a value in (0, 1]"),
        (math.inf, "box_acc.iou: inf is out of range; use a value in (0, 1]"),
    ],
)
def test_types_are_coerced_and_ranges_enforced(value, message):
    declared = declaration("box_acc")
    if message is None:
        assert declared.check({"iou": value}, metric="box_acc") == {"iou": 1.0}
        return
    with pytest.raises(ProtocolError) as exc:
        declared.check({"iou": value}, metric="box_acc")
    assert str(exc.value) == message


def test_choices_refuse_other_values_and_bools():
    declared = declaration("pointing")
    for bad in ("torchray", True):
        with pytest.raises(ProtocolError) as exc:
            declared.check({"variant": bad}, metric="pointing")
        assert str(exc.value) == (
            f"pointing.variant: unknown value {bad!r}; valid values: None, 'zhang2016', 'mg', "
            "'albef'"
        )


def test_a_spec_is_checked_without_running_the_metric(monkeypatch):
    entry = METRICS.entry("pointing")

    def boom(*args, **kwargs):
        raise AssertionError("the metric ran while its spec was checked")

    monkeypatch.setitem(METRICS._entries, "pointing", Entry("pointing", boom, entry.meta))
    spec = check_spec({"name": "pointing", "tolerance_px": 3}, path="metrics.3")
    assert spec.params == {
        "variant": None,
        "tolerance_px": 3.0,
        "coords": "centre",
        "ties": "expected",
        "box_convention": "xyxy",
    }
    assert spec.key == "pointing@3px"
    with pytest.raises(ProtocolError) as exc:
        check_spec({"name": "pointing", "variant": "mg", "tolerance_px": 3}, where="p.yaml")
    assert str(exc.value) == (
        "p.yaml: metrics.0: pointing: variant 'mg' fixes its own tolerance; drop tolerance_px=3"
    )


def test_the_generic_display_key_shows_parameters_off_their_defaults():
    declared = Params(Param("alpha", 0.5, low=0.0), Param("rule", ">=", choices=(">=", ">")))
    assert declared.key("m", declared.check({}, metric="m")) == "m"
    assert declared.key("m", declared.check({"rule": ">"}, metric="m")) == "m[rule=>]"
    assert [p.describe() for p in declared.params] == [
        "alpha=0.5 in [0, inf]",
        "rule='>=' of '>='|'>'",
    ]


def test_a_plugin_metric_without_a_declaration_gets_one_from_its_signature():
    def metric(heatmap, *, region=None, valid=None, k=3, mode=None):
        return torch.zeros(0)

    declared = params_from_signature(metric)
    assert declared.defaults() == {"k": 3, "mode": None}
    assert declared.check({"k": 5, "mode": "x"}, metric="m") == {"k": 5, "mode": "x"}
    with pytest.raises(ProtocolError, match=r"^m.k must be a number, got 'five'$"):
        declared.check({"k": "five"}, metric="m")


def test_resolve_writes_out_defaults_that_depend_on_other_parameters():
    declared = Params(
        Param("mode", "a", choices=("a", "b")),
        Param("width", None, choices=(None, 1, 2), kind=int),
        resolve=lambda v: {**v, "width": v["width"] or (1 if v["mode"] == "a" else 2)},
    )
    assert declared.check({"mode": "b"}, metric="m") == {"mode": "b", "width": 2}
    assert declared.check(declared.check({}, metric="m"), metric="m") == {"mode": "a", "width": 1}
