"""The built-in scenarios: seeded splits, correct targets, batches laid out as the models expect."""
from __future__ import annotations

import hashlib
import math
from importlib import resources

import numpy as np
import pytest

from engine.maths.decode import greedy_decode
from scenarios import BUILTIN, ScenarioError, build_scenario, complete, load_scenario
from scenarios.base import _token_hits
from scenarios.language import entropy_per_token, sentence_distribution

TEXT_SHA256 = "ec5f87c89ec470657bd7dee48f6b1fa5835f84f7311d1d028b208a2a29885141"


@pytest.fixture(scope="module")
def builtins():
    return {name: load_scenario(name) for name in BUILTIN}


def test_all_six_scenarios_are_registered():
    assert list(BUILTIN) == ["reverse", "sort", "copy", "addition", "tiny-lm", "char-lm"]


def test_each_scenario_explains_itself(builtins):
    for name, s in builtins.items():
        assert s.name == name
        assert s.kind in ("seq2seq", "lm")
        assert "\n" not in s.summary and len(s.summary) < 100
        assert len(s.description.split()) > 40, f"{name}: a paragraph, please"
        assert s.examples, name
        for text in s.examples:
            s.batch_for(text)  # every explorer input encodes
    assert builtins["copy"].tokenizer.kind == "word"
    assert {builtins[n].kind for n in ("reverse", "sort", "copy")} == {"seq2seq"}
    assert {builtins[n].kind for n in ("tiny-lm", "char-lm", "addition")} == {"lm"}


def test_splits_are_seeded():
    a, b = build_scenario("reverse"), build_scenario("reverse")
    assert a.data.train == b.data.train and a.data.held_out == b.data.held_out
    c = build_scenario("reverse", data={"seed": 7})
    assert c.data.held_out != a.data.held_out


@pytest.mark.parametrize("name", ["reverse", "sort", "copy", "addition"])
def test_held_out_sources_are_never_trained_on(builtins, name):
    s = builtins[name]
    train = {e.source for e in s.data.train}
    assert s.data.disjoint
    assert not train & {e.source for e in s.data.held_out}
    assert len(train) == len(s.data.train), "training examples are distinct"


def test_targets_follow_each_task_rule(builtins):
    for e in builtins["reverse"].data.train[:200]:
        assert e.target == e.source[::-1] and 2 <= len(e.source) <= 8
    for e in builtins["sort"].data.train[:200]:
        assert e.target == "".join(sorted(e.source))
    for e in builtins["copy"].data.train[:200]:
        assert e.target == e.source and 2 <= len(e.source.split()) <= 6
    for e in builtins["addition"].data.train[:200]:
        a, b = e.source.rstrip("=").split("+")
        assert int(e.target) == int(a) + int(b) and int(a) < 100 and int(b) < 100


def test_sizes_and_lengths_follow_the_settings():
    s = build_scenario("sort", data={"min_len": 3, "max_len": 5, "train_size": 500, "test_size": 50})
    assert len(s.data.train) == 500 and len(s.data.held_out) == 50
    lengths = {len(e.source) for e in s.data.train + s.data.held_out}
    assert lengths == {3, 4, 5}


def test_impossible_sizes_are_refused_with_the_key():
    with pytest.raises(ScenarioError) as info:
        build_scenario("reverse", data={"min_len": 2, "max_len": 2, "train_size": 200})
    assert info.value.key == "data.train_size" and "100 distinct" in str(info.value)


def test_seq2seq_batch_layout(builtins):
    s = builtins["reverse"]
    batch = s.next_batch(np.random.default_rng(0))
    assert batch.src.shape[0] == batch.tgt_in.shape[0] == s.train_config.batch_size
    assert (batch.tgt_in[:, 0] == 1).all(), "decoder input starts with <s>"
    tok = s.tokenizer
    for src, tin, tout in zip(batch.src, batch.tgt_in, batch.tgt_out):
        source, target = tok.decode(src), tok.decode(tout)
        assert target == source[::-1]
        n = len(target)
        assert tout[n] == tok.eos_id and (tout[n + 1:] == 0).all()
        assert (tin[1:n + 1] == tout[:n]).all(), "tgt_out is tgt_in shifted by one"


def test_batches_depend_only_on_the_rng(builtins):
    s = builtins["copy"]
    a = s.next_batch(np.random.default_rng(3))
    b = s.next_batch(np.random.default_rng(3))
    c = s.next_batch(np.random.default_rng(4))
    assert np.array_equal(a.src, b.src) and np.array_equal(a.tgt_out, b.tgt_out)
    assert not np.array_equal(a.tgt_in, c.tgt_in) or a.tgt_in.shape != c.tgt_in.shape


