"""MLP is a plain torch module: torch.func transforms and torch.compile apply."""
import shutil

import pytest
import torch
from torch.func import functional_call, jacrev, vmap

import gntk_fast as gf


def _masked_model(seed=0):
    m = gf.MLP(5, [7, 6], None, 3, seed=seed, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed + 1)
    m.set_masks([torch.rand(w.shape, generator=g) < 0.5 for w in m.weights])
    return m


def test_vmap_jacrev_gram_equals_empirical_ntk():
    model = _masked_model()
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def f(p, xi):
        return functional_call(model, p, (xi,))

    jac = vmap(jacrev(f), in_dims=(None, 0))(params, x)  # name -> (N, d_out, *param.shape)
    theta = torch.zeros(4, 4, dtype=torch.float64)
    for l, layer in enumerate(model.layers):
        J = jac[f"layers.{l}.weight"] * layer.weight_mask  # kept weights only (pruned ones get 0 anyway)
        J = J.reshape(4, model.d_out, -1)
        theta += torch.einsum("acp,bcp->ab", J, J)
    expect = gf.empirical_ntk(model, x, trainable="mask")
    assert isinstance(expect, torch.Tensor)
    torch.testing.assert_close(theta, expect.to(torch.float64), rtol=0, atol=1e-10)


def _have_compiler() -> bool:
    return any(shutil.which(c) for c in ("cc", "gcc", "g++", "clang", "c++"))


@pytest.mark.skipif(not _have_compiler(), reason="torch.compile's CPU inductor backend needs a C/C++ compiler")
def test_torch_compile_fullgraph_matches_eager():
    torch._dynamo.reset()
    model = _masked_model(3)
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    compiled = torch.compile(model, fullgraph=True)
    torch.testing.assert_close(compiled(x), model(x), rtol=1e-12, atol=1e-12)
