import os
import subprocess
import sys
from pathlib import Path

import pytest

import tfbert
from tfbert.registry import get_spec, list_models

ROOT = Path(__file__).resolve().parent.parent

HF_REQUIRED = [
    "bert-base-uncased", "bert-base-cased", "bert-base-multilingual-cased",
    "distilbert-base-uncased", "roberta-base", "xlm-roberta-base",
    "google/electra-small-discriminator", "klue/bert-base", "klue/roberta-base",
    "beomi/kcbert-base", "monologg/koelectra-base-v3-discriminator",
]


def test_all_33_tfhub_entries_have_encoder_and_matching_preprocess():
    names = [n for n in list_models(backend="tfhub") if get_spec(n).source.endswith("tfhub.yaml")]
    assert len(names) == 33
    for name in names:
        spec = get_spec(name)
        assert spec.encoder.startswith("https://tfhub.dev/")
        assert spec.preprocess.startswith("https://tfhub.dev/")
        assert "preprocess" in spec.preprocess
        assert spec.layers and spec.hidden and spec.heads
    default = get_spec("small_bert/bert_en_uncased_L-4_H-512_A-8")
    assert default.preprocess == "https://tfhub.dev/tensorflow/bert_en_uncased_preprocess/3"
    assert (default.layers, default.hidden, default.heads) == (4, 512, 8)
    assert get_spec("bert_en_cased_L-12_H-768_A-12").preprocess.endswith("bert_en_cased_preprocess/3")
    assert get_spec("albert_en_base").preprocess.endswith("albert_en_preprocess/3")


@pytest.mark.parametrize("name", HF_REQUIRED)
def test_hf_entries(name):
    spec = get_spec(name)
    assert spec.backend == "huggingface"
    assert spec.encoder == name
    assert spec.langs and spec.cased is not None and spec.max_seq_length >= 128


def test_every_entry_records_the_documented_fields():
    builtin = {str(path) for path in tfbert.registry._builtin_files()}
    shipped = [s for s in tfbert.registry.specs() if s.source in builtin]  # not the YAML files tests load
    assert len(shipped) >= 45
    for spec in shipped:
        assert spec.backend in ("tfhub", "huggingface")
        assert spec.langs, spec.name
        assert spec.cased is not None, spec.name
        assert spec.max_seq_length > 0, spec.name
        assert spec.description, spec.name


def test_minilm_entry_resolves_to_installed_package_folder():
    spec = get_spec("minilm-l6-h384-uncased")
    folder = Path(spec.encoder_path)
    assert (folder / "model.safetensors").exists()
    assert (folder / "vocab.txt").exists()
    assert (spec.layers, spec.hidden) == (6, 384)


def test_list_models_glob_backend_and_language_filters():
    assert list_models("small_bert/*L-2_H-128*") == ["small_bert/bert_en_uncased_L-2_H-128_A-2"]
    small = list_models("small_bert/*")
    assert len(small) == 24
    # natural sort: L-2 before L-10
    assert small.index("small_bert/bert_en_uncased_L-2_H-128_A-2") < small.index(
        "small_bert/bert_en_uncased_L-10_H-128_A-2")
    korean = list_models(lang="ko")
    assert "klue/bert-base" in korean and "bert-base-multilingual-cased" in korean
    assert "bert-base-uncased" not in korean
    assert all(get_spec(n).backend == "huggingface" for n in list_models(backend="huggingface"))


def test_unknown_model_lists_closest_names():
    with pytest.raises(tfbert.UnknownModelError) as err:
        get_spec("bert-base-uncasd")
    message = str(err.value)
    assert "unknown model 'bert-base-uncasd'" in message
    assert "bert-base-uncased" in message
    assert "\n" not in message


def test_user_yaml_via_function_and_environment(tmp_path, tiny_hf_dir):
    path = tmp_path / "mine.yaml"
    path.write_text(f"""
models:
  - name: my-tiny
    backend: huggingface
    encoder: {tiny_hf_dir}
    langs: [en]
    cased: false
    description: mine
""")
    assert tfbert.load_registry_file(path) == ["my-tiny"]
    assert get_spec("my-tiny").encoder == tiny_hf_dir
    code = "import tfbert; print(tfbert.get_spec('my-tiny').encoder)"
    env = {**os.environ, "TFBERT_REGISTRY": str(path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == tiny_hf_dir


def test_bad_user_yaml_gives_one_line_errors(tmp_path):
    bad_field = tmp_path / "bad.yaml"
    bad_field.write_text("models:\n  - name: x\n    backend: huggingface\n    encoder: y\n    colour: red\n")
    with pytest.raises(tfbert.ConfigError, match="unknown field.*colour"):
        tfbert.load_registry_file(bad_field)
    bad_backend = tmp_path / "bad2.yaml"
    bad_backend.write_text("models:\n  - name: x\n    backend: torch\n    encoder: y\n")
    with pytest.raises(tfbert.ConfigError, match="unknown backend 'torch'"):
        tfbert.load_registry_file(bad_backend)
    with pytest.raises(tfbert.ConfigError, match="registry file not found"):
        tfbert.load_registry_file(tmp_path / "missing.yaml")


def test_local_folders_and_prefixes_work_as_names(tiny_hub_dir, tiny_hf_dir):
    assert get_spec(tiny_hf_dir).backend == "huggingface"
    hub = get_spec(tiny_hub_dir)
    assert hub.backend == "tfhub" and hub.preprocess.endswith("preprocess")
    assert get_spec("hf:klue/bert-base").encoder == "klue/bert-base"
    spec = get_spec("tfhub:https://e|https://p")
    assert (spec.encoder, spec.preprocess) == ("https://e", "https://p")
    with pytest.raises(tfbert.ConfigError, match="preprocess handle"):
        get_spec("tfhub:https://e")


def test_registry_files_found_after_a_regular_install(tmp_path):
    """A non-editable install must carry registry/*.yaml as package data."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                    "--quiet", "--target", str(target), str(ROOT)], check=True,
                   cwd=tmp_path, capture_output=True)
    code = ("import tfbert, tfbert.registry as r; print(tfbert.__file__); "
            "print(len(r.list_models()), r.get_spec('minilm-l6-h384-uncased').backend); "
            "from tfbert.data import load_demo; print(len(load_demo('test')))")
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0].startswith(str(target))
    count, backend = out[1].split()
    assert int(count) >= 45 and backend == "huggingface"
    assert out[2] == "1000"  # the demo sample ships as package data too
