"""The primitives the combine's choice-dependent lines are written in: exact, or relaxed.

The phases (geometry.tiles, traffic, timing) take `ops`, by default `EXACT`: plain
`jnp.where` on the integer choices, `jnp.maximum`, `jnp.ceil`, so the batch model compiles to
what it always did. `Soft` (relaxed.py builds it) reads the same lines with every discrete
choice a probability vector (docs/cost_model.md, "Relaxed cost"):

- `pick(choice, *values)`: the value of the chosen option; soft, the options' values mixed
  by their probabilities;
- `is_(choice, k)`, `and_`, `not_`, `where(cond, a, b)`: predicates on choices; soft, a
  predicate is a probability, `and_` a product (the two layers' choices are independent),
  `where` the mix `c a + (1 - c) b`;
- `mix_options(choice, f, options)`: f of the chosen option; soft, f of every option, mixed;
- `geometry(f, ly, rows)`: f of the layers' table rows; soft, f once per organization with
  the rows of that organization, mixed by each row's organization probabilities;
- `maximum(a, b)`: soft, a smooth maximum; `ceil`, `floor`: soft, straight-through.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from pipeorgan_jax.cost.tables import layer_key

# Every ceil and floor in the combine is, mathematically, of a ratio of integers (rows,
# channels, PEs, ops per output; reference.py computes them in integers). In float32 they
# pick up a few ulps: XLA's algebraic simplifier rewrites a division by a broadcast operand
# (a per-layer model array under vmap, a hardware scalar) as a multiplication by its
# reciprocal, so 28 * 112 / 56 came out as 56.0000038 and its ceil as 57 in a batch of 16 but
# not in a batch of 1; and a pool's ops per output, 14 / 13 in float32, times 91 rows gives
# 98.000005 cycles, ceil 99. Taking 1e-6 of the value off first (on for floor) gives the
# integer answer, whatever the batch shape; it would misround only a true fraction below
# 1e-6 of the value (numerators above a million). The C++ kernel does the same.
RATIO_EPS = 1e-6


def ceil_ratio(x):
    """ceil of a ratio of integers, robust to a few ulps of division error."""
    return jnp.ceil(x - RATIO_EPS * jnp.abs(x))


def floor_ratio(x):
    """floor of a ratio of integers, robust to a few ulps of division error."""
    return jnp.floor(x + RATIO_EPS * jnp.abs(x))


class Exact:
    """The batch model's own primitives (the default)."""
    soft = False

    @staticmethod
    def is_(choice, k):
        return choice == k

    @staticmethod
    def pick(choice, *values):
        out = values[-1]
        for k in range(len(values) - 2, -1, -1):
            out = jnp.where(choice == k, values[k], out)
        return out

    where = staticmethod(jnp.where)
    maximum = staticmethod(jnp.maximum)
    ceil = staticmethod(ceil_ratio)
    floor = staticmethod(floor_ratio)

    @staticmethod
    def and_(a, b):
        return a & b

    @staticmethod
    def not_(a):
        return ~a

    @staticmethod
    def hard(a):
        return a

    @staticmethod
    def mix_options(choice, f, options):
        return f(jnp.asarray(options, jnp.float32)[choice])

    @staticmethod
    def geometry(f, ly, rows):
        return f(ly)


EXACT = Exact()
MAX_WIDTH = 0.05  # the smooth maximum's relative width at temperature 1


def straight_through(hard, x):
    """The value of `hard`, the derivative of `x` (the sum keeps the value exact)."""
    return jax.lax.stop_gradient(hard) + (x - jax.lax.stop_gradient(x))


class Soft:
    """Relaxed primitives: choices are probability vectors on the last axis.

    `temperature` > 0 smooths `maximum` (a log-sum-exp whose width is `temperature` x
    MAX_WIDTH x the larger operand's magnitude, so it is scale-free and overestimates by at most
    log 2 x that width); 0 makes it the hard maximum. `ceil` and
    `floor` keep their exact value and pass the derivative of their argument
    (straight-through), at every temperature. `ha` gives the per-organization table rows."""
    soft = True

    def __init__(self, ha, temperature):
        self.ha = ha
        self.t = jnp.asarray(temperature, jnp.float32)

    @staticmethod
    def is_(choice, k):
        return choice[..., k]

    @staticmethod
    def pick(choice, *values):
        out = 0.0
        for k, v in enumerate(values):
            w = choice[..., k]
            out = out + jnp.where(w > 0, w * v, 0.0)  # an impossible option's inf is no nan
        return out

    @staticmethod
    def where(cond, a, b):
        c = jnp.asarray(cond, jnp.float32)
        return c * a + (1.0 - c) * b

    @staticmethod
    def and_(a, b):
        return jnp.asarray(a, jnp.float32) * jnp.asarray(b, jnp.float32)

    @staticmethod
    def not_(a):
        return 1.0 - jnp.asarray(a, jnp.float32)

    @staticmethod
    def hard(a):
        return a > 0.5

    def maximum(self, a, b):
        a, b = jnp.broadcast_arrays(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32))
        hard = jnp.maximum(a, b)
        width = self.t * MAX_WIDTH * jax.lax.stop_gradient(jnp.maximum(jnp.abs(a), jnp.abs(b)))
        safe = jnp.where(width > 0, width, 1.0)
        smooth = hard + safe * jnp.log1p(jnp.exp(-jnp.abs(a - b) / safe))
        return jnp.where(width > 0, smooth, hard)

    @staticmethod
    def ceil(x):
        return straight_through(ceil_ratio(x), x)

    @staticmethod
    def floor(x):
        return straight_through(floor_ratio(x), x)

    @staticmethod
    def mix_options(choice, f, options):
        return Soft.pick(choice, *(f(jnp.float32(o)) for o in options))

    def geometry(self, f, ly, rows):
        """f(ly) per organization o (ly.org, ly.key, ly.ks those of o), mixed by the
        organization probabilities ly.org[rows]."""
        ha = self.ha
        w = ly.org[rows]
        out = None
        for o in range(w.shape[-1]):
            key = layer_key(jnp.full_like(ly.n, o), ly.start, ly.n, ha.U)
            vals = f(ly._replace(org=jnp.full_like(ly.n, o), key=key, ks=ha.key_scalars[key]))
            term = tuple(w[:, o] * v for v in vals)
            out = term if out is None else tuple(a + b for a, b in zip(out, term))
        return out
