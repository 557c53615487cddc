//! Flags of `slurp`, `copy` and `replicate`, turned into [`FilesCommand`].
//!
//! `--check`/`--diff` are global flags; the driver folds them into the copy options.

use std::path::PathBuf;

use clap::Args;

use crate::error::{Error, Result};
use crate::files::mode::ModeSpec;
use crate::files::owner::IdSpec;
use crate::ops::copy::CopyOptions;
use crate::ops::replicate::FilesCommand;
use crate::run::Command;

use super::Hosts;

/// Options shared by `copy` and `replicate` (Ansible copy's).
#[derive(Debug, Args)]
pub struct CopyFlags {
    /// Copy directories recursively.
    #[arg(short = 'r', long = "recursive")]
    pub recursive: bool,
    /// File mode: octal (0644) or symbolic (u=rw,g=r,o=r; relative to the source's mode).
    /// Default: the source file's mode.
    #[arg(long, value_name = "MODE")]
    pub mode: Option<String>,
    /// Mode of directories this run creates. Default: the source directory's mode (0755 for
    /// parents without a source directory).
    #[arg(
        long = "dir-mode",
        visible_alias = "directory-mode",
        value_name = "MODE"
    )]
    pub dir_mode: Option<String>,
    /// Owner of written files (name or uid). Default: kept for existing files.
    #[arg(long, value_name = "USER")]
    pub owner: Option<String>,
    /// Group of written files (name or gid).
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// Keep the replaced file as DEST.PID.YYYY-MM-DD@HH:MM:SS~.
    #[arg(long)]
    pub backup: bool,
    /// Replace existing files whose content differs (the default).
    #[arg(long, overrides_with = "no_force")]
    pub force: bool,
    /// Never replace an existing file; only create missing ones.
    #[arg(long = "no-force", overrides_with = "force")]
    pub no_force: bool,
    /// Command run on the temp file before it replaces the destination; `%s` is its path,
    /// e.g. `--validate 'openssl x509 -noout -in %s'`.
    #[arg(long, value_name = "CMD")]
    pub validate: Option<String>,
}

impl CopyFlags {
    fn into_options(self, dest: Option<String>) -> Result<CopyOptions> {
        let usage = |e: String| Error::Usage(e);
        let mode = self
            .mode
            .as_deref()
            .map(ModeSpec::parse)
            .transpose()
            .map_err(|e| usage(format!("--mode: {e}")))?;
        let dir_mode = self
            .dir_mode
            .as_deref()
            .map(ModeSpec::parse)
            .transpose()
            .map_err(|e| usage(format!("--dir-mode: {e}")))?;
        if matches!(dir_mode, Some(ModeSpec::Preserve)) {
            return Err(usage(
                "--dir-mode: preserve is only valid for --mode".into(),
            ));
        }
        let owner = self
            .owner
            .as_deref()
            .map(|o| IdSpec::parse("owner", o))
            .transpose()
            .map_err(|e| usage(e.to_string()))?;
        let group = self
            .group
            .as_deref()
            .map(|o| IdSpec::parse("group", o))
            .transpose()
            .map_err(|e| usage(e.to_string()))?;
        if let Some(v) = &self.validate {
            if !v.contains("%s") {
                return Err(usage(format!("--validate must contain %s: {v}")));
            }
            crate::target::split_command(v).map_err(|e| usage(format!("--validate: {e}")))?;
        }
        Ok(CopyOptions {
            dest,
            recurse: self.recursive,
            mode,
            dir_mode,
            owner,
            group,
            backup: self.backup,
            force: !self.no_force,
            validate: self.validate,
            ..CopyOptions::default()
        })
    }
}

#[derive(Debug, Args)]
pub struct SlurpArgs {
    /// Host(s) to read from (a host name or pattern).
    #[arg(long = "from", value_name = "HOST")]
    pub from: String,
    /// Remote files to read.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    /// Fetch into DIR/HOST/PATH on the controller (like Ansible's fetch). Without it, give
    /// --json to print the content as Ansible's slurp does (base64).
    #[arg(long, value_name = "DIR")]
    pub dest: Option<PathBuf>,
    /// Largest file printed as JSON, in bytes.
    #[arg(long = "max-size", default_value_t = crate::ops::slurp::SLURP_LIMIT, value_name = "BYTES")]
    pub max_size: u64,
}

