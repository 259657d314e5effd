"""Name -> model class registry, imported lazily.

``ALGORITHMS`` maps the snake-case names used on the command line and in the
web UI to classes. The classes are imported on first access only, so importing
the registry (or listing its names) never pulls in numba kernels of every
model, and an optional model module that fails to import only breaks its own
name.

The neural models (``recommender/engine/neural/``) need PyTorch, an optional
extra (``requirements-neural.txt``). Their classes import without it (so
listing or inspecting every algorithm works anywhere); :func:`make_model`
refuses to build one without it, with :class:`MissingExtraError`.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .base import Recommender

__all__ = [
    "ALGORITHMS",
    "ALGORITHM_PATHS",
    "OPTIONAL_EXTRAS",
    "MissingExtraError",
    "get_algorithm",
    "make_model",
    "parse_params",
    "require_extra",
]

#: name -> (module inside ``recommender.engine``, class name).
ALGORITHM_PATHS: dict[str, tuple[str, str]] = {
    "global_mean": ("baseline", "GlobalMean"),
    "bias_baseline": ("baseline", "BiasBaseline"),
    "explicit_als": ("als", "ExplicitALS"),
    "implicit_als": ("implicit_als", "ImplicitALS"),
    "pure_svd": ("svd", "PureSVD"),
    "ease": ("ease", "EASE"),
    "sgd_mf": ("gradient_mf", "SGDMF"),
    "lbfgs_mf": ("gradient_mf", "LBFGSMF"),
    "bpmf": ("bpmf", "BPMF"),
    "bayesian_svdpp": ("bayesian_svdpp", "BayesianSVDpp"),
    "bayesian_svdpp_served": ("bayesian_svdpp", "ServedBayesianSVDpp"),
    "item_knn": ("knn", "ItemKNN"),
    "user_knn": ("knn", "UserKNN"),
    "blend": ("blend", "Blend"),
    "rank_blend": ("rank_blend", "RankBlend"),
    "embedding_mf": ("neural.embedding_mf", "EmbeddingMF"),
    "deep_mf": ("neural.deep_mf", "DeepMF"),
    "residual_mf": ("neural.residual_mf", "ResidualMF"),
    "autorec": ("neural.autorec", "AutoRec"),
    # Trained by Spark MLlib (requirements-spark.txt, needed by fit() only: serving is numpy).
    "spark_als": ("spark_als", "SparkALS"),
    "spark_implicit_als": ("spark_als", "SparkImplicitALS"),
}

#: Package inside ``recommender.engine`` -> (the module its models need, the
#: requirements file that installs it).
OPTIONAL_EXTRAS: dict[str, tuple[str, str]] = {"neural": ("torch", "requirements-neural.txt")}


class MissingExtraError(ImportError, ValueError):
    """An algorithm needs an optional package that is not installed.

    Also a ``ValueError``, so commands that report a bad ``--algorithm`` as a
    usage error report this one the same way.
    """


def missing_extra_message(what: str, module: str, requirements: str) -> str:
    return (
        f"{what} needs the optional package {module!r}, which is not installed: "
        f"install {requirements} (pip install -r {requirements})"
    )


def require_extra(name: str) -> None:
    """Raise :class:`MissingExtraError` if algorithm ``name`` needs an optional
    package that is not installed (checked without importing it)."""
    module_name, _ = ALGORITHM_PATHS[name]
    extra = OPTIONAL_EXTRAS.get(module_name.partition(".")[0])
    if extra is not None and importlib.util.find_spec(extra[0]) is None:
        raise MissingExtraError(missing_extra_message(f"algorithm {name!r}", *extra))


def get_algorithm(name: str) -> type[Recommender]:
    """The model class registered under ``name``, imported on demand.

    Raises ``ValueError`` naming every valid name for an unknown one.
    """
    try:
        module_name, class_name = ALGORITHM_PATHS[name]
    except KeyError:
        valid = ", ".join(sorted(ALGORITHM_PATHS))
        raise ValueError(f"unknown algorithm {name!r}; valid names: {valid}") from None
    module = importlib.import_module(f"{__package__}.{module_name}")
    cls: type[Recommender] = getattr(module, class_name)
    return cls


class _LazyAlgorithms(Mapping[str, type]):
    """Read-only ``dict[str, type]`` view whose values are imported on lookup."""

    def __getitem__(self, name: str) -> type:
        if name not in ALGORITHM_PATHS:
            raise KeyError(name)
        return get_algorithm(name)

    def __iter__(self) -> Iterator[str]:
        return iter(ALGORITHM_PATHS)

    def __len__(self) -> int:
        return len(ALGORITHM_PATHS)

    def __repr__(self) -> str:
        return f"ALGORITHMS({', '.join(ALGORITHM_PATHS)})"


ALGORITHMS: Mapping[str, type] = _LazyAlgorithms()

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_NONE = {"none", "null", ""}


def _coerce(name: str, key: str, text: str, default: Any) -> Any:
    """Parse ``text`` to the type of ``default`` (bool/int/float/str/None)."""
    lowered = text.strip().lower()
    try:
        # bool before int: bool is a subclass of int.
        if isinstance(default, bool):
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError("expected true/false")
        if default is None:
            # No type to follow: None, else the narrowest of int, float, str.
            if lowered in _NONE:
                return None
            for parse in (int, float):
                try:
                    return parse(text)
                except ValueError:
                    pass
            return text
        if isinstance(default, int):
            if lowered in _NONE:
                return None
            return int(text)
        if isinstance(default, float):
            if lowered in _NONE:
                return None
            return float(text)
        if isinstance(default, str):
            return text
    except ValueError as exc:
        kind = type(default).__name__
        raise ValueError(f"{name}: parameter {key}={text!r} is not a valid {kind} ({exc})") from None
    raise ValueError(
        f"{name}: parameter {key} (default {default!r}) cannot be set from a string; "
        "construct the model in Python instead"
    )


def make_model(name: str, params: Mapping[str, Any] | None = None) -> Recommender:
    """Instantiate algorithm ``name`` with ``params`` (strings coerced to the defaults' types).

    ``params`` maps ``__init__`` keyword names to values; string values such as
    ``"64"`` or ``"true"`` are converted to the type of that keyword's default
    (int, float, bool, str; ``"none"`` gives None). Non-string values pass
    through unchanged. Unknown keys raise ``ValueError`` listing the valid ones;
    a model whose optional extra is missing raises :class:`MissingExtraError`.
    """
    cls = get_algorithm(name)
    require_extra(name)
    signature = inspect.signature(cls.__init__)
    defaults = {
        key: p.default
        for key, p in signature.parameters.items()
        if key != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    kwargs: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if key not in defaults:
            valid = ", ".join(sorted(defaults)) or "(none)"
            raise ValueError(f"{name}: unknown parameter {key!r}; valid parameters: {valid}")
        default = defaults[key]
        if isinstance(value, str) and default is not inspect.Parameter.empty:
            value = _coerce(name, key, value, default)
        kwargs[key] = value
    return cls(**kwargs)


def parse_params(pairs: Iterable[str]) -> dict[str, str]:
    """``["factors=64", "regularization=0.1"]`` -> ``{"factors": "64", ...}`` (CLI helper)."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"parameter {pair!r} is not of the form key=value")
        out[key] = value.strip()
    return out
