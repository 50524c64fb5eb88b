"""Builds the Cython post-processing kernels (native/) into ``padet_sdk._native``.

Everything else lives in pyproject.toml; setup.py exists only because Cython extensions
need an ``ext_modules`` list.
"""
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension(
        "padet_sdk._native",
        ["native/padet_native.pyx"],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        # No fused multiply-add contraction (GCC's default on aarch64): the kernels must round
        # exactly like the numpy reference they are tested against.
        extra_compile_args=["/O2"] if sys.platform == "win32" else ["-O3", "-ffp-contract=off"],
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    )
)
