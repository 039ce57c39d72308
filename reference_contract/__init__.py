"""Names the reference stack's processes and their launcher share: resilience switches, routings.

The one copy. ``serving.settings`` (the processes that implement the switches) and
``chaos_rec.stack.config`` (which validates a stack's ``*_disable`` lists before it starts
anything) both import them from here. Neither may import the other (shared/DESIGN.md), so the
names live in this package of their own, which imports nothing.
"""

from __future__ import annotations

__all__ = ["GATEWAY_MECHANISMS", "GATEWAY_ROUTINGS", "SERVER_MECHANISMS"]

# a model-server replica's switches (its --disable, POST /admin/resilience)
SERVER_MECHANISMS = ("timeouts", "breaker", "cache", "fallback", "shedding", "checksum")
# the gateway's switches
GATEWAY_MECHANISMS = ("retries", "hedging", "ejection", "deadlines", "shedding")
# how the gateway picks a replica (its --routing); the first is the default
GATEWAY_ROUTINGS = ("affinity", "round-robin")
