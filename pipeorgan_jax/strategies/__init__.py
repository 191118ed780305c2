"""Search strategies as pure ask/tell objects (base.py: the interface), one module each.

`make(name, cfg)` builds one from a SearchConfig-like cfg (missing keys take defaults) and
returns (strategy, iterations); driver.drive runs it. `dp` (dp.py) and `gradient` (gradient.py)
are not here: they are functions over search.Problem that score segments, run by
search.run_strategy.
"""
from __future__ import annotations

from pipeorgan_jax.strategies.annealing import Annealing
from pipeorgan_jax.strategies.base import Domain, domain_of
from pipeorgan_jax.strategies.es import EvolutionStrategy
from pipeorgan_jax.strategies.evolutionary import Evolutionary
from pipeorgan_jax.strategies.exhaustive import Exhaustive, SpaceTooLarge, space_size
from pipeorgan_jax.strategies.random_search import RandomSearch
from pipeorgan_jax.strategies.reinforce import Reinforce

NAMES = ("dp", "gradient", "dp+gradient", "exhaustive", "random", "evolutionary", "annealing",
         "reinforce", "es")

__all__ = ["Annealing", "Domain", "EvolutionStrategy", "Evolutionary", "Exhaustive",
           "NAMES", "RandomSearch", "Reinforce", "SpaceTooLarge", "domain_of", "make", "space_size"]


def _get(cfg, key, default):
    v = getattr(cfg, key, default) if cfg is not None else default
    return default if v is None else v


def make(name: str, cfg=None):
    """(strategy, iterations) for strategy `name` with parameters from cfg."""
    g = lambda k, d: _get(cfg, k, d)
    name = getattr(name, "value", name)
    if name == "exhaustive":
        return Exhaustive(int(g("batch_size", 1024)), int(g("max_space", 2_000_000))), 2 ** 62
    if name == "random":
        return RandomSearch(int(g("batch_size", 4096))), int(g("iterations", 20))
    if name == "evolutionary":
        return Evolutionary(int(g("batch_size", 1024)), float(g("mutation_rate", 0.1)),
                            float(g("elite_fraction", 0.1))), int(g("iterations", 40))
    if name == "annealing":
        return Annealing(int(g("batch_size", 1024)), float(g("temperature0", 0.1)),
                         float(g("mutation_rate", 0.1))), int(g("iterations", 60))
    if name == "reinforce":
        return Reinforce(int(g("batch_size", 1024)), int(g("restarts", 64)),
                        float(g("learning_rate", 0.05)), float(g("gumbel_tau", 1.0))), \
            int(g("iterations", 100))
    if name == "es":
        return EvolutionStrategy(int(g("batch_size", 1024)), str(g("es_algorithm", "SNES")),
                                 float(g("es_sigma", 0.5))), int(g("iterations", 40))
    raise ValueError(f"unknown search strategy {name!r}; choose one of {NAMES}")
