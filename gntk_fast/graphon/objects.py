"""Graphon objects: constant, callable and step graphons on [0, 1]^2.

Conventions (docs/graphons.md)
------------------------------
A graphon ``W(u, v)`` describes a layer whose mask has shape ``(n_out, n_in)``
like a torch Linear weight: ``u`` is the position of an *output* neuron (a row,
layer l+1), ``v`` the position of an *input* neuron (a column, layer l). At
width ``(n_out, n_in)`` neuron ``i`` (1-based) of the outputs sits at
``u_i = (i - 1/2) / n_out`` and input ``j`` at ``v_j = (j - 1/2) / n_in``;
``matrix`` returns ``W(u_i, v_j)`` and ``sample`` draws
``M_ij ~ Bernoulli(W(u_i, v_j))``.

Step graphons carry block edges as fractions in [0, 1]: block ``a`` of the
rows is ``[row_edges[a], row_edges[a + 1])`` (the last block also holds 1).
A SAS estimate with integer edges ``floor(b * n / K)`` becomes a step graphon
with edges ``floor(b * n / K) / n``, so ``matrix(n_out, n_in)`` puts every
neuron of the estimated layer in exactly its block.

Input layers keep pixel identity: their columns are the ``d`` pixels in pixel
order, which a step graphon with ``K_in = d`` uniform column blocks represents
exactly (pixel ``j`` sits at ``v_j = (j - 1/2)/d`` in column block ``j``).
:class:`InputGraphon` is that step graphon with pixel helpers.
"""
from __future__ import annotations

import math
import numbers
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

from .._validation import MAX_BLOCKS, MAX_WIDTH, check_bool, check_float, check_int, check_memory, check_seed, check_size
from .._validation import real_array

__all__ = [
    "Graphon",
    "ConstantGraphon",
    "FunctionGraphon",
    "StepGraphon",
    "InputGraphon",
    "as_graphon",
    "from_sas",
    "neuron_positions",
    "named_graphon",
]

# elements per streamed row block of ``sample`` (float32 uniforms + values):
# ~4M elements = 16 MiB per temporary, independent of the layer size.
_BLOCK_ELEMS = 1 << 22


def neuron_positions(n: int, name: str = "n") -> np.ndarray:
    """Positions ``(i - 1/2) / n`` of neurons ``i = 1..n`` in [0, 1], shape (n,)."""
    n = check_size(name, n, MAX_WIDTH)
    return (np.arange(n, dtype=np.float64) + 0.5) / n


def _as_unit_points(name: str, x: Any) -> np.ndarray:
    arr = real_array(name, x)
    if arr.size and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
        raise ValueError(f"{name} must lie in [0, 1]; got values in [{arr.min():.4g}, {arr.max():.4g}]")
    return arr


def _graphon_values(name: str, values: np.ndarray, max_value: float = 1.0) -> np.ndarray:
    if values.size:
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{name} returned non-finite values (NaN or inf)")
        lo, hi = float(values.min()), float(values.max())
        if lo < 0.0 or hi > max_value:
            upper = "1]" if max_value == 1.0 else "inf)"
            raise ValueError(f"{name} must take values in [0, {upper}; got values in [{lo:.4g}, {hi:.4g}]")
    return values


def _max_value_arg(max_value: Any) -> float:
    """1.0 (a connection probability) or inf (a variance graphon, any value >= 0)."""
    if max_value is None or max_value == 1.0:
        return 1.0
    if isinstance(max_value, (int, float, np.floating)) and not isinstance(max_value, bool) and np.isinf(max_value) \
            and max_value > 0:
        return float("inf")
    raise ValueError(f"max_value must be 1.0 (a probability graphon) or inf (a variance graphon); got {max_value!r}")


