//! The bundle file: a zip, which every auditor's desktop opens, written to a temporary
//! name and renamed once complete so a crash never leaves a bundle that looks finished.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use super::ExportError;

/// A bundle being written to `<target>.partial`. Dropped before [`BundleWriter::finish`]
/// (the export failed, or its request was cancelled and its future dropped), the partial
/// file is removed: nothing half-written is left in the work directory.
pub struct BundleWriter {
    zip: Option<ZipWriter<BufWriter<File>>>,
    partial: PathBuf,
    target: PathBuf,
}

impl BundleWriter {
    pub fn create(target: &Path) -> Result<Self, ExportError> {
        let partial = target.with_extension("zip.partial");
        let io = |e| ExportError::Io { path: partial.display().to_string(), source: e };
        if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = File::create(&partial).map_err(io)?;
        let zip = ZipWriter::new(BufWriter::with_capacity(1 << 20, file));
        Ok(Self { zip: Some(zip), partial, target: target.to_path_buf() })
    }

    /// Starts an entry; what is written to the returned writer goes into it.
    pub fn entry(&mut self, name: &str, compress: bool) -> Result<&mut ZipWriter<BufWriter<File>>, ExportError> {
        let method = if compress { CompressionMethod::Deflated } else { CompressionMethod::Stored };
        // Zip64 always: data files can pass 4 GiB.
        let options = SimpleFileOptions::default().compression_method(method).large_file(true);
        let zip = self.zip.as_mut().expect("open until finished");
        zip.start_file(name, options)?;
        Ok(zip)
    }

    pub fn add(&mut self, name: &str, bytes: &[u8]) -> Result<(), ExportError> {
        let partial = self.partial.display().to_string();
        self.entry(name, true)?.write_all(bytes).map_err(|e| ExportError::Io { path: partial, source: e })
    }

    /// Completes the zip, makes it durable and gives it its final name.
    pub fn finish(mut self) -> Result<PathBuf, ExportError> {
        let io = |e| ExportError::Io { path: self.partial.display().to_string(), source: e };
        let out = self.zip.take().expect("open until finished").finish()?;
        let file = out.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&self.partial, &self.target).map_err(io)?;
        Ok(self.target.clone())
    }

    /// Removes the unfinished file (an export that failed).
    pub fn abandon(self) {
        drop(self);
    }
}

