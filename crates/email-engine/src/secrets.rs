//! Keys generated into the data directory on first run: the JWT signing key and the
//! master key that seals secrets at rest, the metrics token. Written once, mode 0600,
//! never logged; the data directory itself is 0700 (the database holds personal data).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::Rng;

use crate::config::Config;

pub struct Keys {
    pub jwt_secret: Vec<u8>,
    pub master_key: Vec<u8>,
    /// What a Prometheus scrape sends as its bearer token (the file's text, so that
    /// `credentials_file` can point at it).
    pub metrics_token: String,
}

pub fn load_or_create(config: &Config) -> anyhow::Result<Keys> {
    private_dir(&config.data_dir)?;
    let jwt_secret = match &config.jwt_secret {
        Some(secret) => secret.as_bytes().to_vec(),
        None => key_file(&config.data_dir.join("jwt.key"), 64)?,
    };
    let master_key = match &config.master_key {
        Some(encoded) => STANDARD
            .decode(encoded.trim())
            .ok()
            .filter(|k| k.len() == ee_core::secrets::MASTER_KEY_LEN)
            .context("master_key (EE_MASTER_KEY) must be the base64 of 32 bytes")?,
        None => key_file(
            &config.data_dir.join("master.key"),
            ee_core::secrets::MASTER_KEY_LEN,
        )?,
    };
    let metrics_token = match &config.metrics_token {
        Some(token) => token.trim().to_owned(),
        None => STANDARD.encode(key_file(&config.data_dir.join("metrics.token"), 32)?),
    };
    Ok(Keys {
        jwt_secret,
        master_key,
        metrics_token,
    })
}

/// Creates a directory readable by its owner only (0700), or makes an existing one so.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private (0700)", dir.display()))?;
    }
    Ok(())
}

/// Reads a base64 key file, creating it with `len` random bytes if it does not exist.
fn key_file(path: &Path, len: usize) -> anyhow::Result<Vec<u8>> {
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let key = STANDARD
            .decode(text.trim())
            .with_context(|| format!("{} is not base64", path.display()))?;
        if key.len() != len {
            bail!(
                "{} holds {} bytes; {len} expected",
                path.display(),
                key.len()
            );
        }
        return Ok(key);
    }
    let mut key = vec![0u8; len];
    rand::rng().fill(&mut key[..]);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    writeln!(file, "{}", STANDARD.encode(&key))?;
    file.sync_all()?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_once_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        let first = load_or_create(&config).unwrap();
        let second = load_or_create(&config).unwrap();
        assert_eq!(first.jwt_secret, second.jwt_secret);
        assert_eq!(first.master_key, second.master_key);
        assert_eq!(first.master_key.len(), 32);
        assert_eq!(first.metrics_token, second.metrics_token);
        assert_eq!(
            std::fs::read_to_string(config.data_dir.join("metrics.token"))
                .unwrap()
                .trim(),
            first.metrics_token
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |name: &str| {
                std::fs::metadata(config.data_dir.join(name))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777
            };
            assert_eq!(mode("master.key"), 0o600);
            assert_eq!(mode("metrics.token"), 0o600);
            assert_eq!(mode(""), 0o700, "the data directory");
        }
        ee_core::secrets::Sealer::new(&first.master_key).unwrap();
    }

    #[test]
    fn given_keys_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let bad = Config {
            data_dir: dir.path().into(),
            master_key: Some("c2hvcnQ=".into()),
            ..Config::default()
        };
        assert!(load_or_create(&bad).is_err());
        let good = Config {
            data_dir: dir.path().into(),
            master_key: Some(STANDARD.encode([9u8; 32])),
            jwt_secret: Some("x".repeat(40)),
            ..Config::default()
        };
        let keys = load_or_create(&good).unwrap();
        assert_eq!(keys.master_key, [9u8; 32]);
        assert!(!dir.path().join("master.key").exists());
    }
}
