"""``undersr reproduce PLAN``: a whole experiment grid of the paper from one plan file, resumable.

* :mod:`undersr.reproduce.plan`: plan files (``options/reproduce/*.yml``) and their expansion into runs;
* :mod:`undersr.reproduce.steps`: the steps of each stage (recon, generate, finetune, test, compare), their
  commands, completeness and option files (:mod:`undersr.reproduce.options`);
* :mod:`undersr.reproduce.inputs`: :func:`~undersr.reproduce.inputs.check_inputs`, the one place that checks what
  the steps read;
* :mod:`undersr.reproduce.runner`: skipping, in-process or torchrun execution, sharding over GPUs and machines;
* :mod:`undersr.reproduce.table`: the paper's table layout and its plot;
* :mod:`undersr.reproduce.tiny`: ``--tiny``, the whole plan on a CPU with tiny networks and a miniature dataset.

See docs/reproduce.md.
"""
