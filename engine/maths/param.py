"""Parameters, the Module base class, and the flat storage optimizers work on.

A `Param` is a named array and its gradient. A `Module` owns params and child modules and
knows its dotted path in the model ("decoder.blocks.1.cross_attn.q_proj"), which is also the
path of every trace event it emits.

`pack_params` moves every parameter of a model into one contiguous buffer (and every gradient
into another) and re-points each `Param` at its slice. Layers always read `param.data` at call
time, so they never notice; optimizers, zeroing and clipping then touch one array instead of
hundreds, and no gradient buffer is ever reallocated.

A model built for weights it is given (`build_model(config, weights)`: a checkpoint, a GPT-2
folder) draws no random numbers: its layers ask `normal_init` with `NO_INIT` in place of the
generator and get uninitialised memory (which the operating system hands out lazily), and
`pack_params(model, weights)` writes the given values straight into the packed buffer, the
only copy made.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import numpy as np

from .facts import NO_FACTS, Facts


class _NoInit:
    """Stands in for the random generator while a model is built for given weights."""

    def __repr__(self) -> str:
        return "NO_INIT"


NO_INIT = _NoInit()


def normal_init(rng: np.random.Generator | _NoInit, shape: tuple[int, ...], std: float,
                dtype: np.dtype) -> np.ndarray:
    """N(0, std^2) values drawn from `rng` as `dtype`; with NO_INIT, memory of that shape left
    uninitialised (`pack_params` overwrites it with the given weights before anything reads it)."""
    if rng is NO_INIT:
        return np.empty(shape, dtype=dtype)
    return (rng.standard_normal(shape) * std).astype(dtype)


class WeightsMismatch(ValueError):
    """A given weight whose shape is not the parameter's."""

    def __init__(self, name: str, shape: tuple[int, ...], expected: tuple[int, ...]):
        super().__init__(f"state dict entry {name!r} has shape {shape}, the model expects "
                         f"{expected}; was it saved from a model with this config?")
        self.name, self.shape, self.expected = name, shape, expected


def check_names(params: Mapping[str, Param], state: Mapping[str, object]) -> None:
    """ValueError unless `state` has exactly the names of `params`."""
    missing = sorted(set(params) - set(state.keys()))
    unexpected = sorted(set(state.keys()) - set(params))
    if missing or unexpected:
        raise ValueError(
            f"state dict does not match the model: missing {missing[:5]}"
            f"{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
            f"{'...' if len(unexpected) > 5 else ''}; was it saved from a model with this config?"
        )


