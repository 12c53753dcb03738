import atexit
import os
import sys

from .cli import main

rc = main()
# Every result is written and closed by now. The interpreter's own teardown (garbage-collecting
# torch, pandas, scipy and matplotlib) would add about a second to every command and do nothing for
# the results: run the exit handlers (multiprocessing joins its children, Ray's shutdown...), flush
# the output, and leave without it.
atexit._run_exitfuncs()
try:
    sys.stdout.flush()
    sys.stderr.flush()
except (BrokenPipeError, ValueError):   # the reader left (`tricks list | head`), or a stream was closed
    pass
os._exit(rc)
