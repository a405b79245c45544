"""Open a Hugging Face GPT-2 folder as the engine's decoder-only model.

A folder as the hub gives it: `config.json`, `model.safetensors`, and `tokenizer.json` (or
`vocab.json` + `merges.txt`). GPT-2 is the engine's decoder-only model with these settings:
pre-LN blocks and a final LayerNorm, GELU in its tanh form, learned positions, no sqrt(D)
scaling of the embeddings, biases on every projection, scores scaled by 1/sqrt(K), the output
head tied to the token embedding. Any setting of config.json the engine cannot represent is one
ScenarioError naming it. Weights are read with safetensors (no pickle, nothing executed).

Name map (GPT-2 -> engine). GPT-2's projections are "Conv1D": weight (in, out), y = x @ W + b,
the engine's Linear layout, so no transpose; its c_attn packs q, k and v side by side:

    wte.weight (V,D)            tok_emb.weight          wpe.weight (N,D)   pos_emb.weight
    h.i.ln_1 / ln_2 / ln_f      blocks.i.ln1 / ln2 / ln_f    (weight, bias -> gamma, beta)
    h.i.attn.c_attn (D,3D)      blocks.i.self_attn.{q,k,v}_proj   columns [0:D], [D:2D], [2D:3D]
    h.i.attn.c_proj (D,D)       blocks.i.self_attn.o_proj
    h.i.mlp.c_fc (D,F)          blocks.i.ffn.fc1          h.i.mlp.c_proj (F,D)  blocks.i.ffn.fc2
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.maths.config import ConfigError, DecoderOnlyConfig
from engine.maths.models import DecoderOnlyLM
from engine.maths.param import WeightsMismatch

from .bpe import BpeTokenizer
from .overrides import ScenarioError

CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"
# GPT-2's tanh approximation of GELU goes by these names; "gelu" alone is the erf form.
TANH_GELU = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")
PREFIX = "transformer."  # GPT2LMHeadModel's names; the hub's original file has none


@dataclass
class Gpt2:
    """A GPT-2 folder opened: the engine model (eval mode) and its tokenizer."""

    folder: Path
    model: DecoderOnlyLM
    tokenizer: BpeTokenizer
    settings: dict  # config.json as read


def is_gpt2_folder(path: str | Path) -> bool:
    """A directory with a config.json: what `explore DIR` takes for a GPT-2 folder."""
    path = Path(path)
    return path.is_dir() and (path / CONFIG_FILE).is_file()


def open_gpt2(folder: str | Path, dtype: str = "float32") -> Gpt2:
    """The folder's model and tokenizer; ScenarioError naming the file or setting at fault."""
    folder = Path(folder)
    settings = read_settings(folder)
    config = config_from_settings(settings, folder, dtype)
    tokenizer = BpeTokenizer.from_folder(folder)
    if tokenizer.vocab_size > config.vocab_size:
        raise ScenarioError(f"{folder}: the tokenizer has {tokenizer.vocab_size} tokens but "
                            f"config.json's vocab_size is {config.vocab_size}; the two files "
                            f"come from different models")
    model = build_gpt2(config, folder / WEIGHTS_FILE)
    model.eval()
    return Gpt2(folder, model, tokenizer, settings)


def read_settings(folder: Path) -> dict:
    path = folder / CONFIG_FILE
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"{folder} has no {CONFIG_FILE}: is it a Hugging Face model "
                            f"folder?") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ScenarioError(f"{path} cannot be read as JSON ({error})") from None
    if not isinstance(settings, dict):
        raise ScenarioError(f"{path} must hold a JSON object of settings")
    return settings


def _refuse(path: Path, setting: str, value: object, why: str) -> ScenarioError:
    return ScenarioError(f"{path}: {setting} = {json.dumps(value)} is not supported: {why}",
                         setting)


