//! PowerMTA (config, deploy, accounting, management API), the MailWizz API client,
//! outbound webhooks and alerts. Filled by later issues; the crate boundary exists now
//! so that dependencies keep pointing one way (see ARCHITECTURE.md).
