"""LIF neuron: exact dynamics of paper eq. 1-2 and gradients equal to autograd through a plain loop."""

from __future__ import annotations

import pytest
import torch

from benchmarks.lif_reference import lif_reference  # the plain autograd loop (benchmarks.neuron times it too)
from nni_snn.snn.neuron import LIF, SURROGATES, make_neuron


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
    kwargs = {"tau": 0.2, "v_threshold": 0.5, "surrogate": surrogate, "surrogate_alpha": 2.0, "detach_reset": detach_reset}
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
    fn = SURROGATES.load(name)
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
    lif = make_neuron({"surrogate": "arctan", "surrogate_alpha": 2.0})
    assert isinstance(lif, LIF) and lif.surrogate == "arctan" and lif.surrogate_alpha == 2.0
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
    assert torch.equal(out.float(), lif_reference(x.detach().float(), surrogate="sigmoid", surrogate_alpha=4.0))
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
    assert "tau=0.2" in repr(LIF()) and "surrogate='sigmoid', surrogate_alpha=4.0" in repr(LIF())


# --- the neuron registry and PLIF (a LIF with a learnable decay) -------------------------------------------------


def test_the_registry_builds_every_kind_and_only_spiking_neurons_are_marked():
    from torch import nn

    from nni_snn.snn.neuron import NEURONS, PLIF, SpikingNeuron, neuron_options

    assert list(NEURONS) == ["lif", "plif", "relu"]
    assert isinstance(make_neuron({"kind": "plif"}), PLIF) and isinstance(make_neuron({"kind": "plif"}), SpikingNeuron)
    assert isinstance(make_neuron({"kind": "lif"}), SpikingNeuron)
    relu = make_neuron({"kind": "relu", "tau": 0.5})  # the twin ignores the spiking neurons' options
    assert isinstance(relu, nn.ReLU) and not isinstance(relu, SpikingNeuron)
    assert neuron_options("plif") == neuron_options("lif") == ("tau", "v_threshold", "surrogate", "surrogate_alpha",
                                                                "detach_reset")
    assert neuron_options("relu") == ()
    with pytest.raises(ValueError, match="unknown neuron 'izhikevich'; valid: lif, plif, relu"):
        make_neuron({"kind": "izhikevich"})
    with pytest.raises(ValueError, match="0 < tau < 1"):
        make_neuron({"kind": "plif", "tau": 1.0})


def test_plif_starts_at_the_tau_option_and_behaves_as_lif_there():
    from nni_snn.snn.neuron import PLIF

    plif = PLIF(tau=0.3, surrogate="arctan", surrogate_alpha=2.0)
    assert [p.shape for p in plif.parameters()] == [torch.Size([])]  # one scalar per neuron layer
    assert plif.tau == pytest.approx(0.3)
    x = torch.rand(5, 3, 4) * 0.8
    assert torch.equal(plif(x), LIF(tau=torch.sigmoid(plif.w).item(), surrogate="arctan", surrogate_alpha=2.0)(x))


@pytest.mark.parametrize("detach_reset", [True, False])
@pytest.mark.parametrize("surrogate", ["sigmoid", "arctan"])
def test_plif_forward_and_gradients_match_autograd_through_a_plain_loop(surrogate, detach_reset):
    from nni_snn.snn.neuron import PLIF

    torch.manual_seed(1)
    x = (torch.rand(6, 4, 5, dtype=torch.float64) * 1.2).requires_grad_()
    weights = torch.randn(6, 4, 5, dtype=torch.float64)
    plif = PLIF(tau=0.4, surrogate=surrogate, surrogate_alpha=3.0, detach_reset=detach_reset)
    out = plif(x)
    (out * weights).sum().backward()

    x_ref = x.detach().clone().requires_grad_()
    w_ref = torch.tensor(plif.w.item(), dtype=torch.float64, requires_grad=True)
    ref = lif_reference(x_ref, tau=torch.sigmoid(w_ref), v_threshold=0.5, surrogate=surrogate, surrogate_alpha=3.0,
                        detach_reset=detach_reset)
    (ref * weights).sum().backward()

    assert torch.equal(out, ref)
    assert torch.allclose(x.grad, x_ref.grad, atol=1e-12)
    assert plif.w.grad is not None and plif.w.grad.dtype == torch.float32
    assert plif.w.grad.item() == pytest.approx(w_ref.grad.item(), rel=1e-5, abs=1e-9)
    assert w_ref.grad.item() != 0.0  # the test exercises the decay's gradient


def test_plif_in_mixed_precision_keeps_the_dtype_and_learns_tau():
    from nni_snn.snn.neuron import PLIF

    plif = PLIF()
    x = (torch.rand(4, 8) * 0.6).to(torch.bfloat16).requires_grad_()
    out = plif(x)
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert x.grad.dtype == torch.bfloat16 and plif.w.grad is not None


def test_retrain_with_plif_learns_tau_and_counts_spikes(tmp_path):
    import json

    from nni_snn.cli.main import main
    from nni_snn.files.genotype import CONV_HEAVY

    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps({"format": "nni-snn/arch", "version": 1, "attention": "ma", "timesteps": 2,
                                "genotype": CONV_HEAVY}))
    out = tmp_path / "plif"
    tiny = ["--width", "4", "--cells", "3", "--epochs", "1", "--batch-size", "256", "--no-progress"]
    assert main(["retrain", "--arch", str(arch), "--neuron", "plif", "--tau", "0.3", *tiny, "--output", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["network"]["neuron"] == {"kind": "plif", "tau": 0.3, "v_threshold": 0.5, "surrogate": "sigmoid",
                                            "surrogate_alpha": 4.0, "detach_reset": True}  # the rest: the file's, in full
    assert metrics["spikes_per_sample"] > 0 and metrics["sops_per_sample"] > 0
    state = torch.load(out / "checkpoints" / "best.ckpt", weights_only=True, map_location="cpu")["state_dict"]
    taus = torch.sigmoid(torch.stack([v for k, v in state.items() if k.endswith(".w")]))
    assert len(taus) > 10 and not torch.allclose(taus, torch.full_like(taus, 0.3))  # training moved the decays
    assert main(["retrain", "--arch", str(arch), "--neuron", "plif", "--tau", "1", *tiny]) == 2


def test_search_with_plif_records_it_in_the_arch_file(tmp_path):
    import json

    from nni_snn.cli.main import main
    from nni_snn.files.archfile import load_arch

    out = tmp_path / "search"
    assert main(["search", "--neuron", "plif", "--width", "4", "--cells", "3", "--epochs", "1", "--batch-size", "256",
                 "--no-progress", "--output", str(out)]) == 0
    assert load_arch(out / "arch.json")["neuron"] == {"kind": "plif", "tau": 0.2, "v_threshold": 0.5,
                                                      "surrogate": "sigmoid", "surrogate_alpha": 4.0, "detach_reset": True}
    assert json.loads((out / "metrics.json").read_text())["spikes_per_sample"] > 0


def test_fused_sigmoid_surrogate_times_gradient_matches_the_surrogate():
    from nni_snn.snn.neuron import SURROGATE_TIMES
    torch.manual_seed(0)
    v = torch.randn(1000) * 2
    g = torch.randn(1000)
    for alpha in (2.0, 4.0):
        torch.testing.assert_close(SURROGATE_TIMES["sigmoid"](g, v.clone(), alpha), g * SURROGATES.load("sigmoid")(v, alpha),
                                   atol=1e-6, rtol=1e-5)
