//! Document files under `<site>/documents/`, written as OpenEMR writes them (0700 folders, the
//! file named by its drive uuid) but through a temporary name and a rename, so no reader ever
//! sees half a file. An upload streams through here a piece at a time: it is never whole in memory.

use std::{
    io::{self, Read, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

use base64::{engine::general_purpose::STANDARD, write::EncoderWriter};
use sha3::{Digest, Sha3_512};

use crate::php::crypto_gen::{KeyPair, StreamEncryptor};

/// Bytes kept from the start of an upload to tell its type.
const HEAD: usize = 512;

/// `<documents>/<pid>/`, created 0700 as OpenEMR creates it.
pub fn patient_dir(documents: &Path, pid: i64) -> io::Result<PathBuf> {
    let dir = documents.join(pid.to_string());
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
    Ok(dir)
}

fn create_private(path: &Path) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

/// A temporary file that is removed unless it was renamed into place.
struct TempFile {
    path: PathBuf,
    kept: bool,
}

impl TempFile {
    fn new(dir: &Path, suffix: &str) -> Self {
        Self { path: dir.join(format!(".mmt-{}.{suffix}", uuid::Uuid::new_v4().simple())), kept: false }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// An upload being received: plaintext is hashed and, with keys, encrypted as it arrives.
pub struct Staging {
    dir: PathBuf,
    file: std::fs::File,
    temp: TempFile,
    hasher: Sha3_512,
    encryptor: Option<StreamEncryptor>,
    size: u64,
    head: Vec<u8>,
}

/// A received upload, complete on disk under a temporary name.
pub struct Staged {
    temp: TempFile,
    pub size: u64,
    /// Hex SHA3-512 of the plaintext, as `hash('sha3-512', $data)`.
    pub hash: String,
    pub head: Vec<u8>,
}

impl Staging {
    pub fn new(dir: PathBuf, keys: Option<&KeyPair>) -> io::Result<Self> {
        let temp = TempFile::new(&dir, "part");
        let file = create_private(&temp.path)?;
        Ok(Self {
            dir,
            file,
            temp,
            hasher: Sha3_512::new(),
            encryptor: keys.map(StreamEncryptor::new),
            size: 0,
            head: Vec::new(),
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn write(&mut self, piece: &[u8]) -> io::Result<()> {
        self.hasher.update(piece);
        self.size += piece.len() as u64;
        let room = HEAD.saturating_sub(self.head.len());
        self.head.extend_from_slice(&piece[..room.min(piece.len())]);
        match &mut self.encryptor {
            Some(enc) => self.file.write_all(&enc.update(piece)),
            None => self.file.write_all(piece),
        }
    }

    /// Completes the file. Encrypted, it becomes `"007" + base64(mac ‖ iv ‖ ciphertext)`: the head
    /// is known only now, so the ciphertext is copied once more through a streaming encoder.
    pub fn finish(mut self) -> io::Result<Staged> {
        let hash = hex::encode(self.hasher.finalize());
        let temp = match self.encryptor.take() {
            None => {
                self.file.sync_all()?;
                self.temp
            }
            Some(enc) => {
                let sealed = enc.finish();
                self.file.write_all(&sealed.last)?;
                drop(self.file);
                let out = TempFile::new(&self.dir, "enc");
                let mut file = create_private(&out.path)?;
                file.write_all(StreamEncryptor::PREFIX)?;
                let mut encoder = EncoderWriter::new(file, &STANDARD);
                encoder.write_all(&sealed.head)?;
                io::copy(&mut std::fs::File::open(&self.temp.path)?, &mut encoder)?;
                encoder.finish()?.sync_all()?;
                out
            }
        };
        Ok(Staged { temp, size: self.size, hash, head: self.head })
    }
}

impl Staged {
    /// Moves the file to its final name; from here on it is the caller's to remove on failure.
    pub fn publish(mut self, path: &Path) -> io::Result<()> {
        std::fs::rename(&self.temp.path, path)?;
        self.temp.kept = true;
        Ok(())
    }
}

/// A whole stored file.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    std::fs::File::open(path)?.read_to_end(&mut out)?;
    Ok(out)
}
