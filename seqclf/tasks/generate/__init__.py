"""Generation (one-to-many): texts written for a class, by a conditional language model."""
