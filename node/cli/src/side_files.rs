//! The side chain's files under `<home>/sidechain`: per group, a snapshot of the state
//! machine and the logs of the messages it accepted since.
//!
//! Every vertex and anchor the node accepts is appended to the current log, and so is every
//! gateway retirement it is fed from the main chain, in the order it handled them; a restart
//! restores the snapshot and replays the logs after it. Logs are numbered: the snapshot
//! names the first log that follows it, and a log numbered below that is covered by it.
//! Once the current log outgrows its limit (and the last snapshot), the node starts the
//! next log and writes a snapshot naming it, after the pruned history the older logs held
//! is durable in the store; then it deletes the older logs. A process killed at any point
//! leaves either the old snapshot with every log after it, or the new one with its log: a
//! restart replays what the snapshot it finds does not cover. Snapshots are synced; unless
//! `sync_log` is off, a log is synced before a vertex of this gateway in it leaves the node
//! (see [`crate::side_outbox`]), at the switch to the next log, and when a restart replays
//! it, so a power loss takes at most received messages from the last log's tail, which
//! peers send back.
//! (`<group>.log`, from nodes that took no snapshots, is log 0.)

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cpc_sidechain::Message;
use cpc_types::codec::{Decode, Encode, Reader};
use cpc_types::{Hash32, PublicKey, sha256};

/// What a retirement record starts with: a byte no message encoding starts with.
const RETIRE_RECORD: u8 = 0x80;

/// A record of the side-chain log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LogRecord {
    /// A message the state machine took (as received, or one the node sent).
    Message(Message),
    /// A gateway the main chain retired, where the node learnt of it: replayed in place,
    /// a restart prunes past the retired gateway's history as the run did (see
    /// "Retired gateways" in `cpc_sidechain`).
    Retire(PublicKey),
}

/// What a snapshot file starts with; the version follows.
const SNAPSHOT_MAGIC: &[u8; 16] = b"cpchain-side-snp";
const SNAPSHOT_VERSION: u32 = 1;

/// Where one group's side-chain files live.
#[derive(Clone, Debug)]
pub(crate) struct SideFiles {
    dir: PathBuf,
    group: Hash32,
}

impl SideFiles {
    pub(crate) fn new(dir: &Path, group: Hash32) -> SideFiles {
        SideFiles {
            dir: dir.to_path_buf(),
            group,
        }
    }

    pub(crate) fn snapshot(&self) -> PathBuf {
        self.dir.join(format!("{}.snapshot", self.group))
    }

    /// Log `id`.
    pub(crate) fn log(&self, id: u64) -> PathBuf {
        match id {
            0 => self.dir.join(format!("{}.log", self.group)),
            id => self.dir.join(format!("{}.{id}.log", self.group)),
        }
    }

    /// The group's logs, by number.
    pub(crate) fn logs(&self) -> std::io::Result<Vec<(u64, PathBuf)>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let prefix = format!("{}.", self.group);
        let mut logs = Vec::new();
        for entry in entries {
            let name = entry?.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
                continue;
            };
            // `<group>.<id>.log`, the id written as `log` writes it.
            if let Some(n) = rest.strip_suffix(".log")
                && let Ok(id) = n.parse::<u64>()
                && id > 0
                && n == id.to_string()
            {
                logs.push((id, self.log(id)));
            }
        }
        if self.log(0).is_file() {
            logs.push((0, self.log(0)));
        }
        logs.sort();
        Ok(logs)
    }

    /// Deletes the logs numbered below `id` (a snapshot covers them), once the snapshot's
    /// name is durable.
    pub(crate) fn remove_logs_below(&self, id: u64) -> std::io::Result<()> {
        sync_dir(&self.dir)?;
        for (n, path) in self.logs()? {
            if n < id {
                std::fs::remove_file(path)?;
            }
        }
        Ok(())
    }
}

