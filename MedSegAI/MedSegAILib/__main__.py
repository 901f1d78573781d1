"""``python -m MedSegAILib``: the same as the `medsegai` command (used by the Slicer module)."""

import sys

from .cli.main import main

sys.exit(main())
