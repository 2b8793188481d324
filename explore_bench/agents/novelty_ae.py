"""The learned behaviour space of TAXONS and STAX: a small convolutional autoencoder of final-state images.

Spec: shared/specs/novelty_search.md §3.2, §8 ("STAX-lite"), pitfalls 10 and 12. The BD of an episode is the
encoder's latent code of its final image; its *surprise* is the image's mean squared reconstruction error.

``ConvAE`` (STAX-lite, for ``size x size`` grey images, size a multiple of 8): encoder Conv(1->16, k4 s2 p1)-SELU,
Conv(16->32)-SELU, Conv(32->32)-SELU (size -> size/8), flatten, Linear(-> latent)-SELU; the decoder mirrors it
with ConvTranspose layers and ends in a sigmoid (images are in [0, 1]; the reference's ReLU output, the one
pitfall 12 saw collapse, is ``output="relu"``).

``BehaviourAE.train(views)``: 20% held out for validation, Adam (lr 1e-3), batch 128, at most ``max_epochs``
(20 on CPU, pitfall 10) epochs, stopping once the validation error has risen ``patience + 1`` times in a row (3
rises tolerated, spec §3.2). Then the collapse check of pitfall 12: the AE has *collapsed* when its validation
error is not below ``collapse_ratio`` (1.0) times that of the untrained AE (same initial weights). A collapsed AE is
re-initialised (fresh weights and optimiser) and retrained, up to ``reinit_tries`` times; the best of the tries is
kept and the outcome reported in ``TrainStats`` (``collapsed``, ``reinits``).

The check catches what pitfall 12 saw, a ReLU output that died: the untrained ReLU AE outputs about 0, and a
collapsed one no better. It is no test of the other failure, an AE that reconstructs every image as the mean image
(BDs nearly identical): early retrainings pass through exactly that plateau before they learn (measured here: a
32x32 maze image with a blob of std 2.5 px left it at the third retraining; one of std 1.5 px not within five), so
re-initialising there would throw away the progress. ``TrainStats.mean_image_ratio`` (validation error over the
error of the training images' mean image) reports it instead: about 1 on the plateau, well below 1 once the AE
tells final states apart. The sigmoid output (the default) cannot die the ReLU's way; ``output="relu"`` is the
reference's.

Deterministic: weights, shuffling and the validation split come from the AE's own torch generator, saved in its
state (a resumed run retrains exactly as an uninterrupted one).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any, Literal, Mapping

import numpy as np
import torch
from torch import nn

__all__ = ["BehaviourAE", "ConvAE", "TrainStats"]


class ConvAE(nn.Module):
    """Convolutional autoencoder of ``(B, 1, size, size)`` images in [0, 1] (module docstring)."""

    def __init__(self, size: int = 32, latent: int = 10, output: Literal["sigmoid", "relu"] = "sigmoid") -> None:
        super().__init__()
        if size % 8 or size < 8:
            raise ValueError(f"ConvAE: expected an image size that is a positive multiple of 8, got {size}")
        if output not in ("sigmoid", "relu"):
            raise ValueError(f"ConvAE: output must be 'sigmoid' or 'relu', got {output!r}")
        self.size, self.latent = size, latent
        side = size // 8
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 16, 4, 2, 1), nn.SELU(), nn.Conv2d(16, 32, 4, 2, 1), nn.SELU(),
            nn.Conv2d(32, 32, 4, 2, 1), nn.SELU(), nn.Flatten(), nn.Linear(32 * side * side, latent), nn.SELU(),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, 32 * side * side), nn.SELU(), nn.Unflatten(1, (32, side, side)),
            nn.ConvTranspose2d(32, 32, 4, 2, 1), nn.SELU(), nn.ConvTranspose2d(32, 16, 4, 2, 1), nn.SELU(),
            nn.ConvTranspose2d(16, 1, 4, 2, 1), nn.Sigmoid() if output == "sigmoid" else nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(latent code (B, latent), reconstruction (B, 1, size, size))``."""
        z = self.encoder(x)
        return z, self.decoder(z)


@dataclass
class TrainStats:
    """What one (re)training of the AE did; errors are per-pixel mean squared errors on the validation images."""

    epochs: int
    n_images: int
    train_error: float
    val_error: float
    untrained_error: float  # an untrained AE of the same initial weights
    mean_image_error: float  # reconstructing every image as the training images' mean
    collapsed: bool  # still collapsed after the re-initialisations
    reinits: int  # re-initialisations this training needed (collapse detected that many times)

    @property
    def mean_image_ratio(self) -> float:
        """Validation error over the mean image's: about 1 while the AE reconstructs only the mean image."""
        return self.val_error / self.mean_image_error if self.mean_image_error > 0 else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mean_image_ratio": self.mean_image_ratio}


def _pixels(views: np.ndarray) -> torch.Tensor:
    """uint8 ``(n, S, S)`` images -> float ``(n, 1, S, S)`` in [0, 1]."""
    return torch.as_tensor(np.asarray(views), dtype=torch.float32).div_(255.0).unsqueeze(1)


