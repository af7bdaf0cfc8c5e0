//! Key material and the local admin credential in the data directory.
//!
//! Each key comes from config (inline or `*_file`, how replicas share them)
//! or from `<data_dir>/keys/<name>.key`, generated on first start with mode
//! 0600 in a 0700 directory. The local admin token lives in
//! `<data_dir>/admin.token` (0600) so the CLI on the same host finds it.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::config::Secret;
use crate::crypto::KeyMaterial;

pub const ADMIN_TOKEN_FILE: &str = "admin.token";
pub const ADMIN_ADDR_FILE: &str = "admin.addr";

/// Creates `dir` (and parents) with mode 0700 if missing.
pub fn ensure_private_dir(dir: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))
}

/// The key from config when set, else from the data-dir file, generated on
/// first use. `config_key` names the setting in error messages.
pub fn load_or_create_key(
    configured: &Secret,
    config_key: &str,
    data_dir: &Path,
    file_name: &str,
) -> anyhow::Result<KeyMaterial> {
    if !configured.is_empty() {
        return KeyMaterial::from_text(configured.expose())
            .with_context(|| format!("config key `{config_key}`"));
    }
    let dir = data_dir.join("keys");
    ensure_private_dir(&dir)?;
    let path = dir.join(file_name);
    match read_private_file(&path)? {
        Some(text) => KeyMaterial::from_text(&text)
            .with_context(|| format!("key file {} (from `{config_key}` default)", path.display())),
        None => {
            let key = KeyMaterial::generate()?;
            match write_private_file_new(&path, key.to_text().as_bytes()) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "generated a new key");
                    Ok(key)
                }
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = read_private_file(&path)?.unwrap_or_default();
                    Ok(KeyMaterial::from_text(&text)
                        .with_context(|| format!("key file {}", path.display()))?)
                }
                Err(e) => Err(e).with_context(|| format!("cannot write {}", path.display())),
            }
        }
    }
}

/// Reads a file that should be private; `None` when it does not exist. Warns
/// when group or others can read it.
pub fn read_private_file(path: &Path) -> anyhow::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => {
            if let Ok(meta) = fs::metadata(path)
                && meta.permissions().mode() & 0o077 != 0
            {
                tracing::warn!(path = %path.display(), "secret file is readable by group or others; chmod 600 it");
            }
            Ok(Some(text))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Creates a new file with mode 0600; fails if it exists.
fn write_private_file_new(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// Replaces a file atomically (temp file, fsync, rename) with mode 0600.
pub fn replace_private_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let Some(parent) = path.parent() else {
        bail!("{} has no parent directory", path.display());
    };
    let tmp: PathBuf = parent.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let _ = fs::remove_file(&tmp);
    write_private_file_new(&tmp, contents)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}

/// Writes a non-secret file (e.g. the bound admin address) atomically.
pub fn replace_public_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    replace_private_file(path, contents.as_bytes())?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644))
        .with_context(|| format!("cannot chmod {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_key(
            &Secret::default(),
            "keys.signing_key",
            dir.path(),
            "signing.key",
        )
        .unwrap();
        let again = load_or_create_key(
            &Secret::default(),
            "keys.signing_key",
            dir.path(),
            "signing.key",
        )
        .unwrap();
        assert_eq!(first.bytes(), again.bytes());
        let mode = fs::metadata(dir.path().join("keys/signing.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = fs::metadata(dir.path().join("keys"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
    }

    #[test]
    fn a_configured_key_wins_and_a_bad_one_names_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let configured = KeyMaterial::generate().unwrap();
        let secret = Secret::new(configured.to_text().to_string());
        let got =
            load_or_create_key(&secret, "keys.signing_key", dir.path(), "signing.key").unwrap();
        assert_eq!(got.bytes(), configured.bytes());
        assert!(!dir.path().join("keys/signing.key").exists());

        let err = load_or_create_key(
            &Secret::new("short".into()),
            "keys.signing_key",
            dir.path(),
            "signing.key",
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("keys.signing_key"), "{err:#}");
    }

    #[test]
    fn a_corrupt_key_file_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        ensure_private_dir(&dir.path().join("keys")).unwrap();
        fs::write(dir.path().join("keys/signing.key"), "garbage").unwrap();
        let err = load_or_create_key(
            &Secret::default(),
            "keys.signing_key",
            dir.path(),
            "signing.key",
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("signing.key"), "{err:#}");
        assert_eq!(
            fs::read_to_string(dir.path().join("keys/signing.key")).unwrap(),
            "garbage"
        );
    }
}
