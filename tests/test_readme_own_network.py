"""The README's "Your own network" example runs as written and says what it claims."""
from __future__ import annotations

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def _section_code(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}\n")
    end = text.index("\n## ", start + 1)
    blocks = re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)
    assert len(blocks) == 1, f"expected one python block in the {title!r} section"
    return blocks[0]


def test_your_own_network_example(capsys):
    ns: dict = {}
    exec(compile(_section_code("Your own network"), "README.md", "exec"), ns)
    net, res, K, k_diag = ns["net"], ns["res"], ns["K"], ns["k_diag"]
    convs = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    # every conv and linear weight is pruned (a torch prune mask on each), to the asked density
    assert all(hasattr(m, "weight_mask") for m in convs) and len(res.masks) == len(convs) == 22
    kept = sum(int(m.weight_mask.sum()) for m in convs)
    assert kept == round(0.1 * sum(m.weight_mask.numel() for m in convs))
    assert {d["module"] for d in res.report["dense"]} == {"BatchNorm2d", "Linear"}
    assert K.shape == (16, 16) and torch.allclose(K, K.T) and k_diag.shape == (16,)
    torch.testing.assert_close(k_diag, K.diagonal(), rtol=1e-4, atol=0)
    assert "True" in capsys.readouterr().out
