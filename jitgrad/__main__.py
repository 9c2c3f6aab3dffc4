"""``python -m jitgrad bench ...`` / ``python -m jitgrad explain ...`` (see jitgrad/cli.py)."""
import sys

from .cli import main

sys.exit(main())
