"""Classification (many-to-one): a class, or several labels, per text."""
