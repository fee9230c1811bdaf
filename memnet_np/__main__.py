"""`python -m memnet_np ...` is the same as the `memnet` console script."""
import sys

from memnet_np.cli import main

if __name__ == "__main__":
    sys.exit(main())
