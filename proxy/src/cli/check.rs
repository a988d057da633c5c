//! `popgate check`: validate everything a run would load, print every error, exit 1.

use std::path::Path;
use std::process::ExitCode;

use crate::config::dir;
use crate::config::prepared::Prepared;

/// Validates the configuration in `dir`.
pub fn execute(config_dir: &Path) -> ExitCode {
    match dir::load(config_dir) {
        Ok(config) => match Prepared::new(config, config_dir) {
            Ok(_) => {
                println!("{}: configuration is valid", config_dir.display());
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("{err:#}");
                ExitCode::FAILURE
            }
        },
        Err(err) => {
            for line in err.lines() {
                eprintln!("{line}");
            }
            ExitCode::FAILURE
        }
    }
}
