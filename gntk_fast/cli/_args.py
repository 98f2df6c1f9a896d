"""Argument types shared by the commands (standard library only: the parsers
must not import numpy, torch or numba)."""
from __future__ import annotations

import argparse
import math

__all__ = ["fraction"]


def fraction(option: str):
    """An argparse ``type`` for a fraction in [0, 1) given to ``option``; a
    percentage (1 < value <= 100) is refused with the fraction it probably meant."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1); got {text!r}") from None
        if math.isfinite(value) and 0.0 <= value < 1.0:
            return value
        hint = ""
        if math.isfinite(value) and 1.0 < value <= 100.0:
            hint = f"; did you mean {option} {value / 100:g}?"
        elif value == 1.0:
            hint = " (1 would prune every weight)"
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1); got {text}{hint}")

    parse.__name__ = "fraction"
    return parse
