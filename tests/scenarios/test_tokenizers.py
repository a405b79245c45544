"""Tokenizers: fixed special ids, lossless round trips, clear errors for what they do not know."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scenarios.tokenizers import (CharTokenizer, TokenizerError, UnknownTokenError, WordTokenizer,
                                  tokenizer_from_dict)

DIGITS = CharTokenizer.from_chars("0123456789+=")
WORDS = WordTokenizer.from_texts(["the cat sat on the mat", "how are you"])


def test_special_tokens_have_fixed_ids():
    for tok in (DIGITS, WORDS):
        assert tok.vocab[:3] == ("<pad>", "<s>", "</s>")
        assert (tok.pad_id, tok.bos_id, tok.eos_id) == (0, 1, 2)


def test_char_encoding_is_one_id_per_character_in_sorted_order():
    assert DIGITS.vocab[3:] == tuple(sorted("0123456789+="))
    ids = DIGITS.encode("12+34=")
    assert len(ids) == 6
    assert [DIGITS.vocab[i] for i in ids] == list("12+34=")


def test_word_vocabulary_keeps_first_appearance_order():
    assert WORDS.vocab[3:] == ("the", "cat", "sat", "on", "mat", "how", "are", "you")


def test_bos_and_eos_wrap_only_when_asked():
    assert WORDS.encode("how are you") == [8, 9, 10]
    assert WORDS.encode("how are you", bos=True, eos=True) == [1, 8, 9, 10, 2]


def test_decode_drops_specials_unless_asked():
    ids = [1, 8, 9, 10, 2, 0, 0]
    assert WORDS.decode(ids) == "how are you"
    assert WORDS.decode(ids, skip_special=False) == "<s> how are you </s> <pad> <pad>"


@given(st.text(alphabet="0123456789+=", max_size=30))
def test_char_round_trip(text):
    assert DIGITS.decode(DIGITS.encode(text)) == text


@given(st.lists(st.sampled_from(["the", "cat", "sat", "on", "mat", "how", "are", "you"]), max_size=12))
def test_word_round_trip(words):
    text = " ".join(words)
    assert WORDS.decode(WORDS.encode(text)) == text


def test_unknown_character_is_named_in_the_error():
    with pytest.raises(UnknownTokenError) as info:
        DIGITS.encode("12x4")
    message = str(info.value)
    assert "'x'" in message and "vocabulary" in message and "0" in message


def test_unknown_word_is_named_with_the_known_words():
    with pytest.raises(UnknownTokenError, match="'dog'.*it knows 8 tokens: the cat sat"):
        WORDS.encode("the dog sat")


def test_unk_replaces_unknown_words_only_when_enabled():
    tok = WordTokenizer.from_texts(["a b"], use_unk=True)
    assert tok.unk_id == 3
    assert tok.encode("a zebra b") == [4, 3, 5]
    assert tok.decode(tok.encode("a zebra b")) == "a <unk> b"
    assert WORDS.unk_id is None


def test_out_of_range_ids_are_an_error_not_an_index_error():
    with pytest.raises(TokenizerError, match="outside the vocabulary"):
        DIGITS.decode([3, 99])


def test_specials_cannot_appear_as_words_in_training_text():
    with pytest.raises(TokenizerError, match="special token"):
        WordTokenizer.from_texts(["hello </s> world"])


def test_labels_make_whitespace_visible():
    tok = CharTokenizer.from_chars("a \n")
    assert tok.label(tok.token_id(" ")) == "␣"
    assert tok.label(tok.token_id("\n"), ascii_only=True) == "\\n"
    assert tok.label(tok.token_id("a")) == "a"


@pytest.mark.parametrize("tok", [DIGITS, WORDS, WordTokenizer.from_texts(["x y"], use_unk=True)])
def test_storage_round_trip_rebuilds_the_same_tokenizer(tok):
    again = tokenizer_from_dict(tok.to_dict())
    assert type(again) is type(tok) and again.vocab == tok.vocab and again.use_unk == tok.use_unk


def test_damaged_storage_is_a_tokenizer_error():
    with pytest.raises(TokenizerError, match="kind"):
        tokenizer_from_dict({"kind": "bpe", "vocab": ["<pad>", "<s>", "</s>"]})
    with pytest.raises(TokenizerError, match="start with"):
        tokenizer_from_dict({"kind": "char", "vocab": ["a", "<s>", "</s>"]})
