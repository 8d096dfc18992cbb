"""Every refusal the payments service makes, each named for what went wrong.

The status each answers with comes from its servicekit base (NotFound 404, Conflict 409,
Forbidden 403, Invalid 422); the shared handler renders them as problem details.
"""

from __future__ import annotations

from uuid import UUID

from servicekit.errors import Conflict, DomainError, Forbidden, Invalid, NotFound


class PaymentsError(DomainError):
    """Base of every refusal the payments service makes."""


class DeploymentNotFound(PaymentsError, NotFound):
    def __init__(self, deployment_id: UUID | str) -> None:
        super().__init__(f"deployment {deployment_id} not found")


class BatchNotFound(PaymentsError, NotFound):
    def __init__(self, batch_id: UUID | str) -> None:
        super().__init__(f"export batch {batch_id} not found")


class AgreementNotSigned(PaymentsError, Conflict):
    """Seed 003 ch.4: funding is released only once the agreement is signed and returned."""


class AgreementAlreadySigned(PaymentsError, Conflict):
    pass


class ArrangementMissing(PaymentsError, Conflict):
    pass


class DeploymentIsSuperseded(PaymentsError, Conflict):
    pass


class PaymentsAreSuspended(PaymentsError, Conflict):
    pass


class AlreadySuspended(PaymentsError, Conflict):
    pass


class NotSuspended(PaymentsError, Conflict):
    pass


class HandoverBlocked(PaymentsError, Conflict):
    pass


class OverReleased(PaymentsError, Conflict):
    pass


class NothingToExport(PaymentsError, Conflict):
    pass


class ConcurrentExport(PaymentsError, Conflict):
    def __init__(self) -> None:
        super().__init__("another export took some of these payments meanwhile; try again")


class InvalidArrangement(PaymentsError, Invalid):
    pass


class PartsDoNotAddUp(PaymentsError, Invalid):
    pass


class InvalidReturn(PaymentsError, Invalid):
    pass


class InvalidUnspentCheck(PaymentsError, Invalid):
    pass


class DateOutOfRange(PaymentsError, Invalid):
    pass


class ReleaseDateInFuture(PaymentsError, Invalid):
    """Nothing is released before it is due by the service's own clock."""


class SignedInFuture(PaymentsError, Invalid):
    pass


class SignedBeforeSignOff(PaymentsError, Invalid):
    pass


class ArrearsNeedReason(PaymentsError, Invalid):
    pass


class AboveArrearsLimit(PaymentsError, Forbidden):
    pass
