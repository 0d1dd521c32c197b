"""Parsing and formatting of the quantities people write in profile files."""

import re

_BINARY = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}
_DECIMAL = {"K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([KMGT]i?)?$")
_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

GiB = 1024**3


def parse_quantity(value) -> int:
    """Bytes from an int or a string such as ``64Gi``, ``512Mi`` or ``8G``."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a memory quantity (e.g. 64Gi, 512Mi)")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value!r} is negative")
        return value
    match = _QUANTITY.match(str(value).strip())
    if not match:
        raise ValueError(f"{value!r} is not a memory quantity (e.g. 64Gi, 512Mi)")
    number, unit = match.groups()
    factor = _BINARY.get(unit) or _DECIMAL.get(unit) or 1
    return int(float(number) * factor)


def format_quantity(nbytes: int) -> str:
    """The shortest exact binary form: 68719476736 -> ``64Gi``."""
    for unit in ("Ti", "Gi", "Mi", "Ki"):
        if nbytes and nbytes % _BINARY[unit] == 0:
            return f"{nbytes // _BINARY[unit]}{unit}"
    return str(nbytes)


def human_bytes(nbytes: int) -> str:
    """A readable size for forms and tables: ``64 GiB``, ``1.5 GiB``, ``512 MiB``."""
    if nbytes >= GiB:
        return f"{nbytes / GiB:g} GiB"
    return f"{nbytes / 1024**2:g} MiB"


def parse_duration(value) -> int:
    """Seconds from an int or a string such as ``8h``, ``30m``, ``2d``."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration (e.g. 8h, 30m)")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"{value!r} must be positive")
        return value
    match = _DURATION.match(str(value).strip())
    if not match:
        raise ValueError(f"{value!r} is not a duration (e.g. 8h, 30m, 2d)")
    number, unit = match.groups()
    return int(float(number) * _SECONDS[unit])


def format_duration(seconds: int) -> str:
    for unit in ("d", "h", "m"):
        if seconds % _SECONDS[unit] == 0:
            return f"{seconds // _SECONDS[unit]}{unit}"
    return f"{seconds}s"


def parse_count(value) -> int:
    """A whole, non-negative number (GPUs)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a whole number")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is not a whole number")
    return value


def parse_cores(value) -> float:
    """A positive number of CPU cores (``0.5``, ``4``)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number of CPU cores")
    try:
        cores = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number of CPU cores") from None
    if not cores > 0 or cores != cores or cores == float("inf"):
        raise ValueError(f"{value!r} must be a positive number of CPU cores")
    return cores


def format_cores(cores: float) -> str:
    return f"{cores:g}"
