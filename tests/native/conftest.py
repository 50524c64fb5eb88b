"""Helpers of the native-kernel tests: the built extension (or a failure saying how to build it)
and random NMS inputs with the awkward cases (duplicated boxes, exactly tied scores)."""
from __future__ import annotations

import pytest

BUILD_HINT = (
    "padet_sdk._native is not built: run `python setup.py build_ext --inplace` "
    "(or `pip install -e .`) in the repository root"
)


@pytest.fixture(scope="session")
def native_ext():
    """The Cython module. Fails (not skips) when it is missing: the comparison is the point."""
    try:
        from padet_sdk import _native
    except ImportError as exc:
        pytest.fail(f"{BUILD_HINT} ({exc})")
    return _native
