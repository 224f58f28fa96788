//! The bundle file: a zip, which every auditor's desktop opens, written to a temporary
//! name and renamed once complete so a crash never leaves a bundle that looks finished.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use super::ExportError;

pub struct BundleWriter {
    zip: ZipWriter<BufWriter<File>>,
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
        Ok(Self { zip: ZipWriter::new(BufWriter::with_capacity(1 << 20, file)), partial, target: target.to_path_buf() })
    }

    /// Starts an entry; what is written to the returned writer goes into it.
    pub fn entry(&mut self, name: &str, compress: bool) -> Result<&mut ZipWriter<BufWriter<File>>, ExportError> {
        let method = if compress { CompressionMethod::Deflated } else { CompressionMethod::Stored };
        // Zip64 always: data files can pass 4 GiB.
        let options = SimpleFileOptions::default().compression_method(method).large_file(true);
        self.zip.start_file(name, options)?;
        Ok(&mut self.zip)
    }

    pub fn add(&mut self, name: &str, bytes: &[u8]) -> Result<(), ExportError> {
        let partial = self.partial.display().to_string();
        self.entry(name, true)?.write_all(bytes).map_err(|e| ExportError::Io { path: partial, source: e })
    }

    /// Completes the zip, makes it durable and gives it its final name.
    pub fn finish(self) -> Result<PathBuf, ExportError> {
        let io = |e| ExportError::Io { path: self.partial.display().to_string(), source: e };
        let out = self.zip.finish()?;
        let file = out.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&self.partial, &self.target).map_err(io)?;
        Ok(self.target)
    }

    /// Removes the unfinished file (an export that failed).
    pub fn abandon(self) {
        let _ = std::fs::remove_file(&self.partial);
    }
}

/// A bundle opened for reading.
pub struct BundleReader {
    zip: ZipArchive<File>,
}

impl BundleReader {
    pub fn open(path: &Path) -> Result<Self, String> {
        let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let zip = ZipArchive::new(file).map_err(|e| format!("{} is not a readable zip: {e}", path.display()))?;
        Ok(Self { zip })
    }

    pub fn names(&self) -> Vec<String> {
        self.zip.file_names().map(str::to_string).collect()
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
