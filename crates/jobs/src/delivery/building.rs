//! The message as it goes out: tracking links, headers, DKIM signing, MIME.

use super::*;

impl Engine {
    pub(super) async fn signer(
        &self,
        tenant_id: &str,
        domain: &str,
    ) -> Result<Option<Arc<Signer>>, String> {
        let key = (tenant_id.to_owned(), domain.to_owned());
        let now = self.services.clock.now_ms();
        let cached = self.signers.lock().await.get(&key).cloned();
        if let Some((_, signer, checked)) = &cached
            && now - checked < SIGNER_RECHECK_MS
        {
            return Ok(signer.clone());
        }
        let mut conn = self
            .services
            .db
            .pool()
            .acquire()
            .await
            .map_err(|e| e.to_string())?;
        let stored = domains::active_key_for(&mut conn, tenant_id, domain)
            .await
            .map_err(|e| e.to_string())?;
        drop(conn);
        let stored_id = stored.as_ref().map(|k| k.id.clone());
        // The same key as before: keep its signer (parsing a key is not free).
        if let Some((id, signer, _)) = cached
            && id == stored_id
        {
            self.signers
                .lock()
                .await
                .insert(key, (id, signer.clone(), now));
            return Ok(signer);
        }
        let signer = match stored {
            None => None,
            Some(k) => Some(Arc::new(open_signer(&self.services.delivery, &k, domain)?)),
        };
        self.signers
            .lock()
            .await
            .insert(key, (stored_id, signer.clone(), now));
        Ok(signer)
    }

    /// The size of a message as it would go out now (tracking, headers, DKIM): benchmarks.
    pub async fn render_for_size(&self, message: &Message) -> Result<usize, String> {
        let mut conn = self
            .services
            .db
            .pool()
            .acquire()
            .await
            .map_err(|e| e.to_string())?;
        let tenant = TenantContext::load(&self.services, &mut conn, &message.tenant_id)
            .await
            .map_err(|e| e.to_string())?;
        let now = self.services.clock.now_ms();
        // A campaign message's body, rendered as it is when sent.
        let mut message = message.clone();
        ee_app::queue::bodies::render_at_send(
            &self.services,
            &mut conn,
            std::slice::from_mut(&mut message),
            now,
        )
        .await
        .map_err(|e| e.to_string())?;
        drop(conn);
        let chosen = Chosen {
            ip_id: None,
            address: None,
            hostname: None,
            ip_text: None,
            provider: Provider::other(),
            day: ee_core::timefmt::epoch_day(now),
            hour: now / 3_600_000,
            rate_second: None,
        };
        let (data, _) = self.build(&message, &tenant, false, &chosen).await?;
        Ok(data.len())
    }

    /// The HTML body as it goes out: links rewritten and the open pixel added when the
    /// message tracks them; the original links by index.
    pub(super) fn tracked_html(
        &self,
        message: &Message,
        unsubscribe: &str,
    ) -> (Option<String>, Vec<String>) {
        let settings = &self.services.delivery;
        let base = settings.public_url.trim_end_matches('/');
        let mut links = Vec::new();
        let html = message.html.as_deref().map(|html| {
            let mut body = html.to_owned();
            if message.track_clicks {
                let (rewritten, found) =
                    tracking::rewrite_links(&body, Some(unsubscribe), |i, _| {
                        format!(
                            "{base}/t/c/{}",
                            tracking::sign(&settings.tracking_key, Kind::Click, &message.id, i)
                        )
                    });
                body = rewritten;
                links = found;
                let decoy = tracking::sign(
                    &settings.tracking_key,
                    Kind::Click,
                    &message.id,
                    ee_core::machine_hits::DECOY_INDEX,
                );
                body = tracking::add_decoy_link(&body, &format!("{base}/t/c/{decoy}"));
            }
            if message.track_opens {
                body = tracking::add_open_pixel(
                    &body,
                    &format!(
                        "{base}/t/o/{}",
                        tracking::sign(&settings.tracking_key, Kind::Open, &message.id, 0)
                    ),
                );
            }
            body
        });
        (html, links)
    }

    pub(super) async fn build(
        &self,
        message: &Message,
        tenant: &TenantContext,
        powermta: bool,
        chosen: &Chosen,
    ) -> Result<(Vec<u8>, Vec<String>), String> {
        let settings = &self.services.delivery;
        let unsubscribe = unsubscribe_url(settings, &message.id);
        let (html, links) = self.tracked_html(message, &unsubscribe);
        // No internal identifier (the tenant's name) goes out. X-Virtual-MTA, X-Job and
        // X-Campaign-ID are for PowerMTA (its directives and accounting): another relay
        // or a recipient's MX would only pass them on.
        let mut headers: Vec<(std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)> = Vec::new();
        // Names the message to whoever reports on it, signed so that nobody else can.
        headers.push((
            "X-EE-Ref".into(),
            ee_core::feedback::verp::reference(&settings.tracking_key, &message.id).into(),
        ));
        // PowerMTA's job id (`jobId` in its accounting file) is the campaign.
        if powermta && let Some(campaign) = &message.campaign_id {
            headers.push(("X-Campaign-ID".into(), campaign.as_str().into()));
            headers.push(("X-Job".into(), campaign.as_str().into()));
        }
        if powermta && let Some(ip) = &chosen.ip_text {
            headers.push(("X-Virtual-MTA".into(), rules::virtual_mta_name(ip).into()));
        }
        let extra: BTreeMap<String, String> =
            serde_json::from_str(&message.headers).unwrap_or_default();
        for (k, v) in extra {
            headers.push((k.into(), v.into()));
        }
        let mailto = tenant.settings.unsubscribe_mailto.clone();
        let outgoing = Outgoing {
            from_email: &message.from_email,
            from_name: message.from_name.as_deref(),
            to_email: &message.to_email,
            to_name: message.to_name.as_deref(),
            reply_to: message.reply_to.as_deref(),
            subject: &message.subject,
            html: html.as_deref(),
            text: message.text_body.as_deref(),
            message_id: &message.message_id_header,
            date_secs: self.services.clock.now_ms() / 1000,
            unsubscribe_url: Some(&unsubscribe),
            unsubscribe_mailto: mailto.as_deref(),
            headers,
        };
        let raw = ee_mail::message::build(&outgoing).map_err(|e| e.to_string())?;
        let signed = match self
            .signer(&message.tenant_id, domain_of(&message.from_email))
            .await?
        {
            Some(signer) => signer.sign(&raw).map_err(|e| e.to_string())?,
            None => raw,
        };
        Ok((signed, links))
    }
}
