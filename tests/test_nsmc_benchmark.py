"""benchmarks/nsmc_own_encoder.py: a rerun reuses finished stages only when their settings match."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import nsmc_own_encoder as bench  # noqa: E402


def _args(*extra):
    return bench.build_parser().parse_args(["--work", "unused", *extra])


def _run_stage(stages, args, name, calls):
    settings = bench.stage_settings(args, name)
    bench.check_settings(stages, name, settings, Path("runs/x"))
    return bench._timed(stages, name, lambda: calls.append(name) or {"value": len(calls)}, settings)


def test_a_finished_stage_is_reused_with_the_same_settings():
    stages, calls, args = {}, [], _args()
    first = _run_stage(stages, args, "pretrain", calls)
    again = _run_stage(stages, _args(), "pretrain", calls)
    assert calls == ["pretrain"] and again == first == {"value": 1}
    assert stages["pretrain"]["settings"]["pretrain_steps"] == 9000


def test_other_settings_are_refused_naming_what_differs():
    stages, calls = {}, []
    _run_stage(stages, _args(), "pretrain", calls)
    refused = r"runs/x holds a finished 'pretrain' stage.*--pretrain-steps 9000 -> 4000.*--work"
    with pytest.raises(SystemExit, match=refused):
        _run_stage(stages, _args("--pretrain-steps", "4000"), "pretrain", calls)
    assert calls == ["pretrain"]


def test_a_change_upstream_reaches_the_stages_built_on_it():
    stages, calls = {}, []
    for name in ("vocab", "pretrain", "finetune_pretrained", "finetune_scratch", "finetune_minilm"):
        _run_stage(stages, _args(), name, calls)
    smaller_vocab = _args("--vocab-size", "16000")
    for name in ("vocab", "pretrain", "finetune_pretrained", "finetune_scratch"):
        with pytest.raises(SystemExit, match="--vocab-size 24000 -> 16000"):
            bench.check_settings(stages, name, bench.stage_settings(smaller_vocab, name), Path("runs/x"))
    # MiniLM brings its own vocabulary and weights: only its fine-tuning settings matter
    minilm = bench.stage_settings(smaller_vocab, "finetune_minilm")
    bench.check_settings(stages, "finetune_minilm", minilm, Path("x"))
    slower = bench.stage_settings(_args("--minilm-learning-rate", "3e-5"), "finetune_minilm")
    with pytest.raises(SystemExit, match="--minilm-learning-rate 5e-05 -> 3e-05"):
        bench.check_settings(stages, "finetune_minilm", slower, Path("x"))


def test_stages_recorded_before_settings_were_kept_are_reused():
    stages = {"pretrain": {"done": True, "seconds": 5.0, "result": {"steps": 9000}}}
    args = _args("--pretrain-steps", "4000")
    bench.check_settings(stages, "pretrain", bench.stage_settings(args, "pretrain"), Path("runs/x"))
    assert bench._timed(stages, "pretrain", lambda: pytest.fail("ran again"), {}) == {"steps": 9000}


def test_an_unknown_way_is_refused_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--work", str(tmp_path / "w"), "--ways", "pretrained,minilm-l6"])
    err = capsys.readouterr().err
    assert "--ways 'pretrained,minilm-l6': give a comma-separated list of pretrained, scratch, minilm" in err
    assert not (tmp_path / "w").exists()
