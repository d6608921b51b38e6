"""Which models are on disk: MODEL_PATH's one file, or MODEL_REPOSITORY's models.

Read at every look of the roll-out watcher. A problem with the repository (a stray
file, a bad version folder) is logged once, not at every look, and kept for the start-up
error when nothing at all can be served.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from app.config import Settings
from app.runtime.model_card import ModelCard, ModelCardError
from app.runtime.repository_layout import LayoutError, ModelSource, scan, single_file

log = logging.getLogger(__name__)


class DiskModels:
    """The models the settings point at, as the disk holds them now."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.problems: set[str] = set()  # every repository problem logged so far

    def read(self) -> dict[str, ModelSource]:
        """Model name -> its files; MODEL_NAME renames a repository's only model."""
        path = self.settings.MODEL_PATH
        if path is not None:
            try:
                name = ModelCard.for_model(path).name
            except ModelCardError:
                name = path.stem  # loading it will say what is wrong with the card
            return single_file(path, name)
        try:
            sources, problems = scan(self.settings.MODEL_REPOSITORY)
        except LayoutError as exc:
            sources, problems = {}, [str(exc)]
        alias = self.settings.MODEL_NAME
        if alias and len(sources) == 1:  # KServe: the one model, as the InferenceService
            sources = {alias: replace(next(iter(sources.values())), name=alias)}
        elif alias and sources:
            problems.append(f"MODEL_NAME={alias} names the repository's only model, but "
                            f"it holds {len(sources)}: {', '.join(sorted(sources))}")
        for problem in set(problems) - self.problems:
            log.error("model repository: %s", problem)
        self.problems |= set(problems)
        return sources
