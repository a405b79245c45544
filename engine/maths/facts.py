"""What an op means, declared once where the model is built, so no reader parses a path.

The model knows, when it builds a layer, which token stream flows through it (the source in
the encoder, the target in the decoder), whether an attention layer attends to itself or to
the encoder, whether it must be causal, and which parameters it owns. It writes that down as
a `Facts` value on the layer (`module.facts`); the recorder stamps the facts of the layer that
emitted an op on its event (`Event.facts`). Checks, the trace, the explorer's views and the
training screen read these facts; the dotted path is only a name and a place in the tree.

Streams label tensors of shape (B, L, ...) or attention maps (B, H, T, S): a tensor's rows are
positions of the `rows` stream; an attention map's columns (its keys, and the rows of k and v)
are positions of the `keys` stream.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

SOURCE, TARGET = "source", "target"  # the token streams: the encoder's input, the decoder's
SELF_ATTENTION, CROSS_ATTENTION = "self", "cross"  # what an attention layer's keys come from


@dataclass(frozen=True)
class Facts:
    """What a reader must not guess from an op's path."""

    rows: str | None = None  # SOURCE | TARGET: the stream along this op's positions (None: none)
    keys: str | None = None  # inside attention: the stream its keys come from (a map's columns)
    attention: str | None = None  # SELF_ATTENTION | CROSS_ATTENTION inside an attention layer
    attention_layer: str | None = None  # that layer's path: "decoder.blocks.0.cross_attn"
    causal: bool = False  # the attention must not let a query see a later key
    # local name -> dotted name of the parameters the op reads; in a backward event the tensor
    # "grad.<local>" is (a contribution to) that parameter's gradient
    params: Mapping[str, str] = field(default_factory=dict, hash=False)
    widths: tuple[int, int] | None = None  # a linear layer's (in, out) width the config implies
    vocabulary: bool = False  # its outputs have an axis over the vocabulary (output head, loss)
    block: str = ""  # the block it is part of ("decoder.blocks.0"), else its own layer's path
    sublayer: str = ""  # its sublayer ("decoder.blocks.0.self_attn": q, k, v, o together),
    # else its own layer's path


NO_FACTS = Facts()  # an op recorded without a model that declared facts


def facts_by_path(modules: Iterable) -> dict[str, Facts]:
    """{module path: facts} of every module under `modules` that declared facts; what a
    `Recorder` stamps on the events those modules emit."""
    index: dict[str, Facts] = {}
    for root in modules:
        for module in root.modules():
            if module.facts is not NO_FACTS:
                index[module.path] = module.facts
    return index


def facts_of(index: Mapping[str, Facts], path: str) -> Facts:
    """The facts of the module that emitted an event at `path`: a layer emits at its own path,
    and at one level below it for the steps inside it ("...self_attn" emits "...self_attn.mask")."""
    found = index.get(path)
    if found is None and "." in path:
        found = index.get(path.rsplit(".", 1)[0])
    return NO_FACTS if found is None else found
