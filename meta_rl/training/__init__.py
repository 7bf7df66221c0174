"""Training a mapping: settings (:mod:`~meta_rl.training.config`), per-family recipes, the base
policy and aligned experts, and the trainer that runs the phases."""
