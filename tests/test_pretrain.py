"""Masked-LM pretraining: masking statistics, loss, resume after a kill, the TF Hub export, errors."""

import gzip
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import tfbert
from tfbert.errors import TfbertError
from tfbert.masking import Masker, MaskingOptions
from tfbert.testing import toy_texts, write_vocab

TINY = dict(size="L-2_H-32_A-2", seq_length=32, batch_size=8, learning_rate=3e-3, log_every_steps=5,
            save_every_steps=10, dropout=0.0, precision="float32", verbose=0)
STEPS = 40


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    from transformers import BertTokenizerFast

    root = tmp_path_factory.mktemp("pretrain")
    BertTokenizerFast(vocab_file=write_vocab(root / "vocab.txt"), do_lower_case=True).save_pretrained(
        str(root / "vocab"))
    texts, _ = toy_texts(96, seed=3)
    with gzip.open(root / "corpus.txt.gz", "wt", encoding="utf-8") as handle:
        handle.write("\n".join(texts) + "\n")
    return root


@pytest.fixture(scope="module")
def whole(toy):
    """An uninterrupted scratch run (dropout 0, so a resumed run can match it exactly)."""
    out = toy / "whole"
    summary = tfbert.pretrain([str(toy / "corpus.txt.gz")], out, "toy-bert", vocab=str(toy / "vocab"),
                              steps=STEPS, **TINY)
    return out, summary


def _tokenizer(toy):
    from tfbert.tokenizers.wordpiece import WordPieceTokenizer
    return WordPieceTokenizer.from_hf(str(toy / "vocab"))


def _packed(tokenizer, rows: int, words: int, seed: int):
    rng = np.random.default_rng(seed)
    vocab = tokenizer.vocab
    plain = [i for i, t in enumerate(vocab) if not t.startswith("[") and not t.startswith("##")]
    pieces = [i for i, t in enumerate(vocab) if t.startswith("##")]
    out = []
    for _ in range(rows):
        ids = [2]
        for _ in range(words):
            ids.append(int(rng.choice(plain)))
            ids += [int(p) for p in rng.choice(pieces, size=rng.integers(0, 3))]
        out.append(ids + [3])
    return tf.ragged.constant(out, dtype=tf.int32).to_tensor(0)


def test_masking_statistics_specials_and_whole_words(toy):
    tokenizer = _tokenizer(toy)
    masker = Masker(tokenizer, MaskingOptions(), max_selections=512)
    picked = masked = kept = selectable = 0
    for batch in range(20):
        ids = _packed(tokenizer, 16, 60, batch)
        features, targets = masker(ids, tf.constant([7, batch], tf.int64))
        positions, weights = features["masked_lm_positions"].numpy(), targets["masked_lm_weights"].numpy()
        original, new = ids.numpy(), features["input_word_ids"].numpy()
        for row in range(16):
            chosen = positions[row][weights[row] > 0]
            assert not np.isin(original[row][chosen], [0, 1, 2, 3, 4]).any()  # never a special token
            np.testing.assert_array_equal(targets["masked_lm_ids"].numpy()[row][weights[row] > 0], original[row][chosen])
            picked += len(chosen)
            masked += (new[row][chosen] == 4).sum()
            kept += (new[row][chosen] == original[row][chosen]).sum()
            selectable += (~np.isin(original[row], [0, 1, 2, 3, 4])).sum()
    assert 0.14 < picked / selectable < 0.17
    assert 0.76 < masked / picked < 0.84
    assert 0.07 < kept / picked < 0.14  # 10% kept, plus random tokens that drew the same id
    again, _ = masker(ids, tf.constant([7, 19], tf.int64))
    other, _ = masker(ids, tf.constant([8, 19], tf.int64))
    assert np.array_equal(again["masked_lm_positions"], features["masked_lm_positions"])  # seeded: repeatable
    assert not np.array_equal(other["masked_lm_positions"], features["masked_lm_positions"])

    whole_words = Masker(tokenizer, MaskingOptions(whole_word=True), max_selections=512)
    ids = _packed(tokenizer, 16, 40, 99)
    features, targets = whole_words(ids, tf.constant([1, 2], tf.int64))
    continuation = np.array([t.startswith("##") for t in tokenizer.vocab])
    for row in range(16):
        chosen = set(features["masked_lm_positions"].numpy()[row][targets["masked_lm_weights"].numpy()[row] > 0])
        assert chosen
        tokens = ids.numpy()[row]
        for position in chosen:  # every piece of a picked word is picked: its neighbours in the word too
            if continuation[tokens[position]]:
                assert position - 1 in chosen
            if position + 1 < len(tokens) and continuation[tokens[position + 1]]:
                assert position + 1 in chosen


