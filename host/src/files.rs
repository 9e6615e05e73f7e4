//! Files that must never be seen half written: the compile cache's artifacts and the
//! data directory's deployment records both go through [`write_atomically`]. A module
//! of its own, so neither borrows the other's.

/// Writes a file through a temporary file and a rename, so readers never see half of
/// it; the file is synced before the rename and its directory after, so a power loss
/// leaves the old file or the new one, never an empty one or none.
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let temporary = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
