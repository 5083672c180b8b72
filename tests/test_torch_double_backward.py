"""blconv.torch: derivatives of gradients (``create_graph=True``).

With ``create_graph=True`` the backward of a band-limited layer is itself recorded, so
gradient penalties (WGAN-GP, R1, double backprop) differentiate through it.  Checked
against PyTorch's own convolutions at compress rate 0, against finite differences of
the gradient (``gradcheck`` of a gradient, ``gradgradcheck``) at a rate, against the
plain backward, and for the refusals where the layer's saved state cannot answer.
"""
import copy

import pytest

torch = pytest.importorskip("torch")

import blconv  # noqa: E402
import blconv.torch as bt  # noqa: E402

F = torch.nn.functional
nn = torch.nn
# as in test_torch.py: eps-scaled in float64; float32's FFT rounding stays under 1e-4
# of the largest value for these sizes (here a product of two layers' roundings)
RTOL = {torch.float32: 2e-4, torch.float64: 1e-10}
DTYPES = [pytest.param(torch.float32, id="f32"), pytest.param(torch.float64, id="f64")]

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")

# name: (op, d, x shape, weight shape, kwargs); each runs on one of the core's routes
CASES = {
    "conv2d-pad1": ("conv", 2, (2, 3, 8, 7), (4, 3, 3, 3), dict(padding=1)),
    "conv2d-stride2-groups2": ("conv", 2, (2, 4, 9, 8), (4, 2, 3, 2),
                               dict(stride=2, groups=2)),
    "conv2d-same-dilated": ("conv", 2, (2, 2, 8, 8), (3, 2, 2, 2),
                            dict(padding="same", dilation=2)),
    "conv2d-1x1-stride2": ("conv", 2, (2, 3, 9, 8), (4, 3, 1, 1), dict(stride=2, padding=1)),
    "conv1d-same": ("conv", 1, (2, 3, 16), (2, 3, 5), dict(padding="same")),
    "conv1d-stride2-batch1": ("conv", 1, (1, 2, 15), (3, 2, 3), dict(stride=2, padding=1)),
    "conv_transpose2d-s2-p1": ("conv_transpose", 2, (2, 3, 5, 4), (3, 2, 4, 4),
                               dict(stride=2, padding=1)),
    "conv_transpose2d-mixed": ("conv_transpose", 2, (1, 4, 4, 5), (4, 3, 3, 2),
                               dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2),
                                    dilation=(1, 2), groups=2)),
    "conv_transpose1d-s2-op1": ("conv_transpose", 1, (2, 4, 7), (4, 3, 4),
                                dict(stride=2, padding=1, output_padding=1)),
}
TRANSPOSED = [k for k, v in CASES.items() if v[0] == "conv_transpose"]


