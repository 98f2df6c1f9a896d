"""Tiles of inputs shared by the eNTK paths (MLP and general module)."""
from __future__ import annotations

__all__ = ["_tile_bounds", "_tile_pairs"]


def _tile_bounds(n: int, block: int) -> list[tuple[int, int]]:
    """[start, stop) of ceil(n / block) balanced tiles of at most ``block`` inputs."""
    nb = -(-n // block)
    cuts = [n * i // nb for i in range(nb + 1)]
    return list(zip(cuts[:-1], cuts[1:]))


def _tile_pairs(n1: int, n2: int, sym: bool):
    """(i, j) tile pairs in the order that recomputes fewest tiles: all of them,
    the rows alternating direction (the last inner tile of a row is the first of
    the next); or i <= j when symmetric, j running downwards (the last inner tile
    of row i is tile i + 1, the next row's outer tile)."""
    for i in range(n1):
        if sym:
            yield from ((i, j) for j in range(n2 - 1, i - 1, -1))
        else:
            yield from ((i, j) for j in (range(n2) if i % 2 else range(n2 - 1, -1, -1)))
