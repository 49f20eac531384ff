"""Which Bible books serve which purpose: the data contract of the whole pipeline (book numbers 1–66, Protestant order).

=====================  ==============================  ===================================================
part                   books                           used for
=====================  ==============================  ===================================================
source domain          1–17, 40–44 minus test books    seed bitext, MT training, teacher pairs, dev sets
in_domain test         Ruth 8, Esther 17, John 43      test collection only (queries and documents)
shifted_genre test     Proverbs 20, Ecclesiastes 21    test collection only (queries and documents)
target-genre pool      18, 19, 22–39                   target-language monolingual text (augmentation)
distractors            45–66 (Romans to Revelation)    documents of the topical test collections only
shifted_register test  the UDHR                        test collection only
=====================  ==============================  ===================================================

The distractor books are read only by ``prepare.collection: topical`` (:mod:`pipeline.data.bible_collections`),
and only into test collections; they count as test books everywhere, so the leakage guard keeps them out of every
training, MT, LLM-prompt and pool file whichever test is built. The pool books never enter a collection:
back-translation and ``parallel`` read them, synthesis does not, which would confound the comparison.
"""

from __future__ import annotations

SOURCE_BOOKS = frozenset(range(1, 18)) | frozenset(range(40, 45))
IN_DOMAIN_TEST_BOOKS = frozenset({8, 17, 43})
SHIFTED_GENRE_TEST_BOOKS = frozenset({20, 21})
TARGET_GENRE_POOL_BOOKS = frozenset({18, 19}) | frozenset(range(22, 40))
DISTRACTOR_BOOKS = frozenset(range(45, 67))
#: Every book whose verses may be a test query or document: never read for training, MT, prompts or pools.
TEST_BOOKS = IN_DOMAIN_TEST_BOOKS | SHIFTED_GENRE_TEST_BOOKS | DISTRACTOR_BOOKS
SOURCE_TRAIN_BOOKS = SOURCE_BOOKS - TEST_BOOKS
#: The books read for training and for the test collections' queries.
USED_BOOKS = SOURCE_BOOKS | SHIFTED_GENRE_TEST_BOOKS | TARGET_GENRE_POOL_BOOKS
#: The query books of each Bible split.
SPLIT_BOOKS = {"in_domain": IN_DOMAIN_TEST_BOOKS, "shifted_genre": SHIFTED_GENRE_TEST_BOOKS}

assert not TEST_BOOKS & (SOURCE_TRAIN_BOOKS | TARGET_GENRE_POOL_BOOKS)
