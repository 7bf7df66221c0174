"""The objectives that train a mapping, each a phase of the trainer: supervised (``params``,
``distill``), on-policy (``rl``) and off-policy (``td3``, ``sac``, ``sacd``); the registry of
phases is :mod:`~meta_rl.objectives.registry`."""
