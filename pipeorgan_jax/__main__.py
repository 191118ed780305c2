"""`python -m pipeorgan_jax +workload=<name> [task=describe|explore] [hardware=...] [search=...]`"""
from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from pipeorgan_jax.config import register
from pipeorgan_jax.paths import conf_dir

register()


@hydra.main(config_path=str(conf_dir()), config_name="config", version_base=None)
def _hydra_main(cfg: DictConfig) -> None:
    from pipeorgan_jax.app import run
    code = run(cfg)
    if code:
        sys.exit(code)


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
