"""Each closed set of :mod:`planner.vocab` has its data where a module holds data per value: a
value added to the vocabulary without its figures (or figures without a vocabulary entry) fails
here, not at a user's command."""

import typing

from planner import vocab


def test_every_vocabulary_value_has_its_data():
    from planner.calc import collectives, flops, imbalance, numerics, serving
    from planner.specs.schema import KINDS
    from planner.units import DTYPE_BYTES

    assert tuple(DTYPE_BYTES) == vocab.DTYPES
    assert tuple(flops.CONVENTIONS) == vocab.FLOPS_CONVENTIONS
    assert tuple(imbalance.EXPERT_BALANCES) == vocab.EXPERT_BALANCES
    assert tuple(numerics.FLOAT_FORMATS) == vocab.FLOAT_WIRE_FORMATS
    assert tuple(numerics.LOGFMT_FORMATS) == vocab.LOGFMT_WIRE_FORMATS
    assert tuple(KINDS) == vocab.SPEC_KINDS
    assert tuple(collectives.LINKS) == vocab.LINK_TIERS
    assert set(serving.WEIGHT_BYTES) == set(serving.SCALE_BYTES_PER_WEIGHT) == set(
        vocab.SERVING_WEIGHT_DTYPES)


def test_scenario_fields_take_the_vocabulary():
    from planner.specs.scenario import Deployment

    hints = typing.get_type_hints(Deployment)
    assert typing.get_args(hints["expert_balance"]) == vocab.EXPERT_BALANCES
    assert typing.get_args(hints["flops_convention"]) == vocab.FLOPS_CONVENTIONS


def test_check_choice_names_the_field_and_the_allowed_values():
    import pytest

    from planner.errors import UsageError

    assert vocab.check_choice("fp8", vocab.ATTENTION_DTYPES, "attention_dtype") == "fp8"
    with pytest.raises(UsageError, match=r"^attention_dtype must be one of bf16, fp8 \(got 'x'\)"):
        vocab.check_choice("x", vocab.ATTENTION_DTYPES, "attention_dtype")
