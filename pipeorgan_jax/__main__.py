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
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from pipeorgan_jax.app import run
    code = run(cfg)
    if code:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            # an exception marks this job failed and lets the sweep run the others
            raise RuntimeError(f"job failed (exit code {code}); see its log above")
        sys.exit(code)


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
