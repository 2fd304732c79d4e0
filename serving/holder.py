"""The service's model: loaded once, swapped atomically when the alias it was asked for moves.

A request takes :attr:`ModelHolder.current` once at its start and scores with that model to the end,
so a reload never changes a model under a request in flight: the swap replaces one attribute under a
lock, and the old model lives on until its last request finishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from linewise.serving.scoring import ScoringModel, current_version, load_scoring_model

logger = logging.getLogger("linewise.serve")


@dataclass(frozen=True)
class Loaded:
    """A model and when it was loaded (UTC)."""

    model: ScoringModel
    loaded_at: dt.datetime


@dataclass(frozen=True)
class Reload:
    """What one reload check found."""

    changed: bool
    previous_version: str | None
    version: str | None
    checked_at: dt.datetime


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ModelHolder:
    """Hold the model in use; reload it when its alias points at another version.

    Parameters
    ----------
    uri : str
        The model URI the service was started with (an alias URI is re-resolved on reload).
    loader : callable, optional
        Loads a model from a URI (default :func:`linewise.serving.scoring.load_scoring_model`).
    resolver : callable, optional
        Returns the version an alias URI points at now (default
        :func:`linewise.serving.scoring.current_version`).
    """

    def __init__(
        self,
        uri: str,
        loader: Callable[[str], ScoringModel] = load_scoring_model,
        resolver: Callable[[str], str | None] = current_version,
    ) -> None:
        self.uri = uri
        self._loader = loader
        self._resolver = resolver
        self._lock = threading.Lock()
        self._current: Loaded | None = None
        self.last_check: dt.datetime | None = None

    @property
    def current(self) -> Loaded:
        """The model in use; take it once per request."""
        loaded = self._current
        if loaded is None:
            raise RuntimeError("no model is loaded yet")
        return loaded

    @property
    def is_loaded(self) -> bool:
        """Whether a model is loaded."""
        return self._current is not None

    def set(self, model: ScoringModel) -> None:
        """Use ``model`` from now on (a model loaded by the caller, or at startup)."""
        with self._lock:
            self._current = Loaded(model, _now())

    def load(self) -> None:
        """Load the model at :attr:`uri` and use it."""
        self.set(self._loader(self.uri))

    def reload(self) -> Reload:
        """Re-resolve the alias; load and swap in the version it points at if that changed.

        Returns
        -------
        Reload

        Raises
        ------
        mlflow.exceptions.MlflowException, OSError, TypeError
            If the registry cannot be read or the new version cannot be loaded; the current model
            stays in use.
        """
        with self._lock:
            previous = self._current.model.version if self._current is not None else None
            target = self._resolver(self.uri)
            checked = _now()
            self.last_check = checked
            if self._current is not None and (target is None or target == previous):
                return Reload(False, previous, previous, checked)
            model = self._loader(self.uri)
            self._current = Loaded(model, _now())
            return Reload(model.version != previous, previous, model.version, checked)


async def poll(holder: ModelHolder, interval_s: float) -> None:
    """Check the alias every ``interval_s`` seconds until cancelled; failures are logged, not raised."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            result = await asyncio.to_thread(holder.reload)
        except Exception as err:  # keep serving the current model whatever the registry does
            logger.warning(
                "model reload check failed (%s); the current model stays in use", type(err).__name__
            )
            continue
        if result.changed:
            logger.info("model reloaded: version %s -> %s", result.previous_version, result.version)


@contextlib.asynccontextmanager
async def polling(holder: ModelHolder, interval_s: float) -> AsyncIterator[None]:
    """Run :func:`poll` in the background while the context is open (not at all when ``interval_s`` is 0)."""
    if interval_s <= 0:
        yield
        return
    task = asyncio.create_task(poll(holder, interval_s))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
