//! The on-disk cache: one file per compiled image, self-validating.
//!
//! Entry layout (little endian):
//! `magic[8] = "DSAJIT\0\x01"`, `format: u32`, `kind: u8`, `key[32]`, `len: u64`,
//! `checksum[32]` (blake3 of the payload), `payload[len]`.
//! Anything that does not check out (short, wrong magic/format/key/length/checksum) is a miss:
//! reported once, recompiled and replaced, never loaded. Writes go to a temp file in the same
//! folder and are renamed into place, so readers see a whole entry or none, and two processes
//! writing the same entry both succeed (the last rename wins; both files are valid).

use crate::nvrtc::ImageKind;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

const MAGIC: &[u8; 8] = b"DSAJIT\0\x01";
/// Bumped whenever the entry layout or key derivation changes.
pub const FORMAT_VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 1 + 32 + 8 + 32;

/// A cache key: blake3 of everything that changes the compiled binary.
pub type Key = [u8; 32];

/// Why an entry on disk was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    /// Shorter than its header or its stated length.
    Truncated,
    /// Not one of our entries, or an older format.
    Foreign,
    /// Written for another key (a hash collision in the name, or a copied file).
    WrongKey,
    /// The payload does not match its checksum.
    Corrupt,
}

/// A cache folder. `None` from [`DiskCache::open`] means memory-only.
#[derive(Debug)]
pub struct DiskCache {
    dir: PathBuf,
    warned_unwritable: AtomicBool,
}

impl DiskCache {
    /// Use `dir` (created if missing). Returns `None`, after one warning, if it cannot be created.
    pub fn open(dir: PathBuf) -> Option<DiskCache> {
        if let Err(e) = std::fs::create_dir_all(&dir) {
            eprintln!(
                "dsa-jit-cache: cache folder {} unusable ({e}); compiled kernels stay in memory only",
                dir.display()
            );
            return None;
        }
        Some(DiskCache {
            dir,
            warned_unwritable: AtomicBool::new(false),
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file holding `key`'s entry.
    pub fn path_for(&self, key: &Key) -> PathBuf {
        self.dir.join(format!("{}.bin", hex(key)))
    }

    /// The image for `key`, if a valid entry exists. An invalid one is reported and removed.
    pub fn load(&self, key: &Key) -> Option<(ImageKind, Vec<u8>)> {
        let path = self.path_for(key);
        let bytes = std::fs::read(&path).ok()?;
        match decode(&bytes, key) {
            Ok(hit) => Some(hit),
            Err(why) => {
                eprintln!(
                    "dsa-jit-cache: ignoring cache entry {} ({why:?}); it will be recompiled",
                    path.display()
                );
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Publish an entry atomically. Failure is a warning (once), never an error.
    pub fn store(&self, key: &Key, kind: ImageKind, image: &[u8]) {
        let result = (|| -> std::io::Result<()> {
            let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
            tmp.write_all(&encode(key, kind, image))?;
            tmp.as_file().sync_data()?;
            tmp.persist(self.path_for(key))?;
            Ok(())
        })();
        if let Err(e) = result {
            if !self.warned_unwritable.swap(true, Ordering::Relaxed) {
                eprintln!(
                    "dsa-jit-cache: cannot write to {} ({e}); compiled kernels stay in memory only",
                    self.dir.display()
                );
            }
        }
    }

    /// Every entry file in the folder with its size.
    pub fn entries(&self) -> Vec<(PathBuf, u64)> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut v: Vec<_> = rd
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "bin"))
            .map(|e| (e.path(), e.metadata().map(|m| m.len()).unwrap_or(0)))
            .collect();
        v.sort();
        v
    }

    /// Remove every entry; returns how many were removed.
    pub fn clear(&self) -> usize {
        self.entries()
            .into_iter()
            .filter(|(p, _)| std::fs::remove_file(p).is_ok())
            .count()
    }
}

fn encode(key: &Key, kind: ImageKind, image: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + image.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.push(match kind {
        ImageKind::Cubin => 0,
        ImageKind::Ptx => 1,
    });
    out.extend_from_slice(key);
    out.extend_from_slice(&(image.len() as u64).to_le_bytes());
    out.extend_from_slice(blake3::hash(image).as_bytes());
    out.extend_from_slice(image);
    out
}

fn decode(bytes: &[u8], key: &Key) -> Result<(ImageKind, Vec<u8>), Reject> {
    if bytes.len() < HEADER_LEN {
        return Err(Reject::Truncated);
    }
    let (header, payload) = bytes.split_at(HEADER_LEN);
    if &header[..8] != MAGIC || header[8..12] != FORMAT_VERSION.to_le_bytes() {
        return Err(Reject::Foreign);
    }
    let kind = match header[12] {
        0 => ImageKind::Cubin,
        1 => ImageKind::Ptx,
        _ => return Err(Reject::Foreign),
    };
    if header[13..45] != key[..] {
        return Err(Reject::WrongKey);
    }
    let len = u64::from_le_bytes(header[45..53].try_into().expect("8 bytes"));
    if payload.len() as u64 != len {
        return Err(if (payload.len() as u64) < len {
            Reject::Truncated
        } else {
            Reject::Corrupt
        });
    }
    if blake3::hash(payload).as_bytes()[..] != header[53..85] {
        return Err(Reject::Corrupt);
    }
    Ok((kind, payload.to_vec()))
}

fn hex(key: &Key) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: Key = [7; 32];

    #[test]
    fn round_trip() {
        let enc = encode(&KEY, ImageKind::Cubin, b"payload");
        assert_eq!(
            decode(&enc, &KEY),
            Ok((ImageKind::Cubin, b"payload".to_vec()))
        );
    }

    #[test]
    fn every_kind_of_damage_is_rejected() {
        let enc = encode(&KEY, ImageKind::Ptx, b"some ptx text");
        assert_eq!(decode(&enc[..10], &KEY), Err(Reject::Truncated));
        assert_eq!(decode(&enc[..enc.len() - 1], &KEY), Err(Reject::Truncated));
        let mut longer = enc.clone();
        longer.push(0);
        assert_eq!(decode(&longer, &KEY), Err(Reject::Corrupt));
        let mut flipped = enc.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(decode(&flipped, &KEY), Err(Reject::Corrupt));
        assert_eq!(decode(&enc, &[8; 32]), Err(Reject::WrongKey));
        let mut foreign = enc.clone();
        foreign[0] = b'X';
        assert_eq!(decode(&foreign, &KEY), Err(Reject::Foreign));
        let mut old = enc;
        old[8] = 0;
        assert_eq!(decode(&old, &KEY), Err(Reject::Foreign));
    }
}