def close(actual, expected, rtol):
    """``|actual - expected| <= rtol * max|expected|``, elementwise."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    scale = expected.abs().max().item()
    err = (actual - expected).abs().max().item()
    assert err <= rtol * max(scale, 1e-30), f"max error {err:.3g} vs scale {scale:.3g}"


def case(name, dtype=torch.float64, seed=0):
    """``(ours, torch's, (x, w, b), v)``: the two functions with the case's arguments
    bound, leaves that require gradients, and a fixed output weighting ``v``."""
    op, d, xs, ws, kw = CASES[name]
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).to(dtype)
    c_out = ws[0] if op == "conv" else ws[1] * kw.get("groups", 1)
    x, w, b = (rand(*s).requires_grad_() for s in (xs, ws, (c_out,)))
    ours = getattr(bt, f"{op}{d}d")
    theirs = getattr(F, f"{op}{d}d")
    y = theirs(x, w, b, **kw)
    v = rand(*y.shape)
    return ((lambda x, w, b, **o: ours(x, w, b, **kw, **o)),
            (lambda x, w, b: theirs(x, w, b, **kw)), (x, w, b), v)


def input_gradient(f, x, w, b, v):
    """``d/dx sum(tanh(f(x, w, b)) * v)``, recorded for a second derivative: the gradient
    that WGAN-GP and R1 penalise (tanh makes it depend on ``x``, ``w`` and ``b``)."""
    out = (torch.tanh(f(x, w, b)) * v).sum()
    return torch.autograd.grad(out, x, create_graph=True)[0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CASES)
def test_gradient_penalty_at_rate_0_is_torchs(name, dtype):
    ours, theirs, leaves, v = case(name, dtype)
    got = torch.autograd.grad(input_gradient(ours, *leaves, v).pow(2).sum(), leaves)
    want = torch.autograd.grad(input_gradient(theirs, *leaves, v).pow(2).sum(), leaves)
    for g, h in zip(got, want):
        close(g, h, RTOL[dtype])


@pytest.mark.parametrize("name", CASES)
def test_input_gradient_band_limited_derivatives_by_finite_differences(name):
    ours, _, leaves, v = case(name)

    def g(x, w, b):
        return input_gradient(lambda *a: ours(*a, compress_rate=0.5), x, w, b, v)
    assert torch.autograd.gradcheck(g, leaves, eps=1e-6, atol=1e-8, rtol=1e-6)
    # band-limited indeed: not the full-spectrum gradient
    full = input_gradient(ours, *leaves, v).detach()
    assert (g(*leaves).detach() - full).norm() > 1e-3 * full.norm()


@pytest.mark.parametrize("name", TRANSPOSED)
def test_conv_transpose_all_second_derivatives_by_finite_differences(name):
    ours, _, leaves, _ = case(name)
    # every second derivative, the filter gradient's included (the layer keeps its input)
    assert torch.autograd.gradgradcheck(lambda *a: ours(*a, compress_rate=0.5), leaves,
                                        eps=1e-6, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("name", ["conv2d-pad1", "conv1d-stride2-batch1",
                                  "conv_transpose2d-s2-p1"])
def test_create_graph_gives_the_plain_backwards_gradients(name):
    ours, _, leaves, v = case(name)
    y = ours(*leaves, compress_rate=0.5)
    plain = torch.autograd.grad(y, leaves, v, retain_graph=True)
    recorded = torch.autograd.grad(y, leaves, v, create_graph=True)
    # dx and dw are recorded (each depends on a leaf); db is v summed, a constant here
    assert recorded[0].grad_fn is not None and recorded[1].grad_fn is not None
    # the same core backward on the same arrays for dx and dw; db a sum in another order
    assert torch.equal(recorded[0], plain[0]) and torch.equal(recorded[1], plain[1])
    close(recorded[2], plain[2], RTOL[torch.float64])


def test_the_energy_band_is_kept_for_the_second_derivative():
    _, _, (x, w, b), v = case("conv2d-pad1")

    def penalty(**o):
        def f(x, w, b):
            return bt.functional.band_conv(2, x, w, b, padding=1, **o)[0]
        return torch.autograd.grad(input_gradient(f, x, w, b, v).pow(2).sum(), (x, w, b))
    band = bt.functional.band_conv(2, x, w, b, padding=1, preserve_energy=0.5)[1]
    assert band.retained < blconv.band_for(x.shape, w.shape, padding=1).retained
    # the band chosen from the data, and the same band given: one map, one derivative
    for g, h in zip(penalty(preserve_energy=0.5), penalty(band=band)):
        close(g, h, RTOL[torch.float64])


def test_differentiating_a_correlations_filter_gradient_is_refused():
    ours, _, (x, w, b), v = case("conv2d-pad1")
    dw = torch.autograd.grad((ours(x, w, b, compress_rate=0.5) * v).sum(), w,
                             create_graph=True)[0]
    with pytest.raises(RuntimeError, match=r"blconv\.torch\.conv2d: the filter gradient of "
                                           r"a band-limited correlation cannot be "
                                           r"differentiated again"):
        dw.pow(2).sum().backward()
    # the same with the filter gradient of a layer whose input needs none
    dw = torch.autograd.grad((ours(x.detach(), w, b) * v).sum(), w, create_graph=True)[0]
    with pytest.raises(RuntimeError, match="filter gradient"):
        torch.autograd.grad(dw.sum(), w)


def test_third_derivatives_are_refused():
    ours, _, (x, w, b), v = case("conv_transpose2d-s2-p1")
    g = input_gradient(ours, x, w, b, v)
    gg = torch.autograd.grad(g.pow(2).sum(), w, create_graph=True)[0]
    with pytest.raises(RuntimeError, match="once_differentiable"):
        gg.sum().backward()


def _gan(seed):
    torch.manual_seed(seed)
    generator = nn.Sequential(nn.ConvTranspose2d(4, 6, 4, stride=2, padding=1), nn.ReLU(),
                              nn.Conv2d(6, 3, 3, padding=1), nn.Tanh()).double()
    critic = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.LeakyReLU(0.2),
                           nn.Conv2d(6, 8, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
                           nn.Flatten(), nn.Linear(8 * 4 * 4, 1)).double()
    return generator, critic


def _wgan_gp_losses(generator, critic, seed):
    """A WGAN-GP step's two losses: the critic's with its gradient penalty on the
    interpolates (Gulrajani et al. 2017), and the generator's."""
    gen = torch.Generator().manual_seed(seed)
    real = torch.rand(3, 3, 8, 8, generator=gen, dtype=torch.float64) * 2 - 1
    noise = torch.randn(3, 4, 4, 4, generator=gen, dtype=torch.float64)
    eps = torch.rand(3, 1, 1, 1, generator=gen, dtype=torch.float64)
    fake = generator(noise)
    mixed = (eps * real + (1 - eps) * fake.detach()).requires_grad_()
    grad = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)[0]
    penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    critic_loss = critic(fake.detach()).mean() - critic(real).mean() + 10 * penalty
    return critic_loss, -critic(fake).mean()