/// Whether two files hold the same bytes.
fn same_bytes(a: &Path, b: &Path) -> std::io::Result<bool> {
    let (fa, fb) = (std::fs::File::open(a)?, std::fs::File::open(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let (mut ra, mut rb) = (
        std::io::BufReader::with_capacity(1 << 16, fa),
        std::io::BufReader::with_capacity(1 << 16, fb),
    );
    let (mut xa, mut xb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = ra.read(&mut xa)?;
        if n == 0 {
            return Ok(true);
        }
        match rb.read_exact(&mut xb[..n]) {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
            r => r?,
        }
        if xa[..n] != xb[..n] {
            return Ok(false);
        }
    }
}

/// Makes the directory's entries (a rename, a new file) durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// A log open for appending, shared with the outbox that syncs it.
#[derive(Debug)]
pub(crate) struct LogFile {
    pub(crate) file: std::fs::File,
    pub(crate) path: PathBuf,
}

impl LogFile {
    fn new(file: std::fs::File, path: &Path) -> Arc<LogFile> {
        Arc::new(LogFile {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Waits until what was appended is on disk.
    pub(crate) fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }
}

/// A snapshot file: the state machine's snapshot, the first log after it and the main-chain
/// height the state machine was fed to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) log: u64,
    pub(crate) fed: u64,
    pub(crate) state: Vec<u8>,
}

impl Snapshot {
    /// The snapshot of `files`, if there is one; an error says why it is unusable.
    pub(crate) fn read(files: &SideFiles) -> Result<Option<Snapshot>, String> {
        let mut bytes = match std::fs::read(files.snapshot()) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        let mut r = Reader::new(&bytes);
        let header = |r: &mut Reader<'_>| {
            let magic = r.take(SNAPSHOT_MAGIC.len())?;
            Ok::<_, cpc_types::DecodeError>((
                magic == SNAPSHOT_MAGIC,
                u32::decode_from(r)?,
                u64::decode_from(r)?,
                u64::decode_from(r)?,
                Hash32::decode_from(r)?,
            ))
        };
        let (magic, version, log, fed, sum) = header(&mut r).map_err(|e| e.to_string())?;
        let state_at = bytes.len() - r.remaining();
        if !magic {
            return Err("not a side-chain snapshot file".into());
        }
        if version != SNAPSHOT_VERSION {
            return Err(format!(
                "file version {version}, this node reads {SNAPSHOT_VERSION}"
            ));
        }
        // Over the header before the checksum, and the state.
        if sha256(&[&bytes[..state_at - 32], &bytes[state_at..]]) != sum {
            return Err("its checksum does not match (a damaged file)".into());
        }
        // In place: a snapshot may be hundreds of MiB, and a copy would double them at start.
        bytes.drain(..state_at);
        Ok(Some(Snapshot {
            log,
            fed,
            state: bytes,
        }))
    }

    /// Writes it as the snapshot of `files`, durably: to a new file, synced, then renamed
    /// over the old one.
    pub(crate) fn write(&self, files: &SideFiles) -> std::io::Result<()> {
        std::fs::create_dir_all(&files.dir)?;
        let path = files.snapshot();
        let tmp = path.with_extension("snapshot.tmp");
        let mut head = Vec::with_capacity(64);
        head.extend_from_slice(SNAPSHOT_MAGIC);
        SNAPSHOT_VERSION.encode_to(&mut head);
        self.log.encode_to(&mut head);
        self.fed.encode_to(&mut head);
        // Over the header too: a damaged log number would skip logs, and then delete them.
        sha256(&[&head, &self.state]).encode_to(&mut head);
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&head)?;
        f.write_all(&self.state)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &path)?;
        sync_dir(&files.dir)
    }
}

/// The append-only log of accepted side messages (length-prefixed encodings). It is read
/// one record at a time, so a restart holds one record in memory however long the log.
pub(crate) struct SideLog {
    path: PathBuf,
    /// Open for appending once the log has been replayed; `None` again after a failed write.
    file: Option<Arc<LogFile>>,
    /// Its length once open for appending.
    bytes: u64,
}

impl SideLog {
    /// The log at `path`, not yet read.
    pub(crate) fn new(path: PathBuf) -> SideLog {
        SideLog {
            path,
            file: None,
            bytes: 0,
        }
    }

