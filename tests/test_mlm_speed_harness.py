"""benchmarks/mlm_speed.py: the harness alone (no child runs, no KerasHub venv, no TensorFlow)."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import mlm_speed  # noqa: E402


def fake_result(framework, tokens_per_s, **extra):
    return {"framework": framework, "versions": {framework: "0"}, "steps": 4, "batch_size": 2,
            "seconds": 1.0, "real_tokens": 40, "padded_tokens": 64, "tokens_per_s": tokens_per_s,
            "padded_tokens_per_s": 64.0, "examples_per_s": 8.0, "final_loss": 9.0, "peak_rss_mb": 100.0,
            **extra}


def test_parse_result_takes_the_last_json_line_and_checks_keys():
    good = fake_result("keras_hub", 10.0)
    out = "progress\n{\"not\": \"it\"\n" + json.dumps(good) + "\n"
    assert mlm_speed.parse_result(out, "keras_hub")["tokens_per_s"] == 10.0
    with pytest.raises(RuntimeError, match="lacks"):
        mlm_speed.parse_result(json.dumps({"framework": "x"}), "x")
    with pytest.raises(RuntimeError, match="no JSON"):
        mlm_speed.parse_result("nothing here", "x")


def test_frameworks_alternate_and_the_ratio_is_reported(tmp_path, monkeypatch):
    (tmp_path / "vocab").mkdir()
    (tmp_path / "vocab" / "vocab.txt").write_text("\n".join(mlm_speed.SPECIAL_TOKENS + ["a"]) + "\n")
    order = []

    def runner(name, speeds):
        def run(args, vocab_dir):
            order.append(name)
            assert (args.layers, args.hidden, args.heads, args.max_predictions) == (2, 128, 2, 10)
            return fake_result(name, speeds[len([o for o in order if o == name]) - 1])
        return run

    monkeypatch.setitem(mlm_speed.RUNNERS, "keras_hub", runner("keras_hub", [100.0, 120.0, 110.0]))
    monkeypatch.setitem(mlm_speed.RUNNERS, "tfbert", runner("tfbert", [150.0, 200.0, 180.0]))
    monkeypatch.setattr(mlm_speed, "ensure_keras_hub_venv", lambda *a, **k: None)
    report = mlm_speed.main(["--vocab", str(tmp_path / "vocab"), "--quick", "--rounds", "3",
                             "--out", str(tmp_path / "out")])
    assert order == ["keras_hub", "tfbert"] * 3
    assert report["summary"]["keras_hub"]["tokens_per_s_median"] == 110.0
    assert report["ratio"]["median"] == pytest.approx(180 / 110, abs=1e-3)
    assert report["ratio"]["best"] == pytest.approx(200 / 120, abs=1e-3)
    assert report["ratio"]["meets_target"] is True
    assert (tmp_path / "out" / "mlm_speed_quick.md").read_text().count("| keras_hub | 3 |") == 1
    assert json.loads((tmp_path / "out" / "mlm_speed_quick.json").read_text())["settings"]["seq_length"] == 64


def test_a_side_that_is_not_available_is_skipped_not_fatal(tmp_path, monkeypatch):
    (tmp_path / "vocab").mkdir()
    (tmp_path / "vocab" / "vocab.txt").write_text("\n".join(mlm_speed.SPECIAL_TOKENS) + "\n")
    monkeypatch.setitem(mlm_speed.RUNNERS, "keras_hub", lambda args, vocab_dir: fake_result("keras_hub", 100.0))

    def unavailable(args, vocab_dir):
        raise mlm_speed.NotAvailable("not merged yet")

    monkeypatch.setitem(mlm_speed.RUNNERS, "tfbert", unavailable)
    monkeypatch.setattr(mlm_speed, "ensure_keras_hub_venv", lambda *a, **k: None)
    report = mlm_speed.main(["--vocab", str(tmp_path / "vocab"), "--quick", "--rounds", "2",
                             "--out", str(tmp_path / "out")])
    assert report["summary"]["keras_hub"]["runs"] == 2
    assert report["summary"]["tfbert"] is None
    assert "not merged yet" in report["errors"]["tfbert"]
    assert report["ratio"]["median"] is None


def test_a_run_with_other_settings_is_flagged(tmp_path, monkeypatch):
    (tmp_path / "vocab").mkdir()
    (tmp_path / "vocab" / "vocab.txt").write_text("\n".join(mlm_speed.SPECIAL_TOKENS) + "\n")
    monkeypatch.setitem(mlm_speed.RUNNERS, "keras_hub",
                        lambda args, vocab_dir: fake_result("keras_hub", 100.0, seq_length=128))
    monkeypatch.setattr(mlm_speed, "ensure_keras_hub_venv", lambda *a, **k: None)
    report = mlm_speed.main(["--vocab", str(tmp_path / "vocab"), "--quick", "--frameworks", "keras_hub",
                             "--out", str(tmp_path / "out")])
    assert "keras_hub round 1: seq_length 128, asked 64" in report["warnings"]
    assert "**Warning:** keras_hub round 1" in (tmp_path / "out" / "mlm_speed_quick.md").read_text()
