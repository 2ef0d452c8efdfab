"""DINOv3 vision transformer for inference: the outputs of Meta's `DinoVisionTransformer` in eval mode, with
fused and in-place steps (see block.py, ffn.py); module names = Meta keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import torch
from torch import Tensor, nn

from .layers.block import Block
from .layers.patch_embed import PatchEmbed
from .layers.rope import RopePositionEmbedding

BlockSelection = Union[int, Sequence[int]]


@dataclass(frozen=True)
class ViTConfig:
    """Architecture of one checkpoint (inferred from its tensors, see checkpoint_layout.py)."""

    embed_dim: int
    depth: int
    num_heads: int
    ffn_layer: str  # "mlp" | "swiglu"
    ffn_hidden_dim: int
    n_storage_tokens: int = 4
    qkv_bias: bool = True
    local_cls_norm: bool = False
    patch_size: int = 16
    layer_norm_eps: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    def describe(self) -> str:
        ffn = "MLP" if self.ffn_layer == "mlp" else f"SwiGLU {self.ffn_hidden_dim}"
        return f"D={self.embed_dim}, depth {self.depth}, heads {self.num_heads}, {ffn}"


class DinoVisionTransformer(nn.Module):
    """Tokens [CLS, R storage tokens, H'W' patches (row-major)] through `depth` blocks, then LayerNorm.

    The model is always built on the meta device: it holds no values (random or uninitialised) until a
    checkpoint is loaded with `load_state_dict(..., assign=True)` (see checkpoints.load_checkpoint).
    `mask_token` (iBOT training) and `local_cls_norm` (local crops in training) are never used at
    inference; they exist so that loading a released checkpoint accounts for every tensor.
    """

    def __init__(self, config: ViTConfig, patch_stride: int = 16) -> None:
        super().__init__()
        dim, patch = config.embed_dim, config.patch_size
        if dim % config.num_heads or config.head_dim % 4:
            raise ValueError(f"embed_dim {dim} must split into {config.num_heads} heads of a multiple of 4")
        if patch % patch_stride:
            raise ValueError(f"patch_stride {patch_stride} must divide the patch size {patch}")
        self.config = config
        with torch.device("meta"):
            self.patch_embed = PatchEmbed(dim, patch, patch_stride)
            self.cls_token = nn.Parameter(torch.empty(1, 1, dim))
            if config.n_storage_tokens:
                self.storage_tokens = nn.Parameter(torch.empty(1, config.n_storage_tokens, dim))
            self.mask_token = nn.Parameter(torch.empty(1, dim))
            self.rope_embed = RopePositionEmbedding(config.head_dim, patch)
            self.blocks = nn.ModuleList(
                Block(dim, config.num_heads, config.ffn_layer, config.ffn_hidden_dim, config.qkv_bias,
                      config.layer_norm_eps)
                for _ in range(config.depth)
            )
            self.norm = nn.LayerNorm(dim, eps=config.layer_norm_eps)
            if config.local_cls_norm:
                self.local_cls_norm = nn.LayerNorm(dim, eps=config.layer_norm_eps)

    @property
    def patch_stride(self) -> int:
        return self.patch_embed.proj.stride[0]

    def prepare_tokens(self, x: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """[B,3,H,W] -> tokens [B, 1+R+H'W', D] and the patch grid (H', W')."""
        patches, grid = self.patch_embed(x)
        batch = patches.shape[0]
        prefix = [self.cls_token.expand(batch, -1, -1)]
        if self.config.n_storage_tokens:
            prefix.append(self.storage_tokens.expand(batch, -1, -1))
        return torch.cat([*prefix, patches], dim=1), grid

    def _split(self, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """[B,N,D] -> CLS [B,D], storage [B,R,D], patches [B,H'W',D]."""
        first_patch = 1 + self.config.n_storage_tokens
        return tokens[:, 0], tokens[:, 1:first_patch], tokens[:, first_patch:]

    def forward_features(self, x: Tensor) -> dict[str, Tensor]:
        tokens, (rows, cols) = self.prepare_tokens(x)
        rope = self.rope_embed(rows, cols, self.patch_stride)
        for block in self.blocks:
            tokens = block(tokens, rope)
        cls, storage, patches = self._split(self.norm(tokens))
        return {
            "x_norm_clstoken": cls,
            "x_storage_tokens": storage,
            "x_norm_patchtokens": patches,
            "x_prenorm": tokens,
        }

    forward = forward_features

    def block_indices(self, n: BlockSelection) -> list[int]:
        """int n: the last n blocks; a sequence: those indices (negative ones count from the end)."""
        depth = self.config.depth
        if isinstance(n, int):
            if not 1 <= n <= depth:
                raise ValueError(f"n={n}: the model has {depth} blocks")
            return list(range(depth - n, depth))
        indices = [int(i) for i in n]
        bad = [i for i in indices if not -depth <= i < depth]
        if not indices or bad:
            raise ValueError(f"block indices {list(n)} must be non-empty and within [-{depth}, {depth})")
        return [i % depth for i in indices]

    def get_intermediate_layers(
        self,
        x: Tensor,
        n: BlockSelection = 1,
        reshape: bool = False,
        return_class_token: bool = False,
        return_extra_tokens: bool = False,
        norm: bool = True,
    ) -> tuple:
        """Official semantics, except that outputs come in the order asked and `reshape` uses the conv grid.

        Each output is the block's tokens (normed with the final norm when `norm`) split into patches
        [B,H'W',D] (or [B,D,H',W'] with `reshape`), optionally with CLS [B,D] and storage tokens [B,R,D]:
        a tuple of patches, or of (patches, cls), (patches, extra) or (patches, cls, extra).
        """
        indices = self.block_indices(n)
        tokens, (rows, cols) = self.prepare_tokens(x)
        rope = self.rope_embed(rows, cols, self.patch_stride)
        wanted, taken = set(indices), {}
        for i, block in enumerate(self.blocks[: max(indices) + 1]):
            tokens = block(tokens, rope)
            if i in wanted:
                taken[i] = self._split(self.norm(tokens) if norm else tokens)
        results = []
        for i in indices:
            cls, extra, patches = taken[i]
            if reshape:
                patches = patches.reshape(patches.shape[0], rows, cols, -1).permute(0, 3, 1, 2).contiguous()
            parts = [patches]
            if return_class_token:
                parts.append(cls)
            if return_extra_tokens:
                parts.append(extra)
            results.append(tuple(parts) if len(parts) > 1 else patches)
        return tuple(results)
