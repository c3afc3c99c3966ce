//! Where a message goes: a relay, the recipient's MX from one of our IPs, or MailWizz;
//! the IP chosen within quotas and per-provider limits.

use super::endpoints::Unreachable;
use super::shaping::{held, path_of};
use super::slots::{Got, Lane, Open};
use super::tls_rpt::Judge;
use super::*;

/// What the IP choice came to.
pub(super) enum Choice {
    Chosen(Chosen),
    /// Every IP that could send is held by shaping, the first until then.
    Held(i64),
    /// No IP has quota left.
    NoQuota,
    /// The provider's rate across IPs is reached for this second: until the next (ms).
    Paced(i64),
}

impl Engine {
    pub(super) async fn attempt(
        &self,
        context: &BatchContext,
        message: &Message,
    ) -> Result<AttemptResult, StoreError> {
        let services = &self.services;
        let now = services.clock.now_ms();
        if now - message.queued_at > services.delivery.retry.max_age_secs * 1000 {
            let mut r = AttemptResult::new(MessageState::Expired);
            r.reason = Some("older than the maximum age".into());
            return Ok(r);
        }
        if let Some(reason) = context.unrenderable.get(&message.id) {
            let mut r = AttemptResult::new(MessageState::Failed);
            r.reason = Some(format!("not sent: {reason}"));
            return Ok(r);
        }
        // Suppression is checked again: the address may have bounced or unsubscribed since.
        if let Some(reason) = context
            .suppressed
            .get(&(message.tenant_id.clone(), message.to_email.clone()))
        {
            let mut r = AttemptResult::new(MessageState::Suppressed);
            r.reason = Some(format!("suppressed ({reason})"));
            return Ok(r);
        }
        let Some(tenant_context) = context.tenants.get(&message.tenant_id) else {
            let mut r = AttemptResult::new(MessageState::Failed);
            r.reason = Some("the tenant is gone".into());
            return Ok(r);
        };
        let tenant = &tenant_context.tenant;
        let relays = match &tenant_context.relays {
            Ok(relays) => self.relay_order(&tenant_context.settings, relays, message),
            Err(reason) => {
                let mut r = AttemptResult::new(MessageState::Failed);
                r.reason = Some(reason.clone());
                return Ok(r);
            }
        };
        match &tenant_context.mailwizz {
            Ok(Some((instance, client))) => {
                return Ok(self
                    .send_by_mailwizz(message, tenant_context, instance, client)
                    .await);
            }
            Ok(None) => {}
            Err(reason) => {
                let mut r = AttemptResult::new(MessageState::Failed);
                r.reason = Some(reason.clone());
                return Ok(r);
            }
        }

        // Where it goes: the recipient domain's MX hosts (also for the relay: it names
        // the provider whose limits apply).
        let domain = domain_of(&message.to_email).to_owned();
        let (outcome, hosts) = context.mx(services, &domain, now).await?;
        match outcome {
            MxOutcome::NullMx | MxOutcome::None if relays.is_empty() => {
                // RFC 7505 §4.1: 556 5.1.10 for a domain that declares it takes no mail.
                let why = if outcome == MxOutcome::NullMx {
                    "has a null MX"
                } else {
                    "has no MX and no address"
                };
                let mut r = AttemptResult::new(MessageState::Bounced);
                r.code = Some(556);
                r.reply = Some(format!("556 5.1.10 {domain} {why}: it accepts no mail"));
                return Ok(r);
            }
            MxOutcome::Error if relays.is_empty() => {
                let mut r = self.retry(message, AttemptResult::new(MessageState::Deferred));
                r.reason = Some(format!("MX look-up for {domain} failed"));
                return Ok(r);
            }
            _ => {}
        }
        let provider = hosts.first().map_or_else(Provider::other, |h| {
            services.delivery.shaping.provider_of_mx(h)
        });
        // Traffic shaping: a relay's replies shape the relay, a provider's the path to it.
        let site = self
            .site(if relays.is_empty() {
                provider.clone()
            } else {
                Provider::relay()
            })
            .await?;
        // Held while every way out is: the IP's path, or each of the relays.
        let path_held = |ip_id: Option<&str>| {
            if relays.is_empty() {
                return site.effect(&path_of(None, ip_id), message, now).held_until;
            }
            relays
                .iter()
                .map(|r| {
                    site.effect(&path_of(Some(r), ip_id), message, now)
                        .held_until
                })
                .collect::<Option<Vec<i64>>>()
                .and_then(|untils| untils.into_iter().min())
        };
        let chosen = match self
            .choose_ip(context, &tenant.id, &provider, &path_held)
            .await?
        {
            Choice::Chosen(chosen) => chosen,
            Choice::Held(until) => {
                return Ok(held(until, &site.provider, "suspended"));
            }
            Choice::Paced(until) => {
                let mut r = AttemptResult::new(MessageState::Deferred);
                r.uncounted = true;
                r.reason = Some(format!(
                    "{provider}'s rate across IPs ({}/s) reached: waiting for the next second",
                    services.delivery.rates.of(&provider).unwrap_or_default()
                ));
                r.next_attempt_at = Some(until);
                return Ok(r);
            }
            Choice::NoQuota => {
                let mut r = AttemptResult::new(MessageState::Deferred);
                r.uncounted = true;
                r.reason = Some("no sending IP with quota left: waiting for the next hour".into());
                r.next_attempt_at = Some((now / 3_600_000 + 1) * 3_600_000);
                return Ok(r);
            }
        };
        let result = if relays.is_empty() {
            self.send_chosen(
                context,
                message,
                (tenant_context, None),
                (&domain, &hosts),
                &site,
                &chosen,
            )
            .await?
        } else {
            self.send_by_relays(
                context,
                message,
                (tenant_context, &relays),
                (&domain, &hosts),
                &site,
                &chosen,
            )
            .await?
        };
        // The one place a reservation ends: a send that reached no server does not count
        // against the IP's quota.
        if !result.reached_server {
            self.release(&chosen).await?;
        }
        Ok(result)
    }

