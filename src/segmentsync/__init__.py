"""segmentsync: send customer segments to email marketing platforms."""

__version__ = "0.1.0"
