"""The mapping and what it predicts: the policy layout (:mod:`~meta_rl.mapping.policy`), the
mapping network (:mod:`~meta_rl.mapping.network`) and the trained mapping's checkpoint
(:mod:`~meta_rl.mapping.checkpoint`)."""
