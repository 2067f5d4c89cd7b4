"""cdrfetch: pull call detail records from telecom and CPaaS providers."""

__version__ = "0.1.0"