class Param:
    """A trainable array, its gradient (same shape), and its dotted name."""

    __slots__ = ("name", "data", "grad")

    def __init__(self, name: str, data: np.ndarray):
        self.name = name
        self.data = data
        self.grad = np.zeros(data.shape, dtype=data.dtype)  # calloc: pages come when written

    def __repr__(self) -> str:
        return f"Param({self.name!r}, shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base of every layer and model: a path, params, children, and a train/eval flag."""

    def __init__(self, path: str):
        self.path = path  # dotted place in the model; "" for the model itself
        self.training = True
        self._params: dict[str, Param] = {}
        self._children: dict[str, Module] = {}
        self.facts: Facts = NO_FACTS  # what its ops mean; the model declares it (engine.maths.facts)

    # -- construction ---------------------------------------------------------------------
    def child_path(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def add_param(self, name: str, data: np.ndarray) -> Param:
        param = Param(self.child_path(name), data)
        self._params[name] = param
        return param

    def add_child(self, name: str, module: Module) -> Module:
        self._children[name] = module
        return module

    def param_names(self) -> dict[str, str]:
        """{local name: dotted name} of the params this module owns directly (for trace events)."""
        return {local: param.name for local, param in self._params.items()}

    # -- traversal --------------------------------------------------------------------------
    def modules(self) -> Iterator[Module]:
        """This module and all descendants, depth first, in construction order."""
        yield self
        for child in self._children.values():
            yield from child.modules()

    def params(self) -> list[Param]:
        """Every parameter once (a tied parameter is listed where it was created), stable order."""
        seen: set[int] = set()
        out: list[Param] = []
        for module in self.modules():
            for param in module._params.values():
                if id(param) not in seen:
                    seen.add(id(param))
                    out.append(param)
        return out

    def zero_grad(self) -> None:
        for param in self.params():
            param.grad[...] = 0

    def train(self, mode: bool = True) -> Module:
        for module in self.modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    # -- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """{dotted name: copy of the array}, in `params()` order."""
        return {p.name: p.data.copy() for p in self.params()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays into the existing parameters (in place: packed views stay valid).

        Every name must be present with the right shape; nothing is written unless all are.
        """
        params = {p.name: p for p in self.params()}
        check_names(params, state)
        for name, param in params.items():
            shape = np.shape(state[name])
            if shape != param.data.shape:
                raise WeightsMismatch(name, shape, param.data.shape)
        for name, param in params.items():
            param.data[...] = state[name]

    def num_params(self) -> int:
        return sum(p.data.size for p in self.params())


@contextmanager
def eval_mode(model: Module) -> Iterator[Module]:
    """`model` in eval mode (dropout off) inside the block; after it, even when the block
    raised, every module gets back the mode it had (a mix of modes stays that mix)."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, mode in modes:
            module.training = mode


class PackedParams:
    """All of a model's params as views into one data buffer and one grad buffer.

    values: {name: array} to fill the buffer with (read one name at a time, so a mapping that
    reads each array from a file holds one at a time); None keeps each param's own values."""

    def __init__(self, params: list[Param], dtype: np.dtype,
                 values: Mapping[str, np.ndarray] | None = None):
        self.params = params
        if values is not None:
            check_names({p.name: p for p in params}, values)
        total = sum(p.data.size for p in params)
        self.data = np.empty(total, dtype=dtype)  # (P,) every parameter value
        self.grad = np.zeros(total, dtype=dtype)  # (P,) every gradient, zeroed in one call
        self.slices: dict[str, slice] = {}
        offset = 0
        for param in params:
            n = param.data.size
            view = self.data[offset : offset + n].reshape(param.data.shape)
            value = param.data if values is None else values[param.name]
            if np.shape(value) != view.shape:
                raise WeightsMismatch(param.name, np.shape(value), view.shape)
            view[...] = value
            param.data = view
            param.grad = self.grad[offset : offset + n].reshape(view.shape)
            self.slices[param.name] = slice(offset, offset + n)
            offset += n

    def zero_grad(self) -> None:
        self.grad.fill(0)

    def release_grad(self) -> None:
        """Hand the gradient buffer's memory back: a fresh buffer of zeros (calloc: a page is
        taken only when written) with every param's grad re-pointed at it. For a model nothing
        trains, whose gradients a trace already holds; an optimizer would keep the old one."""
        self.grad = np.zeros(self.grad.size, dtype=self.grad.dtype)  # (P,)
        for param in self.params:
            param.grad = self.grad[self.slices[param.name]].reshape(param.data.shape)

    def share_values(self, other: PackedParams) -> None:
        """Point every param's values at `other`'s (same names, shapes and dtype): a replica
        that reads the same weights but keeps its own gradients. The old values are dropped."""
        if self.slices != other.slices or self.data.dtype != other.data.dtype:
            raise ValueError("share_values needs packed params of one model config (same "
                             "names, shapes and dtype)")
        self.data = other.data
        for param in self.params:
            param.data = other.data[self.slices[param.name]].reshape(param.data.shape)

    def grad_norm(self) -> float:
        """Global L2 norm of all gradients (what gradient clipping bounds)."""
        return float(np.sqrt(np.dot(self.grad, self.grad)))


def pack_params(module: Module, values: Mapping[str, np.ndarray] | None = None) -> PackedParams:
    """Pack a model's params into flat buffers; call once, after the model is built. `values`
    ({name: array}, every param's name): the weights to fill them with instead of their own."""
    params = module.params()
    dtypes = {p.data.dtype for p in params}
    if len(dtypes) != 1:
        raise ValueError(f"cannot pack params of mixed dtypes {sorted(map(str, dtypes))}")
    return PackedParams(params, dtypes.pop(), values)
