//! The data dir holds every account, message and the token secret, so it is private to
//! the user Parley runs as: the dir and every dir in it mode 0700, every file 0600.
//!
//! fjall creates its own files with the process umask, so `main` sets the umask to 077
//! before anything is created ([`restrict_umask`]); [`prepare`] then creates the dir, or
//! checks one that exists and tightens what an older version or another umask left
//! readable. A dir that group or others can write, or that another user owns, is
//! refused: whoever can write there can replace the store or the secret, and tightening
//! modes would not undo that.

use std::fmt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of the data dir and every dir in it.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file in the data dir.
pub const FILE_MODE: u32 = 0o600;

/// Why the data dir cannot be used.
#[derive(Debug)]
pub enum DataDirError {
    /// Group or others may write to it.
    Writable {
        /// The dir.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// Another user owns it (or something in it).
    NotOurs {
        /// The dir or file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The user Parley runs as.
        me: u32,
    },
    /// It could not be created, read or changed.
    Io {
        /// The dir or file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl fmt::Display for DataDirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Writable { path, mode } => write!(
                f,
                "refusing the data dir {}: group or others can write to it (mode {:03o}); make it private with `chmod 700 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            ),
            Self::NotOurs { path, owner, me } => write!(
                f,
                "refusing the data dir: {} is owned by uid {owner}, not by the user Parley runs as (uid {me})",
                path.display()
            ),
            Self::Io { path, source } => write!(f, "cannot use {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for DataDirError {}

/// Makes every file and dir the process creates from now on private to its user (umask
/// 077). Process-wide: call it at the start of `main`, before any thread creates files.
pub fn restrict_umask() {
    // SAFETY: umask(2) only sets the calling process's file mode creation mask and
    // cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// Creates `dir` (mode 0700), or checks an existing one: refused if group or others can
/// write to it or another user owns it; otherwise it and everything in it are made
/// private (dirs 0700, files 0600). Symbolic links inside are left alone.
pub fn prepare(dir: &Path) -> Result<(), DataDirError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DataDirError::Io { path, source }
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .map_err(io(dir))?;
    }
    let meta = std::fs::metadata(dir).map_err(io(dir))?;
    let me = effective_uid();
    if meta.uid() != me {
        return Err(DataDirError::NotOurs {
            path: dir.to_path_buf(),
            owner: meta.uid(),
            me,
        });
    }
    if meta.mode() & 0o022 != 0 {
        return Err(DataDirError::Writable {
            path: dir.to_path_buf(),
            mode: meta.mode(),
        });
    }
    tighten(dir, &meta, DIR_MODE)?;
    tighten_contents(dir, me)
}

/// Makes every entry under `dir` private, depth first; an entry of another user is
/// refused (it could not be changed, and it should not be there).
fn tighten_contents(dir: &Path, me: u32) -> Result<(), DataDirError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DataDirError::Io { path, source }
    };
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        let meta = std::fs::symlink_metadata(&path).map_err(io(&path))?;
        if meta.file_type().is_symlink() {
            continue;
        }
        if meta.uid() != me {
            return Err(DataDirError::NotOurs {
                path,
                owner: meta.uid(),
                me,
            });
        }
        if meta.is_dir() {
            tighten(&path, &meta, DIR_MODE)?;
            tighten_contents(&path, me)?;
        } else {
            tighten(&path, &meta, FILE_MODE)?;
        }
    }
    Ok(())
}

/// Sets `path`'s permission bits to `mode` unless they already are.
fn tighten(path: &Path, meta: &std::fs::Metadata, mode: u32) -> Result<(), DataDirError> {
    if meta.mode() & 0o777 == mode {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        DataDirError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// The user id the process acts as.
fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().mode() & 0o777
    }

    #[test]
    fn a_new_data_dir_is_created_private() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("a/b");
        prepare(&dir).unwrap();
        assert_eq!(mode(&dir), DIR_MODE);
    }

    #[test]
    fn what_an_older_version_left_readable_is_made_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        std::fs::create_dir(&store).unwrap();
        std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o755)).unwrap();
        let file = store.join("journal");
        std::fs::write(&file, b"x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        prepare(dir.path()).unwrap();
        assert_eq!(mode(dir.path()), DIR_MODE);
        assert_eq!(mode(&store), DIR_MODE);
        assert_eq!(mode(&file), FILE_MODE);
    }

    #[test]
    fn a_dir_others_can_write_to_is_refused_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = prepare(dir.path()).unwrap_err();
        assert!(matches!(e, DataDirError::Writable { .. }), "{e}");
        assert!(e.to_string().contains("chmod 700"), "{e}");
        assert_eq!(mode(dir.path()), 0o777);
    }
}