    /// The message sent from the chosen IP (or the host's address) along its path: its
    /// pace, the message as it goes out, MTA-STS, the endpoints, the send. Whether the
    /// reservation stands is the caller's (`reached_server`).
    pub(super) async fn send_chosen(
        &self,
        context: &BatchContext,
        message: &Message,
        (tenant_context, relay): (&TenantContext, Option<&ee_store::relays::Relay>),
        (domain, hosts): (&str, &[String]),
        site: &super::shaping::Site,
        chosen: &Chosen,
    ) -> Result<AttemptResult, StoreError> {
        let services = &self.services;
        let now = services.clock.now_ms();
        let settings = &tenant_context.settings;
        let path = path_of(relay, chosen.ip_id.as_deref());
        let effect = site.effect(&path, message, now);
        if let Some(interval) = effect.interval_ms
            && let Some(at) = self.pace(context, site, &path, interval).await?
        {
            return Ok(held(at, &site.provider, "rate limited"));
        }

        // The message as it goes out: tracking, headers, DKIM.
        let (data, links) = match self
            .build(
                message,
                tenant_context,
                relay.is_some_and(|r| r.powermta),
                chosen,
            )
            .await
        {
            Ok(built) => built,
            Err(reason) => {
                let mut r = AttemptResult::new(MessageState::Failed);
                r.reason = Some(reason);
                return Ok(r);
            }
        };
        let return_path = match &settings.bounce_domain {
            Some(domain) => ee_core::feedback::verp::return_path(
                &services.delivery.tracking_key,
                &message.id,
                domain,
            ),
            None => settings
                .return_path
                .clone()
                .unwrap_or_else(|| message.from_email.clone()),
        };

        // MTA-STS (direct delivery): an enforced policy keeps the MX hosts it names, over
        // verified TLS.
        // Its sessions are counted for the domain's TLS reports.
        let (sts, sts_failure) = match relay {
            None => self.mta_sts(domain).await,
            Some(_) => (None, None),
        };
        let judge = relay
            .is_none()
            .then(|| Judge::new(domain, sts.as_ref(), chosen.ip_text.as_deref()));
        let mut tls_sessions: Vec<_> = judge
            .iter()
            .zip(sts_failure)
            .map(|(judge, why)| judge.without_policy(why))
            .collect();
        let (hosts, mx_security) = match super::mta_sts::hosts_for(sts.as_ref(), hosts) {
            Ok(found) => found,
            Err(reason) => {
                let mut r = self.retry(message, AttemptResult::new(MessageState::Deferred));
                r.reason = Some(reason);
                tls_sessions.extend(judge.zip(hosts.first()).map(|(j, h)| j.not_named(h)));
                r.tls_sessions = tls_sessions;
                return Ok(r);
            }
        };
        let (pool_key, endpoints, route) = match relay {
            Some(relay) => match self.relay_endpoint(relay, chosen).await {
                Ok(endpoint) => (
                    ("relay".to_owned(), relay.id.clone()),
                    vec![endpoint],
                    Route::Relay(relay.name.clone()),
                ),
                Err(reason) => {
                    let mut r = AttemptResult::new(MessageState::Failed);
                    r.reason = Some(reason);
                    return Ok(r);
                }
            },
            None => match self.mx_endpoints(&hosts, chosen, mx_security).await {
                Ok(endpoints) => (
                    (
                        format!("direct:{}", chosen.ip_id.clone().unwrap_or_default()),
                        domain.to_owned(),
                    ),
                    endpoints,
                    Route::Direct,
                ),
                Err(Unreachable::Refused(reason)) => {
                    let mut r = AttemptResult::new(MessageState::Failed);
                    r.reason = Some(reason);
                    return Ok(r);
                }
                Err(Unreachable::NoAddress) => {
                    let mut r = self.retry(message, AttemptResult::new(MessageState::Deferred));
                    r.reason = Some(format!("no address for the MX hosts of {domain}"));
                    return Ok(r);
                }
            },
        };

        // A relay's own connection limit, below shaping's and the `relay` one.
        let most = match (effect.connections, relay.and_then(|r| r.max_connections)) {
            (Some(shaped), Some(own)) => Some(shaped.min(u32::try_from(own).unwrap_or(u32::MAX))),
            (shaped, own) => shaped.or(own.and_then(|o| u32::try_from(o).ok())),
        };
        let lane = self.lane(&path, &site.provider, most).await;
        let _connection_permit = lane.semaphore.clone().acquire_owned().await;
        let mut result = self
            .send_over(
                &pool_key,
                &endpoints,
                (&return_path, &message.to_email, &data),
                &lane,
                (effect.per_connection, judge.as_ref()),
            )
            .await?;
        tls_sessions.append(&mut result.tls_sessions);
        result.tls_sessions = tls_sessions;
        let path_label = match (&relay, &chosen.ip_text) {
            (Some(relay), _) => Some(relay.name.as_str()),
            (None, ip) => ip.as_deref(),
        };
        self.after_reply(site, &path, path_label, message, &result)
            .await?;
        result.ip_id = chosen.ip_id.clone();
        result.mta_sts =
            super::mta_sts::testing_failure(sts.as_ref(), &hosts, result.tls.as_deref());
        result.route = Some(route);
        result.links = Some(serde_json::to_string(&links).unwrap_or_else(|_| "[]".into()));
        if result.state == MessageState::Deferred {
            let reason = result.reason.take();
            let reached = result.reached_server;
            // A message that only waited for a connection slot keeps its short wait; a
            // failure follows the retry schedule.
            if !result.uncounted {
                result = self.retry(message, result);
            }
            result.reason = result.reason.or(reason);
            result.reached_server = reached;
        }
        Ok(result)
    }

