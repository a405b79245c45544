"""Parameters, the Module base class, and the flat storage optimizers work on.

A `Param` is a named array and its gradient. A `Module` owns params and child modules and
knows its dotted path in the model ("decoder.blocks.1.cross_attn.q_proj"), which is also the
path of every trace event it emits.

`pack_params` moves every parameter of a model into one contiguous buffer (and every gradient
into another) and re-points each `Param` at its slice. Layers always read `param.data` at call
time, so they never notice; optimizers, zeroing and clipping then touch one array instead of
hundreds, and no gradient buffer is ever reallocated.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from .facts import NO_FACTS, Facts


class Param:
    """A trainable array, its gradient (same shape), and its dotted name."""

    __slots__ = ("name", "data", "grad")

    def __init__(self, name: str, data: np.ndarray):
        self.name = name
        self.data = data
        self.grad = np.zeros_like(data)

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
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params))
        if missing or unexpected:
            raise ValueError(
                f"state dict does not match the model: missing {missing[:5]}"
                f"{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
                f"{'...' if len(unexpected) > 5 else ''}; was it saved from a model with this config?"
            )
        for name, param in params.items():
            shape = np.shape(state[name])
            if shape != param.data.shape:
                raise ValueError(
                    f"state dict entry {name!r} has shape {shape}, the model expects "
                    f"{param.data.shape}; was it saved from a model with this config?"
                )
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
    """All of a model's params as views into one data buffer and one grad buffer."""

    def __init__(self, params: list[Param], dtype: np.dtype):
        self.params = params
        total = sum(p.data.size for p in params)
        self.data = np.empty(total, dtype=dtype)  # (P,) every parameter value
        self.grad = np.zeros(total, dtype=dtype)  # (P,) every gradient, zeroed in one call
        self.slices: dict[str, slice] = {}
        offset = 0
        for param in params:
            n = param.data.size
            view = self.data[offset : offset + n].reshape(param.data.shape)
            view[...] = param.data
            param.data = view
            param.grad = self.grad[offset : offset + n].reshape(view.shape)
            self.slices[param.name] = slice(offset, offset + n)
            offset += n

    def zero_grad(self) -> None:
        self.grad.fill(0)

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


def pack_params(module: Module) -> PackedParams:
    """Pack a model's params into flat buffers; call once, after the model is built."""
    params = module.params()
    dtypes = {p.data.dtype for p in params}
    if len(dtypes) != 1:
        raise ValueError(f"cannot pack params of mixed dtypes {sorted(map(str, dtypes))}")
    return PackedParams(params, dtypes.pop())
