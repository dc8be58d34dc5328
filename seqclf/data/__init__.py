"""The data package: the IMDB DataModule and the tokenizer."""

from seqclf.data.imdb import IMDBDataModule
from seqclf.data.text import WordTokenizer, tokenize

__all__ = ["IMDBDataModule", "WordTokenizer", "tokenize"]
