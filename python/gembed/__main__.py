"""python -m gembed: see gembed._cli."""
import sys

from ._cli import main

sys.exit(main())
