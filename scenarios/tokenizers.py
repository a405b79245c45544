"""Tokenizers: text <-> token ids, small enough to read in a minute.

A model only ever sees integers. A tokenizer fixes the list of tokens it knows (its
*vocabulary*) and numbers them; the id of a token is its position in that list.

Two kinds:

- `CharTokenizer`: every character is a token. "3141" -> ["3", "1", "4", "1"]. Used for the
  digit tasks (vocabulary: the ten digits, "+" and "=") and the character language model
  (vocabulary: every character of the text).
- `WordTokenizer`: tokens are the words between spaces. "how are you" -> ["how", "are", "you"].

The special tokens always come first, so their ids are the same in every scenario:

    id 0  <pad>  filler that makes short sequences as long as the longest in a batch; the
                 model never attends to it and the loss ignores it
    id 1  <s>    "start": the first input of the decoder, before any real token
    id 2  </s>   "end": the model predicts it to say "I am done"
    id 3  <unk>  stands for any word the vocabulary lacks (only when asked for: by default an
                 unknown token is an error that names it, so a typo never passes silently)

Encoding adds no special token by itself; the scenario adds <s> and </s> where the task needs
them. Decoding drops the special tokens unless asked to keep them.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIALS = (PAD, BOS, EOS)  # always present, always ids 0, 1, 2

# How a token is drawn when it must stand on its own (labels of attention maps, tables):
# whitespace would be invisible.
_VISIBLE = {" ": "␣", "\n": "⏎", "\t": "⇥"}
_VISIBLE_ASCII = {" ": "_", "\n": "\\n", "\t": "\\t"}


class TokenizerError(ValueError):
    """Text or ids a tokenizer cannot handle; the message names the culprit and the fix."""


class UnknownTokenError(TokenizerError):
    """A token that is not in the vocabulary (and the tokenizer has no <unk>)."""


@dataclass(frozen=True)
class Tokenizer:
    """Shared machinery; subclasses only say how text splits into tokens and joins back."""

    vocab: tuple[str, ...]  # id -> token; specials first (<pad>=0, <s>=1, </s>=2, maybe <unk>=3)
    use_unk: bool = False  # map unknown tokens to <unk> instead of raising UnknownTokenError

    kind = "base"  # "char" | "word": how text is split (stored in checkpoints)

    def __post_init__(self) -> None:
        if tuple(self.vocab[: len(SPECIALS)]) != SPECIALS:
            raise TokenizerError(f"a vocabulary must start with {list(SPECIALS)}")
        if len(set(self.vocab)) != len(self.vocab):
            dupes = sorted({t for t in self.vocab if self.vocab.count(t) > 1})
            raise TokenizerError(f"the vocabulary lists {dupes} more than once")
        if self.use_unk and UNK not in self.vocab:
            raise TokenizerError("use_unk needs <unk> in the vocabulary")
        # frozen dataclass: set the lookup table through object.__setattr__
        object.__setattr__(self, "_ids", {tok: i for i, tok in enumerate(self.vocab)})

    # -- what subclasses define ---------------------------------------------------------------
    def split(self, text: str) -> list[str]:
        """Text -> token strings."""
        raise NotImplementedError

    def join(self, tokens: Sequence[str]) -> str:
        """Token strings -> text (inverse of `split` on text the vocabulary covers)."""
        raise NotImplementedError

    # -- ids ----------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def bos_id(self) -> int:
        return 1

    @property
    def eos_id(self) -> int:
        return 2

    @property
    def unk_id(self) -> int | None:
        return self._ids.get(UNK)

    @property
    def special_ids(self) -> frozenset[int]:
        return frozenset(self._ids[t] for t in (PAD, BOS, EOS, UNK) if t in self._ids)

    def token_id(self, token: str) -> int:
        """Id of one token string; an unknown token is <unk> or an UnknownTokenError."""
        found = self._ids.get(token)
        if found is not None:
            return found
        if self.use_unk:
            return self._ids[UNK]
        raise UnknownTokenError(
            f"{token!r} is not in the vocabulary of this {self.kind} tokenizer; "
            f"it knows {self.describe_vocab()}"
        )

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        """Text -> ids, optionally wrapped in <s> ... </s>."""
        tokens = self.split(text)
        try:
            ids = [self._ids[tok] for tok in tokens]  # the fast path: every token known
        except KeyError:
            ids = [self.token_id(tok) for tok in tokens]  # <unk>, or the error naming the token
        return ([self.bos_id] if bos else []) + ids + ([self.eos_id] if eos else [])

    def decode(self, ids: Iterable[int], *, skip_special: bool = True) -> str:
        """Ids -> text; special tokens are dropped unless skip_special is False."""
        tokens = []
        for i in ids:
            i = int(i)
            if not 0 <= i < self.vocab_size:
                raise TokenizerError(f"token id {i} is outside the vocabulary [0, {self.vocab_size})")
            if skip_special and i in self.special_ids and i != self.unk_id:
                continue
            tokens.append(self.vocab[i])
        return self.join(tokens)

    def label(self, token_id: int, *, ascii_only: bool = False) -> str:
        """A token as it should look standing alone: whitespace made visible."""
        tok = self.vocab[int(token_id)]
        table = _VISIBLE_ASCII if ascii_only else _VISIBLE
        return "".join(table.get(ch, ch) for ch in tok) if self.kind == "char" else tok

    def describe_vocab(self, limit: int = 40) -> str:
        """The non-special tokens, shortened for an error message."""
        real = [t for t in self.vocab if t not in (PAD, BOS, EOS, UNK)]
        shown = " ".join(repr(t) if t.strip() != t or not t else t for t in real[:limit])
        more = f" ... ({len(real) - limit} more)" if len(real) > limit else ""
        return f"{len(real)} tokens: {shown}{more}"

    # -- storage (checkpoint metadata is JSON) ------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "vocab": list(self.vocab), "use_unk": self.use_unk}


@dataclass(frozen=True)
class CharTokenizer(Tokenizer):
    """Every character is a token: "12+34=" -> ["1", "2", "+", "3", "4", "="]."""

    kind = "char"

    @classmethod
    def from_chars(cls, chars: Iterable[str], *, use_unk: bool = False) -> CharTokenizer:
        """Vocabulary = the specials, then each distinct character in sorted order."""
        distinct = sorted(set(chars))
        extra = (UNK,) if use_unk else ()
        return cls(vocab=SPECIALS + extra + tuple(distinct), use_unk=use_unk)

    def split(self, text: str) -> list[str]:
        return list(text)

    def join(self, tokens: Sequence[str]) -> str:
        return "".join(tokens)


@dataclass(frozen=True)
class WordTokenizer(Tokenizer):
    """Tokens are the words between whitespace: "how are you" -> ["how", "are", "you"]."""

    kind = "word"

    @classmethod
    def from_texts(cls, texts: Iterable[str], *, use_unk: bool = False) -> WordTokenizer:
        """Vocabulary = the specials, then each distinct word in order of first appearance.

        First appearance (not alphabetical) keeps related words next to each other in the
        embedding tables a student looks at: "the cat sat on the mat" gives the, cat, sat, ...
        """
        seen: dict[str, None] = {}
        for text in texts:
            for word in text.split():
                if word in (PAD, BOS, EOS, UNK):
                    raise TokenizerError(f"the text contains the special token {word!r} as a word")
                seen.setdefault(word, None)
        extra = (UNK,) if use_unk else ()
        return cls(vocab=SPECIALS + extra + tuple(seen), use_unk=use_unk)

    def split(self, text: str) -> list[str]:
        return text.split()

    def join(self, tokens: Sequence[str]) -> str:
        return " ".join(tokens)


TOKENIZER_KINDS: dict[str, type[Tokenizer]] = {"char": CharTokenizer, "word": WordTokenizer}


def tokenizer_from_dict(data: dict[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer from `to_dict()` output (as stored in a checkpoint)."""
    kind = data.get("kind")
    if kind not in TOKENIZER_KINDS:
        raise TokenizerError(f"tokenizer kind must be one of {sorted(TOKENIZER_KINDS)}, got {kind!r}")
    vocab = data.get("vocab")
    if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab):
        raise TokenizerError("a stored tokenizer needs 'vocab', a list of strings")
    return TOKENIZER_KINDS[kind](vocab=tuple(vocab), use_unk=bool(data.get("use_unk", False)))
