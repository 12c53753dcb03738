"""What every local worker needs before its first run, imported once by the fork server.

The fork server (``forkserver``) imports this module once: torch, the engine, the built-in tricks,
and torch._dynamo, which the first optimizer a process builds imports. Spawned one by one instead,
every worker paid that itself: about 4.5 s of CPU each here. Not scikit-learn: the study driver
scores the runs (``metrics.score_record``), so the workers never need it.

Nothing here starts threads or touches a GPU, so forking after it is safe (CUDA is initialised in
each worker, after the fork).
"""

import torch

from ..plugins import load_plugins
from ..training import engine  # noqa: F401 - imported for the workers forked after this
from . import worker  # noqa: F401 - the pool's worker side
from .provenance import git_revision

load_plugins()
# The revision of the code loaded now, not of whatever the checkout holds when a run finishes (a
# commit or an edit made while a study trains would otherwise be recorded): cached here, inherited
# by every worker forked after this.
git_revision()
torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)   # imports torch._dynamo (and sympy): 1.3 s
