"""tfbert: a TensorFlow/Keras model zoo for fine-tuning BERT-family encoders."""

from setuptools import setup

# Pinned to the set measured to work together: tf-models-official 2.20 pins
# TF/TF-Text ~=2.20; transformers 5 has no TensorFlow and 4.54-4.57 cannot load
# safetensors checkpoints into TF models, 4.53.3 can.
INSTALL_REQUIRES = [
    "tensorflow~=2.20.0",
    "tf-keras~=2.20.0",
    "tensorflow-text~=2.20.0",
    "tensorflow-hub>=0.16.1,<0.17",
    "tf-models-official==2.20.0",
    "transformers==4.53.3",
    "pandas>=2.0",
    "scikit-learn>=1.3",
    "matplotlib>=3.7",
    "pyyaml>=6.0",
    "tqdm>=4.60",
]

setup(
    name="tfbert",
    version="0.1.0",
    description="Pick a BERT-family encoder by name, put a head on it, fine-tune it in Keras.",
    long_description=open("README.md", encoding="utf-8").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=["tfbert", "tfbert.encoders", "tfbert.tokenizers", "tfbert.data", "tfbert._registry",
              "tfbert.demo_data"],
    package_dir={"tfbert._registry": "registry"},
    package_data={"tfbert._registry": ["*.yaml"], "tfbert.demo_data": ["**/*"]},
    install_requires=INSTALL_REQUIRES,
    extras_require={"test": ["pytest>=7", "pytest-xdist>=3.5", "pillow", "hypothesis>=6"]},
    entry_points={"console_scripts": ["tfbert=tfbert.cli:main"]},
)
