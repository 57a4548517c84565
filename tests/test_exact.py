"""Exact number handling (dtd_formal.exact): every expectation is derived by hand from the float's bits or
from the rational the text spells, never from the code under test."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtd_formal.errors import InputError
from dtd_formal.exact import (
    array_from_json,
    array_to_json,
    common_denominator,
    fraction_to_str,
    sign,
    to_float,
    to_fraction,
    to_fraction_array,
    zeros,
)


# ---------------------------------------------------------------------------------------------- scalars
def test_float_converts_to_its_exact_dyadic_value_not_its_decimal_text() -> None:
    # 0.1 as a double is 3602879701896397 / 2**55 (IEEE 754: mantissa 0x1999999999999A, exponent -56 ... reduced)
    assert to_fraction(0.1) == Fraction(3602879701896397, 2**55)
    assert to_fraction(0.1) != Fraction(1, 10)
    # float32 0.1 widened to double is 13421773 / 2**27
    assert to_fraction(np.float32(0.1)) == Fraction(13421773, 2**27)
    assert to_fraction(0.5) == Fraction(1, 2)
    assert to_fraction(-3.0) == Fraction(-3)


def test_strings_are_read_as_the_rational_they_spell() -> None:
    assert to_fraction("0.1") == Fraction(1, 10)
    assert to_fraction(" -1/3 ") == Fraction(-1, 3)
    assert to_fraction("7") == Fraction(7)
    assert to_fraction("1e-3") == Fraction(1, 1000)


def test_integers_and_rationals() -> None:
    assert to_fraction(np.int64(-5)) == Fraction(-5)
    assert to_fraction(Fraction(2, 6)) == Fraction(1, 3)
    import sympy

    assert to_fraction(sympy.Rational(3, 7)) == Fraction(3, 7)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), np.float32("nan")])
def test_non_finite_scalars_are_refused_with_the_value_named(bad: float) -> None:
    with pytest.raises(InputError, match=r"(nan|inf).*not a finite number"):
        to_fraction(bad, "weight")


def test_booleans_garbage_and_bad_strings_are_refused() -> None:
    with pytest.raises(InputError, match="boolean"):
        to_fraction(True)
    with pytest.raises(InputError, match="'abc'"):
        to_fraction("abc", "x")
    with pytest.raises(InputError, match="'1/0'"):
        to_fraction("1/0", "x")
    with pytest.raises(InputError, match="expected a number"):
        to_fraction(object())


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_finite_float_round_trips_exactly(value: float) -> None:
    f = to_fraction(value)
    assert float(f) == value
    # the denominator of a float is a power of two (dyadic rational)
    assert f.denominator & (f.denominator - 1) == 0


# ---------------------------------------------------------------------------------------------- arrays
def test_fraction_array_from_lists_numpy_and_torch() -> None:
    arr = to_fraction_array([[1, "1/3"], [0.25, Fraction(-2, 5)]])
    assert arr.dtype == object and arr.shape == (2, 2)
    assert arr.tolist() == [[Fraction(1), Fraction(1, 3)], [Fraction(1, 4), Fraction(-2, 5)]]
    assert all(isinstance(v, Fraction) for v in arr.ravel())

    f64 = to_fraction_array(np.array([0.1, -2.5]))
    assert f64.tolist() == [Fraction(3602879701896397, 2**55), Fraction(-5, 2)]

    import torch

    t32 = to_fraction_array(torch.tensor([0.1, 3.0], dtype=torch.float32))
    assert t32.tolist() == [Fraction(13421773, 2**27), Fraction(3)]
    ints = to_fraction_array(np.arange(3))
    assert ints.tolist() == [Fraction(0), Fraction(1), Fraction(2)]


def test_non_finite_array_entries_are_named_by_position() -> None:
    with pytest.raises(InputError, match=r"inputs: entry \(1, 0\) is nan"):
        to_fraction_array(np.array([[1.0, 2.0], [np.nan, 0.0]]), "inputs")
    with pytest.raises(InputError, match="inf"):
        to_fraction_array([1.0, float("inf")], "row")
    with pytest.raises(InputError, match="boolean"):
        to_fraction_array(np.array([True, False]))


def test_to_float_rounds_to_nearest() -> None:
    arr = to_fraction_array(["1/3", "-2/3", 5])
    out = to_float(arr)
    assert out.dtype == np.float64
    assert out.tolist() == [1 / 3, -2 / 3, 5.0]


def test_sign_and_zeros() -> None:
    arr = to_fraction_array(["-1/7", 0, "1/1000000"])
    assert sign(arr).tolist() == [-1, 0, 1]
    z = zeros((2, 3))
    assert z.shape == (2, 3) and all(v == 0 and isinstance(v, Fraction) for v in z.ravel())


def test_common_denominator_is_the_lcm_and_reconstructs_exactly() -> None:
    arr = to_fraction_array([["1/4", "-1/6"], [2, "5/9"]])
    nums, den = common_denominator(arr)
    assert den == 36  # lcm(4, 6, 1, 9)
    assert nums.tolist() == [[9, -6], [72, 20]]
    # float data has a power-of-two common denominator
    nums2, den2 = common_denominator(to_fraction_array([0.5, 0.125, 3.0]))
    assert den2 == 8 and nums2.tolist() == [4, 1, 24]


def test_json_form_is_num_slash_den_and_round_trips() -> None:
    arr = to_fraction_array([["1/3", 2], [0.1, "-7/2"]])
    js = array_to_json(arr)
    assert js == [["1/3", "2"], ["3602879701896397/36028797018963968", "-7/2"]]
    back = array_from_json(js)
    assert back.tolist() == arr.tolist()
    assert fraction_to_str(Fraction(-4, 2)) == "-2"


@given(
    st.lists(
        st.fractions(max_denominator=10**6, min_value=-(10**6), max_value=10**6), min_size=1, max_size=6
    )
)
def test_common_denominator_property(values: list[Fraction]) -> None:
    nums, den = common_denominator(to_fraction_array(values))
    expected_den = 1
    for v in values:
        expected_den = expected_den * v.denominator // math.gcd(expected_den, v.denominator)
    assert den == expected_den
    assert [Fraction(int(n), den) for n in nums] == values
