"""Benchmarking: ``meta-rl benchmark`` (:mod:`~meta_rl.benchmarks.benchmark`), scoring one
mapping against its baselines (:mod:`~meta_rl.benchmarks.score`), ``meta-rl select-objective``
(:mod:`~meta_rl.benchmarks.selection`), MAML, plots and speed figures."""
