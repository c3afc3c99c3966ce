use super::*;

fn reply(line: &str) -> Reply {
    Reply::from_smtp(None, line)
}

#[test]
fn the_shipped_data_parses_and_names_every_provider_it_covers() {
    let shaping = Shaping::shipped();
    for name in [
        "gmail",
        "yahoo",
        "microsoft",
        "apple",
        "comcast",
        "orange",
        "free",
        "sfr",
        "laposte",
        "office365",
    ] {
        assert!(shaping.knows(name), "{name}");
        assert!(
            shaping
                .rules()
                .iter()
                .any(|r| r.provider.as_deref() == Some(name)),
            "no rule for {name}"
        );
    }
}

#[test]
fn providers_by_mx_suffix() {
    let shaping = Shaping::shipped();
    for (host, provider) in [
        ("gmail-smtp-in.l.google.com.", "gmail"),
        ("ASPMX.L.GOOGLE.COM", "gmail"),
        ("example-com.mail.protection.outlook.com", "office365"),
        ("hotmail-com.olc.protection.outlook.com", "microsoft"),
        ("mta5.am0.yahoodns.net", "yahoo"),
        ("mx01.mail.icloud.com", "apple"),
        ("mx1.comcast.net", "comcast"),
        ("smtp-in.orange.fr", "orange"),
        ("mx1.free.fr", "free"),
        ("mx2.sfr.fr", "sfr"),
        ("mx.laposte.net", "laposte"),
        ("notgoogle.com", "other"),
        ("google.com.example.net", "other"),
    ] {
        assert_eq!(shaping.provider_of_mx(host).as_str(), provider, "{host}");
    }
}

#[test]
fn a_deployments_file_comes_first() {
    let shaping = Shaping::with_extra(
        "provider gmx gmx.net\n\
         provider gmail special.google.com\n\
         rule gmx code 421 then rate 10/m for 30m\n\
         rule gmail status 4.7.28 then none\n",
    )
    .expect("parses");
    assert_eq!(shaping.provider_of_mx("mx00.gmx.net").as_str(), "gmx");
    // Its own suffix for an existing provider, and the shipped suffixes still hold.
    assert_eq!(
        shaping.provider_of_mx("a.special.google.com").as_str(),
        "gmail"
    );
    assert_eq!(
        shaping.provider_of_mx("aspmx.l.google.com").as_str(),
        "gmail"
    );
    let gmx = shaping
        .matching(&Provider::named("gmx"), &reply("421 4.7.0 slow down"))
        .expect("gmx rule");
    assert_eq!(
        gmx.actions,
        [(
            Action::Rate {
                count: 10,
                per_secs: 60
            },
            1800
        )]
    );
    assert_eq!(gmx.origin, Origin::Operator);
    // The operator's `none` meets the throttle before the shipped rule.
    let gmail = shaping
        .matching(
            &Provider::named("gmail"),
            &reply("421 4.7.28 Our system has detected an unusual rate of unsolicited mail"),
        )
        .expect("rule");
    assert_eq!(gmail.actions, [(Action::Nothing, 0)]);
    assert_eq!(gmail.origin, Origin::Operator);
    assert_eq!(gmail.key(), "operator:4");
}

#[test]
fn rules_match_their_provider_and_reply_only() {
    let shaping = Shaping::shipped();
    let throttle = reply(
        "421 4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP address",
    );
    let rule = shaping
        .matching(&Provider::named("gmail"), &throttle)
        .expect("gmail throttle");
    assert_eq!(rule.provider.as_deref(), Some("gmail"));
    // Google's advice: stop at least ten minutes, then one connection.
    assert_eq!(
        rule.actions,
        [(Action::Suspend, 900), (Action::Connections(1), 7200)]
    );
    let yahoo = reply(
        "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints",
    );
    assert!(
        shaping
            .matching(&Provider::named("yahoo"), &yahoo)
            .is_some()
    );
    // An ordinary unknown user is nobody's throttle.
    let unknown = reply("550 5.1.1 The email account that you tried to reach does not exist");
    for def in shaping.providers() {
        assert_eq!(
            shaping.matching(&Provider::named(&def.name), &unknown),
            None,
            "{}",
            def.name
        );
    }
}

