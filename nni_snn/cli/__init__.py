"""The ``nni-snn`` command: options, their framework, parsing and printing."""
