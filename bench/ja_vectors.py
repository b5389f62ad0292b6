"""Dense features for Japanese tokens only: ja_ginza's word2vec vectors (chiVe, 300 dims).

An experiment for bench/compare_representations.py, not part of the bot. It ADDS a dense
feature next to the sparse ones and keeps the project's tokenizer
(bot.components.japanese_tokenizer.JapaneseTokenizer, MeCab/UniDic):

  * each token that the tokenizer marked as Japanese (it carries `mecab_pos`) gets the vector of
    its UniDic lemma, else of its surface form, from ja_ginza's vector table (zeros if neither
    is known);
  * every other token (English words, digits, order numbers) gets zeros, so an English
    message's dense features are all zeros: it is classified by the sparse features alone;
  * the sentence feature is the mean of the non-zero token vectors (Rasa's dense pooling).

Only the vector table is read (spacy.vocab.Vocab.from_disk on ja_ginza's vocab/ folder): no
Sudachi tokenizer, parser or NER is loaded, and nothing is downloaded (the vectors ship inside
the PyPI package `ja-ginza`). The vectors are not stored in the trained model: the serving
image needs `ja-ginza` and `spacy` installed.

Rasa's own SpacyNLP + SpacyFeaturizer would need SpacyTokenizer (spaCy's token sequence must
line up with the other featurizers' tokens), i.e. replacing the MeCab tokenizer that
bot/components/unfamiliar_input.py relies on; hence this component.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Text, Type

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import DENSE_FEATURIZABLE_ATTRIBUTES, FEATURIZER_CLASS_ALIAS, TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, FEATURE_TYPE_SEQUENCE
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.utils.tensorflow.constants import MEAN_POOLING, POOLING

logger = logging.getLogger(__name__)

MECAB_POS = "mecab_pos"  # as in bot/components/japanese_tokenizer.py
_VOCABS: Dict[str, Any] = {}  # one table per process (cross-validation trains many models)


def _vocab(package: str) -> Any:
    if package not in _VOCABS:
        from spacy.vocab import Vocab

        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ImportError(f"{package} is not installed (pip install ja-ginza)")
        root = Path(list(spec.submodule_search_locations)[0])
        folders = sorted(root.glob(f"{package}-*/vocab"))
        if not folders:
            raise FileNotFoundError(f"no vocab/ folder in {root}")
        _VOCABS[package] = Vocab().from_disk(folders[-1])
    return _VOCABS[package]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class JapaneseVectorFeaturizer(DenseFeaturizer, GraphComponent):
    """ja_ginza word vectors for Japanese tokens, zeros for everything else."""

    @classmethod
    def required_components(cls) -> List[Type]:
        return [Tokenizer]

    @staticmethod
    def required_packages() -> List[Text]:
        return ["spacy", "ja_ginza"]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {**DenseFeaturizer.get_default_config(), POOLING: MEAN_POOLING, "package": "ja_ginza"}

    def __init__(self, config: Dict[Text, Any], name: Text) -> None:
        super().__init__(name, config)
        self._vectors = _vocab(self._config["package"])
        self._dim = int(self._vectors.vectors.shape[1])

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> GraphComponent:
        return cls(config, execution_context.node_name)

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        pass

    def _vector(self, token: Any) -> np.ndarray:
        if token.get(MECAB_POS) is not None:
            for word in (token.lemma, token.text):
                if word and self._vectors.has_vector(word):
                    return np.asarray(self._vectors.get_vector(word), dtype=np.float32)
        return np.zeros(self._dim, dtype=np.float32)

    def _featurize(self, message: Message, attribute: Text) -> None:
        tokens: Optional[List[Any]] = message.get(TOKENS_NAMES[attribute])
        if not tokens:
            return
        sequence = np.stack([self._vector(token) for token in tokens])
        sentence = self.aggregate_sequence_features(sequence, self._config[POOLING])
        alias = self._config[FEATURIZER_CLASS_ALIAS]
        message.add_features(Features(sequence, FEATURE_TYPE_SEQUENCE, attribute, alias))
        message.add_features(Features(sentence, FEATURE_TYPE_SENTENCE, attribute, alias))

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            for attribute in DENSE_FEATURIZABLE_ATTRIBUTES:
                self._featurize(message, attribute)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process(training_data.training_examples)
        return training_data
