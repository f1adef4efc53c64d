"""Export tasks: the task model, the SQLite task store, the local runner and statistics.

``model`` holds the records, ``store`` (with ``leases``) the one place their state is kept,
``runner`` and ``attempt`` run them, ``budget`` shares the CPU among them, ``stats`` sums
them up. See docs/tasks.md.
"""
