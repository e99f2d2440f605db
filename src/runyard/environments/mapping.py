"""Conda packages with a known PyPI equivalent: the explicit table the uv builder uses.

The uv builder installs from PyPI only. A conda package is translated when (and only when) it
is in :data:`CONDA_TO_PYPI`; its conda version spec is translated to a PEP 440 specifier
(``numpy=1.26`` gives ``numpy==1.26.*``). Anything else is refused, naming the package and
pointing to the conda builder (``environment.python.builder = "conda"``) or to the ``pip:``
section. :data:`CONDA_ONLY` gives a better hint for well-known packages that exist only as
conda packages (compilers, CUDA toolkits, BLAS builds, R).

Keep this table explicit and small enough to review: a wrong entry would install a different
project than the user asked for. ``tests/unit/test_env_spec.py`` checks every entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runyard.environments.conda_dependencies import canonical_name

__all__ = ["CONDA_ONLY", "CONDA_TO_PYPI", "IGNORED", "CondaSpec", "MappingError",
           "parse_conda_spec", "to_pypi"]

#: conda name -> PyPI requirement name (with extras where the conda package bundles them).
CONDA_TO_PYPI: dict[str, str] = {
    # same name on both sides
    **{n: n for n in (
        "accelerate", "aiohttp", "altair", "arviz", "attrs", "beautifulsoup4", "black",
        "bokeh", "boto3", "botocore", "bottleneck", "catboost", "certifi", "cffi", "click",
        "cloudpickle", "cmake", "colorama", "cython", "dash", "dask", "datasets", "dill",
        "distributed", "fastapi", "fastparquet", "filelock", "flake8", "flask", "fsspec",
        "gcsfs", "gensim", "h5py", "httpx", "hypothesis", "idna", "imageio", "ipykernel",
        "ipython", "ipywidgets", "isort", "jinja2", "joblib", "jsonschema", "jupyter",
        "jupyterlab", "keras", "lightgbm", "llvmlite", "lxml", "markdown", "matplotlib",
        "mlflow", "mypy", "networkx", "ninja", "nltk", "notebook", "numba", "numexpr",
        "numpy", "onnx", "onnxruntime", "openpyxl", "optuna", "packaging", "pandas",
        "pillow", "plotly", "polars", "protobuf", "psutil", "psycopg2", "pyarrow",
        "pydantic", "pygments", "pymc", "pyspark", "pytest", "python-dateutil", "pytz",
        "pyyaml", "regex", "requests", "rich", "ruff", "s3fs", "scikit-image",
        "scikit-learn", "scipy", "seaborn", "sentencepiece", "setuptools", "shap", "six",
        "spacy", "sqlalchemy", "statsmodels", "sympy", "tabulate", "tensorboard",
        "tensorflow", "threadpoolctl", "tokenizers", "toml", "tomli", "torchaudio",
        "torchvision", "tqdm", "transformers", "typer", "tzdata", "urllib3", "uvicorn",
        "wheel", "xarray", "xgboost", "xlrd", "zarr",
    )},
    # different names
    "py-xgboost": "xgboost",
    "py-xgboost-cpu": "xgboost-cpu",
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "pytorch-lightning": "pytorch-lightning",
    "lightning": "lightning",
    "matplotlib-base": "matplotlib",
    "pytables": "tables",
    "msgpack-python": "msgpack",
    "py-opencv": "opencv-python",
    "opencv": "opencv-python",
    "python-graphviz": "graphviz",
    "pywavelets": "PyWavelets",
    "netcdf4": "netCDF4",
    "ruamel.yaml": "ruamel.yaml",
    "ruamel_yaml": "ruamel.yaml",
    "typing_extensions": "typing-extensions",
    "typing-extensions": "typing-extensions",
    "importlib_metadata": "importlib-metadata",
    "importlib-metadata": "importlib-metadata",
    "huggingface_hub": "huggingface-hub",
    "huggingface-hub": "huggingface-hub",
    "ray-core": "ray",
    "ray-default": "ray[default]",
    "ray-tune": "ray[tune]",
    "dask-core": "dask",
    "jupyter_core": "jupyter-core",
    "prompt_toolkit": "prompt-toolkit",
    "pyqt": "PyQt5",
    "tensorflow-cpu": "tensorflow-cpu",
    "libxgboost": "xgboost",
}

#: Conda-only packages with a specific hint (no PyPI project installs the same thing).
CONDA_ONLY: dict[str, str] = {
    "cudatoolkit": "CUDA comes with the PyPI wheels of torch/tensorflow (nvidia-* packages)",
    "cuda-toolkit": "CUDA comes with the PyPI wheels of torch/tensorflow (nvidia-* packages)",
    "cudnn": "cuDNN comes with the PyPI wheels of torch/tensorflow (nvidia-cudnn-*)",
    "nccl": "NCCL comes with the PyPI wheels of torch (nvidia-nccl-*)",
    "mkl": "a conda BLAS build; PyPI numpy/scipy wheels bundle OpenBLAS",
    "mkl-service": "a conda BLAS build; PyPI numpy/scipy wheels bundle OpenBLAS",
    "blas": "a conda BLAS selector; PyPI numpy/scipy wheels bundle OpenBLAS",
    "libblas": "a conda BLAS build; PyPI numpy/scipy wheels bundle OpenBLAS",
    "openblas": "a conda BLAS build; PyPI numpy/scipy wheels bundle OpenBLAS",
    "libgcc-ng": "a conda C runtime; wheels use the system's",
    "libstdcxx-ng": "a conda C++ runtime; wheels use the system's",
    "gcc": "a compiler; install it on the target machine instead",
    "gxx": "a compiler; install it on the target machine instead",
    "make": "a build tool; install it on the target machine instead",
    "git": "a system tool; install it on the target machine instead",
    "nodejs": "a system tool; install it on the target machine instead",
    "graphviz": "the Graphviz binaries (the Python binding is python-graphviz)",
    "r-base": "R is not a Python package",
    "openssl": "a system library",
    "ca-certificates": "a system package",
    "zlib": "a system library",
    "sqlite": "a system library (Python's sqlite3 module is built in)",
}

#: Conda entries that mean nothing for a venv: the installer itself.
IGNORED = frozenset({"pip"})


class MappingError(ValueError):
    """A conda spec that the uv builder cannot install (the message names the package)."""

    def __init__(self, package: str, message: str) -> None:
        super().__init__(message)
        self.package = package


@dataclass(frozen=True)
class CondaSpec:
    """A parsed conda match spec: ``[channel::]name[ version[ build]]``."""

    raw: str
    channel: str | None
    name: str
    op_version: str | None  # ">=1.2,<2", "==1.2", or a fuzzy "1.2" / "1.2.*" (from "=1.2")
    fuzzy: bool
    build: str | None


_SPEC = re.compile(r"^\s*(?:(?P<channel>[^\s:]+)::)?(?P<name>[A-Za-z0-9_][A-Za-z0-9_.+-]*)"
                   r"\s*(?P<rest>.*?)\s*$")


def parse_conda_spec(raw: str) -> CondaSpec:
    """Parse a conda match spec (the forms people write in environment.yml)."""
    m = _SPEC.match(raw)
    if not m:
        raise MappingError(raw, f"{raw!r} is not a conda package spec")
    name = m.group("name").lower()
    rest = m.group("rest")
    op_version: str | None = None
    fuzzy = False
    build: str | None = None
    if rest.startswith("["):
        raise MappingError(name, f"conda package {name!r}: the bracket syntax {rest!r} has "
                           "no pip equivalent; write it as name=version, or use the conda "
                           "builder (environment.python.builder = 'conda')")
    if rest.startswith("=="):
        op_version = rest[2:].strip()
    elif rest.startswith("="):
        version, _, b = rest[1:].partition("=")
        op_version, fuzzy, build = version.strip(), True, (b.strip() or None)
    elif rest[:1] in ("<", ">", "!", "~"):
        op_version = rest.replace(" ", "")
    elif rest:
        version, _, b = rest.partition(" ")
        op_version, build = version.strip(), (b.strip() or None)
        fuzzy = "*" in op_version
    return CondaSpec(raw=raw.strip(), channel=m.group("channel"), name=name,
                     op_version=op_version or None, fuzzy=fuzzy, build=build)


def _pep440(spec: CondaSpec) -> str:
    v = spec.op_version
    if not v:
        return ""
    if "|" in v:
        raise MappingError(spec.name, f"conda package {spec.name!r}: the version alternative "
                           f"{v!r} has no pip equivalent; pick one version, or use the conda "
                           "builder (environment.python.builder = 'conda')")
    if v[:1] in ("<", ">", "!", "~", "="):
        return v
    if spec.fuzzy:
        v = v.rstrip("*").rstrip(".")
        return f"=={v}.*" if v else ""
    return f"=={v}"


def to_pypi(raw: str) -> tuple[str | None, list[str]]:
    """Translate one conda spec to a pip requirement.

    Returns ``(requirement or None when the entry is ignored, notes)``. Raises
    :class:`MappingError` (naming the package) for a package without a known PyPI equivalent.
    """
    spec = parse_conda_spec(raw)
    notes: list[str] = []
    if spec.name in IGNORED:
        return None, notes
    pypi = CONDA_TO_PYPI.get(spec.name) or CONDA_TO_PYPI.get(canonical_name(spec.name))
    if pypi is None:
        hint = CONDA_ONLY.get(spec.name)
        if hint is None and spec.name.startswith("r-"):
            hint = "R packages are conda-only"
        why = (f"it is conda-only ({hint})" if hint else
               "it has no known PyPI equivalent in runyard's conda-to-PyPI table")
        raise MappingError(spec.name, f"conda package {spec.name!r} cannot be installed by the "
                           f"uv builder: {why}. Use the conda builder "
                           "(environment.python.builder = 'conda'), or list the PyPI "
                           "project under the 'pip:' section")
    if spec.build:
        notes.append(f"conda package {spec.name!r}: build string {spec.build!r} ignored "
                     "(pip has no build strings)")
    if spec.channel:
        notes.append(f"conda package {spec.name!r}: channel {spec.channel!r} ignored "
                     "(installed from the pip index)")
    return pypi + _pep440(spec), notes