class BehaviourAE:
    """The AE of a learned behaviour space, its optimiser, training loop and collapse check (module docstring)."""

    def __init__(self, size: int = 32, latent: int = 10, seed: int = 0, lr: float = 1e-3, batch_size: int = 128,
                 max_epochs: int = 20, val_fraction: float = 0.2, patience: int = 3,
                 output: Literal["sigmoid", "relu"] = "sigmoid", collapse_ratio: float = 1.0,
                 reinit_tries: int = 2) -> None:
        if not 0 < val_fraction < 1:
            raise ValueError(f"BehaviourAE: val_fraction must be in (0, 1), got {val_fraction}")
        if latent < 1 or batch_size < 1 or max_epochs < 1 or patience < 0 or reinit_tries < 0 or lr < 0:
            raise ValueError(f"BehaviourAE: expected latent, batch_size, max_epochs >= 1 and patience, reinit_tries, "
                             f"lr >= 0; got {latent}, {batch_size}, {max_epochs}, {patience}, {reinit_tries}, {lr}")
        self.size, self.latent, self.output = int(size), int(latent), output
        self.lr, self.batch_size, self.max_epochs = float(lr), int(batch_size), int(max_epochs)
        self.val_fraction, self.patience = float(val_fraction), int(patience)
        self.collapse_ratio, self.reinit_tries = float(collapse_ratio), int(reinit_tries)
        self.generator = torch.Generator().manual_seed(int(seed))
        self._fresh()
        self.history: list[dict[str, Any]] = []  # TrainStats of every training, as dicts

    def _fresh(self) -> None:
        """New weights (from the AE's generator) and a new optimiser; remembers the initial weights."""
        init_seed = int(torch.randint(0, 2**62, (1,), generator=self.generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            self.model = ConvAE(self.size, self.latent, self.output)
        self.initial_state = copy.deepcopy(self.model.state_dict())
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lr)

    # ------------------------------------------------------------------------------------------------ encoding
    @torch.no_grad()
    def encode(self, views: np.ndarray, model: nn.Module | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(bd (n, latent) float64, surprise (n,) float64)`` of uint8 images ``(n, S, S)``."""
        model = model or self.model
        views = np.asarray(views)
        if views.ndim != 3 or views.shape[1:] != (self.size, self.size):
            raise ValueError(f"BehaviourAE: expected images of shape (n, {self.size}, {self.size}), got {views.shape}")
        bds, errors = [], []
        model.eval()
        for start in range(0, len(views), 512):
            x = _pixels(views[start:start + 512])
            z, recon = model(x)
            bds.append(z.double().numpy())
            errors.append((recon - x).pow(2).mean((1, 2, 3)).double().numpy())
        if not bds:
            return np.zeros((0, self.latent)), np.zeros(0)
        return np.concatenate(bds), np.concatenate(errors)

    def _error(self, model: nn.Module, x: torch.Tensor) -> float:
        with torch.no_grad():
            model.eval()
            return float(torch.cat([(model(x[i:i + 512])[1] - x[i:i + 512]).pow(2).mean((1, 2, 3))
                                    for i in range(0, len(x), 512)]).mean()) if len(x) else float("nan")

    # ------------------------------------------------------------------------------------------------ training
    def train(self, views: np.ndarray) -> TrainStats:
        """Train on uint8 images ``(n, S, S)`` (n >= 2), re-initialising on collapse; the stats of the kept model."""
        x = _pixels(views)
        if len(x) < 2:
            raise ValueError(f"BehaviourAE: training needs at least 2 images, got {len(x)}")
        order = torch.randperm(len(x), generator=self.generator)
        n_val = max(1, int(round(self.val_fraction * len(x))))
        train, val = x[order[n_val:]], x[order[:n_val]]
        mean_image_error = float((val - train.mean(0, keepdim=True)).pow(2).mean())
        best: dict[str, Any] | None = None
        reinits = 0
        while True:
            epochs, train_error = self._fit(train, val)
            untrained = ConvAE(self.size, self.latent, self.output)
            untrained.load_state_dict(self.initial_state)
            tried = {"val_error": self._error(self.model, val), "untrained_error": self._error(untrained, val),
                     "epochs": epochs, "train_error": train_error, "model": copy.deepcopy(self.model.state_dict()),
                     "optimizer": copy.deepcopy(self.optimizer.state_dict()), "initial": self.initial_state}
            if best is None or tried["val_error"] < best["val_error"]:
                best = tried
            if not self._collapsed(tried["val_error"], tried["untrained_error"]) or reinits >= self.reinit_tries:
                break
            reinits += 1
            self._fresh()  # pitfall 12: a collapsed AE is re-initialised and trained again
        self.model.load_state_dict(best["model"])
        self.optimizer.load_state_dict(best["optimizer"])
        self.initial_state = best["initial"]
        stats = TrainStats(best["epochs"], len(x), best["train_error"], best["val_error"], best["untrained_error"],
                           mean_image_error, self._collapsed(best["val_error"], best["untrained_error"]), reinits)
        self.history.append(stats.as_dict())
        return stats

    def _collapsed(self, val_error: float, untrained_error: float) -> bool:
        """Pitfall 12's test: the validation error is not below ``collapse_ratio`` x the untrained AE's."""
        return not val_error < self.collapse_ratio * untrained_error

    def _fit(self, train: torch.Tensor, val: torch.Tensor) -> tuple[int, float]:
        """Minibatch epochs until the validation error has risen ``patience + 1`` times in a row; (epochs, last
        training error)."""
        previous, rises, epochs, train_error = float("inf"), 0, 0, float("nan")
        while epochs < self.max_epochs:
            epochs += 1
            self.model.train()
            order = torch.randperm(len(train), generator=self.generator)
            losses = []
            for start in range(0, len(train), self.batch_size):
                batch = train[order[start:start + self.batch_size]]
                loss = (self.model(batch)[1] - batch).pow(2).mean()
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                losses.append(float(loss.detach()))
            train_error = float(np.mean(losses))
            error = self._error(self.model, val)
            rises = rises + 1 if error > previous else 0
            previous = error
            if rises > self.patience:
                break
        return epochs, train_error

    # ------------------------------------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "initial": self.initial_state, "generator": self.generator.get_state(), "history": list(self.history)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        self.optimizer.load_state_dict(state["optimizer"])
        self.initial_state = dict(state["initial"])
        self.generator.set_state(state["generator"])
        self.history = [dict(h) for h in state["history"]]
