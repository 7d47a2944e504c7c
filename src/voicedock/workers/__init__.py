"""``voicedock serve --workers N``: N node processes on one machine under one supervisor
(docs/nodes.md, "Workers: every core of a machine").

* ``count.py``: how many, when the operator does not say (one per core with cloud speech on
  PostgreSQL, else one);
* ``signals.py``: what the process's ``SIGTERM`` and ``SIGINT`` ask, the supervisor's and each
  node's (drain, then stop);
* ``orders.py``: the pipe from the supervisor to a worker (drain, stop; closed: the supervisor
  is gone, and the worker drains);
* ``supervisor.py``: starts the workers, restarts one that crashes, drains or stops them all.

What each worker takes from the configuration (its node id, its own port, its media port) is
``config/workers.py``; how a worker serves (the shared API port, its own port, the orders) is
``api/serve.py``.
"""
