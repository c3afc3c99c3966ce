//! End-to-end tests of the whole system (`tests/`): the HTTP API on an ephemeral port, with
//! the worker, the scheduler and the delivery engine, against real peers on loopback (a
//! database, a DNS server, SMTP servers, an SSH server) and fakes only for PowerMTA and
//! MailWizz. They live in their own crate because they need every room, while `ee-server`
//! must not depend on `ee-jobs`.
