"""Export with matplotlib: the current view to PNG, a rollout comparison to GIF (Pillow) or MP4 (imageio-ffmpeg).

Every frame of an animation is drawn on one figure with fixed color limits and a frame label; frames are
read, drawn and written one at a time, so a long rollout is never held in memory as images.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from physviz.errors import OptionError

FORMATS = (".gif", ".mp4")


@dataclass
class Panel:
    """One image of a figure: title, frame [horizontal, vertical], fixed color limits, colormap, axis titles,
    the colorbar's label, and the colors of values below/above the limits (None: not clipped on that side)."""

    title: str
    frame: np.ndarray
    clim: tuple[float, float]
    cmap: str
    axes: tuple[str, str] = ("x", "y")
    extent: tuple[float, float, float, float] | None = None
    label: str = ""
    under: str | None = None
    over: str | None = None

    @property
    def extend(self) -> str:
        """Matplotlib's colorbar extension for the clipped sides."""
        return {(False, False): "neither", (True, False): "min", (False, True): "max", (True, True): "both"}[
            (self.under is not None, self.over is not None)]


class FrameRenderer:
    """A matplotlib figure with one image per panel; `draw` swaps frames in with set_data and returns RGB pixels."""

    def __init__(self, panels: Sequence[Panel], label: str = "", dpi: int = 100, panel_inches: float = 3.2) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        n = len(panels)
        h, v = panels[0].frame.shape
        aspect = v / h if h else 1.0
        self.figure = Figure(figsize=(panel_inches * n + 0.4, panel_inches * min(max(aspect, 0.3), 3.0) + 0.9), dpi=dpi)
        self.canvas = FigureCanvasAgg(self.figure)
        self.axes = self.figure.subplots(1, n, squeeze=False)[0]
        self.images = []
        import matplotlib

        for ax, p in zip(self.axes, panels):
            cmap = matplotlib.colormaps[p.cmap].with_extremes(under=p.under, over=p.over)
            im = ax.imshow(
                p.frame.T, origin="lower", cmap=cmap, vmin=p.clim[0], vmax=p.clim[1], extent=p.extent,
                interpolation="nearest", aspect="equal",
            )
            ax.set_title(p.title, fontsize=10)
            ax.set_xlabel(p.axes[0])
            ax.set_ylabel(p.axes[1])
            bar = self.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, extend=p.extend)
            if p.label:
                bar.set_label(p.label)
            self.images.append(im)
        self.label = self.figure.suptitle(label, fontsize=11)
        self.figure.tight_layout()

    def draw(self, frames: Sequence[np.ndarray] | None = None, label: str | None = None) -> np.ndarray:
        """Render (optionally new frames and label) and return the figure as an (H, W, 3) uint8 array."""
        if frames is not None:
            for im, f in zip(self.images, frames):
                im.set_data(f.T)
        if label is not None:
            self.label.set_text(label)
        self.canvas.draw()
        return np.asarray(self.canvas.buffer_rgba())[..., :3].copy()

    def panel_boxes(self) -> list[tuple[int, int, int, int]]:
        """Pixel boxes (left, top, right, bottom) of each image in the array `draw` returns."""
        height = self.canvas.get_width_height()[1]
        out = []
        for ax in self.axes:
            bb = ax.get_window_extent()
            out.append((int(np.ceil(bb.x0)), int(np.ceil(height - bb.y1)), int(bb.x1), int(height - bb.y0)))
        return out

    def close(self) -> None:
        """Free the figure."""
        self.figure.clear()


def render_png(panels: Sequence[Panel], label: str, path: str | Path, dpi: int = 100) -> Path:
    """Panels side by side with colorbars and a label, written as a PNG."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise OptionError(f"{path} does not end in .png; save_png writes a PNG file.")
    path.parent.mkdir(parents=True, exist_ok=True)
    r = FrameRenderer(panels, label, dpi=dpi)
    r.draw()
    r.figure.savefig(path, dpi=dpi)
    r.close()
    return path


def _pad16(rgb: np.ndarray) -> np.ndarray:
    """Pad an image with white to sides divisible by 16 (what H.264 in yuv420p wants)."""
    h, w = rgb.shape[:2]
    ph, pw = (-h) % 16, (-w) % 16
    if not (ph or pw):
        return rgb
    return np.pad(rgb, ((0, ph), (0, pw), (0, 0)), constant_values=255)


def write_animation(
    path: str | Path, renderer: FrameRenderer, frames: Iterable[tuple[Sequence[np.ndarray], str]], fps: float = 5.0,
) -> tuple[Path, int]:
    """Draw each (panel frames, label) on the renderer and write a GIF or MP4; returns the path and frame count."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise OptionError(f"{path} ends in {suffix or 'nothing'}; animations are written as {' or '.join(FORMATS)}.")
    if fps <= 0:
        raise OptionError(f"fps={fps} must be positive.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial{suffix}")
    count = 0
    if suffix == ".gif":
        from PIL import Image

        images = []
        for panel_frames, label in frames:
            rgb = renderer.draw(panel_frames, label)
            images.append(Image.fromarray(rgb).quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE))
        if not images:
            raise OptionError("there are no frames to write.")
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=int(round(1000 / fps)), loop=0)
        count = len(images)
    else:
        try:
            import imageio_ffmpeg
        except ImportError as exc:
            raise OptionError("writing MP4 needs the imageio-ffmpeg package: pip install imageio-ffmpeg.") from exc
        writer = None
        try:
            for panel_frames, label in frames:
                rgb = _pad16(renderer.draw(panel_frames, label))
                if writer is None:
                    writer = imageio_ffmpeg.write_frames(
                        str(tmp), (rgb.shape[1], rgb.shape[0]), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                        quality=8, macro_block_size=16, ffmpeg_log_level="error", output_params=["-movflags", "+faststart"],
                    )
                    writer.send(None)
                writer.send(np.ascontiguousarray(rgb))
                count += 1
        finally:
            if writer is not None:
                writer.close()
        if not count:
            raise OptionError("there are no frames to write.")
    tmp.replace(path)
    return path, count