    /// A new, empty log at `path`, open for appending; its name is durable.
    pub(crate) fn create(path: PathBuf) -> std::io::Result<SideLog> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)?;
        sync_dir(path.parent().unwrap_or(Path::new(".")))?;
        Ok(SideLog {
            file: Some(LogFile::new(file, &path)),
            path,
            bytes: 0,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Waits until the log, as this run or an earlier one wrote it, is on disk.
    pub(crate) fn sync(&self) -> std::io::Result<()> {
        match std::fs::File::open(&self.path) {
            Ok(f) => f.sync_data(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The file appended to, for the outbox to sync; `None` if the log cannot be written.
    pub(crate) fn file(&self) -> Option<Arc<LogFile>> {
        self.file.clone()
    }

    /// Whether it can be appended to.
    pub(crate) fn writable(&self) -> bool {
        self.file.is_some()
    }

    /// Its length, once open for appending.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The whole records of the log, in order.
    pub(crate) fn records(&self) -> LogRecords {
        let (reader, error) = match std::fs::File::open(&self.path) {
            Ok(f) => (Some(std::io::BufReader::with_capacity(1 << 20, f)), None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, None),
            Err(e) => (None, Some(e)),
        };
        LogRecords {
            reader,
            rec: Vec::new(),
            end: 0,
            error,
            damaged: false,
            kept: None,
        }
    }

    /// Where the part of the log after a damaged record is kept: next to it, named by
    /// the offset of the damage (and a number, if that name is taken by other bytes).
    pub(crate) fn damaged_copy(&self, at: u64, k: u32) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".damaged-{at}"));
        if k > 0 {
            name.push(format!(".{k}"));
        }
        PathBuf::from(name)
    }

    /// Copies what follows a damaged record (`read` stopped at it) next to the log, once,
    /// before anything could drop it: nothing a damaged disk left is deleted. The history
    /// there comes back from peers. A tail of zeros is what some file systems leave after
    /// a crash, not damage: it is dropped as a torn record is.
    pub(crate) fn keep_damaged(&self, read: &mut LogRecords) {
        if !read.damaged || read.kept.is_some() {
            return;
        }
        match self.copy_tail(read.end) {
            Ok(None) => read.damaged = false,
            Ok(Some((copy, bytes))) => {
                tracing::error!(path = %self.path.display(), at = read.end, bytes, copy = %copy.display(), "the side-chain log is damaged: the records before the damage are replayed, and what follows it is kept in the copy; peers send the history it held");
                read.kept = Some(copy);
            }
            Err(e) => {
                tracing::error!(path = %self.path.display(), at = read.end, error = %e, "the side-chain log is damaged, and what follows the damage cannot be copied aside");
            }
        }
    }

    /// Copies the log from `at` on to a file of its own, unless it is all zeros (`None`).
    /// The copy is written whole and synced under a temporary name first, then linked to
    /// its name, which never replaces a file: a copy of the same bytes an earlier start
    /// made (an older log stays uncut, so each start finds its damage again) is kept.
    fn copy_tail(&self, at: u64) -> std::io::Result<Option<(PathBuf, u64)>> {
        let tail = || -> std::io::Result<std::fs::File> {
            use std::io::{Seek, SeekFrom};
            let mut log = std::fs::File::open(&self.path)?;
            log.seek(SeekFrom::Start(at))?;
            Ok(log)
        };
        let mut zeros = true;
        let mut bytes = 0u64;
        let mut log = tail()?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = log.read(&mut buf)?;
            if n == 0 {
                break;
            }
            bytes += n as u64;
            zeros &= buf[..n].iter().all(|b| *b == 0);
        }
        if zeros {
            return Ok(None);
        }
        let mut tmp = self.damaged_copy(at, 0).into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        // One left over may be linked to a kept copy: it is unlinked, never truncated.
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        std::io::copy(&mut tail()?, &mut file)?;
        file.sync_all()?;
        let mut kept = None;
        for k in 0..u32::MAX {
            let copy = self.damaged_copy(at, k);
            let placed = std::fs::hard_link(&tmp, &copy).or_else(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    return Err(e);
                }
                // A file system without hard links: a new file of that name, written
                // whole (a crash may leave it short; the next start then takes another).
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&copy)?;
                std::io::copy(&mut std::fs::File::open(&tmp)?, &mut f)?;
                f.sync_all()
            });
            match placed {
                Ok(()) => {
                    kept = Some(copy);
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if same_bytes(&tmp, &copy)? {
                        kept = Some(copy);
                        break;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let _ = std::fs::remove_file(&tmp);
        if let Some(dir) = self.path.parent() {
            sync_dir(dir)?;
        }
        kept.map(|copy| Some((copy, bytes)))
            .ok_or_else(|| std::io::Error::other("every name for the copy is taken"))
    }

    /// Opens the log for appending after the records `read` ended at: a torn tail is
    /// dropped, and what it held comes back from peers. A log that could not be read, or
    /// whose damaged part could not be copied aside, is left as it is and not appended
    /// to. Records `read` has not handed out yet are skipped, never dropped.
    pub(crate) fn append_after(&mut self, mut read: LogRecords) {
        read.by_ref().for_each(drop);
        if let Some(e) = read.error {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot read the side-chain log; it is left as it is and this run does not add to it");
            return;
        }
        self.keep_damaged(&mut read);
        if read.damaged && read.kept.is_none() {
            tracing::warn!(path = %self.path.display(), "the damaged side-chain log is left as it is and this run does not add to it");
            return;
        }
        let size = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        if read.end < size && !read.damaged {
            tracing::warn!(path = %self.path.display(), bytes = size - read.end, "ignoring a torn record at the end of the side-chain log");
        }
        let file = self
            .path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?;
                f.set_len(read.end)?;
                // The log, and its directory, may be new: their names must survive a
                // power loss with them.
                if let Some(dir) = self.path.parent() {
                    sync_dir(dir)?;
                    if let Some(home) = dir.parent() {
                        sync_dir(home)?;
                    }
                }
                Ok(f)
            });
        match file {
            Ok(file) => {
                self.file = Some(LogFile::new(file, &self.path));
                self.bytes = read.end;
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot write the side-chain log; a restart will rebuild the history from peers");
            }
        }
    }

    pub(crate) fn append(&mut self, msg: &Message) {
        if self.file.is_some() {
            self.append_encoded(&msg.encode());
        }
    }

    /// Appends the retirement of `gateway`.
    pub(crate) fn append_retire(&mut self, gateway: &PublicKey) {
        let mut rec = [RETIRE_RECORD; 33];
        rec[1..].copy_from_slice(&gateway.0);
        self.append_encoded(&rec);
    }

    /// Appends a record's encoding (a message as received: decoding checked it is one).
    pub(crate) fn append_encoded(&mut self, data: &[u8]) {
        let Some(f) = &self.file else {
            return;
        };
        let mut rec = Vec::with_capacity(4 + data.len());
        rec.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
        rec.extend_from_slice(data);
        self.bytes += rec.len() as u64;
        if let Err(e) = (&f.file).write_all(&rec) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot append to the side-chain log");
            self.file = None;
        }
    }
}

