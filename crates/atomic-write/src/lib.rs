//! Output files that appear whole or not at all.
//!
//! Every file the `sop` tool writes goes through this crate. The bytes go to a temporary file
//! `.<name>.tmp-<pid>-<n>` in the destination's own directory (same file system, so the
//! rename is atomic); on commit it is flushed and fsynced, renamed over the destination, and
//! the directory is fsynced so that the rename itself survives a crash. A reader, or a
//! process killed at any instant, sees either the previous file (or none) or the complete new
//! one, never a prefix. Dropping an uncommitted writer removes its temporary file.
//!
//! Temporary files left by a process that was killed are ignored (they never carry the final
//! name) and, on Linux, removed by the next writer of the same destination once their owning
//! process no longer exists.
//!
//! Test hook: when the environment variable [`PAUSE_ENV`] (`SOP_TEST_WRITE_PAUSE_MS`) holds a
//! number of milliseconds, every file pauses once after part of its bytes reached the
//! temporary file, after printing [`PAUSE_MARKER`] and the paths to stderr; with
//! [`PAUSE_SKIP_ENV`] (`SOP_TEST_WRITE_PAUSE_SKIP`) = `K` the process's first `K` files do not
//! pause. End-to-end tests use it to kill the binary inside its `K`-th write
//! deterministically. It is not meant for users.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("report.json");
//! sop_atomic_write::write(&path, b"{}\n")?;
//!
//! use std::io::Write;
//! let mut f = sop_atomic_write::AtomicFile::create(&path)?;
//! writeln!(f, "{{\"ok\": true}}")?;
//! f.commit()?;
//! # assert_eq!(std::fs::read(&path).unwrap(), b"{\"ok\": true}\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Environment variable (milliseconds) that makes every atomic write pause once mid-file;
/// for end-to-end kill tests only.
pub const PAUSE_ENV: &str = "SOP_TEST_WRITE_PAUSE_MS";

/// Environment variable: the number of files (in the order this process starts writing them)
/// that do not pause under [`PAUSE_ENV`].
pub const PAUSE_SKIP_ENV: &str = "SOP_TEST_WRITE_PAUSE_SKIP";

/// Printed to stderr (followed by the temporary and the destination path) when a write
/// pauses because of [`PAUSE_ENV`].
pub const PAUSE_MARKER: &str = "sop-atomic-write: paused";

/// A failed atomic write. The destination was left as it was: the previous file, or none.
#[derive(Debug, thiserror::Error)]
#[error("{}: {what}: {error}", path.display())]
pub struct Error {
    /// The destination file (not the temporary one).
    pub path: PathBuf,
    /// The step that failed, e.g. `renaming .x.tmp-12-0 into place`.
    pub what: String,
    /// The underlying I/O error.
    pub error: io::Error,
}

impl Error {
    /// The error as an `io::Error` of the same kind whose message names the failed step
    /// (but not the destination), for callers whose own error type attaches the path.
    pub fn into_io(self) -> io::Error {
        io::Error::new(self.error.kind(), format!("{}: {}", self.what, self.error))
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        io::Error::new(e.error.kind(), e.to_string())
    }
}

/// Writes `bytes` to `path` whole or not at all (see the crate documentation). The parent
/// directory must exist. Replacing an existing file keeps its permissions.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes).map_err(|e| f.temp.error("writing", e))?;
    f.commit().map(drop)
}

/// A streaming writer whose destination appears only on [`AtomicFile::commit`]. Dropping it
/// without a commit removes the temporary file and leaves the destination untouched.
#[derive(Debug)]
pub struct AtomicFile {
    temp: Temp,
    file: File,
    /// Whether the [`PAUSE_ENV`] pause is still to come for this file.
    pause: Option<Duration>,
}

impl AtomicFile {
    /// Creates the temporary file for `path` (whose directory must exist).
    pub fn create(path: &Path) -> Result<Self, Error> {
        let (temp, file) = Temp::new(path)?;
        Ok(AtomicFile {
            temp,
            file,
            pause: pause_from_env(),
        })
    }

    /// The destination path.
    pub fn path(&self) -> &Path {
        &self.temp.dest
    }

    /// The temporary file being written (for diagnostics and tests).
    pub fn temp_path(&self) -> &Path {
        &self.temp.tmp
    }

