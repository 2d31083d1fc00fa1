//! Audio files on disk, sealed: `<dir>/<id>.part` while an upload is in progress, `<dir>/<id>.audio`
//! once it is complete and verified. A file is a header (`MMTA`, format 1, the data key that seals
//! it) and records of at most 1 MiB of audio, each its length, nonce, ciphertext and tag. A record
//! is bound to the file's name, its place and its offset, so records cannot be moved, reordered or
//! swapped between files; the size the database recorded catches a file cut short. Files written
//! before sealing (no header) are read as they are until a key rotation seals them.

use std::{
    io::{self, SeekFrom},
    path::{Path, PathBuf},
    sync::Arc,
};

use bytes::Bytes;
use futures_util::{Stream, stream};
use sha2::{Digest, Sha256};
use tokio::{
    fs::{self, File, OpenOptions},
    io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt},
};

use crate::storage::vault::{Keyring, SealError, Vault};

const MAGIC: &[u8; 5] = b"MMTA\x01";
const HEADER: u64 = 9;
const RECORD_MAX: usize = 1 << 20;
/// Length, nonce and tag.
const RECORD_OVERHEAD: u64 = 4 + 12 + 16;

pub struct AudioFiles<'a> {
    dir: PathBuf,
    vault: &'a Vault,
    /// Of complete files: `audio` unless other sealed files (FHIR export's NDJSON) use the format.
    extension: &'static str,
}

/// Where a file's records are, read from their lengths (their contents are checked when opened).
#[derive(Debug, Default)]
struct Layout {
    /// `None`: a file from before sealing, all plain audio.
    key: Option<u32>,
    /// Plain offset and file position of each whole record.
    records: Vec<(u64, u64, u32)>,
    len: u64,
    /// File position after the last whole record.
    end: u64,
}

impl Layout {
    async fn of(file: &mut File) -> io::Result<Self> {
        let size = file.metadata().await?.len();
        let mut header = [0; HEADER as usize];
        file.seek(SeekFrom::Start(0)).await?;
        if size < HEADER || file.read_exact(&mut header).await.is_err() || !header.starts_with(MAGIC) {
            return Ok(Self { key: None, records: Vec::new(), len: size, end: size });
        }
        let key = u32::from_be_bytes(header[MAGIC.len()..].try_into().expect("4 bytes"));
        let (mut records, mut len, mut pos) = (Vec::new(), 0, HEADER);
        while pos + RECORD_OVERHEAD <= size {
            file.seek(SeekFrom::Start(pos)).await?;
            let plain = file.read_u32().await?;
            let next = pos + RECORD_OVERHEAD + u64::from(plain);
            if next > size {
                break;
            }
            records.push((len, pos, plain));
            len += u64::from(plain);
            pos = next;
        }
        Ok(Self { key: Some(key), records, len, end: pos })
    }
}

fn aad(name: &str, index: usize, offset: u64) -> Vec<u8> {
    let mut aad = format!("mmt audio {name}/").into_bytes();
    aad.extend_from_slice(&(index as u64).to_be_bytes());
    aad.extend_from_slice(&offset.to_be_bytes());
    aad
}

