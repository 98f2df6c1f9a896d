"""Small helpers shared by the claims' rules."""
from __future__ import annotations

import json

import numpy as np


def as_list(v):
    """A list cell of a table (stored as a JSON string in flat tables)."""
    return json.loads(v) if isinstance(v, str) else list(v)


def finite(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and bool(np.isfinite(v))
