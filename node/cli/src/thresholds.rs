//! Measured `auto` thresholds. `cpchain bench --home HOME` writes the crossovers it
//! measured to `HOME/accel-thresholds.toml`, keyed by device; `cpchain start` adds them
//! to the configured ones (configured thresholds win), and the dispatcher applies each
//! only while the device it was measured on is present.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cpc_accel::{AutoPolicy, DispatchConfig};

/// The file in the node's home directory.
pub(crate) const FILE: &str = "accel-thresholds.toml";

const HEADER: &str = "# Batch sizes from which `auto` sends work to a device, measured by `cpchain bench`.\n\
# Each entry applies only while the named device is present. Re-run the bench after\n\
# changing hardware or drivers; thresholds in config.toml override these.\n\n";

pub(crate) fn path(home: &Path) -> PathBuf {
    home.join(FILE)
}

/// The measured thresholds in `home`, or none when the file does not exist.
pub(crate) fn load(home: &Path) -> Result<AutoPolicy> {
    let file = path(home);
    match std::fs::read_to_string(&file) {
        Ok(text) => toml::from_str(&text).with_context(|| {
            format!(
                "{} is not a thresholds file; delete it and re-run `cpchain bench --home {}`",
                file.display(),
                home.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AutoPolicy::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", file.display())),
    }
}

/// Writes `policy` as a thresholds file.
pub(crate) fn write(file: &Path, policy: &AutoPolicy) -> Result<()> {
    let text = format!("{HEADER}{}", toml::to_string(policy)?);
    std::fs::write(file, text).with_context(|| format!("cannot write {}", file.display()))
}

/// Records `measured` in `home`'s thresholds file: entries for the devices and
/// operations measured are replaced (or removed when the device never won), the others
/// kept.
pub(crate) fn store(home: &Path, measured: &cpc_bench::Report) -> Result<PathBuf> {
    let mut policy = load(home)?;
    for c in &measured.crossovers {
        policy.record(c.backend, &c.device, c.op, c.min_batch);
    }
    let file = path(home);
    write(&file, &policy)?;
    Ok(file)
}

/// Adds the measured thresholds of `home` to `config` (configured entries win).
pub(crate) fn apply(home: &Path, config: &mut DispatchConfig) -> Result<()> {
    config.auto.merge(&load(home)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpc_accel::{BackendKind, Op};

    #[test]
    fn a_missing_file_is_no_thresholds_and_a_written_one_round_trips() {
        let dir = std::env::temp_dir().join(format!("cpc-thresholds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(load(&dir).unwrap(), AutoPolicy::default());
        let mut p = AutoPolicy::default();
        p.record(
            BackendKind::Wgpu,
            "some gpu (Vulkan)",
            Op::Ed25519,
            Some(2048),
        );
        write(&path(&dir), &p).unwrap();
        assert_eq!(load(&dir).unwrap(), p);
        let mut config = DispatchConfig::default();
        apply(&dir, &mut config).unwrap();
        assert_eq!(
            config
                .auto
                .min_batch_on(BackendKind::Wgpu, Op::Ed25519, "some gpu (Vulkan)"),
            Some(2048)
        );
        std::fs::write(path(&dir), "thresholds = 3").unwrap();
        assert!(load(&dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
