"""The MT models: small fairseq transformers trained here (xx→en and en→xx, one recipe), or a Hugging Face model.

The xx→en model translates target-language (``xx``) text into English: back-translating the monolingual
target-genre verses gives (MT English, real xx) bitext for distillation. The en→xx model translates the same
verses' real English into the target language: forward translation, (real English, MT xx).

- :mod:`pipeline.mt.config`: :class:`MTConfig` (from params.yaml) and the model directory's files;
- :mod:`pipeline.mt.train`: :func:`train_mt`, SentencePiece + fairseq training on CPU;
- :mod:`pipeline.mt.base`: :class:`Translator`, what every engine shares (beam, sampling, noised; the length limit);
- :mod:`pipeline.mt.translate`: its fairseq and Hugging Face subclasses, and :func:`load_translator`;
- :mod:`pipeline.mt.ct2`: the trained model converted for CTranslate2 and :class:`CTranslate2Translator` (the
  default engine, ``mt.engine``);
- :mod:`pipeline.mt.backtranslate`: back-translation into bitext rows, and its metrics;
- :mod:`pipeline.mt.text`: noise and degenerate-output heuristics;
- :mod:`pipeline.mt.score`: sacreBLEU BLEU / chrF (corpus), sentence chrF (the round trip of the pools).
"""

from pipeline.mt.backtranslate import backtranslate_rows, backtranslation_metrics, translate_pool
from pipeline.mt.base import METHODS, MTError, Translator
from pipeline.mt.config import MTConfig
from pipeline.mt.ct2 import CTranslate2Translator
from pipeline.mt.score import score_translations, sentence_chrf
from pipeline.mt.text import add_noise, is_degenerate, length_ratio, translation_stats
from pipeline.mt.train import train_mt
from pipeline.mt.translate import FAIRSEQ_LOCAL, FairseqTranslator, HFTranslator, load_translator

__all__ = [
    "FAIRSEQ_LOCAL",
    "CTranslate2Translator",
    "METHODS",
    "FairseqTranslator",
    "HFTranslator",
    "MTConfig",
    "MTError",
    "Translator",
    "add_noise",
    "backtranslate_rows",
    "backtranslation_metrics",
    "is_degenerate",
    "length_ratio",
    "load_translator",
    "score_translations",
    "sentence_chrf",
    "train_mt",
    "translate_pool",
    "translation_stats",
]
