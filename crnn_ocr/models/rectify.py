"""Thin-plate-spline rectification (RARE, Shi et al. 2016; ASTER, Shi et al. 2018) in front of a recogniser.

A small localisation CNN sees the crop resized to a fixed `LOC_SIZE` and places K fiducial points, K/2 along the
top edge of the text and K/2 along the bottom, in the input's normalised coordinates ([-1, 1], x right, y down).
The thin-plate spline that takes the same points laid out straight (the output's top and bottom edges) to
the predicted ones gives, for every output pixel, where to sample the input. The output has the input's height
and width, so the recogniser behind it is unchanged; widths stay dynamic in torch and in ONNX (GridSample,
opset >= 16).

The last layer starts with zero weights and the straight layout as bias: a new rectifier is the identity, so
adding one to trained weights changes their readings only by interpolation error until it learns.

>>> import torch
>>> r = TPSRectifier(channels=1).eval()
>>> x = torch.rand(2, 1, 32, 100)
>>> bool((r(x) - x).abs().max() < 1e-4)
True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LOC_SIZE = (16, 64)  # (height, width) the localisation network sees
FIDUCIALS = 20
LOC_CHANNELS = (8, 16, 32)  # localisation conv widths; the cost per crop: benchmarks/results/rectify.md


def straight_points(k: int = FIDUCIALS) -> torch.Tensor:
    """K points (x, y): K/2 evenly spaced along the top edge (y = -1), then K/2 along the bottom (y = 1)."""
    xs = torch.linspace(-1.0, 1.0, k // 2, dtype=torch.float64)
    top = torch.stack([xs, torch.full_like(xs, -1.0)], 1)
    bottom = torch.stack([xs, torch.full_like(xs, 1.0)], 1)
    return torch.cat([top, bottom], 0)


def _radial(d2: torch.Tensor) -> torch.Tensor:
    """The TPS kernel U = r^2 log r^2 of squared distances (0 at r = 0)."""
    return d2 * torch.log(d2.clamp_min(1e-12))


def tps_weights(points: torch.Tensor) -> torch.Tensor:
    """(K + 3, K): the spline's coefficients (K radial weights, then the affine shift, x and y terms) are this
    matrix times the K destination values.

    The inverse of the TPS system [[U(|p_i - p_j|), 1, p_i], [1^T, 0, 0], [p^T, 0, 0]], its first K columns
    only: the others multiply the side conditions' zero right-hand side.
    """
    k = points.shape[0]
    system = torch.zeros(k + 3, k + 3, dtype=torch.float64)
    system[:k, :k] = _radial(torch.cdist(points, points).square())
    system[:k, k] = 1.0
    system[:k, k + 1:] = points
    system[k, :k] = 1.0
    system[k + 1:, :k] = points.T
    return torch.linalg.inv(system)[:, :k]


class TPSRectifier(nn.Module):
    """images (B, C, H, W) -> rectified images (B, C, H, W): the same size, text straightened.

    `loc_channels` sets the localisation CNN's widths (three conv + pool stages, then two linear layers).
    """

    def __init__(self, channels: int = 1, fiducials: int = FIDUCIALS, loc_channels: tuple[int, ...] = LOC_CHANNELS,
                 loc_hidden: int = 64):
        super().__init__()
        if fiducials < 4 or fiducials % 2:
            raise ValueError(f"fiducials must be an even number >= 4, not {fiducials}")
        self.fiducials = fiducials
        layers: list[nn.Module] = []
        c = channels
        for out in loc_channels:
            layers += [nn.Conv2d(c, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2, 2)]
            c = out
        self.localisation = nn.Sequential(*layers)
        cells = c * (LOC_SIZE[0] >> len(loc_channels)) * (LOC_SIZE[1] >> len(loc_channels))
        self.fc = nn.Sequential(nn.Linear(cells, loc_hidden), nn.ReLU(inplace=True))
        self.points = nn.Linear(loc_hidden, 2 * fiducials)
        straight = straight_points(fiducials)
        nn.init.zeros_(self.points.weight)
        with torch.no_grad():
            self.points.bias.copy_(straight.reshape(-1).float())
        self.register_buffer("straight", straight.float(), persistent=False)
        self.register_buffer("weights", tps_weights(straight).float(), persistent=False)

    def fiducial_points(self, images: torch.Tensor) -> torch.Tensor:
        """(B, K, 2): where the text's top and bottom edges lie in `images`, in [-1, 1] coordinates."""
        small = F.interpolate(images, size=LOC_SIZE, mode="bilinear", align_corners=False)
        features = self.fc(self.localisation(small).flatten(1))
        with torch.autocast(images.device.type, enabled=False):  # positions in float32, even in bf16 training
            return self.points(features.float()).view(-1, self.fiducials, 2)

    def grid(self, points: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """(B, H, W, 2) sampling grid for `F.grid_sample(align_corners=False)`: output pixel centres mapped
        through the spline taking `self.straight` to `points`."""
        k = self.fiducials
        ys = (torch.arange(height, dtype=points.dtype, device=points.device) * 2 + 1) / height - 1  # (H,)
        xs = (torch.arange(width, dtype=points.dtype, device=points.device) * 2 + 1) / width - 1  # (W,)
        cx, cy = self.straight[:, 0:1], self.straight[:, 1:2]
        d2 = (cy - ys).square().unsqueeze(2) + (cx - xs).square().unsqueeze(1)  # (K, H, W), layout fast in ONNX
        radial = (d2 * torch.log(d2)).flatten(1)  # (K, H*W); d2 > 0: no pixel centre lies on the rows y = +-1
        # Only the displacement from the straight layout is splined: a new rectifier is exactly the identity.
        coef = torch.matmul(self.weights, points - self.straight).transpose(1, 2)  # (B, 2, K + 3)
        bent = torch.matmul(coef[:, :, :k], radial).unflatten(2, (height, -1))  # (B, 2, H, W)
        shift, along_x, along_y = coef[:, :, k:k + 1], coef[:, :, k + 1:k + 2], coef[:, :, k + 2:]  # (B, 2, 1)
        affine = shift.unsqueeze(3) + along_x.unsqueeze(3) * xs + along_y.unsqueeze(3) * ys.unsqueeze(1)
        base = torch.stack([xs.expand(height, -1), ys.unsqueeze(1).expand(-1, xs.shape[0])])  # (2, H, W)
        return (base + bent + affine).permute(0, 2, 3, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        points = self.fiducial_points(images)
        with torch.autocast(images.device.type, enabled=False):
            grid = self.grid(points, images.shape[2], images.shape[3])
            return F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
