"""LIF neuron: exact dynamics of paper eq. 1-2 and gradients equal to autograd through a plain loop."""

from __future__ import annotations

import pytest
import torch

from nni_snn.neuron import LIF, SURROGATES, lif_reference, make_neuron


def run(values: list[float], **kwargs) -> list[float]:
    return LIF(**kwargs)(torch.tensor(values).reshape(-1, 1)).flatten().tolist()


def test_threshold_is_strict():
    assert run([0.5]) == [0.0]  # u exactly at threshold: no spike
    assert run([0.5001]) == [1.0]
    assert run([0.4999]) == [0.0]


def test_decay_accumulates_without_spike():
    # u1 = 0.3, u2 = 0.2*0.3 + 0.3 = 0.36, u3 = 0.2*0.36 + 0.3 = 0.372: never above 0.5
    assert run([0.3, 0.3, 0.3]) == [0.0, 0.0, 0.0]
    # u2 = 0.2*0.4 + 0.45 = 0.53 > 0.5
    assert run([0.4, 0.45]) == [0.0, 1.0]
    # u2 = 0.2*0.4 + 0.41 = 0.49: just below
    assert run([0.4, 0.41]) == [0.0, 0.0]


def test_reset_after_spike():
    # spike at t1 resets: u2 = 0.45 (not 0.2*0.9 + 0.45 = 0.63)
    assert run([0.9, 0.45]) == [1.0, 0.0]
    assert run([0.9, 0.51, 0.4]) == [1.0, 1.0, 0.0]


def test_tau_parameter():
    assert run([0.4, 0.4], tau=0.5) == [0.0, 1.0]  # 0.2 + 0.4 = 0.6
    assert run([0.4, 0.4], tau=0.2) == [0.0, 0.0]  # 0.08 + 0.4 = 0.48


def test_single_step_and_shapes():
    x = torch.randn(1, 3, 4, 5, 2)
    out = LIF()(x)
    assert out.shape == x.shape
    assert torch.equal(out, (x > 0.5).float())
    for shape in [(4,), (2, 7), (3, 2, 4, 5, 5)]:
        x = torch.randn(shape)
        out = LIF()(x)
        assert out.shape == x.shape and out.dtype == x.dtype
        assert set(out.unique().tolist()) <= {0.0, 1.0}


def test_non_contiguous_input_matches_contiguous():
    base = torch.rand(1, 8, 3)
    x = base.expand(4, 8, 3)  # stride 0 over time
    assert not x.is_contiguous()
    assert torch.equal(LIF()(x), LIF()(x.contiguous()))
    y = torch.rand(5, 6, 4).transpose(1, 2)
    assert torch.equal(LIF()(y), lif_reference(y))


def test_no_state_between_calls():
    lif = LIF()
    x = torch.rand(3, 10) * 0.8
    assert torch.equal(lif(x), lif(x))


def test_matches_reference_forward():
    x = torch.randn(6, 50, 7)
    assert torch.equal(LIF()(x), lif_reference(x))


def test_gradient_reaches_input_near_threshold():
    x = torch.full((2, 5), 0.45, requires_grad=True)
    LIF()(x).sum().backward()
    assert torch.isfinite(x.grad).all() and (x.grad != 0).all()


@pytest.mark.parametrize("surrogate", sorted(SURROGATES))
@pytest.mark.parametrize("detach_reset", [True, False])
def test_backward_matches_autograd_reference(surrogate: str, detach_reset: bool):
    torch.manual_seed(0)
    kwargs = {"tau": 0.2, "v_threshold": 0.5, "surrogate": surrogate, "alpha": 2.0, "detach_reset": detach_reset}
    x = (torch.randn(6, 4, 3, 5, dtype=torch.float64) * 0.6 + 0.4).requires_grad_()
    g = torch.randn(6, 4, 3, 5, dtype=torch.float64)
    (ours,) = torch.autograd.grad(LIF(**kwargs)(x), x, g)
    (ref,) = torch.autograd.grad(lif_reference(x, **kwargs), x, g)
    assert torch.allclose(ours, ref, rtol=1e-10, atol=1e-12)
    assert ours.abs().sum() > 0


def test_reset_detach_changes_gradient():
    x = torch.tensor([[0.6], [0.3]], requires_grad=True)  # spike at t1 -> the reset term matters
    grads = []
    for detach in (True, False):
        x.grad = None
        LIF(detach_reset=detach)(x).sum().backward()
        grads.append(x.grad[0].item())
    assert grads[0] != grads[1]


@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_surrogates_peak_at_threshold(name: str):
    fn = SURROGATES[name]
    v = torch.tensor([0.0, 0.1, 0.2, 0.3, 1.0, 3.0])
    sg = fn(v, 2.0)
    assert torch.isfinite(sg).all() and sg[0] > 0
    assert (sg[1:] <= sg[:-1]).all() and sg[-1] < sg[0]
    assert torch.allclose(fn(-v, 2.0), sg)  # symmetric
    grid = torch.linspace(-50, 50, 400001, dtype=torch.float64)
    area = torch.trapezoid(fn(grid, 2.0), grid).item()
    assert area == pytest.approx(1.0, abs=2e-2)  # all integrate to ~1 (arctan has slow tails)


def test_unknown_surrogate():
    with pytest.raises(ValueError, match="arctan"):
        LIF(surrogate="triangle")
    with pytest.raises(ValueError, match="relu"):
        make_neuron({"kind": "izhikevich"})


def test_make_neuron_builds_lif_or_its_relu_twin():
    lif = make_neuron({"surrogate": "arctan", "alpha": 2.0})
    assert isinstance(lif, LIF) and lif.surrogate == "arctan" and lif.alpha == 2.0
    assert isinstance(make_neuron(None), LIF) and make_neuron(None).surrogate == "sigmoid"
    assert isinstance(make_neuron({"kind": "relu"}), torch.nn.ReLU)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_membranes_are_float32(dtype: torch.dtype):
    """Under mixed precision the membrane and threshold run in float32: the spikes of a half-precision current are
    those of the same current in float32, exactly, and come back in the input's dtype."""
    torch.manual_seed(0)
    x = (torch.rand(4, 32) * 0.9).to(dtype).requires_grad_()
    out = LIF()(x)
    assert out.dtype == dtype
    assert torch.equal(out.float(), lif_reference(x.detach().float(), surrogate="sigmoid", alpha=4.0))
    out.sum().backward()
    assert x.grad.dtype == dtype and torch.isfinite(x.grad.float()).all()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    x = torch.randn(4, 16, 8, requires_grad=True)
    xc = x.detach().cuda().requires_grad_()
    LIF()(x).sum().backward()
    out = LIF()(xc)
    out.sum().backward()
    assert torch.equal(out.cpu(), LIF()(x.detach()))
    assert torch.allclose(xc.grad.cpu(), x.grad, atol=1e-6)


def test_repr():
    assert "tau=0.2" in repr(LIF()) and "surrogate='sigmoid', alpha=4.0" in repr(LIF())
