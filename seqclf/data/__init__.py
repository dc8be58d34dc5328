"""The data package: the text-classification DataModule, its classes and the tokenizer."""

from seqclf.data.datamodule import IMDBDataModule, TextDataModule
from seqclf.data.labels import Labels
from seqclf.data.text import WordTokenizer, tokenize

__all__ = ["IMDBDataModule", "Labels", "TextDataModule", "WordTokenizer", "tokenize"]
