"""GPT-2's byte-level BPE tokens, through the `tokenizers` library.

A Hugging Face GPT-2 folder carries its tokenizer as `tokenizer.json`, or as the older pair
`vocab.json` + `merges.txt`. Byte-level BPE first maps every byte of the text to a printable
character (a space becomes "Ġ", a newline "Ċ"), then merges frequent pairs; so the token
" the" is stored as "Ġthe". A label draws it as the text it stands for, whitespace made
visible the way every other token label of the app does it ("␣the", or "_the" in ASCII).
"""
from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path

from .overrides import ScenarioError
from .tokenizers import _VISIBLE, _VISIBLE_ASCII

TOKENIZER_FILE, VOCAB_FILE, MERGES_FILE = "tokenizer.json", "vocab.json", "merges.txt"


@cache
def _byte_of_char() -> dict[str, int]:
    """GPT-2's printable stand-in character -> the byte it stands for (the inverse of the
    table byte-level BPE uses: printable bytes stand for themselves, the rest move to 256+)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            chars[chr(byte)] = byte
        else:
            chars[chr(256 + extra)] = byte
            extra += 1
    return chars


class BpeTokenizer:
    """Text <-> ids with a `tokenizers.Tokenizer`; labels readable on their own."""

    kind = "bpe"

    def __init__(self, backend, source: Path):
        self.backend = backend  # tokenizers.Tokenizer
        self.source = source  # the file it was read from
        self.vocab_size = backend.get_vocab_size(with_added_tokens=True)
        self._pieces = {i: t for t, i in backend.get_vocab(with_added_tokens=True).items()}
        # id -> piece as stored ("Ġthe"), what the views index by id; a gap reads "<id>"
        self.vocab = tuple(self.piece(i) for i in range(max(self._pieces, default=-1) + 1))
        self.eos_id = backend.token_to_id("<|endoftext|>")  # GPT-2's one special token, or None
        self.bos_id = self.eos_id  # GPT-2 starts a text after <|endoftext|>, as it ends one
        self.pad_id = None  # GPT-2 has no padding token

    @classmethod
    def from_folder(cls, folder: Path) -> BpeTokenizer:
        """tokenizer.json, else vocab.json + merges.txt; ScenarioError naming what is missing."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers

        single = folder / TOKENIZER_FILE
        try:
            if single.is_file():
                return cls(Tokenizer.from_file(str(single)), single)
            vocab, merges = folder / VOCAB_FILE, folder / MERGES_FILE
            if vocab.is_file() and merges.is_file():
                backend = Tokenizer(models.BPE.from_file(str(vocab), str(merges)))
                backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
                backend.decoder = decoders.ByteLevel()
                return cls(backend, vocab)
        except Exception as error:  # the library raises plain Exception subclasses on bad JSON
            raise ScenarioError(f"{folder}: its tokenizer files cannot be read ({error}); "
                                f"download them again") from None
        raise ScenarioError(f"{folder} has no tokenizer: it needs {TOKENIZER_FILE}, or "
                            f"{VOCAB_FILE} and {MERGES_FILE}, beside config.json")

    def encode(self, text: str) -> list[int]:
        return list(self.backend.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: Iterable[int]) -> str:
        return self.backend.decode([int(i) for i in ids], skip_special_tokens=False)

    def piece(self, token_id: int) -> str:
        """The token as the vocabulary stores it ("Ġthe")."""
        return self._pieces.get(int(token_id), f"<{int(token_id)}>")

    def label(self, token_id: int, *, ascii_only: bool = False) -> str:
        """The text a token stands for, whitespace made visible; a byte that is only part of a
        character reads as <0xNN>; a special token ("<|endoftext|>") as itself."""
        piece = self.piece(token_id)
        table = _VISIBLE_ASCII if ascii_only else _VISIBLE
        to_byte = _byte_of_char()
        if any(ch not in to_byte for ch in piece):  # an added/special token: stored as text
            return piece
        data = bytes(to_byte[ch] for ch in piece)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return "".join(f"<0x{b:02X}>" for b in data)
        text = "".join(table.get(ch, ch) for ch in text)
        return text.encode("ascii", "replace").decode() if ascii_only else text
