"""pipeorgan_jax: which layers of a DNN to pipeline on a PE-array accelerator, with what tile
size and where on the array; baselines vs searched placements, scored by a JAX batch cost model.

`python -m pipeorgan_jax +workload=<name> [task=explore|describe|collect|score] [hardware=...]
[search=...]`
"""
from __future__ import annotations

import sys
from typing import Optional

import hydra
from omegaconf import DictConfig

from pipeorgan_jax.config import register
from pipeorgan_jax.paths import conf_dir

register()


@hydra.main(config_path=str(conf_dir()), config_name="config", version_base=None)
def _hydra_main(cfg: DictConfig) -> Optional[float]:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from pipeorgan_jax.app import run
    out = run(cfg)
    if out.code:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            # an exception marks this job failed and lets the sweep run the others
            raise RuntimeError(f"job failed (exit code {out.code}); see its log above")
        sys.exit(out.code)
    # the run's objective: what a sweeper (hydra/sweeper=optuna) minimizes
    return out.value


def main() -> None:
    from pipeorgan_jax import interrupt
    interrupt.install()
    try:
        _hydra_main()
    except interrupt.Interrupted as e:
        # no traceback, and os._exit: interpreter teardown under live XLA threads can segfault
        interrupt.exit_now(e.exit_code, f"interrupted by {e.name}"
                           + (f"; {e.detail}" if getattr(e, "detail", None) else ""))


if __name__ == "__main__":
    main()
