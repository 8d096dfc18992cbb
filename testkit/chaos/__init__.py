"""Random crashes during a run of journeys, then an independent oracle (`pbj chaos`).

People walk through the five services over HTTP, as a portal would, while a seeded
random injector SIGKILLs and restarts a service, kills a service while its outbox relay
holds unpublished rows, and, on the Kafka engine, SIGKILLs and restarts the broker and
PostgreSQL. The broker and the PostgreSQL cluster are private to the run (temporary
directory, free ports), so a kill harms nobody else. Afterwards the oracle reads the
event log itself (the embedded SQLite file, or every Kafka partition from the start)
and each service's HTTP API, and checks what a council and an auditor would ask: every
acknowledged change is in the log and its effect is downstream, nothing happened twice,
each released payment is a scheduled instalment, and the money released is the money due.

The oracle uses none of the services' code: it parses the CloudEvents JSON itself, works
out due dates and instalment splits from the PaymentScheduled facts, and compares.
docs/faults.md says what this proves and what it does not.
"""