impl Drop for BundleWriter {
    fn drop(&mut self) {
        // Still open: not finished. A finished bundle has been renamed already.
        if self.zip.take().is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

/// A bundle opened for reading.
pub struct BundleReader {
    zip: ZipArchive<File>,
    path: PathBuf,
}

impl BundleReader {
    pub fn open(path: &Path) -> Result<Self, String> {
        let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let zip = ZipArchive::new(file).map_err(|e| format!("{} is not a readable zip: {e}", path.display()))?;
        Ok(Self { zip, path: path.to_path_buf() })
    }

    pub fn names(&self) -> Vec<String> {
        self.zip.file_names().map(str::to_string).collect()
    }

    /// Every name of the zip's central directory, in order, duplicates included: the zip
    /// reader keeps one entry per name, and a bundle holding a tampered copy beside the
    /// original must not verify.
    pub fn central_directory_names(&self) -> Result<Vec<String>, String> {
        File::open(&self.path)
            .and_then(central_directory_names)
            .map_err(|e| format!("the zip's central directory cannot be read: {e}"))
    }

    /// The whole entry (for the manifest and its signature, which are small).
    pub fn read(&mut self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, String> {
        let entry = match self.zip.by_name(name) {
            Ok(entry) => entry,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(format!("cannot read `{name}`: {e}")),
        };
        let mut bytes = Vec::new();
        entry.take(limit).read_to_end(&mut bytes).map_err(|e| format!("cannot read `{name}`: {e}"))?;
        Ok(Some(bytes))
    }

    /// SHA-256 (hex) and size of an entry's content, streamed.
    pub fn hash(&mut self, name: &str, progress: &dyn Fn(u64)) -> Result<Option<(String, u64)>, String> {
        use sha2::{Digest, Sha256};
        let mut entry = match self.zip.by_name(name) {
            Ok(entry) => entry,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(format!("cannot read `{name}`: {e}")),
        };
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = entry.read(&mut buf).map_err(|e| format!("cannot read `{name}`: {e}"))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as u64;
            progress(n as u64);
        }
        Ok(Some((hex::encode(hasher.finalize()), size)))
    }
}

/// Largest central directory read (names only; ours are a few kilobytes).
const MAX_CENTRAL_DIRECTORY: u64 = 64 << 20;

fn le16(b: &[u8], at: usize) -> u64 {
    u16::from_le_bytes([b[at], b[at + 1]]) as u64
}

fn le32(b: &[u8], at: usize) -> u64 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes")) as u64
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// The names of the central directory of the zip in `file` (zip64 too).
fn central_directory_names(mut file: File) -> std::io::Result<Vec<String>> {
    use std::io::{Seek, SeekFrom};
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let len = file.seek(SeekFrom::End(0))?;
    let tail_len = len.min(22 + 65_535);
    let mut tail = vec![0u8; tail_len as usize];
    file.seek(SeekFrom::Start(len - tail_len))?;
    file.read_exact(&mut tail)?;
    let eocd = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| tail[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
        .ok_or_else(|| bad("no end-of-central-directory record"))?;
    let mut entries = le16(&tail, eocd + 10);
    let mut size = le32(&tail, eocd + 12);
    let mut offset = le32(&tail, eocd + 16);
    if entries == 0xFFFF || size == 0xFFFF_FFFF || offset == 0xFFFF_FFFF {
        let locator = eocd.checked_sub(20).ok_or_else(|| bad("no zip64 locator"))?;
        if tail[locator..locator + 4] != [0x50, 0x4b, 0x06, 0x07] {
            return Err(bad("no zip64 locator"));
        }
        let mut record = [0u8; 56];
        file.seek(SeekFrom::Start(le64(&tail, locator + 8)))?;
        file.read_exact(&mut record)?;
        if record[..4] != [0x50, 0x4b, 0x06, 0x06] {
            return Err(bad("no zip64 end-of-central-directory record"));
        }
        entries = le64(&record, 32);
        size = le64(&record, 40);
        offset = le64(&record, 48);
    }
    if size > MAX_CENTRAL_DIRECTORY || offset.saturating_add(size) > len {
        return Err(bad("the central directory is larger than the bundle allows"));
    }
    let mut directory = vec![0u8; size as usize];
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(&mut directory)?;
    let mut names = Vec::new();
    let mut at = 0usize;
    while at + 46 <= directory.len() && directory[at..at + 4] == [0x50, 0x4b, 0x01, 0x02] {
        let (name_len, extra, comment) = (
            le16(&directory, at + 28) as usize,
            le16(&directory, at + 30) as usize,
            le16(&directory, at + 32) as usize,
        );
        let name = directory.get(at + 46..at + 46 + name_len).ok_or_else(|| bad("a name runs past the directory"))?;
        names.push(String::from_utf8_lossy(name).into_owned());
        at += 46 + name_len + extra + comment;
    }
    if names.len() as u64 != entries {
        return Err(bad(&format!("the directory lists {} entries, its end record says {entries}", names.len())));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_names_in_the_central_directory_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.zip");
        let mut zip = ZipWriter::new(File::create(&path).unwrap());
        for name in ["data/a.csv", "data/b.csv"] {
            zip.start_file(name, SimpleFileOptions::default()).unwrap();
            zip.write_all(name.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
        let reader = BundleReader::open(&path).unwrap();
        assert_eq!(reader.central_directory_names().unwrap(), ["data/a.csv", "data/b.csv"]);
        // Rename the second entry to the first's name in the central directory only: the zip
        // reader then shows one `data/a.csv`, the directory two.
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.windows(10).rposition(|w| w == b"data/b.csv").unwrap();
        bytes[at..at + 10].copy_from_slice(b"data/a.csv");
        std::fs::write(&path, &bytes).unwrap();
        let reader = BundleReader::open(&path).unwrap();
        assert_eq!(reader.names(), ["data/a.csv"]);
        assert_eq!(reader.central_directory_names().unwrap(), ["data/a.csv", "data/a.csv"]);
    }
}
