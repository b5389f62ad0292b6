"""The shape shared by the NLU components that read a lexicon product owners edit.

Such a component trains nothing: it loads its YAML file when the model is loaded (the
file named by the `lexicon` option in config.yml, or its default beside the code), so a
changed word list needs no retraining.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage


class LexiconComponent(GraphComponent):
    """Base for SafetySignals and FrustrationSignals; subclasses set the two class attributes."""

    default_lexicon: ClassVar[Path]
    # Reads and validates the file; errors name the file and line.
    read_lexicon: ClassVar[Callable[[Path], Any]]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"lexicon": None}  # None: the class's default_lexicon

    def __init__(self, lexicon: Any) -> None:
        self._lexicon = lexicon

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "LexiconComponent":
        path: Optional[str] = config.get("lexicon")
        return cls(cls.read_lexicon(Path(path) if path else cls.default_lexicon))
