"""The council's rulebook: every council decision as a pure, synchronous function of
(inputs, policy). It depends only on `contracts/`; services, the portal and the what-if
call it, so each rule is decided in one place (architecture decision 11)."""