    /// Sends over an idle connection of `key` or a new one to the first endpoint that
    /// answers. A pooled connection that turns out closed before the message left (the
    /// peer dropped it while idle, or restarted) is replaced at once by a new one, within
    /// the same attempt: nothing was delivered, so nothing is sent twice.
    /// With `per_connection`, a connection that has carried that many messages is closed
    /// rather than used again. A new connection first takes a slot of `lane` (counted
    /// across the nodes); when none frees up in a few seconds the message waits, not
    /// counted as an attempt. With a `judge` (direct delivery), each connection opened or
    /// failed is a session of the TLS reports.
    pub(super) async fn send_over(
        &self,
        key: &PoolKey,
        endpoints: &[Endpoint],
        (from, to, data): (&str, &str, &[u8]),
        lane: &Lane,
        (per_connection, judge): (Option<u32>, Option<&Judge<'_>>),
    ) -> Result<AttemptResult, StoreError> {
        let spent = |c: &Connection| per_connection.is_some_and(|n| c.delivered >= n as usize);
        let mut connection = self.take_idle(key).await;
        if let Some(open) = connection.take_if(|open| spent(&open.connection)) {
            open.close().await;
        }
        let mut reused = connection.is_some();
        let mut sessions = Vec::new();
        loop {
            let mut last_error = String::new();
            if connection.is_none() {
                let slot = match self.connection_slot(key, &lane.key, lane.limit).await? {
                    Got::Slot(slot) => slot,
                    Got::Idle(open) => {
                        connection = Some(open);
                        reused = true;
                        continue;
                    }
                    Got::Nothing => {
                        let mut r = AttemptResult::new(MessageState::Deferred);
                        r.uncounted = true;
                        r.next_attempt_at =
                            Some(self.services.clock.now_ms() + super::shaping::SLOT_RETRY_MS);
                        r.reason = Some(format!(
                            "all {} connections of this path are open on the cluster's nodes",
                            lane.limit
                        ));
                        return Ok(r);
                    }
                };
                let mut slot = Some(slot);
                for endpoint in endpoints {
                    match Connection::open(endpoint).await {
                        Ok(c) => {
                            sessions.extend(judge.map(|j| j.opened(endpoint, c.tls_info.as_ref())));
                            connection = slot.take().map(|slot| Open {
                                connection: c,
                                slot,
                            });
                            break;
                        }
                        Err(SmtpError::Rejected(reply)) => {
                            // Refused at greeting or EHLO: the reply says what to do.
                            let mut r = reply_result(reply.code, reply.text);
                            r.reached_server = true;
                            r.tls_sessions = sessions;
                            return Ok(r);
                        }
                        Err(SmtpError::Tls { failure, detail }) => {
                            sessions.extend(judge.map(|j| j.failed(endpoint, failure)));
                            last_error =
                                format!("{}:{}: {detail}", endpoint.address, endpoint.port);
                        }
                        Err(SmtpError::Network(e) | SmtpError::Unsent(e)) => {
                            last_error = format!("{}:{}: {e}", endpoint.address, endpoint.port);
                        }
                    }
                }
            }
            let Some(mut open) = connection.take() else {
                let mut r = AttemptResult::new(MessageState::Deferred);
                r.reason = Some(format!("cannot connect: {last_error}"));
                r.tls_sessions = sessions;
                return Ok(r);
            };
            let tls = open
                .connection
                .tls_info
                .as_ref()
                .map(ee_mail::smtp::TlsInfo::describe);
            let mut result = match open.connection.send(from, to, data).await {
                Ok(reply) => {
                    if spent(&open.connection) {
                        open.close().await;
                    } else {
                        self.put_idle(key, open).await;
                    }
                    let mut r = AttemptResult::new(MessageState::Sent);
                    r.code = Some(i64::from(reply.code));
                    r.reply = Some(reply.text);
                    r
                }
                Err(SmtpError::Rejected(reply)) => {
                    self.put_idle(key, open).await;
                    reply_result(reply.code, reply.text)
                }
                Err(SmtpError::Unsent(e)) if reused => {
                    tracing::debug!(error = %e, "a pooled connection was closed; sending on a new one");
                    reused = false;
                    continue;
                }
                Err(
                    SmtpError::Network(e) | SmtpError::Unsent(e) | SmtpError::Tls { detail: e, .. },
                ) => {
                    let mut r = AttemptResult::new(MessageState::Deferred);
                    r.reason = Some(format!("connection lost: {e}"));
                    r
                }
            };
            result.reached_server = true;
            result.tls = tls;
            result.tls_sessions = sessions;
            return Ok(result);
        }
    }

    /// The connections a path may have open at a provider at once: the configured limit,
    /// or fewer under a shaping state. On this node, a semaphore of that size (when the
    /// limit changes, sends under the old one finish on it and new ones wait on the new
    /// one); across the nodes, the slots of `connection_slots` under the same key.
    pub(super) async fn lane(
        &self,
        path: &ee_core::shaping::Path,
        provider: &Provider,
        shaped: Option<u32>,
    ) -> Lane {
        let configured = self.services.delivery.limits.of(provider).connections;
        let limit = shaped.map_or(configured, |s| s.min(configured)).max(1) as usize;
        let key = format!("{}:{}:{}", path.scope().as_str(), path.subject(), provider);
        let mut slots = self.slots.lock().await;
        let slot = slots
            .entry(key.clone())
            .or_insert_with(|| (limit, Arc::new(Semaphore::new(limit))));
        if slot.0 != limit {
            *slot = (limit, Arc::new(Semaphore::new(limit)));
        }
        Lane {
            semaphore: slot.1.clone(),
            key,
            limit,
        }
    }

    pub(super) async fn choose_ip_for(
        &self,
        context: &BatchContext,
        tenant_id: &str,
        provider: &Provider,
        held: &(dyn Fn(Option<&str>) -> Option<i64> + Sync),
        now: i64,
    ) -> Result<Choice, StoreError> {
        let services = &self.services;
        let day = ee_core::timefmt::epoch_day(now);
        let hour = now / 3_600_000;
        let ips = context.ips(services, tenant_id, now).await?;
        if ips.is_empty() {
            // A tenant without IPs of its own sends from the host's address, without
            // quotas (shaping still holds it).
            if let Some(until) = held(None) {
                return Ok(Choice::Held(until));
            }
            return Ok(Choice::Chosen(Chosen {
                ip_id: None,
                address: None,
                hostname: None,
                ip_text: None,
                provider: provider.clone(),
                day,
                hour,
                rate_second: None,
            }));
        }
        let hourly = i64::from(services.delivery.limits.of(provider).per_hour);
        let mut tried: Vec<String> = Vec::new();
        let mut held_until: Option<i64> = None;
        for ip in &ips {
            if let Some(until) = held(Some(&ip.id)) {
                tried.push(ip.id.clone());
                held_until = Some(held_until.map_or(until, |h: i64| h.min(until)));
            }
        }
        let spin = self.spin.fetch_add(1, Ordering::Relaxed);
        loop {
            // The order comes from what is left as this batch sees it; the reservation in
            // the database is what counts.
            let pick = {
                let quotas = context.quotas.lock().await;
                let list = &quotas[tenant_id];
                let candidates: Vec<IpCandidate<'_>> = list
                    .iter()
                    .filter(|q| !tried.contains(&q.ip.id))
                    .map(|q| IpCandidate {
                        id: &q.ip.id,
                        remaining: q.remaining,
                    })
                    .collect();
                rules::pick_ip(&candidates, spin)
                    .and_then(|id| list.iter().find(|q| q.ip.id == id).cloned())
            };
            let Some(quota) = pick else {
                return Ok(held_until.map_or(Choice::NoQuota, Choice::Held));
            };
            let mut conn = services.db.pool().acquire().await?;
            let reserved = messages::reserve_send(
                &mut conn,
                &quota.ip.id,
                day,
                quota.daily_quota,
                provider.as_str(),
                hour,
                hourly,
            )
            .await?;
            drop(conn);
            let mut quotas = context.quotas.lock().await;
            if let Some(entry) = quotas
                .get_mut(tenant_id)
                .and_then(|list| list.iter_mut().find(|q| q.ip.id == quota.ip.id))
            {
                entry.remaining = if reserved {
                    entry.remaining.map(|r| r - 1)
                } else if entry.daily_quota.is_some() {
                    Some(0)
                } else {
                    entry.remaining
                };
            }
            drop(quotas);
            if reserved {
                return Ok(Choice::Chosen(Chosen {
                    ip_id: Some(quota.ip.id.clone()),
                    address: quota.ip.ip_address.parse().ok(),
                    hostname: quota.ip.hostname.clone(),
                    ip_text: Some(quota.ip.ip_address.clone()),
                    provider: provider.clone(),
                    day,
                    hour,
                    rate_second: None,
                }));
            }
            tried.push(quota.ip.id.clone());
        }
    }

    pub(super) async fn release(&self, chosen: &Chosen) -> Result<(), StoreError> {
        self.release_rate_slot(&chosen.provider, chosen.rate_second)
            .await?;
        if let Some(ip_id) = &chosen.ip_id {
            let mut conn = self.services.db.pool().acquire().await?;
            messages::release_send(
                &mut conn,
                ip_id,
                chosen.day,
                chosen.provider.as_str(),
                chosen.hour,
            )
            .await?;
        }
        Ok(())
    }

    /// MailWizz mode: the message handed to the instance's transactional-emails endpoint
    /// (MailWizz's delivery servers send it). 5xx and time-outs are retried on our schedule,
    /// a refusal fails the message with MailWizz's reason.
    pub(super) async fn send_by_mailwizz(
        &self,
        message: &Message,
        tenant: &TenantContext,
        instance: &ee_store::mailwizz::Instance,
        client: &ee_connectors::mailwizz::Client,
    ) -> AttemptResult {
        use ee_connectors::mailwizz::MailWizzError;
        let unsubscribe = unsubscribe_url(&self.services.delivery, &message.id);
        let (html, links) = self.tracked_html(message, &unsubscribe);
        let html = html.unwrap_or_else(|| {
            let mut body = String::from("<pre>");
            template::escape_html_into(message.text_body.as_deref().unwrap_or(""), &mut body);
            body.push_str("</pre>");
            body
        });
        let mut email = json!({
            "to_name": message.to_name.clone().unwrap_or_else(|| message.to_email.clone()),
            "to_email": message.to_email,
            "from_name": message.from_name.clone().unwrap_or_else(|| tenant.tenant.name.clone()),
            "from_email": message.from_email,
            "subject": message.subject,
            "body": html,
            "send_at": ee_core::timefmt::datetime_utc(self.services.clock.now_ms()),
        });
        if let Some(text) = &message.text_body {
            email["plain_text"] = json!(text);
        }
        if let Some(reply_to) = &message.reply_to {
            email["reply_to_name"] = json!(reply_to);
            email["reply_to_email"] = json!(reply_to);
        }
        let route = Route::Mailwizz(instance.name.clone());
        let mut result = match client.create_transactional_email(&email).await {
            Ok(uid) => {
                let mut r = AttemptResult::new(MessageState::Sent);
                r.reply = Some(format!("MailWizz email_uid {uid}"));
                r
            }
            Err(MailWizzError::Unavailable(reason)) => {
                let mut r = self.retry(message, AttemptResult::new(MessageState::Deferred));
                r.reason = Some(format!("MailWizz unavailable: {reason}"));
                r
            }
            Err(MailWizzError::Unauthorized) => {
                // A key to fix, not a message to lose: retried on the schedule.
                let mut r = self.retry(message, AttemptResult::new(MessageState::Deferred));
                r.reason = Some(format!(
                    "MailWizz instance `{}` refused the API key",
                    instance.name
                ));
                r
            }
            Err(e) => {
                let mut r = AttemptResult::new(MessageState::Failed);
                r.reason = Some(e.to_string());
                r
            }
        };
        result.route = Some(route);
        result.links = Some(serde_json::to_string(&links).unwrap_or_else(|_| "[]".into()));
        result
    }
}
