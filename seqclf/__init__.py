"""seqclf: recurrent sequence classifiers with PyTorch Lightning and Hydra."""

import time

# Taken at first import, before torch and Lightning load: the reference for "time to first step".
START_TIME = time.perf_counter()

__version__ = "0.1.0"
