"""``python -m saliency_audit report evidence.json``: see :mod:`saliency_audit.cli`."""
import sys

from .cli import main

sys.exit(main())
