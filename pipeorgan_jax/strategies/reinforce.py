"""search=reinforce: a relaxed placement distribution improved by the score-function
(REINFORCE) estimator, for what the relaxed cost cannot reach (segment boundaries).

Each of `restarts` parameter sets holds: a logit a_l per layer for "layer l ends a segment"
(the last layer always does); per layer, logits over the space's granularities and
organizations (read at the segment's last layer, like the placement encoding) and over its
partitions (those that do not apply to the layer masked out); and a real mu_l per layer for
the PE share, the mean of a Gaussian z_l ~ N(mu_l, 0.75^2) in log2-share units, share_l =
nearest allowed value to 2**clip(z_l, 0, 6). Discrete choices are drawn with the Gumbel trick
at temperature tau: argmax(logits / tau + Gumbel noise). A drawn placement is projected into
the space (segments deeper than the space allows are cut).

The batch model is piecewise constant in every choice, so this strategy minimizes the
expected log fitness J(theta) = E_{x ~ p_theta}[F(x)] (F: `base.fitness`) with the
score-function (REINFORCE) estimator grad J ~= mean_s (F(x_s) - b_s) grad log p_theta(x_s)
over S = max(1, batch_size // restarts) samples per restart, b_s the restart's leave-one-out
mean (an exponential moving average when S = 1), advantages divided by the restart's std.
Terms of choices that cannot change F given the drawn boundaries (gran/org of a layer that
does not end a segment, the share of a layer alone in its segment) are dropped (zero mean).
optax.adam(learning_rate) on jax.grad of sum(logprob * stop_gradient(adv)). `finish` rounds
each restart's mode (boundary where a_l > 0, argmax logits, share 2**mu) to a placement.

In the ask/tell shape the state is (params, optimizer state); ask draws from the step's key,
tell draws the same samples again from that key (no host copy of them) and takes one step.
No gradient flows through the cost model here; search=gradient (pipeorgan_jax/gradient.py)
descends the relaxed cost itself.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from pipeorgan_jax.placement import Placement
from pipeorgan_jax.strategies.base import State, base_state, fitness, nearest, repair, step_key

SHARE_SIGMA = 0.75  # std of the log2-share Gaussian
_MASKED = -1e9  # logit of a partition that does not apply to a layer


@struct.dataclass
class ReinforceState(State):
    params: dict  # seg [R, L], gran [R, L, nG], org [R, L, nO], part [R, L, nP], mu [R, L]
    opt_state: optax.OptState
    ema: jax.Array  # [R, 1] running baseline when one sample per restart


def _allowed(d):
    v = lambda t: jnp.asarray(t, jnp.int32)
    return v(d.grans), v(d.orgs), v(d.parts), v(d.shares)


@dataclasses.dataclass(frozen=True)
class Reinforce:
    batch_size: int = 1024
    restarts: int = 64
    learning_rate: float = 0.05
    gumbel_tau: float = 1.0
    name: ClassVar[str] = "reinforce"

    @property
    def samples(self) -> int:
        return max(1, self.batch_size // max(1, self.restarts))

    def _opt(self):
        return optax.adam(self.learning_rate)

    def init(self, key, domain, seeds=None) -> ReinforceState:
        d, R, L = domain, max(1, self.restarts), domain.n_layers
        k = jax.random.split(key, 7)
        nG, nO, nP = len(d.grans), len(d.orgs), len(d.parts)
        D = d.depth
        # diverse boundary densities, small random logits, log-uniform shares
        p_end = (jax.random.uniform(k[0], (R, 1), minval=1.0 / D, maxval=1.0) if D > 1
                 else jnp.ones((R, 1)))
        seg = (jnp.log(p_end) - jnp.log1p(-jnp.minimum(p_end, 1 - 1e-3))
               + 0.3 * jax.random.normal(k[1], (R, L)))
        top = float(np.log2(d.shares[-1])) if d.shares[-1] > 1 else 0.0
        params = dict(seg=seg, gran=0.5 * jax.random.normal(k[2], (R, L, nG)),
                      org=0.5 * jax.random.normal(k[3], (R, L, nO)),
                      part=0.5 * jax.random.normal(k[4], (R, L, nP)),
                      mu=jax.random.uniform(k[5], (R, L), maxval=top))
        if seeds is not None and seeds.batch_size:
            s = Placement(*(jnp.asarray(f).reshape(-1, L) for f in seeds.fields()))
            n = min(R, s.batch_size)
            gv, ov, pv, _ = _allowed(d)
            hot = lambda x, v: 3.0 * (x[:n, :, None] == v[None, None]).astype(jnp.float32)
            params = dict(seg=params["seg"].at[:n].set(jnp.where(s.seg_end[:n], 3.0, -3.0)),
                          gran=params["gran"].at[:n].set(hot(s.gran, gv)),
                          org=params["org"].at[:n].set(hot(s.org, ov)),
                          part=params["part"].at[:n].set(hot(s.part, pv)),
                          mu=params["mu"].at[:n].set(jnp.log2(s.share[:n].astype(jnp.float32))))
        params = {kk: v.astype(jnp.float32) for kk, v in params.items()}
        return ReinforceState(**base_state(k[6], d), params=params,
                             opt_state=self._opt().init(params),
                             ema=jnp.full((R, 1), jnp.nan, jnp.float32))

    def _logits(self, params, d):
        part = jnp.where(jnp.asarray(d.part_ok), params["part"], _MASKED)
        return dict(gran=params["gran"], org=params["org"], part=part)

    def _draw(self, state):
        """The step's samples: raw draws (x, sel, z) and the placements they project to."""
        d, P = state.domain, state.params
        R, S, L = max(1, self.restarts), self.samples, d.n_layers
        tau = self.gumbel_tau
        k = jax.random.split(step_key(state), 5)
        lg = self._logits(P, d)
        sel = {name: jnp.argmax(lg[name][:, None] / tau
                                + jax.random.gumbel(kk, (R, S, L, lg[name].shape[-1])), -1)
               for name, kk in zip(("gran", "org", "part"), k[:3])}
        x = (P["seg"][:, None] / tau + jax.random.logistic(k[3], (R, S, L))) > 0
        x = x.at[..., L - 1].set(True)
        z = P["mu"][:, None] + SHARE_SIGMA * jax.random.normal(k[4], (R, S, L))
        gv, ov, pv, sv = _allowed(d)
        share = nearest(jnp.exp2(jnp.clip(z, 0, 6)), d.shares, log=True)
        flat = lambda a: a.reshape(R * S, L)
        p = repair(Placement(flat(x), gv[flat(sel["gran"])], ov[flat(sel["org"])], flat(share),
                             pv[flat(sel["part"])]), d)
        return x, sel, z, p

    def ask(self, state: ReinforceState) -> Placement:
        return self._draw(state)[3]

    def tell(self, state: ReinforceState, placements: Placement, cost) -> ReinforceState:
        d = state.domain
        R, S, L = max(1, self.restarts), self.samples, d.n_layers
        x, sel, z, p = self._draw(state)
        lf = fitness(d, p, cost)[0].reshape(R, S)
        if S > 1:
            base = (lf.sum(1, keepdims=True) - lf) / (S - 1)
            adv, ema = (lf - base) / (lf.std(1, keepdims=True) + 1e-6), state.ema
        else:
            prev = jnp.where(jnp.isnan(state.ema), lf, state.ema)
            adv, ema = lf - prev, 0.8 * prev + 0.2 * lf
        se = jnp.asarray(p.seg_end).reshape(R, S, L)
        depth1 = se & jnp.concatenate([jnp.ones((R, S, 1), bool), se[..., :-1]], -1)
        end, sh_mask = se.astype(jnp.float32), (~depth1).astype(jnp.float32)
        seg_mask = (jnp.arange(L) < L - 1).astype(jnp.float32)
        tau = self.gumbel_tau

        def loss(params):
            a = params["seg"][:, None] / tau
            xf = x.astype(jnp.float32)
            lp = (xf * jax.nn.log_sigmoid(a) + (1 - xf) * jax.nn.log_sigmoid(-a)) * seg_mask
            lg = self._logits(params, d)
            for name in ("gran", "org", "part"):
                ls = jax.nn.log_softmax(lg[name][:, None] / tau, -1)  # [R, 1, L, n]
                lk = jnp.take_along_axis(jnp.broadcast_to(ls, sel[name].shape + ls.shape[-1:]),
                                         sel[name][..., None], -1)[..., 0]
                lp = lp + lk * (end if name != "part" else 1.0)
            lp = lp - 0.5 * ((z - params["mu"][:, None]) / SHARE_SIGMA) ** 2 * sh_mask
            return (lp.sum(-1) * jax.lax.stop_gradient(adv)).mean(-1).sum()

        g = jax.grad(loss)(state.params)
        upd, opt_state = self._opt().update(g, state.opt_state, state.params)
        return state.replace(step=state.step + 1, params=optax.apply_updates(state.params, upd),
                             opt_state=opt_state, ema=ema)

    def finish(self, state: ReinforceState) -> Placement:
        """Each restart's mode, rounded and projected into the space."""
        d, P = state.domain, state.params
        gv, ov, pv, _ = _allowed(d)
        lg = self._logits(P, d)
        return repair(Placement(P["seg"] > 0, gv[lg["gran"].argmax(-1)], ov[lg["org"].argmax(-1)],
                                jnp.exp2(jnp.clip(P["mu"], 0, 6)), pv[lg["part"].argmax(-1)]), d)