/// A reading of the side-chain log, one record at a time; it stops at the first record
/// that is torn (the file ends within it, as a crash leaves it) or damaged (whole, but
/// with a length no record has or bytes that do not decode).
pub(crate) struct LogRecords {
    reader: Option<std::io::BufReader<std::fs::File>>,
    rec: Vec<u8>,
    /// Where the last whole record ends.
    end: u64,
    /// Why reading stopped short of the end, if not at a torn record.
    error: Option<std::io::Error>,
    /// Whether it stopped at a damaged record.
    damaged: bool,
    /// Where what follows the damage was copied ([`SideLog::keep_damaged`]).
    kept: Option<PathBuf>,
}

impl Iterator for LogRecords {
    type Item = LogRecord;

    fn next(&mut self) -> Option<LogRecord> {
        let r = self.reader.as_mut()?;
        let mut len = [0u8; 4];
        let mut read = |buf: &mut [u8]| match r.read_exact(buf) {
            Ok(()) => Some(()),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => None,
            Err(e) => {
                self.error = Some(e);
                None
            }
        };
        let mut damaged = false;
        let msg = read(&mut len).and_then(|()| {
            let len = u32::from_be_bytes(len) as usize;
            // A length no message can have: allocate nothing for it.
            if len > cpc_sidechain::MAX_MESSAGE_BYTES {
                damaged = true;
                return None;
            }
            self.rec.resize(len, 0);
            read(&mut self.rec)?;
            let record = match *self.rec {
                [RETIRE_RECORD, ref key @ ..] => <[u8; 32]>::try_from(key)
                    .ok()
                    .map(|k| LogRecord::Retire(PublicKey(k))),
                _ => Message::decode_untrusted(&self.rec)
                    .ok()
                    .map(LogRecord::Message),
            };
            damaged = record.is_none();
            record
        });
        self.damaged = damaged;
        if msg.is_some() {
            self.end += 4 + self.rec.len() as u64;
        } else {
            self.reader = None;
        }
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpc_types::Hash32;

    #[test]
    fn the_log_replays_whole_records_and_drops_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("side").join("g.log");
        // Messages, and a retirement between them.
        let msgs: Vec<LogRecord> = (0..5u8)
            .map(|i| match i {
                1 => LogRecord::Retire(PublicKey([i; 32])),
                _ => LogRecord::Message(Message::Heads(vec![Hash32([i; 32]); usize::from(i) + 1])),
            })
            .collect();
        let put = |log: &mut SideLog, r: &LogRecord| match r {
            LogRecord::Message(m) => log.append(m),
            LogRecord::Retire(k) => log.append_retire(k),
        };
        // A log that does not exist yet reads as empty and is created.
        let mut log = SideLog::new(path.clone());
        assert_eq!(log.records().count(), 0);
        log.append_after(log.records());
        for r in &msgs[..3] {
            put(&mut log, r);
        }
        drop(log);
        let whole = std::fs::metadata(&path).unwrap().len();
        let copy = SideLog::new(path.clone()).damaged_copy(whole, 0);
        // Torn as a crash leaves it: dropped. Damaged: copied aside, then dropped.
        let append = |p: &Path, bytes: &[u8]| {
            std::fs::OpenOptions::new()
                .append(true)
                .open(p)
                .unwrap()
                .write_all(bytes)
                .unwrap();
        };
        // The whole records, then a record that does not decode.
        let damaged_log = |name: &str| {
            let p = dir.path().join("side").join(name);
            std::fs::copy(&path, &p).unwrap();
            append(&p, &[0, 0, 0, 1, 0xee]);
            SideLog::new(p)
        };
        for (tail, damaged) in [
            (&[0u8, 0][..], false),                   // a torn length
            (&[0u8; 9][..], false),                   // zeros a crash left
            (&[0, 0, 0, 9, 1, 2][..], false),         // a torn record
            (&[0xff, 0xff, 0xff, 0xff, 0][..], true), // a length no message has
            (&[0, 0, 0, 1, 0xee][..], true),          // a record that does not decode
            (&[0, 0, 0, 3, 0x80, 1, 2][..], true),    // a retirement without a whole key
        ] {
            // Whole records after the damage are kept in the copy too.
            let mut bytes = tail.to_vec();
            if damaged {
                bytes.extend_from_slice(&[0, 0, 0, 1, 0]);
            }
            append(&path, &bytes);
            let log = SideLog::new(path.clone());
            let mut records = log.records();
            assert_eq!(records.by_ref().collect::<Vec<_>>(), msgs[..3]);
            assert_eq!(records.end, whole);
            let mut log = log;
            log.append_after(records);
            assert_eq!(
                std::fs::metadata(&path).unwrap().len(),
                whole,
                "the tail is dropped"
            );
            let kept = std::fs::read(&copy).ok();
            assert_eq!(kept, damaged.then_some(bytes), "{tail:?}");
            let _ = std::fs::remove_file(&copy);
        }
        // Damage in a log the replay only reads (an older one) is copied aside too.
        let log = damaged_log("g.1.log");
        // Each start finds it again: one copy.
        for _ in 0..2 {
            let mut records = log.records();
            assert_eq!(records.by_ref().count(), 3);
            log.keep_damaged(&mut records);
        }
        assert_eq!(
            std::fs::read(log.damaged_copy(whole, 0)).unwrap(),
            vec![0, 0, 0, 1, 0xee]
        );
        assert!(!log.damaged_copy(whole, 1).exists());
        // Other damage at the same offset later is kept beside it, and the first copy
        // stays whole (even with the temporary name still linked to it).
        let mut tmp = log.damaged_copy(whole, 0).into_os_string();
        tmp.push(".tmp");
        std::fs::hard_link(log.damaged_copy(whole, 0), &tmp).unwrap();
        append(log.path(), &[1]);
        let mut records = log.records();
        records.by_ref().for_each(drop);
        log.keep_damaged(&mut records);
        assert_eq!(
            std::fs::read(log.damaged_copy(whole, 1)).unwrap(),
            vec![0, 0, 0, 1, 0xee, 1]
        );
        assert_eq!(
            std::fs::read(log.damaged_copy(whole, 0)).unwrap(),
            vec![0, 0, 0, 1, 0xee]
        );
        assert!(!Path::new(&tmp).exists());
        // A file of that name with other bytes of the same length (a copy a crash cut
        // short) is neither taken for it nor replaced.
        let log = damaged_log("g.3.log");
        std::fs::write(log.damaged_copy(whole, 0), [0u8; 5]).unwrap();
        let mut records = log.records();
        records.by_ref().for_each(drop);
        log.keep_damaged(&mut records);
        assert_eq!(std::fs::read(log.damaged_copy(whole, 0)).unwrap(), [0u8; 5]);
        assert_eq!(
            std::fs::read(log.damaged_copy(whole, 1)).unwrap(),
            vec![0, 0, 0, 1, 0xee]
        );
        // New records follow the last whole one.
        let mut log = SideLog::new(path.clone());
        log.append_after(log.records());
        put(&mut log, &msgs[3]);
        put(&mut log, &msgs[4]);
        assert_eq!(SideLog::new(path).records().collect::<Vec<_>>(), msgs);
    }

