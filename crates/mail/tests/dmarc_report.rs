//! DMARC aggregate reports as they come by mail: gzip, zip and plain XML attachments read;
//! bombs, archives of many files and unreadable attachments refused with why; nothing a
//! stranger sends makes the reader panic.
#![allow(clippy::unwrap_used)]

use ee_mail::dmarc_report::{self, DmarcMailError, LIMITS, Limits};
use ee_mail::dmarc_testing::{gzip, mail, zip};
use proptest::prelude::*;

fn xml() -> String {
    "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>receiver.test</org_name>\
     <email>dmarc@receiver.test</email><report_id>42</report_id><date_range><begin>1796428800</begin>\
     <end>1796515199</end></date_range></report_metadata><policy_published><domain>brand.test</domain>\
     <p>none</p></policy_published><record><row><source_ip>192.0.2.1</source_ip><count>9</count>\
     <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated>\
     </row><identifiers><header_from>brand.test</header_from></identifiers><auth_results><dkim>\
     <domain>brand.test</domain><result>pass</result></dkim><spf><domain>x.test</domain><result>fail</result>\
     </spf></auth_results></record></feedback>"
        .to_owned()
}

fn subject() -> &'static str {
    "Report Domain: brand.test Submitter: receiver.test Report-ID: 42"
}

#[test]
fn gzip_zip_and_plain_attachments_are_read() {
    let x = xml();
    let mails = [
        mail(
            "r@receiver.test",
            subject(),
            "receiver.test!brand.test!1!2.xml.gz",
            "application/gzip",
            &gzip(x.as_bytes()),
        ),
        mail(
            "r@receiver.test",
            subject(),
            "receiver.test!brand.test!1!2.zip",
            "application/zip",
            &zip("report.xml", x.as_bytes()),
        ),
        mail(
            "r@receiver.test",
            subject(),
            "report.xml",
            "text/xml",
            x.as_bytes(),
        ),
        // Headers that lie: the bytes tell what the attachment is.
        mail(
            "r@receiver.test",
            subject(),
            "report.bin",
            "application/octet-stream",
            &gzip(x.as_bytes()),
        ),
    ];
    for m in mails {
        let r = dmarc_report::read(m.as_bytes()).unwrap();
        assert_eq!(r.policy.domain, "brand.test");
        assert_eq!(r.messages(), 9);
    }
    // The report as the whole body.
    let whole = format!(
        "From: r@receiver.test\nSubject: x\nContent-Type: application/gzip\nContent-Transfer-Encoding: base64\n\n{}\n",
        base64_of(&gzip(x.as_bytes()))
    );
    assert_eq!(
        dmarc_report::read(whole.as_bytes()).unwrap().report_id,
        "42"
    );
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn bombs_are_refused_unread() {
    // 30 MiB of spaces, some kilobytes compressed.
    let huge = vec![b' '; 30 * 1024 * 1024];
    for (name, ct, bytes) in [
        ("r.xml.gz", "application/gzip", gzip(&huge)),
        ("r.zip", "application/zip", zip("r.xml", &huge)),
    ] {
        assert!(bytes.len() < 100_000, "{name}: {}", bytes.len());
        let m = mail("r@receiver.test", subject(), name, ct, &bytes);
        let e = dmarc_report::read(m.as_bytes()).unwrap_err();
        assert_eq!(e, DmarcMailError::Bomb(LIMITS.max_uncompressed), "{name}");
        assert!(e.is_over_limit());
        assert!(e.to_string().contains("decompresses to more than"));
    }
    // Many files in one archive.
    let mut many = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for i in 0..20 {
        many.start_file(format!("{i}.xml"), zip::write::SimpleFileOptions::default())
            .unwrap();
    }
    let many = many.finish().unwrap().into_inner();
    let m = mail(
        "r@receiver.test",
        subject(),
        "r.zip",
        "application/zip",
        &many,
    );
    assert_eq!(
        dmarc_report::read(m.as_bytes()),
        Err(DmarcMailError::TooManyEntries(16))
    );
    // A message over the size bound is not parsed at all.
    let small = Limits {
        max_message_bytes: 1000,
        ..LIMITS
    };
    let m = mail(
        "r@receiver.test",
        subject(),
        "r.xml",
        "text/xml",
        &vec![b'x'; 2000],
    );
    assert_eq!(
        dmarc_report::read_with(m.as_bytes(), &small),
        Err(DmarcMailError::TooLarge(1000))
    );
}

#[test]
fn what_holds_no_report_says_why() {
    let plain = "From: someone@example.test\nSubject: hello\n\nJust words.\n";
    assert_eq!(
        dmarc_report::read(plain.as_bytes()),
        Err(DmarcMailError::NoReport)
    );
    let broken = mail(
        "r@receiver.test",
        subject(),
        "r.xml.gz",
        "application/gzip",
        &[0x1f, 0x8b, 8, 0, 1, 2, 3],
    );
    let e = dmarc_report::read(broken.as_bytes()).unwrap_err();
    assert!(matches!(e, DmarcMailError::Corrupt(_)), "{e}");
    assert!(!e.is_over_limit());
    let no_domain = xml().replace("<domain>brand.test</domain><p>", "<p>");
    let m = mail(
        "r@receiver.test",
        subject(),
        "r.xml",
        "text/xml",
        no_domain.as_bytes(),
    );
    let e = dmarc_report::read(m.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("policy_published/domain"), "{e}");
}

proptest! {
    #[test]
    fn any_bytes_are_read_or_refused(raw in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = dmarc_report::read(&raw);
        let _ = dmarc_report::unpack(&raw, &LIMITS);
    }

    #[test]
    fn garbled_archives_are_read_or_refused(at in 0usize..400, byte in any::<u8>(), zipped in any::<bool>()) {
        let x = xml();
        let mut bytes = if zipped { zip("r.xml", x.as_bytes()) } else { gzip(x.as_bytes()) };
        let at = at % bytes.len();
        bytes[at] = byte;
        let m = mail("r@receiver.test", subject(), "r.bin", "application/octet-stream", &bytes);
        let _ = dmarc_report::read(m.as_bytes());
    }
}
