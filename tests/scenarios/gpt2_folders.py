"""Small random-weight GPT-2 folders made by `transformers`, with a byte-level BPE tokenizer
trained by `tokenizers` on the shipped text: what the GPT-2 tests open with the engine."""
from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "scenarios" / "data" / "pride_and_prejudice.txt"
VOCAB = 400  # BPE vocabulary trained on the text: 256 bytes, <|endoftext|> and merges


def train_bpe(vocab_size: int = VOCAB):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    text = DATA.read_text(encoding="utf-8")[:200_000]
    tokenizer.train_from_iterator([text], trainer=trainer)
    return tokenizer


def make_folder(folder: Path, seed: int = 0, **settings) -> Path:
    """Save a random GPT2LMHeadModel (2 layers, width 48, 4 heads unless `settings` say
    otherwise) and a tokenizer.json into `folder`."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    tokenizer = train_bpe()
    shape = dict(vocab_size=tokenizer.get_vocab_size(), n_positions=32, n_embd=48, n_layer=2,
                 n_head=4, layer_norm_epsilon=1e-5,
                 bos_token_id=tokenizer.token_to_id("<|endoftext|>"),
                 eos_token_id=tokenizer.token_to_id("<|endoftext|>"))
    shape.update(settings)
    torch.manual_seed(seed)
    config = transformers.GPT2Config(**shape)
    model = transformers.GPT2LMHeadModel(config)
    with torch.no_grad():  # the init leaves biases and LayerNorms at 0 and 1: shake them too
        for name, p in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name or "ln_f" in name:
                p.add_(0.1 * torch.randn_like(p))
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    return folder


def hf_model(folder: Path, dtype: str):
    import torch
    import transformers

    model = transformers.GPT2LMHeadModel.from_pretrained(folder, attn_implementation="eager")
    return model.to(getattr(torch, dtype)).eval()
