//! Key files: the 32-byte Ed25519 seed in hex, readable by the owner only.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use cpc_types::SecretKey;

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Create a new key file.
    New {
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Show the address and public key of a key file.
    Show {
        /// The key file.
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(cmd: KeysCommand) -> Result<ExitCode> {
    match cmd {
        KeysCommand::New { out, force } => {
            let key = SecretKey::generate(rand_core::OsRng);
            write_key(&out, &key, force)?;
            println!("{}", key.address());
            eprintln!("wrote {} (keep it secret)", out.display());
        }
        KeysCommand::Show { file, json } => {
            let key = read_key(&file)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"address": key.address(), "public_key": key.public()})
                );
            } else {
                println!("address     {}", key.address());
                println!("public key  {}", key.public());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes a key file with owner-only permissions.
pub(crate) fn write_key(path: &Path, key: &SecretKey, force: bool) -> Result<()> {
    if path.exists() && !force {
        bail!("{} exists; pass --force to overwrite it", path.display());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // `mode` applies only when the file is created; an overwritten file keeps its own.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", path.display()))?;
    }
    writeln!(f, "{}", hex::encode(key.to_bytes()))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Reads a key file.
pub(crate) fn read_key(path: &Path) -> Result<SecretKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read key file {}", path.display()))?;
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut seed).with_context(|| {
        format!(
            "{} is not a key file (expected 64 hex digits)",
            path.display()
        )
    })?;
    Ok(SecretKey::from_bytes(seed))
}