#[test]
fn bad_lines_are_named() {
    for (text, wanted) in [
        ("provider Gmail google.com", "not a provider name"),
        ("provider other x.com", "not a provider name"),
        ("provider x", "names no MX suffix"),
        ("provider x not_a_host", "not a host name suffix"),
        ("provider x a.com\nprovider x b.com", "defined twice"),
        ("rule nowhere code 421 then suspend for 1h", "not defined"),
        ("rule * then suspend for 1h", "at least one condition"),
        ("rule * code 421 suspend for 1h", "missing then"),
        ("rule * code 421 then", "takes an action"),
        ("rule * code 421 then explode for 1h", "unknown action"),
        ("rule * code 421 then rate 10 for 1h", "count per s, m or h"),
        ("rule * code 421 then rate 10/w for 1h", "unit is s, m or h"),
        (
            "rule * code 421 then connections 0 for 1h",
            "positive number",
        ),
        ("rule * code 421 then suspend", "needs `for`"),
        ("rule * code 421 then suspend for 8d", "between 1m and 7d"),
        ("rule * code 421 then suspend for 10s", "between 1m and 7d"),
        ("rule * code 421 then suspend for 1h now", "unexpected"),
        (
            "rule * code 421 then suspend for 1h and none",
            "none is an action of its own",
        ),
        ("rule * code 421 then suspend for 1h and", "takes an action"),
        (
            "rule * code 421 after 3 then suspend for 1h",
            "count per hour",
        ),
        ("limit gmail 10", "starts with `provider` or `rule`"),
    ] {
        let error = Shaping::with_extra(text).expect_err(text);
        assert!(error.message.contains(wanted), "{text}: {error}");
        assert_eq!(error.line, text.lines().count(), "{text}");
    }
    let many = "rule * code 421 then suspend for 1h\n".repeat(MAX_LINES + 1);
    assert!(
        Shaping::with_extra(&many)
            .expect_err("too long")
            .message
            .contains("more than")
    );
}

#[test]
fn triggers_and_targets() {
    let shaping = Shaping::with_extra(
        "rule * code 421 text \"too many connections\" after 3/h then connections 2 for 30m\n\
         rule * code 452 text \"campaign\" then suspend-campaign for 2h\n\
         rule * code 452 then suspend-tenant for 2h\n",
    )
    .expect("parses");
    let connections = shaping
        .matching(&Provider::relay(), &reply("421 4.3.2 Too many connections"))
        .expect("any provider, a relay included");
    assert_eq!(connections.trigger, Trigger::PerHour(3));
    assert_eq!(connections.actions, [(Action::Connections(2), 1800)]);
    let path = Path::Ip("ip1".into());
    assert_eq!(
        connections.actions[0].0.target(&path, "t1", Some("c1")),
        Some((Scope::Ip, "ip1".into()))
    );
    let campaign = shaping
        .matching(&Provider::other(), &reply("452 campaign too big"))
        .unwrap();
    let campaign = campaign.actions[0].0;
    assert_eq!(
        campaign.target(&path, "t1", Some("c1")),
        Some((Scope::Campaign, "c1".into()))
    );
    assert_eq!(campaign.target(&path, "t1", None), None);
    let tenant = shaping
        .matching(&Provider::other(), &reply("452 try later"))
        .unwrap();
    assert_eq!(
        tenant.actions[0].0.target(&Path::Host, "t1", None),
        Some((Scope::Tenant, "t1".into()))
    );
}

#[test]
fn effects_combine_what_applies_now() {
    let gmail = Provider::named("gmail");
    let path = Path::Ip("ip1".into());
    let state = |scope, subject: &str, action, until| Active {
        provider: "gmail".into(),
        scope,
        subject: subject.into(),
        action,
        until,
    };
    let states = [
        state(Scope::Ip, "ip1", Action::Connections(3), 1_000),
        state(Scope::Ip, "ip1", Action::Connections(1), 500),
        state(
            Scope::Ip,
            "ip1",
            Action::Rate {
                count: 60,
                per_secs: 3600,
            },
            1_000,
        ),
        state(Scope::Ip, "ip2", Action::Suspend, 1_000),
        state(Scope::Campaign, "c9", Action::SuspendCampaign, 2_000),
        state(Scope::Tenant, "t1", Action::SuspendTenant, 700),
    ];
    let effect = Effect::of(&states, &gmail, &path, "t1", Some("c1"), 100);
    assert_eq!(effect.connections, Some(1));
    assert_eq!(effect.interval_ms, Some(60_000));
    assert_eq!(
        effect.held_until,
        Some(700),
        "the tenant's, not ip2's nor c9's"
    );
    // Later: the short-lived states are over.
    let effect = Effect::of(&states, &gmail, &path, "t1", Some("c1"), 800);
    assert_eq!((effect.connections, effect.held_until), (Some(3), None));
    let effect = Effect::of(&states, &gmail, &path, "t2", Some("c9"), 800);
    assert_eq!(effect.held_until, Some(2_000));
    // Another provider: nothing.
    let effect = Effect::of(
        &states,
        &Provider::named("yahoo"),
        &path,
        "t1",
        Some("c9"),
        100,
    );
    assert_eq!(effect, Effect::default());
}

