//! The one way every mpq crate writes a file: whole or not at all. The content goes to a
//! uniquely named hidden temporary file in the target's folder (same extension, so writers
//! that pick a format from the name, like plotters, still can), which is then renamed over
//! the target. Readers never see half a file, a crash leaves the old file or none, and two
//! processes writing the same file never interleave: whichever renames last wins, whole.

use std::io::Write;
use std::path::Path;

/// Writes `path` whole through a temporary file that `fill` writes, either through the open
/// file it is given or by the temporary file's path (for libraries that open files by
/// name). The target's folder must exist. Errors of `fill` are returned as they are; I/O
/// errors of the temporary file and the rename become `E`.
pub fn write_with<E: From<std::io::Error>>(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File, &Path) -> Result<(), E>,
) -> Result<(), E> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let ext = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    let mut tmp = tempfile::Builder::new().prefix(".").suffix(&ext).tempfile_in(dir)?;
    let tmp_path = tmp.path().to_path_buf();
    fill(tmp.as_file_mut(), &tmp_path)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Writes `bytes` to `path` whole (see [`write_with`]).
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_with(path, |f, _| f.write_all(bytes))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn replaces_whole_leaves_no_temporary_file_and_keeps_the_old_file_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.svg");
        write(&f, b"one").unwrap();
        write(&f, b"two").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"two");
        let failed: Result<(), std::io::Error> = write_with(&f, |file, tmp| {
            assert_eq!(tmp.extension().unwrap(), "svg", "the temporary file keeps the extension");
            file.write_all(b"half")?;
            Err(std::io::Error::other("writer failed"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&f).unwrap(), b"two", "a failed write leaves the old file");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.svg")]);
        assert!(write(&dir.path().join("missing/b"), b"x").is_err(), "the folder must exist");
    }
}
