"""Small Flax models for the tracing tests, with their layers, edges and MACs by hand."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class ResBlock(nn.Module):
    width: int

    @nn.compact
    def __call__(self, x):
        y = nn.relu(nn.Conv(self.width, (3, 3))(x))
        y = nn.Conv(self.width, (3, 3))(y)
        return nn.relu(x + y)


class SmallCNN(nn.Module):
    """Stem conv (stride 2), residual block, max-pool, residual block, global mean, Dense."""

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(8, (3, 3), strides=2)(x))
        x = ResBlock(8)(x)
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = ResBlock(8)(x)
        x = x.mean(axis=(1, 2))
        return nn.Dense(10)(x)


def small_cnn():
    x = jnp.zeros((1, 16, 16, 3))  # NHWC
    layers = [("Conv_0", "conv"), ("ResBlock_0/Conv_0", "conv"), ("ResBlock_0/Conv_1", "conv"),
              ("ResBlock_0/add", "add"), ("max_pool", "pool"), ("ResBlock_1/Conv_0", "conv"),
              ("ResBlock_1/Conv_1", "conv"), ("ResBlock_1/add", "add"),
              ("global_avg_pool", "pool"), ("Dense_0", "fc")]
    order = [n for n, _ in layers]
    edges = [("input", "Conv_0")] + list(zip(order, order[1:])) + [
        ("Conv_0", "ResBlock_0/add"), ("max_pool", "ResBlock_1/add")]
    macs = (8 * 8 * 8 * 3 * 9            # stem: 16x16 -> 8x8 ('SAME', stride 2)
            + 2 * 8 * 8 * 8 * 8 * 9      # block 0 at 8x8
            + 2 * 4 * 4 * 8 * 8 * 9      # block 1 at 4x4
            + 8 * 10)                    # Dense on the pooled 8 features
    return SmallCNN(), x, dict(layers=layers, edges=edges, macs=macs)


T, D, H, F = 8, 16, 2, 64


class TransformerBlock(nn.Module):
    @nn.compact
    def __call__(self, x):
        y = nn.LayerNorm()(x)
        x = x + nn.MultiHeadDotProductAttention(num_heads=H)(y, y)
        y = nn.Dense(F)(nn.LayerNorm()(x))
        return x + nn.Dense(D)(nn.gelu(y))


def transformer_block():
    x = jnp.zeros((1, T, D))
    a = "MultiHeadDotProductAttention_0"
    layers = [(f"{a}/query", "fc"), (f"{a}/key", "fc"), (f"{a}/value", "fc"),
              (f"{a}/einsum", "matmul"), (f"{a}/einsum_2", "matmul"), (f"{a}/out", "fc"),
              ("add", "add"), ("Dense_0", "fc"), ("Dense_1", "fc"), ("add_2", "add")]
    edges = [("input", f"{a}/query"), ("input", f"{a}/key"), ("input", f"{a}/value"),
             (f"{a}/query", f"{a}/einsum"), (f"{a}/key", f"{a}/einsum"),
             # Flax's context einsum takes (weights, value); jaxpr lists value first
             (f"{a}/value", f"{a}/einsum_2"), (f"{a}/einsum", f"{a}/einsum_2"),
             (f"{a}/einsum_2", f"{a}/out"), ("input", "add"), (f"{a}/out", "add"),
             ("add", "Dense_0"), ("Dense_0", "Dense_1"), ("add", "add_2"), ("Dense_1", "add_2")]
    dh = D // H
    macs = 3 * T * D * D + 2 * H * T * T * dh + T * D * D + T * D * F + T * F * D
    return TransformerBlock(), x, dict(layers=layers, edges=edges, macs=macs)


def concat_split_fn():
    """A plain JAX function (no Flax): two convs, channel concat, channel split, gating."""
    w1 = jnp.ones((3, 3, 4, 8))
    w2 = jnp.ones((1, 1, 4, 8))

    def f(x):
        dn = ("NHWC", "HWIO", "NHWC")
        a = jax.lax.conv_general_dilated(x, w1, (1, 1), "SAME", dimension_numbers=dn)
        b = jax.lax.conv_general_dilated(x, w2, (1, 1), "SAME", dimension_numbers=dn)
        c = jax.nn.relu(jnp.concatenate([a, b], axis=-1))
        g, v = jnp.split(c, 2, axis=-1)
        return jax.nn.sigmoid(g) * v
    x = jnp.zeros((1, 6, 6, 4))
    return f, x, 6 * 6 * 8 * 4 * 9 + 6 * 6 * 8 * 4
