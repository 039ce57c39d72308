"""The drill core: one run of a drill, whichever door it comes through.

It owns, once each: the run directory (``rundir``), the target and its seams (``target``,
``seams``), the stack lease (``lease``), the fault ledger and rollback guard (``ledger``,
``guard``), the safeguard, the quality replay, and the one judge (``judge``) whose
:class:`~chaos_rec.core.judge.Judgement` the terminal, HTML, JUnit and journal all render.
The Chaos Toolkit control and the pytest plugin only translate their hooks into ``run``.
See docs/architecture.md.
"""
