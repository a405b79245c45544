"""The two models: the encoder-decoder Transformer and a decoder-only (GPT-style) language model.

Shapes: B batch, S source length, T target length, D model width, V vocabulary.

    EncoderDecoder.forward(src (B,S), tgt_in (B,T)) -> logits (B,T,V)
    DecoderOnlyLM.forward(ids (B,T))                  -> logits (B,T,V)
    model.backward(d_logits (B,T,V))                   adds every parameter's gradient

Both pack their parameters into one flat buffer after construction (`model.packed`), which the
optimizers update in a few whole-array operations. Given `weights` ({dotted name: array}, every
parameter: a checkpoint's, a GPT-2 folder's), a model draws no random initial values: the
weights are written straight into that buffer (engine.maths.param.NO_INIT).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .blocks import CROSS_ATTENTION, FEED_FORWARD, SELF_ATTENTION, DecoderBlock, EncoderBlock
from .config import ConfigError, DecoderOnlyConfig, EncoderDecoderConfig, ModelConfig
from . import facts as f
from .layers import Dropout, LayerNorm, Linear, PositionalEncoding, TiedOutput, TokenEmbedding
from .param import NO_INIT, Module, pack_params


@dataclass
class DecodeCache:
    """What cached decoding keeps between calls (`model.new_cache()`, passed to `infer`)."""

    # per decoder block, one dict per sublayer: its keys and values "k", "v" (B,H,S,K)
    blocks: list[list[dict[str, np.ndarray]]] = field(default_factory=list)
    # (B, S) True where a cached position is not padding: its key may be seen, as in forward
    key_keep: np.ndarray | None = None


class Embedder(Module):
    """ids (B,T) -> dropout(E[ids] * scale + P[:T]) (B,T,D)."""

    def __init__(self, prefix: str, config: ModelConfig, rng: np.random.Generator,
                 dropout_rng: np.random.Generator):
        super().__init__(prefix)
        d, dtype = config.d_model, config.np_dtype
        # With sqrt(D) scaling the table starts at std 1/sqrt(D), so scaled rows have unit size,
        # the same as the sinusoids they are added to.
        scale = float(np.sqrt(d)) if config.scale_embedding else 1.0
        std = d ** -0.5 if config.scale_embedding else config.init_std
        self.tok_emb = self.add_child("tok_emb", TokenEmbedding(
            self.child_path("tok_emb"), config.vocab_size, d, scale, std, rng, dtype))
        pos_name = "pos_emb" if config.positional == "learned" else "pos_enc"
        self.pos = self.add_child(pos_name, PositionalEncoding(
            self.child_path(pos_name), config.positional, config.max_len, d, config.init_std,
            rng, dtype, disabled=config.breaks.no_positional))
        self.drop = self.add_child("emb_drop", Dropout(self.child_path("emb_drop"), config.dropout,
                                                       dropout_rng))

    def forward(self, ids: np.ndarray, offset: int = 0) -> np.ndarray:
        return self.drop.forward(self.pos.forward(self.tok_emb.forward(ids), offset))

    def backward(self, d_out: np.ndarray) -> None:
        self.tok_emb.backward(self.pos.backward(self.drop.backward(d_out)))


class _Model(Module):
    """What both models share: config checks, masks, output head, packing."""

    config: ModelConfig

    def _setup(self, config: ModelConfig, weights: Mapping[str, np.ndarray] | None
               ) -> tuple[np.random.Generator, np.random.Generator]:
        """-> (the initial values' generator, or NO_INIT when `weights` are given; dropout's)."""
        config.validate()
        self.config = config
        self._weights = weights  # until packed
        init = NO_INIT if weights is not None else np.random.default_rng(config.seed)
        return init, np.random.default_rng(config.seed + 1)

    def _make_head(self, embedding: TokenEmbedding, rng: np.random.Generator) -> Module:
        c = self.config
        if c.tie_embeddings:
            return self.add_child("lm_head", TiedOutput(self.child_path("lm_head"), embedding.weight))
        return self.add_child("lm_head", Linear(self.child_path("lm_head"), c.d_model, c.vocab_size,
                                                rng, c.init_std, c.np_dtype, formula="logits"))

    def _final_norm(self, prefix: str) -> LayerNorm | None:
        if self.config.norm != "pre":
            return None
        path = f"{prefix}.ln_f" if prefix else "ln_f"
        return LayerNorm(path, self.config.d_model, self.config.ln_eps, self.config.np_dtype)

    def check_ids(self, name: str, ids: np.ndarray) -> np.ndarray:
        """Token ids must be a (B, L) integer array with 1 <= L <= max_len, ids in [0, V)."""
        ids = np.asarray(ids)
        if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"{name} must be a 2-D integer array (batch, length) of token ids, "
                             f"got shape {ids.shape} dtype {ids.dtype}")
        if not 1 <= ids.shape[1] <= self.config.max_len:
            raise ValueError(f"{name} has length {ids.shape[1]}; it must be 1..max_len "
                             f"({self.config.max_len}): raise max_len or shorten the sequences")
        if ids.size and (ids.min() < 0 or ids.max() >= self.config.vocab_size):
            bad = int(ids.min() if ids.min() < 0 else ids.max())
            raise ValueError(f"{name} contains token id {bad} outside the vocabulary "
                             f"[0, {self.config.vocab_size}): check the tokenizer or vocab_size")
        return ids

    def key_keep(self, ids: np.ndarray) -> np.ndarray | None:
        """(B,1,1,L) True where the key is not padding, or None if nothing is padding."""
        pad = self.config.pad_id
        if pad is None:
            return None
        keep = ids != pad
        return None if keep.all() else keep[:, None, None, :]

    def causal_keep(self, ids: np.ndarray) -> np.ndarray | None:
        """(B|1,1,T,T): query t sees keys <= t that are not padding."""
        t = ids.shape[1]
        keep = None if self.config.breaks.no_causal_mask else np.tril(np.ones((t, t), dtype=bool))
        pad_keep = self.key_keep(ids)
        if pad_keep is None:
            return None if keep is None else keep[None, None]
        return pad_keep if keep is None else keep & pad_keep

    def _pack(self) -> None:
        self.packed = pack_params(self, self._weights)
        self._weights = None

    # -- facts: what each layer means, declared here where the model knows it (engine.maths.facts)
    def _declare(self, module: Module, stream: str, block: str | None = None,
                 sublayer: str | None = None, widths: tuple[int, int] | None = None,
                 **attention: object) -> None:
        """Give `module` and every module under it the facts of `stream` (and of the attention
        layer it is part of); outside a block each layer is its own block and sublayer."""
        c = self.config
        for m in module.modules():
            head = m is self.head  # (D, V): logits over the vocabulary
            width = (c.d_model, c.vocab_size) if head else widths
            m.facts = f.Facts(
                rows=stream, block=m.path if block is None else block,
                sublayer=m.path if sublayer is None else sublayer, vocabulary=head,
                params={"embedding": m.embedding.name} if isinstance(m, TiedOutput)
                else m.param_names(),
                widths=width if isinstance(m, Linear) else None, **attention)

    def _declare_block(self, block: EncoderBlock | DecoderBlock, stream: str) -> None:
        """A block's sublayers: self-attention over `stream` (causal in a decoder), cross-
        attention from the target to the source, the feed-forward network."""
        c = self.config
        self._declare(block, stream, block.path, block.path)
        for sub in block.sublayers:
            inner = sub.inner
            for part in (sub.norm, sub.drop, sub.residual):
                self._declare(part, stream, block.path)
            if sub.kind == FEED_FORWARD:
                self._declare(inner, stream, block.path, inner.path)
                self._declare(inner.fc1, stream, block.path, inner.path, (c.d_model, c.d_ff))
                self._declare(inner.fc2, stream, block.path, inner.path, (c.d_ff, c.d_model))
                continue
            cross = sub.kind == CROSS_ATTENTION
            keys = f.SOURCE if cross else stream
            attention = dict(keys=keys, attention=f.CROSS_ATTENTION if cross else f.SELF_ATTENTION,
                             attention_layer=inner.path,
                             causal=sub.kind == SELF_ATTENTION and isinstance(block, DecoderBlock))
            square = (c.d_model, c.d_model)  # q, k, v and o projections
            self._declare(inner, stream, block.path, inner.path, square, **attention)
            for projection in (inner.k_proj, inner.v_proj):  # they read the keys' stream
                self._declare(projection, keys, block.path, inner.path, square, **attention)

    def _declare_facts(self, streams: list[tuple[str, list[Module]]]) -> None:
        """streams: (stream, [embedder, blocks..., final norm]) in model order; the head reads
        the last stream."""
        for stream, modules in streams:
            for module in modules:
                if isinstance(module, (EncoderBlock, DecoderBlock)):
                    self._declare_block(module, stream)
                elif module is not None:
                    self._declare(module, stream)
        self._declare(self.head, streams[-1][0])

    # -- cached decoding (no dropout, nothing recorded, nothing saved for backward) ----------
    def _decode_blocks(self) -> list[DecoderBlock]:
        raise NotImplementedError

    def new_cache(self) -> DecodeCache:
        """An empty cache: one key/value dict per sublayer of every decoder block."""
        return DecodeCache([[{} for _ in block.sublayers] for block in self._decode_blocks()])

    def _decode_keep(self, ids: np.ndarray, cache: DecodeCache, offset: int) -> np.ndarray | None:
        """(B|1,1,t,offset+t) for new ids (B,t) at positions offset..: what `causal_keep` gives
        these rows in a full forward. Query i sits at offset+i and sees every cached key and
        new keys <= i that are not padding; None when it sees them all."""
        t = ids.shape[1]
        new_keep = np.ones(ids.shape, dtype=bool) if self.config.pad_id is None \
            else ids != self.config.pad_id  # (B,t)
        if offset and cache.key_keep is not None:
            new_keep = np.concatenate([cache.key_keep[:, :offset], new_keep], axis=1)
        cache.key_keep = new_keep  # (B, offset+t)
        keep = None
        if not self.config.breaks.no_causal_mask and t > 1:
            keep = np.tril(np.ones((t, offset + t), dtype=bool), k=offset)[None, None]
        if not new_keep.all():
            pad_keep = new_keep[:, None, None, :]  # (B,1,1,offset+t)
            keep = pad_keep if keep is None else keep & pad_keep
        return keep

    def _infer_decoder(self, embed: Embedder, ids: np.ndarray, cache: DecodeCache, offset: int,
                       memory: np.ndarray | None, src_keep: np.ndarray | None,
                       ln_f: LayerNorm | None) -> np.ndarray:
        """New target ids (B,t) at positions offset.. -> logits (B,t,V), extending `cache`."""
        ids = self.check_ids("ids", ids)
        t = ids.shape[1]
        if offset + t > self.config.max_len:
            raise ValueError(f"decoding past max_len ({self.config.max_len}): "
                             f"ask for fewer tokens or raise max_len")
        keep = self._decode_keep(ids, cache, offset)
        x = embed.pos.infer(embed.tok_emb.infer(ids), offset)  # (B,t,D)
        for block, block_cache in zip(self._decode_blocks(), cache.blocks):
            x = block.infer(x, keep, memory, src_keep, block_cache)
        if ln_f is not None:
            x = ln_f.infer(x)
        return self.head.infer(x)  # (B,t,V)


class DecoderOnlyLM(_Model):
    """GPT-style: embed, causal self-attention blocks, (final LN), logits over the next token."""

    def __init__(self, config: DecoderOnlyConfig,
                 weights: Mapping[str, np.ndarray] | None = None):
        super().__init__("")
        rng, dropout_rng = self._setup(config, weights)
        self.embed = self.add_child("embed", Embedder("", config, rng, dropout_rng))
        self.blocks = [self.add_child(f"blocks.{i}", DecoderBlock(f"blocks.{i}", config, rng,
                                                                   dropout_rng, cross=False))
                       for i in range(config.n_layers)]
        norm = self._final_norm("")
        self.ln_f = self.add_child("ln_f", norm) if norm else None
        self.head = self._make_head(self.embed.tok_emb, rng)
        self._declare_facts([(f.TARGET, [self.embed, *self.blocks, self.ln_f])])
        self._pack()

    def forward(self, ids: np.ndarray) -> np.ndarray:
        ids = self.check_ids("ids", ids)
        keep = self.causal_keep(ids)  # (B|1,1,T,T)
        x = self.embed.forward(ids)  # (B,T,D)
        for block in self.blocks:
            x = block.forward(x, keep)
        if self.ln_f is not None:
            x = self.ln_f.forward(x)
        return self.head.forward(x)  # (B,T,V)

    def _decode_blocks(self) -> list[DecoderBlock]:
        return self.blocks

    def infer(self, ids: np.ndarray, cache: DecodeCache, offset: int) -> np.ndarray:
        """Logits (B,t,V) for new ids (B,t) after `offset` cached positions."""
        return self._infer_decoder(self.embed, ids, cache, offset, None, None, self.ln_f)

    def backward(self, d_logits: np.ndarray) -> None:
        d_x = self.head.backward(d_logits)
        if self.ln_f is not None:
            d_x = self.ln_f.backward(d_x)
        for block in reversed(self.blocks):
            d_x, _ = block.backward(d_x)
        self.embed.backward(d_x)


class EncoderDecoder(_Model):
    """The paper's Transformer: the encoder reads the source, the decoder writes the target."""

    def __init__(self, config: EncoderDecoderConfig,
                 weights: Mapping[str, np.ndarray] | None = None):
        super().__init__("")
        rng, dropout_rng = self._setup(config, weights)
        self.src_embed = self.add_child("encoder", Embedder("encoder", config, rng, dropout_rng))
        self.encoder_blocks = [
            self.add_child(f"encoder.blocks.{i}", EncoderBlock(f"encoder.blocks.{i}", config, rng,
                                                               dropout_rng))
            for i in range(config.n_layers)]
        norm = self._final_norm("encoder")
        self.encoder_ln_f = self.add_child("encoder.ln_f", norm) if norm else None
        self.tgt_embed = self.add_child("decoder", Embedder("decoder", config, rng, dropout_rng))
        self.decoder_blocks = [
            self.add_child(f"decoder.blocks.{i}", DecoderBlock(f"decoder.blocks.{i}", config, rng,
                                                               dropout_rng, cross=True))
            for i in range(config.n_layers)]
        norm = self._final_norm("decoder")
        self.decoder_ln_f = self.add_child("decoder.ln_f", norm) if norm else None
        self.head = self._make_head(self.tgt_embed.tok_emb, rng)
        self._declare_facts([
            (f.SOURCE, [self.src_embed, *self.encoder_blocks, self.encoder_ln_f]),
            (f.TARGET, [self.tgt_embed, *self.decoder_blocks, self.decoder_ln_f])])
        self._pack()

    def encode(self, src: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """src (B,S) -> (memory (B,S,D), src_keep (B,1,1,S) or None)."""
        src = self.check_ids("src", src)
        src_keep = self.key_keep(src)
        x = self.src_embed.forward(src)
        for block in self.encoder_blocks:
            x = block.forward(x, src_keep)
        if self.encoder_ln_f is not None:
            x = self.encoder_ln_f.forward(x)
        return x, src_keep

    def _decode_blocks(self) -> list[DecoderBlock]:
        return self.decoder_blocks

    def infer_encode(self, src: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """`encode` for decoding: the same numbers, nothing saved or recorded."""
        src = self.check_ids("src", src)
        src_keep = self.key_keep(src)
        x = self.src_embed.pos.infer(self.src_embed.tok_emb.infer(src))
        for block in self.encoder_blocks:
            x = block.infer(x, src_keep)
        if self.encoder_ln_f is not None:
            x = self.encoder_ln_f.infer(x)
        return x, src_keep

    def infer(self, ids: np.ndarray, cache: DecodeCache, offset: int, memory: np.ndarray,
              src_keep: np.ndarray | None) -> np.ndarray:
        """Decoder logits (B,t,V) for new target ids (B,t) after `offset` cached positions."""
        return self._infer_decoder(self.tgt_embed, ids, cache, offset, memory, src_keep,
                                   self.decoder_ln_f)

    def forward(self, src: np.ndarray, tgt_in: np.ndarray) -> np.ndarray:
        tgt_in = self.check_ids("tgt_in", tgt_in)
        if np.shape(src)[0] != tgt_in.shape[0]:
            raise ValueError(f"src and tgt_in must have the same batch size, got "
                             f"{np.shape(src)[0]} and {tgt_in.shape[0]}")
        memory, src_keep = self.encode(src)
        tgt_keep = self.causal_keep(tgt_in)
        x = self.tgt_embed.forward(tgt_in)  # (B,T,D)
        for block in self.decoder_blocks:
            x = block.forward(x, tgt_keep, memory, src_keep)
        if self.decoder_ln_f is not None:
            x = self.decoder_ln_f.forward(x)
        return self.head.forward(x)  # (B,T,V)

    def backward(self, d_logits: np.ndarray) -> None:
        d_x = self.head.backward(d_logits)
        if self.decoder_ln_f is not None:
            d_x = self.decoder_ln_f.backward(d_x)
        d_memory = None
        for block in reversed(self.decoder_blocks):
            d_x, d_mem = block.backward(d_x)
            d_memory = d_mem if d_memory is None else d_memory + d_mem  # every block read memory
        self.tgt_embed.backward(d_x)
        if self.encoder_ln_f is not None:
            d_memory = self.encoder_ln_f.backward(d_memory)
        for block in reversed(self.encoder_blocks):
            d_memory = block.backward(d_memory)
        self.src_embed.backward(d_memory)


def build_model(config: ModelConfig, weights: Mapping[str, np.ndarray] | None = None
                ) -> DecoderOnlyLM | EncoderDecoder:
    """The model a config describes: randomly initialised from its seed, or holding `weights`
    ({dotted name: array} for every parameter; ValueError naming a missing, unexpected or
    misshapen one)."""
    if isinstance(config, EncoderDecoderConfig):
        return EncoderDecoder(config, weights)
    if isinstance(config, DecoderOnlyConfig):
        return DecoderOnlyLM(config, weights)
    raise ConfigError(f"config must be a DecoderOnlyConfig or EncoderDecoderConfig, got "
                      f"{type(config).__name__}")