fn sealing(e: SealError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl<'a> AudioFiles<'a> {
    pub fn new(dir: &Path, vault: &'a Vault) -> Self {
        Self { dir: dir.to_path_buf(), vault, extension: "audio" }
    }

    pub fn with_extension(self, extension: &'static str) -> Self {
        Self { extension, ..self }
    }

    fn part(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.part"))
    }

    fn done(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.{}", self.extension))
    }

    /// The keys, read again when `key` is one this replica has not seen (another one added it).
    async fn keys(&self, key: Option<u32>) -> io::Result<Arc<Keyring>> {
        let keys = self.vault.keys().await.map_err(io::Error::other)?;
        match key {
            Some(k) if !keys.has(k) => self.vault.reload().await.map_err(io::Error::other),
            _ => Ok(keys),
        }
    }

    /// Bytes of audio in the partial file's whole records; 0 when there is none (or it is from
    /// before sealing, so the upload starts again).
    pub async fn part_len(&self, id: &str) -> io::Result<u64> {
        match File::open(self.part(id)).await {
            Ok(mut file) => Ok(Layout::of(&mut file).await?).map(|l| if l.key.is_some() { l.len } else { 0 }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Seals `bytes` as the audio from `offset` on and flushes them to disk before returning.
    /// Anything past `offset` came from a chunk the database never recorded, so it is cut off first.
    pub async fn write(&self, id: &str, offset: u64, bytes: &[u8]) -> io::Result<()> {
        fs::create_dir_all(&self.dir).await?;
        self.write_to(&self.part(id), id, offset, bytes).await
    }

    async fn write_to(&self, path: &Path, name: &str, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut file =
            OpenOptions::new().create(true).read(true).write(true).truncate(false).open(path).await?;
        let layout = Layout::of(&mut file).await?;
        let (key, index, pos) = match (layout.key, offset) {
            (_, 0) => {
                let key = self.keys(None).await?.current();
                file.set_len(0).await?;
                file.seek(SeekFrom::Start(0)).await?;
                file.write_all(MAGIC).await?;
                file.write_all(&key.to_be_bytes()).await?;
                (key, 0, HEADER)
            }
            (Some(key), _) if layout.len == offset => (key, layout.records.len(), layout.end),
            (Some(key), _) => match layout.records.iter().position(|r| r.0 == offset) {
                Some(index) => (key, index, layout.records[index].1),
                None => {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "no record ends at the offset"));
                }
            },
            (None, _) => return Err(io::Error::new(io::ErrorKind::InvalidData, "the file is not sealed")),
        };
        let keys = self.keys(Some(key)).await?;
        file.set_len(pos).await?;
        file.seek(SeekFrom::Start(pos)).await?;
        let mut sealed = Vec::with_capacity(bytes.len() + 64);
        let mut at = offset;
        for (i, chunk) in bytes.chunks(RECORD_MAX).enumerate() {
            sealed.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
            sealed.extend(keys.seal_with(key, &aad(name, index + i, at), chunk).map_err(sealing)?);
            at += chunk.len() as u64;
        }
        file.write_all(&sealed).await?;
        file.sync_all().await
    }

    pub async fn part_sha256(&self, id: &str) -> io::Result<[u8; 32]> {
        let mut stored = Stored::open(self, self.part(id), id).await?;
        let mut hasher = Sha256::new();
        let mut at = 0;
        while let Some(piece) = stored.piece(at, stored.len.saturating_sub(1)).await? {
            at += piece.len() as u64;
            hasher.update(&piece);
        }
        Ok(hasher.finalize().into())
    }

    pub async fn discard(&self, id: &str) -> io::Result<()> {
        match fs::remove_file(self.part(id)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Moves the verified file into place; the directory is synced so the rename survives a crash.
    pub async fn complete(&self, id: &str) -> io::Result<()> {
        self.replace(&self.part(id), id).await
    }

    async fn replace(&self, from: &Path, id: &str) -> io::Result<()> {
        fs::rename(from, self.done(id)).await?;
        File::open(&self.dir).await?.sync_all().await
    }

    /// The complete audio.
    pub async fn open(&self, id: &str) -> io::Result<StoredAudio> {
        Stored::open(self, self.done(id), id).await.map(StoredAudio)
    }

    /// The names of the complete audio files.
    pub async fn completed(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        let mut dir = match fs::read_dir(&self.dir).await {
            Ok(dir) => dir,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(names),
            Err(e) => return Err(e),
        };
        while let Some(entry) = dir.next_entry().await? {
            let name = entry.file_name();
            let id = name.to_str().and_then(|n| n.strip_suffix(self.extension)?.strip_suffix('.'));
            if let Some(id) = id {
                names.push(id.to_string());
            }
        }
        Ok(names)
    }

    /// Seals a complete file again under the current data key; false when it already was.
    pub async fn reseal(&self, id: &str) -> io::Result<bool> {
        let mut stored = Stored::open(self, self.done(id), id).await?;
        if stored.layout.key == Some(self.keys(None).await?.current()) {
            return Ok(false);
        }
        let fresh = self.dir.join(format!("{id}.reseal"));
        self.write_to(&fresh, id, 0, &[]).await?;
        let mut at = 0;
        while let Some(piece) = stored.piece(at, stored.len.saturating_sub(1)).await? {
            self.write_to(&fresh, id, at, &piece).await?;
            at += piece.len() as u64;
        }
        self.replace(&fresh, id).await?;
        Ok(true)
    }
}

/// An opened sealed (or older, plain) file.
struct Stored {
    file: File,
    layout: Layout,
    keys: Arc<Keyring>,
    name: String,
    len: u64,
}

impl Stored {
    async fn open(files: &AudioFiles<'_>, path: PathBuf, name: &str) -> io::Result<Self> {
        let mut file = File::open(path).await?;
        let layout = Layout::of(&mut file).await?;
        let keys = files.keys(layout.key).await?;
        Ok(Self { file, len: layout.len, layout, keys, name: name.to_string() })
    }

    /// The audio from `at` up to the end of its record (or 256 KiB of a plain file), no further
    /// than `last`; `None` past `last`.
    async fn piece(&mut self, at: u64, last: u64) -> io::Result<Option<Vec<u8>>> {
        if at > last || at >= self.len {
            return Ok(None);
        }
        let Some(key) = self.layout.key else {
            let n = (last + 1 - at).min(256 * 1024);
            let mut buf = vec![0; n as usize];
            self.file.seek(SeekFrom::Start(at)).await?;
            self.file.read_exact(&mut buf).await?;
            return Ok(Some(buf));
        };
        let index = self.layout.records.partition_point(|r| r.0 <= at) - 1;
        let (offset, pos, plain) = self.layout.records[index];
        let mut sealed = vec![0; (RECORD_OVERHEAD - 4) as usize + plain as usize];
        self.file.seek(SeekFrom::Start(pos + 4)).await?;
        self.file.read_exact(&mut sealed).await?;
        let record = self.keys.open_with(key, &aad(&self.name, index, offset), &sealed).map_err(sealing)?;
        let end = (offset + u64::from(plain)).min(last + 1);
        Ok(Some(record[(at - offset) as usize..(end - offset) as usize].to_vec()))
    }
}

pub struct StoredAudio(Stored);

impl StoredAudio {
    /// Bytes of audio.
    pub fn size(&self) -> u64 {
        self.0.len
    }

    /// Bytes `first..=last`, opened record by record as they are sent rather than loaded whole.
    pub fn reader(self, first: u64, last: u64) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        stream::try_unfold((self.0, first), move |(mut stored, at)| async move {
            Ok(stored.piece(at, last).await?.map(|piece| {
                let next = at + piece.len() as u64;
                (Bytes::from(piece), (stored, next))
            }))
        })
    }
}