    /// Flushes and fsyncs the temporary file, renames it over the destination and fsyncs the
    /// directory. Returns the destination path.
    pub fn commit(mut self) -> Result<PathBuf, Error> {
        // Tiny files (0 or 1 byte) never split in `write`: pause here instead, before the
        // rename, so that a kill during the pause still finds no destination.
        if let Some(d) = self.pause.take() {
            pause(&self.temp, d);
        }
        self.file.flush().map_err(|e| self.temp.error("writing", e))?;
        self.file.sync_all().map_err(|e| self.temp.error("syncing", e))?;
        self.temp.commit()
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let res = match self.pause {
            // Write half, make it visible in the temporary file, pause, and report a short
            // write: `write_all` then continues with the rest.
            Some(d) if buf.len() >= 2 => {
                let n = self.file.write(&buf[..buf.len() / 2])?;
                self.file.flush()?;
                self.pause = None;
                pause(&self.temp, d);
                Ok(n)
            }
            _ => self.file.write(buf),
        };
        res.map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.temp.tmp.display())))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A temporary name for a file that something else writes by path (e.g. a C++ library that
/// opens the file itself): write to [`ExternalFile::temp_path`], close it, then
/// [`ExternalFile::commit`]. Dropping it without a commit removes the temporary file.
#[derive(Debug)]
pub struct ExternalFile {
    temp: Temp,
    /// The [`PAUSE_ENV`] pause before the rename, if any.
    pause: Option<Duration>,
}

impl ExternalFile {
    /// Reserves a temporary name for `path` by creating it empty (the directory must exist).
    pub fn reserve(path: &Path) -> Result<Self, Error> {
        let (temp, _file) = Temp::new(path)?;
        Ok(ExternalFile {
            temp,
            pause: pause_from_env(),
        })
    }

    /// The destination path.
    pub fn path(&self) -> &Path {
        &self.temp.dest
    }

    /// Where the writer must write (and close) the file before [`ExternalFile::commit`].
    pub fn temp_path(&self) -> &Path {
        &self.temp.tmp
    }

    /// Fsyncs the temporary file, renames it over the destination and fsyncs the directory.
    /// Returns the destination path.
    pub fn commit(self) -> Result<PathBuf, Error> {
        if let Some(d) = self.pause {
            pause(&self.temp, d);
        }
        let f = File::open(&self.temp.tmp).map_err(|e| self.temp.error("reopening", e))?;
        f.sync_all().map_err(|e| self.temp.error("syncing", e))?;
        drop(f);
        self.temp.commit()
    }
}

/// A temporary file and its destination; removes the temporary file on drop unless committed.
#[derive(Debug)]
struct Temp {
    dest: PathBuf,
    tmp: PathBuf,
    dir: PathBuf,
    committed: bool,
}

/// Distinguishes the temporary files of one process (several may be open at once).
static COUNTER: AtomicU64 = AtomicU64::new(0);

impl Temp {
    fn new(dest: &Path) -> Result<(Temp, File), Error> {
        let err = |what: &str, error| Error {
            path: dest.to_path_buf(),
            what: what.to_string(),
            error,
        };
        let name = dest
            .file_name()
            .ok_or_else(|| err("not a file name", io::ErrorKind::InvalidInput.into()))?;
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let prefix = temp_prefix(name);
        remove_stale(&dir, &prefix);
        let perms = fs::metadata(dest).ok().filter(|m| m.is_file()).map(|m| m.permissions());
        // `create_new` never reuses a name: a stale file of an earlier process with the same
        // pid is skipped, not truncated.
        loop {
            let mut n = prefix.clone();
            n.push(format!(
                "{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let path = dir.join(n);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    let t = Temp {
                        dest: dest.to_path_buf(),
                        tmp: path,
                        dir,
                        committed: false,
                    };
                    if let Some(p) = perms {
                        file.set_permissions(p)
                            .map_err(|e| t.error("setting permissions of", e))?;
                    }
                    return Ok((t, file));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(err(&format!("creating temporary file {}", path.display()), e)),
            }
        }
    }

    /// An error of step `what` on the temporary file.
    fn error(&self, what: &str, error: io::Error) -> Error {
        Error {
            path: self.dest.clone(),
            what: format!("{what} temporary file {}", self.tmp.display()),
            error,
        }
    }

    fn commit(mut self) -> Result<PathBuf, Error> {
        fs::rename(&self.tmp, &self.dest).map_err(|e| self.error("renaming into place", e))?;
        self.committed = true;
        // Make the rename durable. Some file systems cannot fsync a directory (EINVAL); the
        // rename is still atomic there, only its durability is up to the file system.
        let synced = File::open(&self.dir).and_then(|d| d.sync_all());
        match synced {
            Err(e) if !matches!(e.kind(), io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported) => Err(Error {
                path: self.dest.clone(),
                what: format!("syncing directory {}", self.dir.display()),
                error: e,
            }),
            _ => Ok(self.dest.clone()),
        }
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// `.<name>.tmp-`: the temporary files of destination `name` start with it.
fn temp_prefix(name: &std::ffi::OsStr) -> OsString {
    let mut p = OsString::from(".");
    p.push(name);
    p.push(".tmp-");
    p
}

/// Removes `<prefix><pid>-<n>` files in `dir` whose process no longer exists (Linux: no
/// `/proc/<pid>`). Best effort: any doubt leaves the file alone.
fn remove_stale(dir: &Path, prefix: &OsString) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let (Some(prefix), Ok(entries)) = (prefix.to_str(), fs::read_dir(dir)) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let Some((pid, n)) = rest.split_once('-') else {
            continue;
        };
        let (Ok(pid), Ok(_)) = (pid.parse::<u32>(), n.parse::<u64>()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// Files of this process started so far (for [`PAUSE_SKIP_ENV`]).
static STARTED: AtomicU64 = AtomicU64::new(0);

/// The pause of the file being started, if the test hook asks for one.
fn pause_from_env() -> Option<Duration> {
    let ms = std::env::var(PAUSE_ENV).ok()?.trim().parse::<u64>().ok()?;
    let skip = std::env::var(PAUSE_SKIP_ENV)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    (STARTED.fetch_add(1, Ordering::Relaxed) >= skip).then(|| Duration::from_millis(ms))
}

fn pause(t: &Temp, d: Duration) {
    eprintln!("{PAUSE_MARKER} {} -> {}", t.tmp.display(), t.dest.display());
    std::thread::sleep(d);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Files in `dir` other than `keep`.
    fn others(dir: &Path, keep: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| !keep.contains(&n.as_str()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_new_file_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.txt");
        write(&p, b"hello").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"hello");
        assert!(others(d.path(), &["a.txt"]).is_empty());
    }

    #[test]
    fn replaces_existing_file_keeping_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.txt");
        fs::write(&p, b"old contents, longer than the new").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        write(&p, b"new").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o640);
        assert!(others(d.path(), &["a.txt"]).is_empty());
    }

    #[test]
    fn destination_invisible_until_commit() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.txt");
        fs::write(&p, b"old").unwrap();
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"new contents").unwrap();
        f.flush().unwrap();
        let tmp = f.temp_path().to_path_buf();
        assert!(tmp.file_name().unwrap().to_str().unwrap().starts_with(".a.txt.tmp-"));
        assert_eq!(tmp.parent(), Some(d.path()));
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(f.commit().unwrap(), p);
        assert_eq!(fs::read(&p).unwrap(), b"new contents");
        assert!(!tmp.exists());
    }

    #[test]
    fn drop_without_commit_removes_temp_and_keeps_destination() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.txt");
        fs::write(&p, b"old").unwrap();
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"half of a fi").unwrap();
        drop(f);
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert!(others(d.path(), &["a.txt"]).is_empty());
    }

    #[test]
    fn unwritable_directory_is_an_error_naming_the_destination() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("ro");
        fs::create_dir(&sub).unwrap();
        let p = sub.join("a.txt");
        fs::write(&p, b"old").unwrap();
        fs::set_permissions(&sub, fs::Permissions::from_mode(0o555)).unwrap();
        // Root ignores directory permissions; the check below is only meaningful otherwise.
        let probe = OpenOptions::new().write(true).create_new(true).open(sub.join("probe"));
        let res = write(&p, b"new");
        fs::set_permissions(&sub, fs::Permissions::from_mode(0o755)).unwrap();
        if probe.is_ok() {
            // Running as root: use a directory nobody can create files in.
            assert!(res.is_ok());
            let p = Path::new("/proc/sop-atomic-write-test.txt");
            let e = write(p, b"new").unwrap_err();
            assert_eq!(e.path, p);
            assert!(e.to_string().contains("sop-atomic-write-test.txt"), "{e}");
            assert!(!p.exists());
            return;
        }
        let e = res.unwrap_err();
        assert_eq!(e.path, p);
        assert!(e.to_string().contains("a.txt"), "{e}");
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert!(others(&sub, &["a.txt"]).is_empty());
    }

    #[test]
    fn failed_rename_leaves_destination_and_no_temp() {
        // The destination is a non-empty directory: everything succeeds up to the rename.
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x");
        fs::create_dir(&p).unwrap();
        fs::write(p.join("inner"), b"keep").unwrap();
        let e = write(&p, b"data").unwrap_err();
        assert!(e.what.contains("renaming"), "{e}");
        assert_eq!(fs::read(p.join("inner")).unwrap(), b"keep");
        assert!(others(d.path(), &["x"]).is_empty());
    }

    #[test]
    fn missing_directory_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("no/such/dir/a.txt");
        let e = write(&p, b"data").unwrap_err();
        assert_eq!(e.error.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().starts_with(&p.display().to_string()), "{e}");
    }

    #[test]
    fn failing_writer_midway_leaves_destination_untouched() {
        // A streaming producer that fails after some bytes: the caller returns early, the
        // writer is dropped, and the old file survives.
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.txt");
        fs::write(&p, b"old").unwrap();
        let produce = |f: &mut AtomicFile| -> io::Result<()> {
            f.write_all(b"first part ")?;
            Err(io::Error::other("producer failed"))
        };
        let mut f = AtomicFile::create(&p).unwrap();
        assert!(produce(&mut f).is_err());
        drop(f);
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert!(others(d.path(), &["a.txt"]).is_empty());
    }

    #[test]
    fn stale_temp_of_dead_process_is_removed_live_one_kept() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.txt");
        // pid 0 is never a user process, so /proc/0 does not exist: stale.
        let stale = d.path().join(".a.txt.tmp-0-7");
        let own = d.path().join(format!(".a.txt.tmp-{}-999999", std::process::id()));
        let unrelated = d.path().join(".b.txt.tmp-0-1");
        for f in [&stale, &own, &unrelated] {
            fs::write(f, b"partial").unwrap();
        }
        write(&p, b"whole").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"whole");
        assert_eq!(stale.exists(), !Path::new("/proc/self").exists());
        assert!(own.exists() && unrelated.exists());
    }

    #[test]
    fn external_file_commit_and_drop() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("w.vcd");
        let x = ExternalFile::reserve(&p).unwrap();
        fs::write(x.temp_path(), b"$end\n").unwrap();
        assert!(!p.exists());
        x.commit().unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"$end\n");
        let x = ExternalFile::reserve(&p).unwrap();
        fs::write(x.temp_path(), b"partial").unwrap();
        drop(x);
        assert_eq!(fs::read(&p).unwrap(), b"$end\n");
        assert!(others(d.path(), &["w.vcd"]).is_empty());
    }

    #[test]
    fn many_writers_of_one_destination_never_expose_a_mix() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.bin");
        write(&p, &[0u8; 4096]).unwrap();
        std::thread::scope(|s| {
            for t in 1..=4u8 {
                let p = &p;
                s.spawn(move || {
                    for _ in 0..50 {
                        write(p, &[t; 4096]).unwrap();
                    }
                });
            }
            for _ in 0..200 {
                let b = fs::read(&p).unwrap();
                assert_eq!(b.len(), 4096);
                assert!(b.iter().all(|&x| x == b[0]), "mixed contents");
            }
        });
        assert!(others(d.path(), &["a.bin"]).is_empty());
    }

    #[test]
    fn pause_hook_stops_with_part_of_the_bytes_in_the_temp_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.txt");
        let mut f = AtomicFile::create(&p).unwrap();
        // Set directly: the environment variable is process-wide and tests run in parallel.
        f.pause = Some(Duration::from_millis(400));
        let tmp = f.temp_path().to_path_buf();
        let writer = std::thread::spawn(move || {
            f.write_all(b"0123456789").unwrap();
            f.commit().unwrap();
        });
        let t0 = std::time::Instant::now();
        while fs::metadata(&tmp).map(|m| m.len()).unwrap_or(0) == 0 {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "no bytes reached the temporary file"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(fs::read(&tmp).unwrap(), b"01234");
        assert!(!p.exists());
        writer.join().unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"0123456789");
        assert!(t0.elapsed() >= Duration::from_millis(300));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any contents, written in any chunking, read back exactly, over any old contents.
        #[test]
        fn streaming_round_trip(old in proptest::collection::vec(any::<u8>(), 0..300),
                                data in proptest::collection::vec(any::<u8>(), 0..3000),
                                chunk in 1usize..500) {
            let d = tempfile::tempdir().unwrap();
            let p = d.path().join("f");
            fs::write(&p, &old).unwrap();
            let mut f = AtomicFile::create(&p).unwrap();
            for c in data.chunks(chunk) {
                f.write_all(c).unwrap();
            }
            prop_assert_eq!(fs::read(&p).unwrap(), old);
            f.commit().unwrap();
            prop_assert_eq!(fs::read(&p).unwrap(), data);
            prop_assert!(others(d.path(), &["f"]).is_empty());
        }
    }
}