def _output_shape(n_out: Any, n_in: Any, bytes_per_entry: float) -> tuple[int, int]:
    """Sizes of a (n_out, n_in) output: each in [1, MAX_WIDTH], total bytes within memory."""
    n_out = check_size("n_out", n_out, MAX_WIDTH)
    n_in = check_size("n_in", n_in, MAX_WIDTH)
    row_bytes = -(-n_in // 8) if bytes_per_entry < 1 else n_in * int(bytes_per_entry)
    check_memory("n_out x n_in (the output)", n_out * row_bytes)
    return n_out, n_in


class Graphon:
    """Base class: a measurable ``W: [0, 1]^2 -> [0, 1]``.

    Subclasses implement :meth:`_eval` (broadcast u, v -> values) and may
    override :meth:`integrate` and :meth:`_rows`.

    ``max_value`` is 1.0 for a graphon of connection probabilities (the
    default) and inf for a *variance graphon* ``E[w^2 m](u, v)`` (any value
    >= 0), which weights the signal propagation of :func:`gntk_fast.graphon_ntk`
    (its ``variance_graphons``) and cannot be sampled as a mask.
    """

    max_value: float = 1.0

    # ---------------------------------------------------------------- values
    def evaluate(self, u: Any, v: Any) -> np.ndarray:
        """``W(u, v)`` with numpy broadcasting; u, v in [0, 1]. Returns float64."""
        u = _as_unit_points("u", u)
        v = _as_unit_points("v", v)
        u, v = np.broadcast_arrays(u, v)
        return _graphon_values(type(self).__name__, np.asarray(self._eval(u, v), dtype=np.float64), self.max_value)

    __call__ = evaluate

    def _eval(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def integrate(self) -> float:
        """The double integral of W over [0, 1]^2 (the edge density)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def matrix(self, n_out: int, n_in: int) -> np.ndarray:
        """``W(u_i, v_j)`` at the neuron positions, shape (n_out, n_in), float64.

        n_out, n_in are bounded by MAX_WIDTH and the matrix must fit in memory."""
        n_out, n_in = _output_shape(n_out, n_in, 8)
        u = neuron_positions(n_out, "n_out")
        v = neuron_positions(n_in, "n_in")
        return self._rows(u, v)

    def _rows(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Values on the grid u (rows) x v (columns), checked, float64 (len(u), len(v))."""
        return self.evaluate(u[:, None], v[None, :])

    # --------------------------------------------------------------- sampling
    def sample(
        self,
        n_out: int,
        n_in: int,
        seed: int | None = None,
        packed: bool = False,
        *,
        workers: int | None = None,
    ) -> np.ndarray:
        """Sample a mask ``M_ij ~ Bernoulli(W(u_i, v_j))`` of shape (n_out, n_in).

        Rows are generated in blocks of about 4M entries, each block from its
        own generator seeded by ``(seed, block index)`` (numpy SeedSequence
        spawn keys), so the result depends only on ``(seed, n_out, n_in)``,
        not on ``workers``, and no temporary larger than one block is made.

        Parameters
        ----------
        n_out, n_in : int in [1, MAX_WIDTH]
            Rows (output neurons) and columns (input neurons); the output
            must fit in memory (checked before anything is allocated).
        seed : int in [0, 2**64 - 1] or None
            Seed (None draws fresh entropy from the operating system).
        packed : bool
            False: bool array (n_out, n_in). True: ``np.packbits(M, axis=1)``,
            uint8 array (n_out, ceil(n_in / 8)) with big bit order (bit 7 of
            byte k is column 8k), for layers too wide to hold as bools.
        workers : int or None
            Threads filling row blocks (numpy's generators release the GIL);
            default min(4, os.cpu_count()).
        """
        import os

        if self.max_value > 1.0:
            raise ValueError(f"{self!r} is a variance graphon (values may exceed 1); only a graphon of "
                             "connection probabilities can be sampled as a mask")
        packed = check_bool("packed", packed)
        n_out, n_in = _output_shape(n_out, n_in, 1 / 8 if packed else 1)
        seed = check_seed(seed)
        if workers is None:
            workers = min(4, os.cpu_count() or 1)
        workers = check_int("workers", workers, min_value=1)

        ss = np.random.SeedSequence(seed)
        rows_per_block = max(1, _BLOCK_ELEMS // n_in)
        if packed:
            rows_per_block = max(8, rows_per_block)
        n_blocks = -(-n_out // rows_per_block)
        width = (n_in + 7) // 8 if packed else n_in
        out = np.empty((n_out, width), dtype=np.uint8 if packed else np.bool_)
        v = neuron_positions(n_in, "n_in")
        u_all = neuron_positions(n_out, "n_out")

        def fill(b: int) -> None:
            lo = b * rows_per_block
            hi = min(n_out, lo + rows_per_block)
            rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(ss.entropy, spawn_key=(b,))))
            w = self._rows(u_all[lo:hi], v).astype(np.float32, copy=False)
            draw = rng.random((hi - lo, n_in), dtype=np.float32)
            block = draw < w
            if packed:
                out[lo:hi] = np.packbits(block, axis=1)
            else:
                out[lo:hi] = block

        if workers == 1 or n_blocks == 1:
            for b in range(n_blocks):
                fill(b)
        else:
            with ThreadPoolExecutor(max_workers=min(workers, n_blocks)) as pool:
                list(pool.map(fill, range(n_blocks)))
        return out

    # ----------------------------------------------------------------- misc
    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ConstantGraphon(Graphon):
    """``W(u, v) = c`` (the limit of random / Erdos-Renyi pruning at density c)."""

    def __init__(self, c: float, *, max_value: float = 1.0) -> None:
        self.max_value = _max_value_arg(max_value)
        self.c = check_float("c", c, min_value=0.0, max_value=self.max_value)

    def _eval(self, u, v):
        return np.full(u.shape, self.c)

    def _rows(self, u, v):
        return np.full((len(u), len(v)), self.c)

    def integrate(self) -> float:
        return self.c

    def __repr__(self) -> str:
        return f"ConstantGraphon(c={self.c:.6g})"


class FunctionGraphon(Graphon):
    """``W(u, v) = fn(u, v)`` for a callable vectorised over numpy arrays.

    ``fn`` receives broadcast float64 arrays ``u`` and ``v`` (same shape) and
    must return values of exactly that shape (or one number, a constant) in [0, 1]:
    any other shape is a ValueError, never broadcast;
    values outside [0, 1] or non-finite values raise ValueError.
    """

    def __init__(self, fn: Callable[[np.ndarray, np.ndarray], Any], name: str | None = None, *,
                 max_value: float = 1.0) -> None:
        self.max_value = _max_value_arg(max_value)
        if not callable(fn):
            raise TypeError(f"fn must be callable; got {type(fn).__name__}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "fn")

    def _eval(self, u, v):
        out = np.asarray(self.fn(u, v), dtype=np.float64)
        if out.shape == u.shape:
            return out
        if out.ndim == 0:  # a number: the constant graphon
            return np.full(u.shape, float(out))
        raise ValueError(f"fn returned shape {out.shape}; it must return the inputs' shape {u.shape} "
                         "(one value per (u, v) pair) or a single number")

    def evaluate(self, u, v):
        u = _as_unit_points("u", u)
        v = _as_unit_points("v", v)
        u, v = np.broadcast_arrays(u, v)
        return _graphon_values("fn", np.asarray(self._eval(u, v), dtype=np.float64), self.max_value)

    def integrate(self, n: int = 512) -> float:
        """Tensor Gauss-Legendre rule with ``n`` nodes per axis (n^2 calls, vectorised).

        Exact for polynomials of degree < 2n in each variable; for a
        discontinuous ``fn`` the error is O(1/n).
        """
        n = check_size("n", n, MAX_BLOCKS)
        check_memory("n x n (the quadrature grid)", 8 * n * n)
        x, w = np.polynomial.legendre.leggauss(n)
        x = 0.5 * (x + 1.0)
        w = 0.5 * w
        vals = self.evaluate(x[:, None], x[None, :])
        return float(w @ vals @ w)

    def __repr__(self) -> str:
        return f"FunctionGraphon({self.name})"


def _edges_arg(name: str, edges: Any, k: int) -> np.ndarray:
    if edges is None:
        return np.linspace(0.0, 1.0, k + 1)
    e = real_array(name, edges)
    if e.ndim != 1 or e.shape[0] != k + 1:
        raise ValueError(f"{name} must have shape ({k + 1},) for {k} blocks; got {e.shape}")
    if not np.all(np.isfinite(e)):
        raise ValueError(f"{name} must be finite")
    if e[0] != 0.0 or e[-1] != 1.0:
        raise ValueError(f"{name} must start at 0 and end at 1; got {e[0]:.4g} .. {e[-1]:.4g}")
    if np.any(np.diff(e) <= 0):
        raise ValueError(f"{name} must be strictly increasing")
    return e


class StepGraphon(Graphon):
    """A step graphon: ``W(u, v) = H[a, b]`` for u in row block a, v in column block b.

    Parameters
    ----------
    H : array (K_out, K_in), values in [0, 1] (in [0, inf) with ``max_value=inf``)
        Block values; rows = output blocks (layer l+1), columns = input blocks (layer l).
    row_edges : array (K_out + 1,), optional
        Fractions 0 = e_0 < ... < e_K = 1; default uniform.
    col_edges : array (K_in + 1,), optional
        Same for the columns.
    max_value : 1.0 (default, probabilities) or inf (a variance graphon, see :class:`Graphon`).
    """

    def __init__(self, H: Any, row_edges: Any = None, col_edges: Any = None, *, max_value: float = 1.0) -> None:
        self.max_value = _max_value_arg(max_value)
        H = np.array(real_array("H", H), dtype=np.float64)
        if H.ndim != 2:
            raise ValueError(f"H must be a 2-D (K_out, K_in) matrix; got shape {H.shape}")
        if H.size == 0:
            raise ValueError("H must not be empty")
        _graphon_values("H", H, self.max_value)
        self.H = H
        self.row_edges = _edges_arg("row_edges", row_edges, H.shape[0])
        self.col_edges = _edges_arg("col_edges", col_edges, H.shape[1])
        self.H.setflags(write=False)
        self.row_edges.setflags(write=False)
        self.col_edges.setflags(write=False)

    @property
    def K_out(self) -> int:
        return self.H.shape[0]

    @property
    def K_in(self) -> int:
        return self.H.shape[1]

    @staticmethod
    def _block(edges: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)

    def row_block(self, u: Any) -> np.ndarray:
        """Row block index of each u (int array, same shape)."""
        return self._block(self.row_edges, _as_unit_points("u", u))

    def col_block(self, v: Any) -> np.ndarray:
        """Column block index of each v (int array, same shape)."""
        return self._block(self.col_edges, _as_unit_points("v", v))

    def _eval(self, u, v):
        return self.H[self._block(self.row_edges, u), self._block(self.col_edges, v)]

    def _rows(self, u, v):
        return self.H[np.ix_(self._block(self.row_edges, u), self._block(self.col_edges, v))]

    def block_areas(self) -> np.ndarray:
        """Area of each block, shape (K_out, K_in); sums to 1."""
        return np.outer(np.diff(self.row_edges), np.diff(self.col_edges))

    def integrate(self) -> float:
        return float(np.sum(self.H * self.block_areas()))

    @classmethod
    def from_estimate(cls, estimate: Any) -> "StepGraphon":
        """The step graphon of a SAS estimate (see :func:`from_sas`)."""
        return from_sas(estimate)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(K_out={self.K_out}, K_in={self.K_in}, integral={self.integrate():.4g})"


class InputGraphon(StepGraphon):
    """An input-layer graphon that keeps pixel identity.

    ``H`` has shape (K_out, d): rows are blocks of output neurons (sorted by
    degree, edges ``row_edges``), columns are the ``d`` input pixels in pixel
    order (uniform column blocks, so pixel ``j`` is at ``v_j = (j - 1/2)/d``).
    """

    def __init__(self, H: Any, row_edges: Any = None, *, max_value: float = 1.0) -> None:
        super().__init__(H, row_edges=row_edges, col_edges=None, max_value=max_value)

    @property
    def d(self) -> int:
        return self.K_in

    def pixel_density(self) -> np.ndarray:
        """Kept fraction per pixel, ``integral_0^1 W(u, v_j) du``, shape (d,)."""
        return np.diff(self.row_edges) @ self.H

    def image(self, shape: tuple[int, int] | None = None) -> np.ndarray:
        """:meth:`pixel_density` reshaped to an image (default square side sqrt(d))."""
        dens = self.pixel_density()
        if shape is None:
            side = math.isqrt(self.d)
            if side * side != self.d:
                raise ValueError(f"shape must be given: d={self.d} is not a square")
            shape = (side, side)
        shape = tuple(int(s) for s in shape)
        if len(shape) != 2 or shape[0] * shape[1] != self.d:
            raise ValueError(f"shape must be 2 numbers multiplying to d={self.d}; got {shape}")
        return dens.reshape(shape)


def from_sas(estimate: Any) -> StepGraphon:
    """Turn a SAS result (``gntk_fast.graphon.sas``) into a step graphon.

    Integer block edges become fractions ``edges / n``. An estimate made with
    ``sort_cols=False`` (an input layer, columns in pixel order with one block
    per pixel) becomes an :class:`InputGraphon`; any other estimate a
    :class:`StepGraphon`.
    """
    try:
        H = real_array("estimate.H", estimate.H).astype(np.float64)
        n_out, n_in = (int(s) for s in estimate.shape)
        row_edges = np.asarray(estimate.row_edges, dtype=np.float64) / n_out
        col_edges = np.asarray(estimate.col_edges, dtype=np.float64) / n_in
    except AttributeError:
        raise TypeError(
            f"estimate must be a SAS result with H, shape, row_edges and col_edges; got {type(estimate).__name__}"
        ) from None
    H = np.clip(H, 0.0, 1.0)  # TV smoothing can overshoot [0, 1] by rounding
    if not getattr(estimate, "sort_cols", True) and H.shape[1] == n_in:
        return InputGraphon(H, row_edges=row_edges)
    return StepGraphon(H, row_edges=row_edges, col_edges=col_edges)


def as_graphon(obj: Any, *, max_value: float = 1.0) -> Graphon:
    """Coerce ``obj`` into a :class:`Graphon`.

    Accepts a Graphon (returned as is), a real number in [0, 1]
    (:class:`ConstantGraphon`), a callable ``fn(u, v)`` (:class:`FunctionGraphon`),
    a 2-D array of block values (:class:`StepGraphon` with uniform edges) or a
    SAS result (:func:`from_sas`). ``max_value=inf`` builds a variance graphon
    (values in [0, inf), see :class:`Graphon`); any graphon of probabilities is
    also a valid variance graphon, but a variance graphon is refused where
    probabilities are asked for (``max_value=1.0``).
    """
    max_value = _max_value_arg(max_value)
    if isinstance(obj, Graphon):
        if obj.max_value > max_value:
            raise ValueError(f"{obj!r} is a variance graphon (values may exceed 1); a graphon of connection "
                             "probabilities is needed here")
        return obj
    if isinstance(obj, (numbers.Real, np.floating, np.integer)) and not isinstance(obj, bool):
        return ConstantGraphon(float(obj), max_value=max_value)
    if hasattr(obj, "H") and hasattr(obj, "row_edges") and hasattr(obj, "shape"):
        return from_sas(obj)
    if callable(obj) and not hasattr(obj, "__array__"):
        return FunctionGraphon(obj, max_value=max_value)
    try:
        import torch

        if isinstance(obj, torch.Tensor):
            obj = obj.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, (np.ndarray, list, tuple)):
        arr = real_array("obj", obj).astype(np.float64)
        if arr.ndim == 0:
            return ConstantGraphon(float(arr), max_value=max_value)
        if arr.ndim == 2:
            return StepGraphon(arr, max_value=max_value)
        raise ValueError(f"obj as an array must be 2-D (a step graphon's block matrix); got shape {arr.shape}")
    raise TypeError(f"obj must be a graphon, a number, a callable, a 2-D array or a SAS result; got {type(obj).__name__}")


def named_graphon(spec: str) -> Graphon:
    """A graphon from a short spec string (the ``--graphons`` of ``gntk-fast gntk``,
    the ``graphon`` key of sweep tasks); ValueError naming the spec.

    ``constant:C`` (W = C in [0, 1]), ``linear`` (W = 0.15 + 0.7 u v),
    ``linear:A,B`` (W = A + B u v, within [0, 1]), ``exp:S`` (W = exp(-|u - v| / S), S > 0).

    Examples
    --------
    >>> from gntk_fast.graphon import named_graphon
    >>> float(named_graphon("linear:0.1,0.5").evaluate(1.0, 1.0))
    0.6
    """
    if not isinstance(spec, str):
        raise TypeError(f"graphon spec must be a string (constant:C, linear[:A,B], exp:S); got {type(spec).__name__}")
    name, _, arg = spec.partition(":")
    try:
        if name == "constant":
            return ConstantGraphon(float(arg))
        if name == "linear":
            a, b = (float(t) for t in arg.split(",")) if arg else (0.15, 0.7)
            if not (0 <= a and 0 <= a + b <= 1 and a <= 1):
                raise ValueError(f"A + B u v must stay in [0, 1]; got A={a}, B={b}")
            return FunctionGraphon(lambda u, v: a + b * u * v, name=f"{a}+{b}uv")
        if name == "exp":
            s = float(arg)
            if not s > 0:
                raise ValueError("S must be > 0")
            return FunctionGraphon(lambda u, v: np.exp(-np.abs(u - v) / s), name=f"exp(-|u-v|/{s})")
    except ValueError as exc:
        raise ValueError(f"graphon spec {spec!r}: {exc}") from None
    raise ValueError(f"graphon spec {spec!r}: unknown name {name!r} (constant:C, linear[:A,B], exp:S)")
