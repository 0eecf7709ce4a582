"""``python -m remomask.cli ...`` (e.g. ``torchrun --nproc_per_node 2 -m remomask.cli train tokenizer``)."""

from remomask.cli import main

main()