def test_prompted_batch_scores_only_the_answer(builtins):
    s = builtins["addition"]
    batch = s.next_batch(np.random.default_rng(0), batch_size=8)
    assert batch.src is None
    tok = s.tokenizer
    for tin, tout in zip(batch.tgt_in, batch.tgt_out):
        question = tok.decode(tin)  # "<s>12+34=46" without specials
        prompt, answer = question.split("=")
        counted = tok.decode(tout[tout != 0])
        assert counted == answer, "only the answer and </s> are counted"
        assert int(answer) == sum(int(x) for x in prompt.split("+"))
        assert tout[len(prompt) + 1 + len(answer)] == tok.eos_id  # after "=" and the answer


def test_sentence_batches_predict_every_word(builtins):
    s = builtins["tiny-lm"]
    batch = s.next_batch(np.random.default_rng(0), batch_size=4)
    tok = s.tokenizer
    for tin, tout in zip(batch.tgt_in, batch.tgt_out):
        assert tin[0] == tok.bos_id
        assert tok.decode(tout) == tok.decode(tin)
        assert tout[(tout != 0).sum() - 1] == tok.eos_id


def test_stream_windows_are_shifted_text_from_the_training_part(builtins):
    s = builtins["char-lm"]
    batch = s.next_batch(np.random.default_rng(0), batch_size=5)
    assert batch.tgt_in.shape == (5, 64)
    assert (batch.tgt_in[:, 1:] == batch.tgt_out[:, :-1]).all()
    for row in batch.tgt_in:
        assert s.tokenizer.decode(row) in s.data.train
    assert s.data.train + s.data.held_out == s.data.train + s.data.held_out
    assert s.data.held_out and s.data.train.endswith("\n"), "cut at a line break"


def test_eval_batches_are_fixed_and_cover_the_held_out_split(builtins):
    s = builtins["sort"]
    a, b = s.eval_batches(), s.eval_batches()
    assert sum(x.src.shape[0] for x in a) == len(s.data.held_out)
    assert all(np.array_equal(x.src, y.src) for x, y in zip(a, b))


def test_tiny_lm_entropy_is_the_grammar_entropy(builtins):
    # animal (3), verb (2), preposition (2), then a place: 2 choices for cats and dogs, 1 for birds
    nats = math.log(3) + 2 * math.log(2) + (2 / 3) * math.log(2)
    assert builtins["tiny-lm"].entropy == pytest.approx(nats / 7)
    distribution = sentence_distribution()
    assert sum(p for _, p in distribution) == pytest.approx(1.0)
    assert len({s for s, _ in distribution}) == len(distribution) == 20
    assert entropy_per_token(distribution) == pytest.approx(nats / 7)
    assert builtins["tiny-lm"].tokenizer.vocab_size - 3 == 12, "a dozen words"


def test_tasks_with_one_right_answer_can_reach_zero_loss(builtins):
    for name in ("reverse", "sort", "copy", "addition"):
        assert builtins[name].entropy == 0.0, name
    assert builtins["char-lm"].entropy is None, "no known entropy for English"


def test_the_shipped_text_is_the_documented_one():
    data = resources.files("scenarios").joinpath("data")
    text = data.joinpath("pride_and_prejudice.txt").read_bytes()
    assert hashlib.sha256(text).hexdigest() == TEXT_SHA256
    assert 20_000 < len(text) < 100_000
    readme = data.joinpath("README.md").read_text(encoding="utf-8")
    assert "Public domain" in readme and TEXT_SHA256 in readme and "1813" in readme


def test_user_text_files_feed_the_text_tasks(tmp_path):
    book = tmp_path / "book.txt"
    book.write_text("abcabc abc\n" * 200, encoding="utf-8")
    s = build_scenario("char-lm", data={"text_file": str(book), "block_size": 16})
    assert set(s.tokenizer.vocab[3:]) == set("abc \n")
    assert s.examples and all(set(e) <= set("abc \n") for e in s.examples), "examples from the text"
    phrases = tmp_path / "phrases.txt"
    phrases.write_text("\n".join(f"red {w} blue" for w in "abcdefghijklmnopqrstuvwxyz") + "\n\n",
                       encoding="utf-8")
    c = build_scenario("copy", data={"text_file": str(phrases), "train_size": 20, "test_size": 5})
    assert len(c.data.train) == 20 and len(c.data.held_out) == 5
    assert all(e.source == e.target for e in c.data.train)


def test_typed_inputs_become_one_row_batches(builtins):
    batch = builtins["reverse"].batch_for("123")
    tok = builtins["reverse"].tokenizer
    assert tok.decode(batch.src[0]) == "123" and tok.decode(batch.tgt_out[0]) == "321"
    with pytest.raises(ScenarioError, match="'x'"):
        builtins["reverse"].batch_for("12x")
    lm = builtins["tiny-lm"].batch_for("the cat")
    assert lm.tgt_in.tolist() == [[1, 3, 4]] and lm.tgt_out.tolist() == [[3, 4, 0]], \
        "what follows an unfinished sentence is not scored"
    sums = builtins["addition"].batch_for("12 + 34")
    assert builtins["addition"].tokenizer.decode(sums.tgt_in[0]) == "12+34=46"


