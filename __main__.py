"""`python -m edge_s2s ...` is the `edge-s2s` command; it is also the module form torchrun launches:

    torchrun --nproc-per-node 2 -m edge_s2s train translate --data pairs.tsv --out runs/x
"""

from __future__ import annotations

import sys

from .cli.app import main

if __name__ == "__main__":
    sys.exit(main())
