"""gembed as an installed library: `cmake --install` of the build tree into a
temporary prefix, then an outside CMake project (tests/install/consumer) that
does find_package(gembed) + target_link_libraries(... gembed::gembed) is
configured, built and run against it: a C++17 program on <gembed/gembed.hpp>
and a C99 program on <gembed/gembed.h>. Their vectors must equal the CLI's bit
for bit (same engine, same options), and their own checks (error paths,
threads, cancellation) must pass. Runs on a tiny synthetic model."""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
CONSUMER_SRC = REPO / "tests" / "install" / "consumer"

TEXTS = ["hello world", "The quick brown fox jumps over the lazy dog.", "", "zebra",
         "Ünïcödé text — with 🙂 emoji", "  padded with spaces  "]


def run(cmd, check: bool = True, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, timeout=300, check=False, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd} failed ({r.returncode}):\n{r.stdout.decode(errors='replace')}\n"
                             f"{r.stderr.decode(errors='replace')}")
    return r


def cache_value(cache: pathlib.Path, key: str) -> str | None:
    for line in cache.read_text().splitlines():
        if line.startswith(key + ":"):
            return line.split("=", 1)[1]
    return None


@pytest.fixture(scope="module")
def build_dir(gembed) -> pathlib.Path:
    d = pathlib.Path(os.environ.get("GEMBED_BUILD_DIR", gembed.parent.parent))
    if not (d / "CMakeCache.txt").exists():
        pytest.skip(f"no CMake build tree at {d} (set GEMBED_BUILD_DIR)")
    if cache_value(d / "CMakeCache.txt", "GEMBED_INSTALL") in ("OFF", "0", "FALSE"):
        pytest.skip(f"{d} was configured with GEMBED_INSTALL=OFF: nothing to install")
    return d


@pytest.fixture(scope="module")
def prefix(build_dir, tmp_path_factory) -> pathlib.Path:
    p = tmp_path_factory.mktemp("install") / "prefix"
    run(["cmake", "--install", build_dir, "--prefix", p])
    return p


@pytest.fixture(scope="module")
def consumer(prefix, build_dir, tmp_path_factory) -> pathlib.Path:
    """The outside project, configured with the main build's compilers and generator."""
    out = tmp_path_factory.mktemp("consumer") / "build"
    cache = build_dir / "CMakeCache.txt"
    args = ["cmake", "-S", CONSUMER_SRC, "-B", out, "-DCMAKE_BUILD_TYPE=Release", f"-DCMAKE_PREFIX_PATH={prefix}"]
    for key in ("CMAKE_C_COMPILER", "CMAKE_CXX_COMPILER", "CMAKE_MAKE_PROGRAM"):
        value = cache_value(cache, key)
        if value:
            args.append(f"-D{key}={value}")
    generator = cache_value(cache, "CMAKE_GENERATOR")
    if generator:
        args += ["-G", generator]
    env = {k: v for k, v in os.environ.items() if k not in ("CMAKE_PREFIX_PATH", "gembed_DIR")}
    run(args, env=env)
    run(["cmake", "--build", out, "-j2"], env=env)
    return out


@pytest.fixture(scope="module")
def model(gembed, tokenizer_dir, tmp_path_factory) -> pathlib.Path:
    # Tiny, but 256 wide so that a Matryoshka dim (128) exists.
    path = tmp_path_factory.mktemp("install_model") / "tiny256-q8_0.gguf"
    run([gembed, "synth", "-o", path, "--tokenizer", tokenizer_dir / "tokenizer.json", "--tiny", "--type", "q8_0",
         "--embd", "256", "--ff", "512", "--head-dim", "128", "--seed", "5"])
    return path


@pytest.fixture(scope="module")
def texts_file(tmp_path_factory) -> pathlib.Path:
    p = tmp_path_factory.mktemp("install_texts") / "texts.txt"
    p.write_bytes(("\n".join(TEXTS) + "\n").encode())
    return p