def test_default_max_len_fits_every_sequence(builtins):
    for s in builtins.values():
        longest = max(b.tgt_in.shape[1] for b in s.eval_batches())
        assert s.model_config.max_len >= longest
        assert s.model_config.vocab_size == s.tokenizer.vocab_size and s.model_config.pad_id == 0


def test_token_hits_count_positions_and_the_stop():
    assert _token_hits(list("321"), list("321")) == 4
    assert _token_hits(list("321"), list("3210")) == 3
    assert _token_hits(list("321"), list("13")) == 0


def test_evaluate_reports_the_metrics_of_each_kind(builtins):
    for name, expected in [("reverse", {"exact_match", "token_accuracy", "loss", "perplexity"}),
                           ("tiny-lm", {"loss", "perplexity", "token_accuracy", "entropy"})]:
        s = builtins[name]
        metrics = s.evaluate(s.build_model(), n=20)
        assert set(metrics) == expected
        assert metrics["perplexity"] == pytest.approx(math.exp(metrics["loss"]))
        assert metrics["loss"] > 1.0, "an untrained model is far from right"


def test_sampling_slides_past_the_context_window():
    s = build_scenario("char-lm", data={"block_size": 16}, model={"d_model": 16, "d_ff": 32})
    model = s.build_model()
    out = complete(model, s.tokenizer, s.layout, "It is", max_tokens=50, temperature=0.9, seed=1)
    assert len(out.tokens) == 50 and len(out.probs) == 50
    again = complete(model, s.tokenizer, s.layout, "It is", max_tokens=50, temperature=0.9, seed=1)
    assert again.text == out.text, "the same seed samples the same text"
    with pytest.raises(ScenarioError, match="cannot be encoded"):
        complete(model, s.tokenizer, s.layout, "It is \u00e9", max_tokens=5)


@pytest.mark.parametrize("training", [True, False])
def test_measuring_gives_the_model_back_in_its_own_mode(builtins, training):
    for name in ("reverse", "addition", "tiny-lm"):
        s = builtins[name]
        model = s.build_model()
        model.train(training)
        s.evaluate(model, n=5)
        s.predictions(model, 3)
        complete(model, s.tokenizer, s.layout, s.examples[0], max_tokens=3)
        assert model.training is training, name


def test_an_encoder_decoder_samples_with_the_odds_of_each_choice(builtins):
    s = builtins["reverse"]
    model = s.build_model()
    greedy = complete(model, s.tokenizer, s.layout, "31415", greedy=True)
    batch_greedy = greedy_decode(model, np.asarray([s.encode("31415")]), s.tokenizer.bos_id,
                                 s.tokenizer.eos_id, model.config.max_len)[0]
    assert greedy.text == s.decode(batch_greedy), "the same choices as engine.maths.decode's greedy"
    assert all(p == max(q for _, q in alts) for p, alts in zip(greedy.probs, greedy.alternatives))
    hot = [complete(model, s.tokenizer, s.layout, "31415", temperature=2.0, top_k=3, seed=seed)
           for seed in (1, 1, 2)]
    assert hot[0].text == hot[1].text and hot[0].probs == hot[1].probs, "seeded"
    assert hot[0].text != hot[2].text
    for c in hot:
        assert len(c.tokens) == len(c.probs) == len(c.alternatives) > 0
        # top-k 3: every choice is among the three likeliest, whose odds sum to 1
        assert all(sum(q for _, q in alts) == pytest.approx(1.0) for alts in c.alternatives)
        assert all(t in [a for a, _ in alts] for t, alts in zip(c.tokens, c.alternatives))
    with pytest.raises(ScenarioError, match="1 to"):
        complete(model, s.tokenizer, s.layout, "1" * (model.config.max_len + 1))


@pytest.mark.parametrize("name", ["tiny-lm", "copy", "reverse", "addition"])
def test_predictions_show_each_held_out_example_once(builtins, name):
    """tiny-lm's thirty sentences repeat in its 200 held-out examples (the metrics count every
    repeat); the table of examples shows each once, in the split's order."""
    s = builtins[name]
    held_out = [(e.source, e.target) for e in s.data.held_out]
    distinct = list(dict.fromkeys(held_out))
    if name == "tiny-lm":
        assert len(distinct) < len(held_out)  # the case this guards: repeats exist
        assert len(set(held_out[:10])) < 10
    shown = s.predictions(s.build_model(), 10)
    rows = [(p.source, p.target) for p in shown]
    assert len(rows) == len(set(rows)) == min(10, len(distinct))
    if name == "tiny-lm":  # teacher-forced rows: no source, the target ends with </s>
        rows = [(source, target.removesuffix(" </s>")) for source, target in rows]
    assert rows == distinct[:10]
