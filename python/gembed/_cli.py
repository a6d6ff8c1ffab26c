"""`python -m gembed [COMMAND]`.

    python -m gembed                 version, kernel levels of this CPU
    python -m gembed info MODEL      what a model is and how it would run (JSON)
    python -m gembed embed --model M --input x.parquet --output y.parquet [--text-column text ...]

Commands are entries of COMMANDS: (help, add_arguments(parser), run(args) -> exit code).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, Optional, Sequence

from . import _gembed


def _version_text() -> str:
    return (f"gembed {_gembed.__version__} (kernel levels on this CPU: {', '.join(_gembed.supported_isas())}; "
            f"default {_gembed.cpu_isa()})")


def _info_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a GGUF file or a Hugging Face sentence-transformers folder")
    p.add_argument("--threads", type=int, default=None, help="compute threads (default: all cores)")
    p.add_argument("--precision", default="fast", choices=["fast", "high"])


def _info_run(args: argparse.Namespace) -> int:
    from ._model import Model

    with Model(args.model, threads=args.threads, precision=args.precision) as m:
        info = m.info()
        info["prompts"] = m.prompts
    json.dump(info, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "info": ("load a model and print what it is and how it runs (JSON)", _info_arguments, _info_run),
    "embed": ("embed the text column of a Parquet file into a new Parquet file (streaming; needs pyarrow)",
              lambda p: _parquet().add_cli_arguments(p), lambda a: _parquet().run_cli(a)),
}


def _parquet():
    from . import parquet

    return parquet


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gembed", description="gembed: EmbeddingGemma embeddings")
    parser.add_argument("--version", action="version", version=_version_text())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, add_arguments, _) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    if args.command is None:
        print(_version_text())
        return 0
    from ._model import ModelError

    try:
        return COMMANDS[args.command][2](args)
    except (OSError, ValueError, ModelError) as e:
        print(f"python -m gembed {args.command}: {e}", file=sys.stderr)
        return 1