@pytest.fixture(scope="module")
def cli_vectors(gembed, model, texts_file, tmp_path_factory):
    """`gembed embed` of TEXTS for (task, dim), run once per pair."""
    cache: dict[tuple[str, int], np.ndarray] = {}
    out_dir = tmp_path_factory.mktemp("install_cli")

    def get(task: str, dim: int) -> np.ndarray:
        if (task, dim) not in cache:
            out = out_dir / f"cli-{task or 'none'}-{dim}.npy"
            args = [gembed, "embed", "--model", model, "--input", texts_file, "--format", "npy", "--output", out]
            if task:
                args += ["--task", task]
            if dim:
                args += ["--dim", str(dim)]
            run(args)
            cache[(task, dim)] = np.load(out)
        return cache[(task, dim)]

    return get


def test_install_tree_holds_the_public_surface_only(prefix):
    headers = sorted(p.name for p in (prefix / "include").rglob("*") if p.is_file())
    assert headers == ["gembed.h", "gembed.hpp", "version.h"], headers
    assert (prefix / "include" / "gembed" / "gembed.h").exists()
    libdirs = [d for d in prefix.iterdir() if d.name.startswith("lib")]
    assert len(libdirs) == 1, libdirs
    libs = sorted(p.name for p in libdirs[0].iterdir() if p.name.startswith("libgembed"))
    assert libs[0] == "libgembed.so" and any(n.startswith("libgembed.so.0") for n in libs), libs
    assert not list(prefix.rglob("*.a")), "no static layer is installed"
    cmake_dir = libdirs[0] / "cmake" / "gembed"
    for name in ("gembedConfig.cmake", "gembedConfigVersion.cmake", "gembedTargets.cmake"):
        assert (cmake_dir / name).exists(), name
    assert (prefix / "bin" / "gembed").exists()
    # The public headers include only the standard library and each other.
    for h in (prefix / "include" / "gembed").iterdir():
        for line in h.read_text().splitlines():
            if line.startswith("#include"):
                inc = line.split()[1]
                assert inc.startswith("<") or inc.startswith('"gembed/'), f"{h.name}: {line}"
                assert "fmt" not in inc and "nlohmann" not in inc, f"{h.name}: {line}"


def test_library_exports_the_c_api_only(prefix):
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) not found")
    lib = next(prefix.rglob("libgembed.so"))
    out = run([nm, "-D", "--defined-only", lib]).stdout.decode().split("\n")
    names = sorted({line.split()[-1] for line in out if line.strip()})
    assert names, "no exported symbols"
    assert all(n.startswith("gembed_") for n in names), [n for n in names if not n.startswith("gembed_")]
    for needed in ("gembed_open", "gembed_close", "gembed_embed", "gembed_tokenize", "gembed_last_error_message",
                   "gembed_version", "gembed_output_dim"):
        assert needed in names


@pytest.mark.parametrize("program", ["consumer_cpp", "consumer_c"])
@pytest.mark.parametrize("task,dim", [("", 0), ("query", 0), ("document", 128), ("similarity", 256)])
def test_outside_program_vectors_equal_the_cli(consumer, model, texts_file, cli_vectors, tmp_path, program, task, dim):
    out = tmp_path / f"{program}.f32"
    r = run([consumer / program, "embed", model, texts_file, out, task, dim])
    n, width = map(int, r.stdout.split())
    assert (n, width) == (len(TEXTS), dim or 256)
    got = np.fromfile(out, dtype=np.float32).reshape(n, width)
    want = cli_vectors(task, dim)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("program", ["consumer_cpp", "consumer_c"])
def test_outside_program_checks(consumer, model, program):
    r = run([consumer / program, "checks", model], check=False)
    out = r.stdout.decode() + r.stderr.decode()
    assert r.returncode == 0, out
    assert ", 0 failed" in out, out


@pytest.mark.parametrize("program", ["consumer_cpp", "consumer_c"])
def test_outside_program_reports_a_bad_model_path(consumer, tmp_path, program):
    (tmp_path / "t.txt").write_text("x\n")
    r = run([consumer / program, "embed", tmp_path / "missing.gguf", tmp_path / "t.txt", tmp_path / "o"],
            check=False)
    assert r.returncode == 1, r
    assert b"missing.gguf" in r.stderr, r.stderr


def test_header_example_runs(consumer, model):
    r = run([consumer / "consumer_example", model])
    q_dim, n_docs, d_dim, dot = r.stdout.split()
    assert (int(q_dim), int(n_docs), int(d_dim)) == (128, 2, 128)
    assert -1.0 <= float(dot) <= 1.0  # unit vectors