def test_a_converted_wgan_gp_step_matches_torch_at_rate_0_and_runs_at_half():
    plain = _gan(5)
    converted = tuple(bt.convert(copy.deepcopy(m)) for m in plain)
    assert sum(isinstance(m, (bt.Conv2d, bt.ConvTranspose2d))
               for net in converted for m in net.modules()) == 4
    grads = []
    for generator, critic in (plain, converted):
        critic_loss, generator_loss = _wgan_gp_losses(generator, critic, 6)
        grads.append(torch.autograd.grad(critic_loss, list(critic.parameters()))
                     + torch.autograd.grad(generator_loss, list(generator.parameters())))
    for g, h in zip(*grads):
        close(g, h, RTOL[torch.float64])
    # at a rate: an optimiser step on the critic's penalised loss changes its weights
    generator, critic = converted
    bt.set_compress_rate(generator, 0.5)
    bt.set_compress_rate(critic, 0.5)
    opt = torch.optim.SGD(critic.parameters(), lr=1e-2)
    before = critic[2].weight.detach().clone()
    critic_loss, _ = _wgan_gp_losses(generator, critic, 6)
    critic_loss.backward()
    opt.step()
    assert torch.isfinite(critic_loss) and not torch.equal(critic[2].weight, before)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="PyTorch sees no CUDA device")
@pytest.mark.parametrize("name", ["conv2d-stride2-groups2", "conv_transpose2d-s2-p1"])
def test_cuda_gradient_penalty_matches_the_cpu_path(name):
    ours, theirs, leaves, v = case(name)
    cuda = tuple(t.detach().cuda().requires_grad_() for t in leaves)
    for o in ({}, dict(compress_rate=0.5)):
        got = torch.autograd.grad(input_gradient(lambda *a: ours(*a, **o), *cuda, v.cuda())
                                  .pow(2).sum(), cuda)
        want = torch.autograd.grad(input_gradient(lambda *a: ours(*a, **o), *leaves, v)
                                   .pow(2).sum(), leaves)
        for g, h in zip(got, want):
            assert g.is_cuda
            close(g.cpu(), h, RTOL[torch.float64])
