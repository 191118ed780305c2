"""The cost kernel's C++ extension (csrc/, pipeorgan_jax/cost/kernel.py); everything else about
the package is in pyproject.toml. The extension is optional: without a C++ compiler the
package installs and the cost model runs on its XLA path."""
import os
import subprocess
import tempfile
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _ffi_include() -> str:
    """XLA's FFI headers ship with jaxlib (a build requirement): jax.ffi.include_dir()."""
    import jaxlib
    return str(Path(jaxlib.__file__).parent / "include")


def _accepts(compiler: str, flag: str) -> bool:
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "t.cc"
        src.write_text("int main() { return 0; }\n")
        r = subprocess.run([compiler, flag, "-c", str(src), "-o", str(Path(d) / "t.o")],
                           capture_output=True)
        return r.returncode == 0


class BuildExt(build_ext):
    def build_extensions(self):
        cxx = self.compiler.compiler_so[0]
        flags = ["-O3", "-std=c++17", "-ffp-contract=off", "-pthread"]
        # built where it runs (pip install from source): the machine's own vector width;
        # PIPEORGAN_JAX_PORTABLE=1 for a wheel meant for other machines
        if not os.environ.get("PIPEORGAN_JAX_PORTABLE") and _accepts(cxx, "-march=native"):
            flags.append("-march=native")
        for ext in self.extensions:
            ext.include_dirs.append(_ffi_include())
            ext.extra_compile_args += flags
            ext.extra_link_args += ["-pthread"]
        super().build_extensions()


setup(
    ext_modules=[Extension("pipeorgan_jax.cost._kernel", sources=["csrc/ffi.cc"],
                           depends=["csrc/arrays.h", "csrc/combine.h", "csrc/combine_lanes.h"], language="c++",
                           optional=True)],
    cmdclass={"build_ext": BuildExt},
)
