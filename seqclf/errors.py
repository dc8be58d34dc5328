"""User-facing errors: their message says what is wrong and how to fix it, and is shown without a traceback."""


class SeqclfError(Exception):
    """A problem with the user's configuration or data."""


class ConfigError(SeqclfError, ValueError):
    """A configuration value is out of range."""


class DataError(SeqclfError):
    """The data source cannot be read or does not look like a labelled text dataset."""


class NothingToDo(SeqclfError):
    """The command has nothing to do (a finished run resumed without more epochs): said, exit 0."""


class TrainingError(SeqclfError):
    """Training cannot go on (e.g. the loss is no longer a finite number)."""


def check_positive_int(key: str, value) -> int:
    """``value`` if it is an integer >= 1 (a bool is not), else a ConfigError naming ``key``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key}={value!r} must be a positive integer.")
    return value


def row_name(row: int) -> str:
    """A split's row as a user counts it (``row`` is 0-based): "row 7" is the 7th data row of the split,
    a header not counted (in a CSV file with a header, its line 8; in JSON Lines, line 7)."""
    return f"row {row + 1}"
