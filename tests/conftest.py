"""Shared fixtures: tiny encoders in both formats, made once per test session."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
# Exact float32 by default so numeric comparisons are tight; bf16 has its own tests.
os.environ.setdefault("TFBERT_PRECISION", "float32")
# A cache of this test process's own: the suite runs in parallel workers (scripts/test.sh),
# which must not build the same cached encoder into one folder, and tests must not fill
# the user's ~/.cache/tfbert.
if "TFBERT_CACHE" not in os.environ:
    import atexit
    import shutil
    import tempfile

    os.environ["TFBERT_CACHE"] = tempfile.mkdtemp(prefix="tfbert-test-cache-")
    atexit.register(shutil.rmtree, os.environ["TFBERT_CACHE"], ignore_errors=True)

# Parallel workers share the machine's cores: each takes its share of TF's op threads instead of
# all of them (tiny models gain nothing from more threads, and oversubscribed ones wait on each
# other: the suite ran in 11 min 44 s instead of 13 min 26 s on 2 cores).
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    _share = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(_share))

import pytest  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run the slow checks: real pretrained weights, and long end-to-end runs "
                          "that faster tests already cover in part")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: real-weights checks and long end-to-end runs; run with --run-slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow check: pass --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_hub_dir(tmp_path_factory):
    from tfbert.testing import make_tiny_tfhub_bert
    return make_tiny_tfhub_bert(tmp_path_factory.mktemp("tiny_hub"))


@pytest.fixture(scope="session")
def tiny_hf_dir(tmp_path_factory):
    from tfbert.testing import make_tiny_hf_bert
    return make_tiny_hf_bert(tmp_path_factory.mktemp("tiny_hf"))


@pytest.fixture(scope="session")
def no_dropout_hf(tmp_path_factory):
    """A tiny HF BERT without dropout: TF's random ops restart in every process, so only a
    dropout-free model trains bit for bit alike in two processes (resumed, or distributed)."""
    from tfbert.testing import make_tiny_hf_bert
    return make_tiny_hf_bert(tmp_path_factory.mktemp("nodrop"), dropout=0.0)


@pytest.fixture(scope="session")
def tiny_models(tiny_hub_dir, tiny_hf_dir):
    """Registers the tiny encoders under names, as a user's YAML entry would."""
    import tfbert
    tfbert.register_model(name="tiny-tfhub", backend="tfhub",
                          encoder=os.path.join(tiny_hub_dir, "encoder"),
                          preprocess=os.path.join(tiny_hub_dir, "preprocess"),
                          langs=["en"], cased=False, layers=2, hidden=32, heads=2,
                          max_seq_length=128, description="test encoder (TF Hub format)")
    tfbert.register_model(name="tiny-hf", backend="huggingface", encoder=tiny_hf_dir,
                          langs=["en"], cased=False, layers=2, hidden=32, heads=2,
                          max_seq_length=128, description="test encoder (HF format)")
    return {"tfhub": "tiny-tfhub", "huggingface": "tiny-hf"}
