import pytest

from groundbench.errors import GroundbenchError, UnknownNameError
from groundbench.registry import Registry


def test_unknown_name_lists_valid_and_close_matches():
    r = Registry("metrics")
    r.add("pointing", object())
    r.add("soft_iou", object())
    with pytest.raises(UnknownNameError) as err:
        r.get("pointng", asked_by="protocol x.yaml")
    assert str(err.value) == (
        "unknown metrics 'pointng' (asked for by protocol x.yaml); did you mean 'pointing'? "
        "Valid names: pointing, soft_iou."
    )


def test_duplicate_and_bad_names_are_errors():
    r = Registry("metrics")
    r.add("nss", object())
    with pytest.raises(GroundbenchError, match="registered twice"):
        r.add("nss", object())
    with pytest.raises(GroundbenchError, match="snake_case"):
        r.add("Soft-IoU", object())
