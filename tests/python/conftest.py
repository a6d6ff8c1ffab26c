"""Shared fixtures: where the gembed binary and the shared test data are."""
import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def gembed_bin() -> pathlib.Path:
    return pathlib.Path(os.environ.get("GEMBED_BIN", REPO / "build" / "bin" / "gembed"))


def shared_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("GEMBED_SHARED_DIR", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def gembed() -> pathlib.Path:
    b = gembed_bin()
    if not b.exists():
        pytest.fail(f"gembed binary not found at {b}: build first (scripts/setup.sh)")
    return b


@pytest.fixture(scope="session")
def tokenizer_dir() -> pathlib.Path:
    d = shared_dir() / "gemma3-tokenizer"
    if not (d / "tokenizer.json").exists():
        pytest.skip(f"Gemma3 tokenizer not found in {d} (set GEMBED_SHARED_DIR)")
    return d
