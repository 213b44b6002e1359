//! A tmpfs of the test's own (as root, which CI is), for disk-full tests: mounted under a
//! temp dir, unmounted when dropped (even on panic).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Tmpfs {
    pub mnt: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// A tmpfs of `size` (`16m`, `64m`) at `<tempdir>/mnt`; None (after saying so loudly)
    /// when not running as root.
    pub fn mount(size: &str) -> Option<Tmpfs> {
        let uid = Command::new("id").arg("-u").output().unwrap();
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            eprintln!("\n*** SKIPPED: not root, cannot mount a tmpfs for the disk-full test ***\n");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size},mode=0700"))
            .arg("tmpfs")
            .arg(&mnt)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs at {}", mnt.display());
        Some(Tmpfs { mnt, _dir: dir })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
    }
}

/// Writes `path` until the file system refuses (ENOSPC) or `limit` bytes are written;
/// returns the bytes written.
pub fn fill_up_to(path: &Path, limit: u64) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0xa5u8; 64 * 1024];
    let mut written = 0u64;
    while written < limit {
        let n = chunk.len().min((limit - written) as usize);
        match f.write(&chunk[..n]) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    // Whatever is left in the page cache must hit the (full) file system now.
    let _ = f.sync_all();
    written
}

/// Writes `path` until the file system refuses (ENOSPC); returns the bytes written.
pub fn fill(path: &Path) -> u64 {
    fill_up_to(path, u64::MAX)
}
