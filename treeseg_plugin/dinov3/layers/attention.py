"""Multi-head self-attention with a fused, K-bias-masked qkv projection and RoPE on patch tokens."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.functional import linear, scaled_dot_product_attention

from .rope import RopeTables, rope_apply_


def k_bias_mask(out_features: int) -> Tensor:
    """The [1]*D + [0]*D + [1]*D pattern that switches off the K third of a fused qkv bias."""
    mask = torch.ones(out_features)
    third = out_features // 3
    mask[third: 2 * third] = 0.0
    return mask


class LinearKMaskedBias(nn.Linear):
    """Linear(D, 3D) whose bias is multiplied by `bias_mask` (K third zero) at run time.

    Released checkpoints may store a nonzero K bias; the official model never uses it. `bias_mask` is a
    persistent buffer so that strict loading accounts for it; it starts as the [1,0,1] pattern (never NaN).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        if bias:
            self.register_buffer("bias_mask", k_bias_mask(out_features))

    def forward(self, x: Tensor) -> Tensor:
        bias = self.bias * self.bias_mask if self.bias is not None else None
        return linear(x, self.weight, bias)


class SelfAttention(nn.Module):
    """[B,N,D] -> [B,N,D]. Tokens are [prefix (CLS + storage), HW patches]; RoPE rotates only the patches."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = LinearKMaskedBias(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, rope: RopeTables) -> Tensor:
        batch, tokens, dim = x.shape
        head_dim = dim // self.num_heads
        # [B,N,3D] -> [B,N,3,h,hd] -> [3,B,h,N,hd]: Q, K, V are contiguous thirds, head-major inside each.
        qkv = self.qkv(x).view(batch, tokens, 3, self.num_heads, head_dim).permute(2, 0, 3, 1, 4)
        rope_apply_(qkv[:2], *rope)  # q and k together, in place, in fp32
        q, k, v = qkv.unbind(0)
        out = scaled_dot_product_attention(q, k, v)  # [B,h,N,hd], scale hd^-0.5
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, dim))
