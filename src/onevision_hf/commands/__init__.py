"""Subcommands of the ``onevision-hf`` command line (see `onevision_hf.cli`)."""
