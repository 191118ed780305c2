"""Config values are checked against their physical ranges at start (issue 9, item 1)."""
import math
import subprocess
import sys

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from pipeorgan_jax import validate
from pipeorgan_jax.config import HardwareConfig, SearchConfig, register
from pipeorgan_jax.paths import conf_dir
from pipeorgan_jax.validate import ConfigError


def composed(*overrides):
    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        return compose(config_name="config",
                       overrides=["+workload=KD_res8_narrow", "hardware=small", *overrides])


def test_every_numeric_config_field_has_a_range():
    """A numeric field added to the hardware or search config needs a rule in validate.py."""
    assert set(validate.numeric_fields(HardwareConfig)) == set(validate.HARDWARE)
    assert set(validate.numeric_fields(SearchConfig)) == set(validate.SEARCH)
    from pipeorgan_jax.config import CodesignConfig, ScenarioConfig
    assert set(validate.numeric_fields(ScenarioConfig)) == set(validate.SCENARIO)
    assert set(validate.numeric_fields(CodesignConfig)) == set(validate.CODESIGN)


def test_shipped_configs_are_valid():
    for hw in sorted(p.stem for p in (conf_dir() / "hardware").glob("*.yaml")):
        validate.check(composed(f"hardware={hw}"))
    for s in sorted(p.stem for p in (conf_dir() / "search").glob("*.yaml")):
        validate.check(composed(f"search={s}"))


BAD = [
    ("hardware.dram_bytes_per_cycle", "0"), ("hardware.dram_bytes_per_cycle", "nan"),
    ("hardware.dram_bytes_per_cycle", "-128"), ("hardware.glb_bytes_per_cycle", "0"),
    ("hardware.glb_bytes_per_cycle", "-1"), ("hardware.noc.link_bytes_per_cycle", "0"),
    ("hardware.noc.link_bytes_per_cycle", "inf"), ("hardware.noc.router_latency_cycles", "-1"),
    ("hardware.clock_ghz", "0"), ("hardware.clock_ghz", "-inf"), ("hardware.energy.mac_pj", "-1"),
    ("hardware.energy.mac_pj", "nan"), ("hardware.energy.dram_pj_per_byte", "inf"),
    ("hardware.rows", "0"), ("hardware.unit_cols", "-2"), ("hardware.pe_sram_bytes", "0"),
    ("hardware.data_bytes", "0"), ("hardware.noc.express_k", "0"),
    ("search.max_depth", "0"), ("search.max_depth", "-1"), ("search.iterations", "0"),
    ("search.batch_size", "0"), ("search.dp_batch_size", "0"), ("search.dp_rounds", "0"),
    ("search.restarts", "0"), ("search.mutation_rate", "1.5"), ("search.elite_fraction", "-0.1"),
    ("search.learning_rate", "0"), ("search.gumbel_tau", "nan"), ("search.temperature0", "0"),
    ("search.time_budget_s", "-1"), ("search.max_space", "0"), ("seed", "-1"),
]


@pytest.mark.parametrize("key,value", BAD)
def test_out_of_range_value_is_one_line_naming_key_value_and_range(key, value):
    with pytest.raises(ConfigError) as e:
        validate.check(composed(f"{key}={value}"))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{key}=") and "must be" in msg


def test_unit_must_tile_the_array_and_express_k_match_the_unit():
    with pytest.raises(ConfigError, match=r"hardware.unit_rows=3: must divide hardware.rows=8"):
        validate.check(composed("hardware.unit_rows=3"))
    with pytest.raises(ConfigError, match=r"hardware.noc.express_k=4: .*unit_rows=2"):
        validate.check(composed("hardware.noc.topology=express", "hardware.noc.express_k=4"))
    with pytest.raises(ConfigError, match=r"65536 allocation units; at most 4096"):
        validate.check(composed("hardware.rows=256", "hardware.cols=256",
                                "hardware.unit_rows=1", "hardware.unit_cols=1"))


def test_a_workload_without_models_is_an_error():
    with pytest.raises(ConfigError, match="lists no models"):
        validate.check(composed("workload.models=[]"))


def test_boundary_values_pass():
    validate.check(composed("hardware.energy.mac_pj=0", "hardware.noc.router_latency_cycles=0",
                            "search.mutation_rate=0", "search.time_budget_s=0", "seed=0",
                            "search.max_depth=1", "hardware.unit_rows=8",
                            "hardware.unit_cols=8"))


def test_cli_bad_override_exits_1_with_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pipeorgan_jax", "+workload=KD_res8_narrow",
                        "hardware=small", "hardware.dram_bytes_per_cycle=-128",
                        f"hydra.run.dir={tmp_path}"], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.strip() == ("error: hardware.dram_bytes_per_cycle=-128.0: must be a "
                                "finite number > 0")
    assert not (tmp_path / "results.json").exists()


def test_a_single_allocation_unit_is_a_machine_that_runs():
    """hardware=small with 8x8 units: one unit (the grid has no unit boundary at all)."""
    from pipeorgan_jax import reference
    from pipeorgan_jax.cost import Scorer
    from pipeorgan_jax.hardware import Hardware
    from pipeorgan_jax.search import Problem, baseline_spaces, dp
    from pipeorgan_jax.loading import load_model
    m = load_model("KD_res8_narrow")
    for ov in (("hardware.unit_rows=8", "hardware.unit_cols=8"),):  # a 1x1 grid
        hw = Hardware.from_config(composed(*ov).hardware)
        s = Scorer(m, hw, max_depth=3)
        res = dp(Problem(s, "latency", baseline_spaces(3)["flexible"]), 16, 1)
        lat = float(res.cost["latency_cycles"])
        assert res.cost["feasible"] and math.isfinite(lat)
        assert lat >= m.macs / (hw.n_pes * hw.macs_per_pe_per_cycle)  # compute bound
        ref = reference.evaluate(m, hw, res.best)
        assert ref["feasible"] and np.isfinite(ref["latency_cycles"])
        assert ref["latency_cycles"] == pytest.approx(lat, rel=0.05)


def test_es_algorithm_is_checked_at_start():
    import types
    from pipeorgan_jax.validate import ConfigError, check_es
    check_es(types.SimpleNamespace(strategy="es", es_algorithm="SNES"))
    check_es(types.SimpleNamespace(strategy="dp", es_algorithm="Nope"))  # not running es
    with pytest.raises(ConfigError, match="search.es_algorithm='Nope'"):
        check_es(types.SimpleNamespace(strategy="es", es_algorithm="Nope"))