def config_from_settings(settings: dict, folder: Path, dtype: str = "float32") -> DecoderOnlyConfig:
    """GPT-2's config.json -> the engine's config, refusing what the engine cannot compute."""
    path = folder / CONFIG_FILE
    model_type = settings.get("model_type")
    if model_type != "gpt2":
        raise _refuse(path, "model_type", model_type, "only GPT-2 folders (model_type \"gpt2\") "
                      "open here")
    activation = settings.get("activation_function", "gelu_new")
    if activation not in TANH_GELU:
        raise _refuse(path, "activation_function", activation, f"the engine's GELU is the tanh "
                      f"form ({', '.join(TANH_GELU)})")
    expected = {"scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
                "reorder_and_upcast_attn": False, "add_cross_attention": False,
                "tie_word_embeddings": True}
    why = {"scale_attn_weights": "the engine always divides scores by sqrt(head width)",
           "scale_attn_by_inverse_layer_idx": "the engine scales every layer's scores alike",
           "reorder_and_upcast_attn": "the engine computes attention in the model's dtype",
           "add_cross_attention": "a decoder-only model has no cross-attention",
           "tie_word_embeddings": "the engine's GPT-2 head is the token embedding, tied"}
    for setting, value in expected.items():
        if settings.get(setting, value) != value:
            raise _refuse(path, setting, settings[setting], why[setting])
    d_model = settings.get("n_embd")
    n_inner = settings.get("n_inner")
    try:
        config = DecoderOnlyConfig(
            vocab_size=settings.get("vocab_size"), d_model=d_model, n_heads=settings.get("n_head"),
            d_ff=4 * d_model if n_inner is None and isinstance(d_model, int) else n_inner,
            n_layers=settings.get("n_layer"), max_len=settings.get("n_positions"),
            dropout=0.0, activation="gelu", norm="pre", positional="learned",
            scale_embedding=False, tie_embeddings=True, pad_id=None,
            ln_eps=settings.get("layer_norm_epsilon", 1e-5), dtype=dtype)
        config.validate()
    except ConfigError as error:
        names = {"vocab_size": "vocab_size", "d_model": "n_embd", "n_heads": "n_head",
                 "d_ff": "n_inner", "n_layers": "n_layer", "max_len": "n_positions",
                 "ln_eps": "layer_norm_epsilon"}
        setting = names.get(error.field or "", error.field)
        raise ScenarioError(f"{path}: {setting} does not fit the engine ({error})", setting) from None
    return config


def engine_to_gpt2_names(config: DecoderOnlyConfig) -> dict[str, tuple[str, slice | None]]:
    """Engine param name -> (GPT-2 tensor name without prefix, column slice or None)."""
    d = config.d_model
    names: dict[str, tuple[str, slice | None]] = {
        "tok_emb.weight": ("wte.weight", None), "pos_emb.weight": ("wpe.weight", None),
        "ln_f.gamma": ("ln_f.weight", None), "ln_f.beta": ("ln_f.bias", None)}
    for i in range(config.n_layers):
        ours, theirs = f"blocks.{i}", f"h.{i}"
        for n in (1, 2):
            names[f"{ours}.ln{n}.gamma"] = (f"{theirs}.ln_{n}.weight", None)
            names[f"{ours}.ln{n}.beta"] = (f"{theirs}.ln_{n}.bias", None)
        for j, qkv in enumerate("qkv"):
            for ours_p, theirs_p in (("w", "weight"), ("b", "bias")):
                names[f"{ours}.self_attn.{qkv}_proj.{ours_p}"] = (
                    f"{theirs}.attn.c_attn.{theirs_p}", slice(j * d, (j + 1) * d))
        for engine_layer, gpt2_layer in (("self_attn.o_proj", "attn.c_proj"),
                                         ("ffn.fc1", "mlp.c_fc"), ("ffn.fc2", "mlp.c_proj")):
            names[f"{ours}.{engine_layer}.w"] = (f"{theirs}.{gpt2_layer}.weight", None)
            names[f"{ours}.{engine_layer}.b"] = (f"{theirs}.{gpt2_layer}.bias", None)
    return names


class Gpt2Weights(Mapping):
    """A GPT-2 safetensors file seen as the engine's {param name: array}: each array is read
    when asked for (q, k and v cut from c_attn's columns), so building a model from it holds
    one tensor at a time besides the model."""

    def __init__(self, handle, path: Path, config: DecoderOnlyConfig):
        self.handle = handle  # an open safetensors.safe_open(..., framework="np")
        self.path = path
        stored = set(handle.keys())
        self.names: dict[str, tuple[str, slice | None]] = {}  # engine -> (stored key, columns)
        for name, (theirs, columns) in engine_to_gpt2_names(config).items():
            key = theirs if theirs in stored else PREFIX + theirs
            if key not in stored:
                raise ScenarioError(f"{path} has no tensor {theirs!r}: the file does not "
                                    f"match config.json")
            self.names[name] = (key, columns)

    def __getitem__(self, name: str) -> np.ndarray:
        key, columns = self.names[name]
        tensor = self.handle.get_tensor(key)
        return tensor if columns is None else tensor[..., columns]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


def build_gpt2(config: DecoderOnlyConfig, path: Path) -> DecoderOnlyLM:
    """The engine's model holding the safetensors file's weights (no random init, one copy)."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise ScenarioError(f"{path.parent} has no {WEIGHTS_FILE}: only safetensors weights "
                            f"open here (a pytorch_model.bin would need pickle)")
    try:
        with safe_open(str(path), framework="np") as handle:
            weights = Gpt2Weights(handle, path, config)
            try:
                return DecoderOnlyLM(config, weights)
            except WeightsMismatch as error:
                key = weights.names[error.name][0]
                raise ScenarioError(f"{path}: {key} has shape {error.shape}, config.json asks "
                                    f"for {error.expected}") from None
    except (SafetensorError, OSError, TypeError) as error:
        raise ScenarioError(f"{path} cannot be read as safetensors ({error}); download it "
                            f"again") from None
