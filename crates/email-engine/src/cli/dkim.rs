//! `dkim generate`.

use anyhow::{Context, bail};

pub(super) fn dkim_generate(
    algorithm: &str,
    selector: &str,
    domain: Option<&str>,
    out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let algorithm =
        ee_mail::dkim::Algorithm::parse(algorithm).context("--algorithm must be rsa or ed25519")?;
    if selector.is_empty()
        || !selector
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        bail!("--selector must be a DNS label (letters, digits, hyphens)");
    }
    let key = ee_mail::dkim::generate(algorithm).map_err(|e| anyhow::anyhow!("{e}"))?;
    let name = match domain {
        Some(d) => format!("{selector}._domainkey.{}", d.trim_end_matches('.')),
        None => format!("{selector}._domainkey"),
    };
    match out {
        Some(path) => {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options
                .open(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            std::io::Write::write_all(&mut file, key.private_pem.as_bytes())?;
            println!("private key written to {}", path.display());
        }
        None => print!("{}", key.private_pem),
    }
    // A TXT string holds at most 255 bytes (RFC 1035): an RSA record is split into
    // several, which resolvers join (RFC 7208 §3.3, RFC 6376 §3.6.2.2).
    let strings: Vec<String> =
        ee_mail::dkim::txt_strings(&ee_mail::dkim::dns_record(algorithm, &key.public_b64))
            .into_iter()
            .map(|s| format!("\"{s}\""))
            .collect();
    println!("{name} IN TXT {}", strings.join(" "));
    Ok(())
}
