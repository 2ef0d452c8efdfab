"""Pre-norm transformer block with LayerScale: x + ls1(attn(norm1 x)), then x + ls2(ffn(norm2 x)).

For inference only (the Backbone runs every forward under ``torch.inference_mode``): each residual
update is one fused pass, ``x + y * gamma`` (``torch.addcmul``; the second one in place on the block's
own tensor), instead of a LayerScale product and a separate addition. The block never modifies its input.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .attention import SelfAttention
from .ffn import Mlp, SwiGLUFFN
from .layer_scale import LayerScale
from .rope import RopeTables

FFN_LAYERS = {"mlp": Mlp, "swiglu": SwiGLUFFN}


class Block(nn.Module):
    def __init__(
        self,
        dim: int,
        num_heads: int,
        ffn_layer: str,
        ffn_hidden_dim: int,
        qkv_bias: bool = True,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = SelfAttention(dim, num_heads, qkv_bias=qkv_bias)
        self.ls1 = LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = FFN_LAYERS[ffn_layer](dim, ffn_hidden_dim)
        self.ls2 = LayerScale(dim)

    def forward(self, x: Tensor, rope: RopeTables) -> Tensor:  # [B,N,D] -> [B,N,D]
        x = torch.addcmul(x, self.attn(self.norm1(x), rope), self.ls1.gamma)  # a new tensor
        return x.addcmul_(self.mlp(self.norm2(x)), self.ls2.gamma)
