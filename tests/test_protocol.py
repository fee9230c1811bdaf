"""Every model in the registry (experiments.MODELS) keeps the model protocol of DESIGN.md, and its front door
refuses bad input with a ValueError naming the field. A new model plugs in by its registry line alone."""
import numpy as np
import pytest

from memnet_np import experiments
from memnet_np.gradcheck import check_gradients, format_report

MODELS = sorted(experiments.MODELS)


# The NTM's default memory is a constant 1e-6: every row's norm sits inside the cosine's ε guard, where central
# differences with h = 1e-5 are not accurate (test_ntm checks that case with a smaller step). A learned, random
# initial memory keeps the check away from it, and checks M0 too.
# The language model's official N(0, 0.05) weights make A's and T_A's gradients about 1e-6 on a loss of about 10,
# below what central differences resolve (test_memn2n_lm checks every entry at larger weights, < 1e-7).
GRADCHECK = {"ntm": {"memory_init": "learned"}, "memn2n-lm": {"init_std": 0.5}}


def tiny(name, seed=0, **overrides):
    model = experiments.get_model(name)
    rng = np.random.default_rng(seed)
    config = model.Config.tiny(**overrides)
    return model, config, model.init_params(config, rng), model.example_batch(config, rng)


@pytest.mark.parametrize("name", MODELS)
def test_protocol_names(name):
    model = experiments.get_model(name)
    for attr in ("Config", "init_params", "example_batch", "forward", "backward", "loss_and_grads", "predict",
                 "param_names"):
        assert hasattr(model, attr), f"{name} lacks {attr}"
    assert hasattr(model.Config, "tiny")


@pytest.mark.parametrize("name", MODELS)
def test_loss_and_grads_is_a_deterministic_function_of_params_and_batch(name):
    model, config, params, batch = tiny(name, 1)
    loss1, grads1, _ = model.loss_and_grads(params, batch, config)
    loss2, grads2, _ = model.loss_and_grads(params, batch, config)
    assert np.isfinite(loss1) and loss1 == loss2
    assert set(grads1) == set(params) == set(model.param_names(config))
    for k in params:
        assert grads1[k].shape == params[k].shape and np.array_equal(grads1[k], grads2[k])
        assert np.isfinite(grads1[k]).all()


@pytest.mark.gradcheck
@pytest.mark.parametrize("name", MODELS)
def test_every_parameter_passes_the_gradient_check(name):
    model, config, params, batch = tiny(name, 2, **GRADCHECK.get(name, {}))
    report = check_gradients(lambda p: model.loss_and_grads(p, batch, config), params, max_entries=12)
    assert all(r.checked > 0 for r in report.values()), format_report(report)
    assert all(r.rel_error < 1e-6 for r in report.values()), format_report(report)


@pytest.mark.parametrize("name", MODELS)
def test_the_front_door_names_a_bad_field(name):
    model, config, params, batch = tiny(name, 3)
    field = next(f for f in batch._fields if isinstance(getattr(batch, f), np.ndarray)
                 and getattr(batch, f).ndim >= 2)
    bad = batch._replace(**{field: getattr(batch, field)[..., :1, :1] if getattr(batch, field).ndim > 2
                            else getattr(batch, field)[:, :1]})
    with pytest.raises(ValueError, match=field):
        model.forward(params, bad, config)
    wrong_type = batch._replace(**{field: getattr(batch, field).tolist()})
    with pytest.raises((ValueError, TypeError), match=field):
        model.forward(params, wrong_type, config)