impl SlurpArgs {
    pub fn into_command(self) -> Result<Command> {
        Ok(Command::Files(FilesCommand::Slurp {
            from: self.from,
            paths: self.paths,
            dest: self.dest,
            limit: self.max_size,
        }))
    }
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Controller files or directories (with -r; a trailing `/` copies a directory's
    /// contents).
    #[arg(required = true, value_name = "SRC")]
    pub sources: Vec<String>,
    /// Destination path on the hosts (a directory when it ends with `/`, when several
    /// sources are given, or when it is an existing directory).
    #[arg(long, value_name = "DEST")]
    pub dest: String,
    #[command(flatten)]
    pub hosts: Hosts,
    #[command(flatten)]
    pub flags: CopyFlags,
}

impl CopyArgs {
    pub fn into_command(self) -> Result<Command> {
        Ok(Command::Files(FilesCommand::Copy {
            pattern: self.hosts.pattern,
            sources: self.sources,
            opts: self.flags.into_options(Some(self.dest))?,
        }))
    }
}

#[derive(Debug, Args)]
pub struct ReplicateArgs {
    /// The host to read from (it is not written to).
    #[arg(long = "from", value_name = "HOST")]
    pub from: String,
    /// Files (or, with -r, directories) on the source host.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    /// Destination on the other hosts. Default: the same paths as on the source.
    #[arg(long, value_name = "DEST")]
    pub dest: Option<String>,
    /// Host pattern of the destinations (Ansible syntax; the source is left out).
    #[arg(
        short = 'H',
        long = "hosts",
        default_value = "all",
        value_name = "PATTERN"
    )]
    pub pattern: String,
    #[command(flatten)]
    pub flags: CopyFlags,
}

impl ReplicateArgs {
    pub fn into_command(self) -> Result<Command> {
        Ok(Command::Files(FilesCommand::Replicate {
            from: self.from,
            pattern: self.pattern,
            paths: self.paths,
            opts: self.flags.into_options(self.dest)?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<crate::run::Invocation> {
        let mut argv = vec!["sshfleet"];
        argv.extend_from_slice(args);
        crate::cli::Cli::try_parse_from(argv)
            .map_err(|e| Error::Usage(e.to_string()))?
            .into_config()
    }

    #[test]
    fn replicate_flags_become_copy_options() {
        let inv = parse(&[
            "replicate",
            "--from",
            "host01",
            "/etc/pki/ca.crt",
            "/etc/pki/x",
            "--mode",
            "u=rw,g=r,o=",
            "--owner",
            "root",
            "--group",
            "0",
            "--no-force",
            "--backup",
            "--validate",
            "openssl x509 -in %s",
            "-r",
            "--dest",
            "/opt/",
        ])
        .unwrap();
        let Command::Files(FilesCommand::Replicate {
            from,
            pattern,
            paths,
            opts,
        }) = inv.command
        else {
            panic!("not replicate")
        };
        assert_eq!((from.as_str(), pattern.as_str()), ("host01", "all"));
        assert_eq!(paths, vec!["/etc/pki/ca.crt", "/etc/pki/x"]);
        assert_eq!(opts.dest.as_deref(), Some("/opt/"));
        assert!(opts.recurse && opts.backup && !opts.force);
        assert_eq!(opts.mode.unwrap().apply(0o777, false), 0o640);
        assert_eq!(opts.owner, Some(IdSpec::Name("root".into())));
        assert_eq!(opts.group, Some(IdSpec::Id(0)));
    }

    #[test]
    fn force_is_default_and_last_one_wins() {
        let get = |extra: &[&str]| {
            let mut a = vec!["replicate", "--from", "h", "/x"];
            a.extend_from_slice(extra);
            match parse(&a).unwrap().command {
                Command::Files(FilesCommand::Replicate { opts, .. }) => opts.force,
                _ => unreachable!(),
            }
        };
        assert!(get(&[]));
        assert!(!get(&["--no-force"]));
        assert!(get(&["--no-force", "--force"]));
    }

    #[test]
    fn bad_values_are_usage_errors_naming_the_flag() {
        for (args, needle) in [
            (
                vec!["replicate", "--from", "h", "/x", "--mode", "0999"],
                "--mode",
            ),
            (
                vec!["replicate", "--from", "h", "/x", "--validate", "true"],
                "%s",
            ),
            (
                vec!["replicate", "--from", "h", "/x", "--owner", "a b"],
                "owner",
            ),
            (
                vec!["copy", "a", "--dest", "/d", "--dir-mode", "preserve"],
                "--dir-mode",
            ),
        ] {
            let e = parse(&args).unwrap_err();
            assert!(matches!(e, Error::Usage(_)));
            assert!(e.to_string().contains(needle), "{e}");
        }
        assert!(parse(&["copy", "a"]).is_err(), "copy needs --dest");
        assert!(
            parse(&["slurp", "--from", "h"]).is_err(),
            "slurp needs a path"
        );
    }
}
