//! Audio files on disk: `<dir>/<id>.part` while an upload is in progress, `<dir>/<id>.audio` once
//! it is complete and verified.

use std::{
    io::{self, SeekFrom},
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};
use tokio::{
    fs::{self, File, OpenOptions},
    io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, Take},
};

pub struct AudioFiles {
    dir: PathBuf,
}

impl AudioFiles {
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.to_path_buf() }
    }

    fn part(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.part"))
    }

    fn done(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.audio"))
    }

    /// Bytes in the partial file; 0 when there is none.
    pub async fn part_len(&self, id: &str) -> io::Result<u64> {
        match fs::metadata(self.part(id)).await {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Writes `bytes` at `offset` and flushes them to disk before returning. Anything past
    /// `offset` came from a chunk the database never recorded, so it is cut off first.
    pub async fn write(&self, id: &str, offset: u64, bytes: &[u8]) -> io::Result<()> {
        fs::create_dir_all(&self.dir).await?;
        let mut file =
            OpenOptions::new().create(true).write(true).truncate(false).open(self.part(id)).await?;
        file.set_len(offset).await?;
        file.seek(SeekFrom::Start(offset)).await?;
        file.write_all(bytes).await?;
        file.sync_all().await
    }

    pub async fn part_sha256(&self, id: &str) -> io::Result<[u8; 32]> {
        let mut file = File::open(self.part(id)).await?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0; 256 * 1024];
        loop {
            let n = file.read(&mut buf).await?;
            if n == 0 {
                return Ok(hasher.finalize().into());
            }
            hasher.update(&buf[..n]);
        }
    }

    pub async fn discard(&self, id: &str) -> io::Result<()> {
        match fs::remove_file(self.part(id)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Moves the verified file into place; the directory is synced so the rename survives a crash.
    pub async fn complete(&self, id: &str) -> io::Result<()> {
        fs::rename(self.part(id), self.done(id)).await?;
        File::open(&self.dir).await?.sync_all().await
    }

    /// The complete file and its length.
    pub async fn open(&self, id: &str) -> io::Result<StoredAudio> {
        let file = File::open(self.done(id)).await?;
        let len = file.metadata().await?.len();
        Ok(StoredAudio { file, len })
    }
}

pub struct StoredAudio {
    file: File,
    pub len: u64,
}

impl StoredAudio {
    /// Bytes `first..=last`, read as they are sent rather than loaded whole.
    pub async fn reader(mut self, first: u64, last: u64) -> io::Result<Take<File>> {
        self.file.seek(SeekFrom::Start(first)).await?;
        Ok(self.file.take(last + 1 - first))
    }
}