    #[test]
    fn snapshots_round_trip_and_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let files = SideFiles::new(&dir.path().join("side"), Hash32([7; 32]));
        assert_eq!(Snapshot::read(&files), Ok(None));
        let snap = Snapshot {
            log: 3,
            fed: 41,
            state: (0..100u8).collect(),
        };
        snap.write(&files).unwrap();
        assert_eq!(Snapshot::read(&files), Ok(Some(snap)));
        let whole = std::fs::read(files.snapshot()).unwrap();
        // A flipped bit in the state, or in the log number or height of the header.
        for at in [whole.len() - 1, 20 + 7, 28 + 7] {
            let mut bytes = whole.clone();
            bytes[at] ^= 1;
            std::fs::write(files.snapshot(), &bytes).unwrap();
            assert!(Snapshot::read(&files).unwrap_err().contains("checksum"));
        }
        let bytes = whole;
        std::fs::write(files.snapshot(), &bytes[..30]).unwrap();
        assert!(Snapshot::read(&files).is_err());
        std::fs::write(files.snapshot(), b"[sidechain]\ngroup = \"x\"\n").unwrap();
        assert!(Snapshot::read(&files).is_err());
    }

    #[test]
    fn logs_are_listed_by_number_and_old_ones_removed() {
        let dir = tempfile::tempdir().unwrap();
        let files = SideFiles::new(dir.path(), Hash32([7; 32]));
        assert!(files.logs().unwrap().is_empty());
        for id in [0, 2, 10, 1] {
            std::fs::write(files.log(id), b"").unwrap();
        }
        // Neither another group's log nor a stray file is one.
        std::fs::write(SideFiles::new(dir.path(), Hash32([8; 32])).log(4), b"").unwrap();
        std::fs::write(dir.path().join(format!("{}.02.log", Hash32([7; 32]))), b"").unwrap();
        std::fs::write(files.snapshot(), b"").unwrap();
        let ids = |f: &SideFiles| {
            f.logs()
                .unwrap()
                .into_iter()
                .map(|l| l.0)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&files), vec![0, 1, 2, 10]);
        files.remove_logs_below(2).unwrap();
        assert_eq!(ids(&files), vec![2, 10]);
    }
}