def test_loss_falls_and_outputs_are_written(whole):
    out, summary = whole
    history = pd.read_csv(out / "history.csv")
    assert list(history["step"]) == list(range(5, STEPS + 1, 5))
    assert summary["final_loss"] < summary["first_loss"] - 0.8
    assert {"rss_mb", "peak_rss_mb", "tokens_per_s", "learning_rate"} <= set(history.columns)
    for name in ("encoder", "preprocess", "vocab.txt", "tokenizer_config.json", "curves.png", "pretrain.json",
                 "registry.yaml", "logs"):
        assert (out / name).exists(), name
    assert tf.train.latest_checkpoint(str(out / "checkpoints")).endswith(f"ckpt-{STEPS}")
    assert summary["steps"] == STEPS and summary["tokens_seen"] > 0


_KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    from tfbert import cli, pretrain_outputs

    add = pretrain_outputs.History.add

    def add_then_die(self, row):
        add(self, row)
        if row["step"] == 15:  # after the checkpoint of step 10: steps 11-15 are lost
            os.kill(os.getpid(), signal.SIGKILL)

    pretrain_outputs.History.add = add_then_die
    cli.main(sys.argv[1:])
""")


def _cli_args(toy, out, positional=False, **extra):
    settings = {**TINY, "steps": STEPS, **extra}
    corpus = [str(toy / "corpus.txt.gz")] if positional else ["--corpus", str(toy / "corpus.txt.gz")]
    args = ["pretrain", *corpus, "--vocab", str(toy / "vocab"), "--output", str(out),
            "--name", "toy-bert"]
    for key, value in settings.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def test_a_killed_run_resumes_from_its_checkpoint_to_the_uninterrupted_result(toy, whole):
    killed = toy / "killed"
    # logged every 3 steps, so the checkpoint of step 10 falls between two log rows
    proc = subprocess.run([sys.executable, "-c", _KILLED_RUN, *_cli_args(toy, killed, log_every_steps=3)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert tf.train.latest_checkpoint(str(killed / "checkpoints")).endswith("ckpt-10")
    assert pd.read_csv(killed / "history.csv")["step"].max() == 15

    from tfbert.cli import main
    # the corpus given positionally and by a relative path this time, logged every 5 steps: the
    # same run settings, so --resume accepts them
    args = _cli_args(toy, killed, positional=True)
    args[1] = os.path.relpath(args[1])
    assert main(args + ["--resume"]) == 0
    resumed, uninterrupted = pd.read_csv(killed / "history.csv"), pd.read_csv(whole[0] / "history.csv")
    assert list(resumed["step"]) == [3, 6, 9] + list(range(15, STEPS + 1, 5))  # rows after the checkpoint: redone
    after = uninterrupted[uninterrupted["step"] >= 15]
    np.testing.assert_allclose(resumed["loss"][3:], after["loss"], rtol=0, atol=1e-5)
    summary = json.loads((killed / "pretrain.json").read_text())
    assert "resumed from" in summary["start"]["loaded"]
    assert summary["tokens_seen"] == whole[1]["tokens_seen"]  # the tokens before the checkpoint all counted


def test_resume_refuses_other_settings_and_a_missing_checkpoint(toy, whole):
    with pytest.raises(TfbertError, match="--mask-rate"):
        tfbert.pretrain([str(toy / "corpus.txt.gz")], whole[0], "toy-bert", vocab=str(toy / "vocab"), steps=STEPS,
                        resume=True, **{**TINY, "mask_rate": 0.2})
    gone = toy / "gone"  # a finished run whose checkpoints were deleted
    gone.mkdir()
    (gone / "pretrain.json").write_text("{}", encoding="utf-8")
    with pytest.raises(TfbertError, match="checkpoints are gone"):
        tfbert.pretrain([str(toy / "corpus.txt.gz")], gone, "x", vocab=str(toy / "vocab"), steps=5, resume=True,
                        **TINY)
    with pytest.raises(TfbertError, match="--resume"):  # a finished run's folder is not overwritten
        tfbert.pretrain([str(toy / "corpus.txt.gz")], whole[0], "toy-bert", vocab=str(toy / "vocab"), steps=STEPS,
                        **TINY)
    other = toy / "a_train_run"  # a folder of other files (here what tfbert train leaves) is not written into
    other.mkdir()
    (other / "history.csv").write_text("epoch,loss\n1,0.5\n", encoding="utf-8")
    with pytest.raises(TfbertError, match="holds other files and no pretraining run; choose a new or empty"):
        tfbert.pretrain([str(toy / "corpus.txt.gz")], other, "x", vocab=str(toy / "vocab"), steps=5, **TINY)
    assert sorted(p.name for p in other.iterdir()) == ["history.csv"]


def _copied_run(whole, to, **settings):
    """A copy of the finished run whose recorded settings say ``settings``."""
    shutil.copytree(whole[0], to)
    path = to / "checkpoints" / "settings.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **settings}), encoding="utf-8")
    return to


def test_resume_refuses_a_changed_vocabulary_or_corpus_and_missing_settings(toy, whole):
    vocab = toy / "vocab_edited"  # the same folder as the run began with, its tokens since reordered
    shutil.copytree(toy / "vocab", vocab)
    tokens = (vocab / "vocab.txt").read_text(encoding="utf-8").splitlines()
    (vocab / "vocab.txt").write_text("\n".join(tokens[:5] + tokens[6:5:-1] + tokens[5:6] + tokens[7:]) + "\n",
                                     encoding="utf-8")
    run = _copied_run(whole, toy / "vocab_changed", vocab=str(vocab))
    with pytest.raises(TfbertError, match="--resume: the vocabulary in .* changed since the run began"):
        tfbert.pretrain([str(toy / "corpus.txt.gz")], run, "toy-bert", vocab=str(vocab), steps=STEPS, resume=True,
                        **TINY)

    corpus = toy / "corpus_edited.txt"  # the same file name as the run began with, fewer texts in it now
    corpus.write_text("\n".join(toy_texts(96, seed=3)[0][:80]) + "\n", encoding="utf-8")
    run = _copied_run(whole, toy / "corpus_changed", corpus=[str(corpus)])
    with pytest.raises(TfbertError, match=r"--resume: the corpus changed since the run began \(96 texts"):
        tfbert.pretrain([str(corpus)], run, "toy-bert", vocab=str(toy / "vocab"), steps=STEPS, resume=True, **TINY)

    run = _copied_run(whole, toy / "no_settings")
    (run / "checkpoints" / "settings.json").unlink()
    with pytest.raises(TfbertError, match="settings.json is missing"):
        tfbert.pretrain([str(toy / "corpus.txt.gz")], run, "toy-bert", vocab=str(toy / "vocab"), steps=STEPS,
                        resume=True, **TINY)


def test_a_run_killed_before_its_first_checkpoint_starts_over(toy, capsys):
    out = toy / "early"  # what a run killed before its first checkpoint leaves
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "settings.json").write_text("{}", encoding="utf-8")
    (out / "history.csv").write_text("step,loss\n5,99.0\n", encoding="utf-8")
    # --resume (or the same command again: the same branch) starts from step 0
    summary = tfbert.pretrain([str(toy / "corpus.txt.gz")], out, "early", vocab=str(toy / "vocab"), steps=5,
                              resume=True, **{**TINY, "verbose": 1})
    history = pd.read_csv(out / "history.csv")
    assert summary["steps"] == 5 and list(history["step"]) == [5] and history["loss"].iloc[0] < 50
    assert "stopped before its first checkpoint; starting it over" in capsys.readouterr().out


def test_a_table_corpus_is_read_from_its_text_column(toy, tmp_path, capsys):
    from tfbert.cli import main
    from tfbert.pretrain_data import tokenize_corpus

    texts, _ = toy_texts(96, seed=5)
    pd.DataFrame({"id": range(len(texts)), "review": texts}).to_csv(tmp_path / "reviews.csv", index=False)
    corpus = tokenize_corpus([str(tmp_path / "reviews.csv")], _tokenizer(toy), 32, text_column="review")
    assert corpus.rows == 96
    args = ["pretrain", str(tmp_path / "reviews.csv"), "--vocab", str(toy / "vocab"), "--name", "table", "--size",
            "L-1_H-32_A-2", "--steps", "2", "--output", str(tmp_path / "a"), "--verbose", "0"]
    assert main(args) == 2  # no "text" column: the error names the columns there are
    assert "review" in capsys.readouterr().err
    assert main(args + ["--text-column", "nope"]) == 2  # the flag reaches the reader
    assert "nope" in capsys.readouterr().err


def test_the_export_loads_in_tf_hub_and_fine_tunes_from_its_registry_entry(toy, whole, tmp_path):
    import tensorflow_hub as hub

    from tfbert.pretrain_model import build_network, build_pretrainer, resolve_start

    out, _ = whole
    start = resolve_start(None, str(toy / "vocab"), "L-2_H-32_A-2", 32, 0.0)
    pretrainer = build_pretrainer(build_network(start, 0))
    tf.train.Checkpoint(model=pretrainer).restore(tf.train.latest_checkpoint(str(out / "checkpoints"))).expect_partial()
    ids = tf.constant([[2, 10, 11, 12, 3, 0]], tf.int32)
    inputs = dict(input_word_ids=ids, input_mask=tf.cast(ids > 0, tf.int32), input_type_ids=tf.zeros_like(ids))
    expected = pretrainer.encoder_network(inputs)["sequence_output"]
    loaded = hub.KerasLayer(str(out / "encoder"))(inputs)["sequence_output"]
    np.testing.assert_allclose(loaded.numpy(), expected.numpy(), atol=1e-5)

    # the preprocess model tokenizes as HuggingFace does with the run's tokenizer files
    from transformers import AutoTokenizer
    mixed = ["The Movie was GREAT", "영화 정말 최고 재밌다", "naïve café, 東京!"]
    preprocess = hub.load(str(out / "preprocess"))
    got = preprocess.tokenize(tf.constant(mixed)).to_list()
    assert got == AutoTokenizer.from_pretrained(str(out))(mixed, add_special_tokens=False)["input_ids"]

    # tfbert train through the run's registry file, as the pretrain log says; its export loads and predicts
    from tfbert.cli import main
    from tfbert.predict import load
    texts, labels = toy_texts(64, seed=7)
    pd.DataFrame({"text": texts, "label": labels}).to_csv(tmp_path / "train.csv", index=False)
    assert main(["--registry", str(out / "registry.yaml"), "train", "--model", "toy-bert", "--head", "dense",
                 "--train", str(tmp_path / "train.csv"), "--epochs", "3", "--batch-size", "8", "--seq-length", "16",
                 "--learning-rate", "3e-3", "--output-dir", str(tmp_path / "runs"), "--verbose", "0"]) == 0
    run = next((tmp_path / "runs").glob("toy-bert__dense__*"))
    history = pd.read_csv(run / "history.csv")
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    predictor = load(str(run / "model"))
    outputs, _ = predictor.predict_outputs(texts[:8])
    assert outputs["probabilities"].shape == (8, 2)


@pytest.mark.slow  # CI time: 30 s; the same loop and export as the scratch runs, plus copied weights
def test_continued_pretraining_from_a_huggingface_bert(toy, tiny_hf_dir):
    out = toy / "continued"
    summary = tfbert.pretrain([str(toy / "corpus.txt.gz")], out, "toy-continued", model=f"hf:{tiny_hf_dir}",
                              steps=30, **{**TINY, "size": None})
    assert "tensors copied" in summary["start"]["loaded"] and "fresh" in summary["start"]["loaded"]
    assert summary["final_loss"] < summary["first_loss"] - 0.5
    assert summary["encoder_config"]["max_position_embeddings"] == 128


def test_a_masked_lm_checkpoint_keeps_its_own_head_and_predicts_as_in_huggingface(tmp_path):
    from transformers import TFBertForMaskedLM

    from tfbert.pretrain_model import build_network, build_pretrainer, fill_weights, resolve_start
    from tfbert.testing import make_tiny_hf_bert

    folder = make_tiny_hf_bert(tmp_path / "mlm", dropout=0.0, mlm_head=True)
    start = resolve_start(f"hf:{folder}", None, None, 16, None)
    pretrainer = build_pretrainer(build_network(start, 0), start.config["hidden_act"])
    assert "MLM head: the checkpoint's own" in fill_weights(start, pretrainer)
    ids = tf.constant([[2, 10, 11, 12, 13, 3], [2, 14, 15, 3, 0, 0]], tf.int32)
    mask, types = tf.cast(ids > 0, tf.int32), tf.zeros_like(ids)
    positions = tf.constant([[1, 2, 4], [1, 2, 3]], tf.int32)
    ours = pretrainer(dict(input_word_ids=ids, input_mask=mask, input_type_ids=types,
                           masked_lm_positions=positions))["mlm_logits"]
    theirs = TFBertForMaskedLM.from_pretrained(folder)(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
    # exact GELU as in HF: equal to float32 rounding (the tanh GELU is off by ~4e-5 here)
    np.testing.assert_allclose(ours.numpy(), tf.gather(theirs, positions, batch_dims=1).numpy(), rtol=0, atol=5e-6)


def test_bad_input_gets_one_line_errors(toy, tiny_hf_dir):
    corpus, vocab = str(toy / "corpus.txt.gz"), str(toy / "vocab")
    (toy / "empty.txt").write_text("\n\n", encoding="utf-8")
    (toy / "tiny.txt").write_text("good movie\nbad film\n", encoding="utf-8")
    (toy / "cp949.txt").write_bytes("좋은 영화\n".encode() * 30 + "나쁜 영화\n".encode("cp949"))
    other_vocab = toy / "other_vocab"
    from transformers import BertTokenizerFast
    BertTokenizerFast(vocab_file=write_vocab(toy / "v2.txt", ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"]),
                      do_lower_case=True).save_pretrained(str(other_vocab))
    (toy / "not_a_run").mkdir(exist_ok=True)
    (toy / "not_a_run" / "pretrain.json").write_text("{}", encoding="utf-8")
    (toy / "empty_vocab").mkdir(exist_ok=True)
    (toy / "empty_vocab" / "vocab.txt").write_text("", encoding="utf-8")
    (toy / "empty_vocab" / "tokenizer_config.json").write_text("{}", encoding="utf-8")
    cases = [
        (dict(corpus=corpus, vocab=vocab, seq_length=2), "no room for text between"),
        (dict(corpus=corpus, model=str(toy / "not_a_run"), size=None), "has no encoder_config"),
        (dict(corpus=corpus, vocab=str(toy / "empty_vocab")), "empty vocab.txt"),
        (dict(corpus=str(toy / "empty.txt"), vocab=vocab), "no text"),
        (dict(corpus=str(toy / "tiny.txt"), vocab=vocab), "fewer than one batch"),
        (dict(corpus=str(toy / "cp949.txt"), vocab=vocab), r"line 31 of .*cp949.txt is not UTF-8 text .*re-save"),
        (dict(corpus=str(toy / "test.txt"), vocab=vocab), "test split"),
        (dict(corpus=corpus, model=f"hf:{tiny_hf_dir}", vocab=str(other_vocab), size=None), "drop --vocab"),
        (dict(corpus=corpus, model=f"hf:{tiny_hf_dir}", size=None, seq_length=200), "position table"),
        (dict(corpus=corpus, vocab=vocab, seq_length=600), "position table"),
        (dict(corpus=corpus, model="no-such-model", size=None), "no-such-model"),
        (dict(corpus=corpus, vocab=vocab, mask_token_rate=0.95), "at most 1"),
        (dict(corpus=corpus, size=None), "--vocab"),
    ]
    for i, (case, message) in enumerate(cases):
        settings = {**TINY, "steps": 5, **case}
        with pytest.raises(TfbertError, match=message) as err:
            tfbert.pretrain(settings.pop("corpus"), toy / f"bad{i}", "bad", **settings)
        assert "\n" not in str(err.value), str(err.value)


def test_a_scratch_handle_or_its_registry_entry_starts_a_new_encoder(toy, tmp_path):
    from tfbert.pretrain_model import resolve_start

    handle = f"scratch:L-1_H-32_A-2@{toy / 'vocab'}"
    (tmp_path / "r.yaml").write_text(
        f"models:\n  - name: toy-scratch\n    backend: tfhub\n    langs: [en]\n    description: test\n    encoder: '{handle}'\n    preprocess: '{handle}'\n",
        encoding="utf-8")
    tfbert.load_registry_file(tmp_path / "r.yaml")
    for model in (handle, "toy-scratch"):
        start = resolve_start(model, None, None, 32, 0.0)
        assert start.kind == "scratch" and start.tokenizer_dir == str(toy / "vocab")
        assert (start.config["num_hidden_layers"], start.config["hidden_size"]) == (1, 32)
    with pytest.raises(TfbertError, match="drop --vocab/--size"):
        resolve_start(handle, None, "L-2_H-32", 32, 0.0)
