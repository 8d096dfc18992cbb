"""The event types, topics and council a chaos run walks, injects into and judges."""

from __future__ import annotations

from pbj.processes import REPO_ROOT

COUNCIL = "lancashire"
PRODUCERS = ("assessment", "allocation", "planning", "payments")
"""Services whose outbox relay publishes events (audit only consumes)."""
TOPICS = tuple(f"pb.{name}" for name in PRODUCERS)
DEAD_LETTERS = "pb.dead-letter"
KAFKA_SH = REPO_ROOT / "deploy" / "kafka" / "kafka.sh"

STARTED = "pb.assessment.assessment-started.v1"
SUBMITTED = "pb.assessment.assessment-submitted.v1"
VALIDATED = "pb.assessment.assessment-validated.v2"
BUDGET_ISSUED = "pb.allocation.budget-issued.v1"
PLAN_SUBMITTED = "pb.planning.plan-submitted.v1"
SIGNED_OFF = "pb.planning.plan-signed-off.v1"
SET_UP = "pb.payments.deployment-set-up.v1"
AGREEMENT = "pb.payments.agreement-signed.v1"
SCHEDULED = "pb.payments.payment-scheduled.v1"
RELEASED = "pb.payments.payment-released.v1"

ONCE_PER_PERSON = (STARTED, SUBMITTED, VALIDATED, PLAN_SUBMITTED, SIGNED_OFF, SET_UP, AGREEMENT)
"""One journey causes each of these exactly once; a second event id is an effect twice."""

FREQUENCY_DAYS = {"weekly": 7, "four_weekly": 28}
