"""``make bench``: measure, then write docs/benchmarks.md with tables and plots.

    python -m benchmarks                                  # every part, then the report
    python -m benchmarks --parts functions,index --quick  # a smoke run of two parts
    python -m benchmarks --report-only                    # re-render from docs/benchmarks/*.json

Each part is a module ``benchmarks.<part>`` with ``run(quick) -> dict`` (raw, JSON-able results, with
the machine and the time they were measured) and ``section(data, figures_dir) -> str`` (markdown
that links the PNGs it wrote into ``figures_dir``). Not part of ``embeddings/``: this package may
import the web app, FAISS and matplotlib.
"""
