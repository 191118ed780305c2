"""Where the Hydra configs live: the checkout's conf/, or the copy shipped in the wheel."""
from pathlib import Path


def conf_dir() -> Path:
    pkg = Path(__file__).resolve().parent
    checkout = pkg.parent / "conf"
    if (checkout / "config.yaml").exists():
        return checkout
    return pkg / "conf"
