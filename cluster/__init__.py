"""The toolbox's commands on Dask's distributed scheduler (a cluster of machines and GPUs).

- ``run`` — ``run(fn, *args, scheduler=…, chunk=…, ship_inputs=…, **kwargs)`` — runs one public function
  (``hard_vote``, ``weighted_vote``, ``soft_vote``, ``clean_predictions``, ``evaluate``, ``tune``)
  over a cluster with the same result, byte for byte (``cluster.client``); ``ClusterResult``
  is what a CSV-writing job returns there.
- ``connect`` — ``connect(address)``: a ``distributed.Client`` for ``tcp://HOST:PORT`` or ``local:N``
  (``cluster.scheduler``).
- ``auto_chunk``: the default number of images per task.

Workers run the same public functions on one chunk each (``cluster.tasks``), with
``core.workercache`` keeping parsed inputs and loaded models per worker. This package is
imported only by a run that asks for a scheduler: the single-machine path never imports
Dask.
"""

from cluster.client import ClusterResult, run
from cluster.plan import auto_chunk
from cluster.scheduler import connect

__all__ = ["ClusterResult", "auto_chunk", "connect", "run"]