proptest::proptest! {
    /// Whatever an operator's file holds, reading it ends without a panic.
    #[test]
    fn any_file_is_read_or_refused(text in "(provider|rule|\\*|gmail|code|421|text|\"a\"|then|suspend|rate|10/h|for|1h|after|3/h|connections|2| |\n){0,40}") {
        let _ = Shaping::with_extra(&text);
    }

    /// Whatever an MX host is called, it has a provider.
    #[test]
    fn any_host_has_a_provider(host in "\\PC{0,100}") {
        let _ = Shaping::shipped().provider_of_mx(&host);
    }
}

/// Replies as the providers' pages and bounce logs show them, each meeting the rule meant
/// for it (not a generic one) and acting on the IP as that provider asks.
#[test]
fn published_throttles_meet_their_providers_rules() {
    let shaping = Shaping::shipped();
    for (provider, line, first_action) in [
        (
            "gmail",
            "421 4.7.28 [192.0.2.1] Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited.",
            Action::Suspend,
        ),
        (
            "gmail",
            "550 5.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been blocked.",
            Action::Suspend,
        ),
        (
            "yahoo",
            "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1",
            Action::Suspend,
        ),
        (
            "yahoo",
            "421 Max message per connection reached, closing transmission channel",
            Action::PerConnection(20),
        ),
        (
            "microsoft",
            "550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150).",
            Action::Suspend,
        ),
        (
            "microsoft",
            "421 RP-003 (BAY004-MC1F2) Unfortunately, some messages from 192.0.2.1 weren't sent. Please try again. We have limits for how many connections",
            Action::Connections(1),
        ),
        (
            "microsoft",
            "451 4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due to IP reputation.",
            Action::Rate {
                count: 1,
                per_secs: 60,
            },
        ),
        (
            "office365",
            "451 4.7.500 Server busy. Please try again later from [192.0.2.1]. (S77719)",
            Action::Rate {
                count: 1,
                per_secs: 60,
            },
        ),
        (
            "office365",
            "550 5.7.606 Access denied, banned sending IP [192.0.2.1].",
            Action::Suspend,
        ),
        (
            "apple",
            "550 5.7.0 Blocked - see https://support.proofpoint.com/dnsbl-lookup.cgi?ip=192.0.2.1",
            Action::Suspend,
        ),
        (
            "comcast",
            "421 resimta-h1p-028.sys.comcast.net 192.0.2.1 Too many sessions opened",
            Action::Connections(10),
        ),
        (
            "comcast",
            "421 192.0.2.1 Domain Throttled - try again later, see RL000010",
            Action::SuspendTenant,
        ),
        (
            "comcast",
            "554 resimta-po-19v.sys.comcast.net comcast 192.0.2.1 found on one or more DNSBLs, see BL000001",
            Action::Suspend,
        ),
        (
            "orange",
            "550 mwinf5c13 ME Adresse IP source bloquee pour incident de spam. Client host blocked for spamming issues. OFR006_102",
            Action::Suspend,
        ),
        (
            "free",
            "421 Too many spams from your IP (192.0.2.1), please visit http://postmaster.free.fr/",
            Action::Suspend,
        ),
        (
            "sfr",
            "450 4.7.1 <x@sfr.fr>: Client host rejected: SFR_IN_105 Service refused due to bad behavior",
            Action::Suspend,
        ),
        (
            "laposte",
            "550 5.7.1 Service refuse. Veuillez essayer plus tard. LPN007_510",
            Action::Suspend,
        ),
        (
            "relay",
            "421 4.3.2 too many connections from your host",
            Action::Connections(2),
        ),
    ] {
        let reply = reply(line);
        let rule = shaping
            .matching(&Provider::named(provider), &reply)
            .unwrap_or_else(|| panic!("{provider}: no rule for {line}"));
        assert_eq!(
            rule.provider.as_deref(),
            Some(provider),
            "{line}: {}",
            rule.text
        );
        assert_eq!(rule.actions[0].0, first_action, "{line}: {}", rule.text);
    }
}

#[test]
fn counted_rules_wait_for_their_count() {
    let shaping = Shaping::shipped();
    let orange = shaping
        .matching(
            &Provider::named("orange"),
            &reply("421 mwinf5c79 ME Trop de connexions, veuillez verifier votre configuration. Too many connections, slow down. OFR004_104 [104]"),
        )
        .expect("orange");
    assert_eq!(orange.trigger, Trigger::PerHour(2));
    assert_eq!(orange.actions, [(Action::Connections(1), 3600)]);
}
