"""Argument types of the command lines (``blconv`` and ``blconv bench``): one parser a kind.

argparse names a type function in its messages only when the function raises
something other than ``ArgumentTypeError`` ("invalid _positive value"), so each one
raises ``ArgumentTypeError`` for every bad input, with what it expected and what it
got.  The ranges are the library's (:func:`blconv._validation.check_rate`); these
only turn text into numbers for it.
"""
from __future__ import annotations

import argparse

__all__ = ["compress_rate", "energy_fraction", "positive_int", "int_at_least",
           "positive_float", "non_negative_float"]


def _number(text: str, expected: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r} (expected {expected})") \
            from None


def compress_rate(text: str) -> float:
    """A compress rate in [0, 1)."""
    v = _number(text, "a compress rate in [0, 1)")
    if not 0.0 <= v < 1.0:
        hint = " (a fraction, not a percent)" if 1.0 <= v <= 100.0 else ""
        raise argparse.ArgumentTypeError(f"compress rate must be in [0, 1), got {text}{hint}")
    return v


def energy_fraction(text: str) -> float:
    """A fraction of energy in (0, 1]."""
    v = _number(text, "an energy fraction in (0, 1]")
    if not 0.0 < v <= 1.0:
        raise argparse.ArgumentTypeError(f"energy must be in (0, 1], got {text}")
    return v


def int_at_least(minimum: int):
    """A parser of integers ``>= minimum``."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {text}")
        return v
    parse.__name__ = f"int_at_least_{minimum}"
    return parse


def positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return v


def _real(text: str, *, strict: bool) -> float:
    sign = ">" if strict else ">="
    v = _number(text, f"a finite number {sign} 0")
    if not (v > 0 if strict else v >= 0) or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be {sign} 0 and finite, got {text}")
    return v


def positive_float(text: str) -> float:
    """A finite number > 0."""
    return _real(text, strict=True)


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (seconds, weight decay, momentum)."""
    return _real(text, strict=False)
