"""What the models check the same way: a Config's counts, dtype and init_std (the bAbI models and the language
model), and a params dict's names, shapes and finiteness. Each check says what is wrong and where, in the same
words for every model."""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from memnet_np.optim import NonFiniteError

DTYPES = ("float64", "float32")


def below_one(config, names) -> list:
    """A problem for each of the config's fields `names` that is below 1."""
    return [f"{name} must be at least 1, got {getattr(config, name)}" for name in names if getattr(config, name) < 1]


def raise_config_problems(config, model: str, problems: list) -> None:
    """The end of a Config's check: its dtype is one of DTYPES and its init_std a positive number, then one
    ValueError naming every problem found."""
    if config.dtype not in DTYPES:
        problems = [*problems, f"dtype must be 'float64' or 'float32', got {config.dtype!r}"]
    try:
        std_ok = math.isfinite(float(config.init_std)) and float(config.init_std) > 0
    except (TypeError, ValueError):
        std_ok = False
    if not std_ok:
        problems = [*problems, f"init_std must be a positive number (the initial weights' standard deviation), "
                               f"got {config.init_std!r}"]
    if problems:
        raise ValueError(f"invalid {model} config: " + "; ".join(problems))


def vocab_size_at_least(config, least: int, words: str) -> None:
    """init_params' first check: a vocabulary of fewer than `least` words (`words` says which) gives no model."""
    if config.vocab_size < least:
        raise ValueError(f"vocab_size must be at least {least} ({words}), got {config.vocab_size}")


def check_params(params: Mapping[str, np.ndarray], shapes: Mapping[str, tuple]) -> None:
    """Every parameter in `shapes` (name: shape, in the config's order) is in params, with its shape, and finite
    (one sum per array: a NaN or inf shows in it)."""
    with np.errstate(over="ignore", invalid="ignore"):        # a finite array whose sum overflows is looked at
        for name, shape in shapes.items():
            if name not in params:
                raise ValueError(f"params has no {name!r}; this config needs {list(shapes)}")
            p = params[name]
            if p.shape != shape:
                raise ValueError(f"params[{name!r}] must have shape {shape}, got {p.shape}")
            if not math.isfinite(p.sum()) and not np.isfinite(p).all():
                raise NonFiniteError(f"params[{name!r}] holds NaN or inf")
