"""Write a decoder-only model trained here as a Hugging Face GPT-2 folder.

    export_gpt2(trained.model, trained.tokenizer, Path("out"))   # config.json,
                                                                 # model.safetensors, tokenizer.json

Only a GPT-2-shaped model exports: decoder-only, pre-LN, tanh GELU, learned positions, the
head tied to the token embedding, embeddings not scaled by sqrt(D), no break switch on. Any
other setting is one ScenarioError naming it. The weights go through the same name map the
loader reads (scenarios.gpt2), so opening the folder again gives back the same arrays.

The tokenizer becomes a `tokenizers` word-level model over the same vocabulary (same ids):
characters are split one by one and fused back; words are split on whitespace and joined with
spaces. Padding: GPT-2 attends to every key, while the engine hides <pad> keys; on text without
<pad> (what a prompt is) the logits agree.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.maths.config import DecoderOnlyConfig
from engine.maths.models import DecoderOnlyLM

from .gpt2 import CONFIG_FILE, PREFIX, WEIGHTS_FILE, engine_to_gpt2_names
from .overrides import ScenarioError
from .tokenizers import BOS, EOS, PAD, UNK

# setting -> (value GPT-2 needs, how to say it)
GPT2_SHAPE = {"norm": ("pre", "GPT-2 puts LayerNorm before each sublayer (norm = \"pre\")"),
              "activation": ("gelu", "GPT-2's feed-forward uses GELU (activation = \"gelu\")"),
              "positional": ("learned", "GPT-2 learns its positions (positional = \"learned\")"),
              "tie_embeddings": (True, "GPT-2's head is the token embedding "
                                       "(tie_embeddings = true)"),
              "scale_embedding": (False, "GPT-2 does not scale embeddings by sqrt(d_model) "
                                         "(scale_embedding = false)")}


def export_problem(model) -> str | None:
    """Why `model` cannot be written as GPT-2, naming the setting; None when it can."""
    if not isinstance(model, DecoderOnlyLM):
        return "GPT-2 is a decoder-only model; this one is an encoder-decoder"
    config = model.config
    for setting, (value, why) in GPT2_SHAPE.items():
        if getattr(config, setting) != value:
            return f"model.{setting} is {json.dumps(getattr(config, setting))}: {why}"
    if config.breaks.active():
        return f"break switch(es) {config.breaks.active()} are on: GPT-2 has none"
    return None


def gpt2_settings(config: DecoderOnlyConfig, tokenizer) -> dict:
    """config.json for `config`."""
    ids = {name: tokenizer.vocab.index(token) if token in tokenizer.vocab else None
           for name, token in (("bos", BOS), ("eos", EOS), ("pad", PAD))}
    return {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
            "vocab_size": config.vocab_size, "n_positions": config.max_len,
            "n_embd": config.d_model, "n_layer": config.n_layers, "n_head": config.n_heads,
            "n_inner": config.d_ff, "activation_function": "gelu_new",
            "layer_norm_epsilon": config.ln_eps, "resid_pdrop": config.dropout,
            "embd_pdrop": config.dropout, "attn_pdrop": config.dropout,
            "initializer_range": config.init_std, "scale_attn_weights": True,
            "scale_attn_by_inverse_layer_idx": False, "reorder_and_upcast_attn": False,
            "tie_word_embeddings": True, "bos_token_id": ids["bos"], "eos_token_id": ids["eos"],
            "pad_token_id": ids["pad"], "dtype": config.dtype}


def gpt2_tensors(model: DecoderOnlyLM) -> dict[str, np.ndarray]:
    """GPT2LMHeadModel's tensors (names as save_pretrained writes them) from the engine's."""
    params = {p.name: p.data for p in model.params()}
    parts: dict[str, list[tuple[slice | None, np.ndarray]]] = {}
    for name, (theirs, columns) in engine_to_gpt2_names(model.config).items():
        parts.setdefault(theirs, []).append((columns, params[name]))
    tensors = {}
    for theirs, pieces in parts.items():
        if pieces[0][0] is None:
            tensors[PREFIX + theirs] = np.ascontiguousarray(pieces[0][1])
        else:  # c_attn: q, k, v side by side along the last axis
            ordered = sorted(pieces, key=lambda piece: piece[0].start)
            tensors[PREFIX + theirs] = np.ascontiguousarray(
                np.concatenate([array for _, array in ordered], axis=-1))
    return tensors


def tokenizer_json(tokenizer):
    """A `tokenizers.Tokenizer` with the same ids as the engine's char or word tokenizer."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

    vocab = {token: i for i, token in enumerate(tokenizer.vocab)}
    unk = UNK if UNK in vocab else PAD  # WordLevel needs one; PAD when the vocabulary has none
    backend = Tokenizer(models.WordLevel(vocab, unk_token=unk))
    if tokenizer.kind == "char":
        backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
        backend.decoder = decoders.Fuse()
    elif tokenizer.kind == "word":
        backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        backend.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # words joined by " "
    else:
        raise ScenarioError(f"a {tokenizer.kind!r} tokenizer has no tokenizer.json form here")
    backend.add_special_tokens([AddedToken(t, special=True) for t in (PAD, BOS, EOS, UNK)
                                if t in vocab])
    return backend


def export_gpt2(model, tokenizer, folder: Path) -> Path:
    """Write config.json, model.safetensors and tokenizer.json into `folder` (made if needed;
    refused if it holds files already, so nothing is overwritten)."""
    from safetensors.numpy import save_file

    problem = export_problem(model)
    if problem:
        raise ScenarioError(f"cannot export as GPT-2: {problem}")
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ScenarioError(f"{folder} exists and is not an empty folder: give a new one")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(json.dumps(gpt2_settings(model.config, tokenizer),
                                                 indent=2) + "\n", encoding="utf-8")
    save_file(gpt2_tensors(model), str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
    tokenizer_json(tokenizer).save(str(folder / "tokenizer.json"))
    return folder
