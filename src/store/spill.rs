//! Sorted tables of blob records that outgrow memory.
//!
//! The index, and a backup's set of the blobs it has stored so far, grow with the number of
//! blobs: about one per small file, so a million-file share has about a million. Up to a fixed
//! number of records ([`IN_MEMORY`]) a table is a sorted array in memory. Beyond that it lives in
//! an unnamed scratch file (made with `O_TMPFILE` in the system's temporary directory, mode 0600
//! and gone when the process ends, so there is no name another user could create first or swap
//! for a link), and only a table of where each id prefix starts stays in memory. A lookup then
//! reads one bucket of a few dozen records with one `pread`; the kernel's page cache holds the
//! rest, and gives it back under pressure. So the memory a table holds stops growing at
//! [`IN_MEMORY`] records, apart from its prefix table (256 KiB, 1 MiB past 4 million records).
//!
//! Tables are built by an external sort ([`Builder`]): records are gathered in runs of at most
//! [`IN_MEMORY`], each sorted and written to scratch, and the runs merged. Records never come
//! from outside the process (they are decoded from index objects first), and every record
//! starts with its 32-byte id.
//!
//! A scratch file that cannot be read (a failing disk) makes lookups answer "not there", which
//! makes a backup store a blob again and a restore fail that file; [`Table::trouble`] keeps the
//! first such error so that whatever walked the table can say it did not see all of it.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

use crate::id::Id;

/// Records a table keeps in memory before it moves to a scratch file (12 MiB of index slots).
pub const IN_MEMORY: usize = 1 << 18;

/// A fixed-size record whose first 32 bytes are a blob id.
pub trait Record: Copy {
    const SIZE: usize;
    fn id(&self) -> &Id;
    fn encode(&self, out: &mut [u8]);
    fn decode(bytes: &[u8]) -> Self;
}

impl Record for Id {
    const SIZE: usize = 32;
    fn id(&self) -> &Id {
        self
    }
    fn encode(&self, out: &mut [u8]) {
        out.copy_from_slice(&self.0);
    }
    fn decode(bytes: &[u8]) -> Self {
        Id(bytes.try_into().expect("32 bytes"))
    }
}

/// Records sorted by id, each id once.
pub struct Table<R> {
    limit: usize,
    form: Form<R>,
    trouble: Mutex<Option<String>>,
    /// Set when a merge failed: see [`Table::merge`].
    stuck: bool,
}

enum Form<R> {
    Memory(Vec<R>),
    File(Spilled),
}

/// A table in a scratch file: `len` records, sorted, with `starts[p]` the first record whose
/// id begins with the `bits`-bit prefix `p` (and `starts[2^bits] == len`).
struct Spilled {
    file: File,
    len: usize,
    bits: u32,
    starts: Vec<u32>,
}

/// Buckets this large are searched one record at a time instead of read whole.
const WHOLE_BUCKET: usize = 96;

/// Bytes read or written at a time when a table is streamed.
const STREAM: usize = 1 << 18;

/// Records a table keeps in memory: [`IN_MEMORY`], or `FIRESAFE_INDEX_IN_MEMORY` when set (so
/// that tests can take the scratch-file path with a small repository).
pub fn limit() -> usize {
    static LIMIT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        std::env::var("FIRESAFE_INDEX_IN_MEMORY")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(IN_MEMORY)
    })
}

impl<R: Record> Default for Table<R> {
    fn default() -> Self {
        Table::with_limit(limit())
    }
}

impl<R: Record> Table<R> {
    /// An empty table that moves to a scratch file past `limit` records.
    pub fn with_limit(limit: usize) -> Table<R> {
        Table {
            limit,
            form: Form::Memory(Vec::new()),
            trouble: Mutex::new(None),
            stuck: false,
        }
    }

    pub fn len(&self) -> usize {
        match &self.form {
            Form::Memory(v) => v.len(),
            Form::File(s) => s.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the table has moved to a scratch file.
    pub fn spilled(&self) -> bool {
        matches!(self.form, Form::File(_))
    }

    /// The first error met reading the scratch file, if any: lookups since then may have
    /// answered "not there" and walks may have ended early.
    pub fn trouble(&self) -> Option<String> {
        self.trouble.lock().ok().and_then(|t| t.clone())
    }

    fn note(&self, e: &io::Error) {
        if let Ok(mut t) = self.trouble.lock()
            && t.is_none()
        {
            *t = Some(e.to_string());
        }
    }

    /// The record with this id.
    pub fn find(&self, id: &Id) -> Option<R> {
        match &self.form {
            Form::Memory(v) => v.binary_search_by(|r| r.id().cmp(id)).ok().map(|i| v[i]),
            Form::File(s) => s.find(id).unwrap_or_else(|e| {
                self.note(&e);
                None
            }),
        }
    }

    /// Every record, in id order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = R> + '_> {
        match &self.form {
            Form::Memory(v) => Box::new(v.iter().copied()),
            Form::File(s) => Box::new(
                RunReader::new(&s.file, 0, s.len, 0)
                    .map_while(|r| r.map(|(r, _)| r).map_err(|e| self.note(&e)).ok()),
            ),
        }
    }

    /// Adds records whose ids are all new to the table (and distinct); whether they were added.
    /// When the scratch file cannot be written the table is left as it was, the error noted,
    /// and later merges are not tried: the caller keeps the records.
    pub fn merge(&mut self, new: Vec<R>) -> bool {
        if self.stuck {
            return false;
        }
        match self.merge_or_fail(new) {
            Ok(()) => true,
            Err(e) => {
                self.note(&e);
                self.stuck = true;
                false
            }
        }
    }

    fn merge_or_fail(&mut self, mut new: Vec<R>) -> io::Result<()> {
        let total = self.len() + new.len();
        if let Form::Memory(v) = &mut self.form
            && total <= self.limit
        {
            v.reserve_exact(new.len());
            v.extend(new);
            v.sort_unstable_by(|a, b| a.id().cmp(b.id()));
            return Ok(());
        }
        new.sort_unstable_by(|a, b| a.id().cmp(b.id()));
        let file = tempfile::tempfile()?;
        let mut out = SpillWriter::new(&file, total);
        let new: Run<'_, R> = Box::new(new.into_iter().map(|r| Ok((r, 0))));
        let old: Run<'_, R> = match &self.form {
            Form::Memory(v) => Box::new(v.iter().map(|r| Ok((*r, 0)))),
            Form::File(s) => Box::new(RunReader::new(&s.file, 0, s.len, 0)),
        };
        merge_into(&mut out, vec![old, new], |_, _| {})?;
        let layout = out.finish()?;
        self.form = Form::File(layout.of(file));
        Ok(())
    }
}

impl Spilled {
    fn find<R: Record>(&self, id: &Id) -> io::Result<Option<R>> {
        const { assert!(R::SIZE <= 64, "records fit the lookup buffers") };
        let p = prefix(id, self.bits);
        let (lo, hi) = (self.starts[p] as usize, self.starts[p + 1] as usize);
        if hi - lo <= WHOLE_BUCKET {
            let mut buf = [0u8; WHOLE_BUCKET * 64];
            let bytes = &mut buf[..(hi - lo) * R::SIZE];
            self.file.read_exact_at(bytes, (lo * R::SIZE) as u64)?;
            let found = bytes
                .chunks_exact(R::SIZE)
                .position(|r| r[..32] == id.0)
                .map(|i| R::decode(&bytes[i * R::SIZE..(i + 1) * R::SIZE]));
            return Ok(found);
        }
        let (mut lo, mut hi) = (lo, hi);
        let mut one = [0u8; 64];
        let one = &mut one[..R::SIZE];
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            self.file.read_exact_at(one, (mid * R::SIZE) as u64)?;
            match one[..32].cmp(&id.0[..]) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Ok(Some(R::decode(one))),
            }
        }
        Ok(None)
    }
}

/// The `bits`-bit prefix of an id.
fn prefix(id: &Id, bits: u32) -> usize {
    (u32::from_be_bytes([id.0[0], id.0[1], id.0[2], id.0[3]]) >> (32 - bits)) as usize
}

/// Prefix bits for a table of `len` records: buckets of about 64 records or fewer up to 2^26.
fn bits_for(len: usize) -> u32 {
    match len {
        0..=0x40_0000 => 16,
        0x40_0001..=0x100_0000 => 18,
        _ => 20,
    }
}

/// Writes sorted records to a scratch file, building its prefix table.
struct SpillWriter<'f, R> {
    out: BufWriter<&'f File>,
    bits: u32,
    starts: Vec<u32>,
    len: usize,
    bytes: Vec<u8>,
    _record: std::marker::PhantomData<R>,
}

impl<'f, R: Record> SpillWriter<'f, R> {
    /// `most`: how many records at most will be written.
    fn new(file: &'f File, most: usize) -> Self {
        let bits = bits_for(most);
        SpillWriter {
            out: BufWriter::with_capacity(STREAM, file),
            bits,
            starts: Vec::with_capacity((1 << bits) + 1),
            len: 0,
            bytes: vec![0; R::SIZE],
            _record: std::marker::PhantomData,
        }
    }

    fn push(&mut self, r: &R) -> io::Result<()> {
        let p = prefix(r.id(), self.bits);
        while self.starts.len() <= p {
            self.starts.push(self.len as u32);
        }
        r.encode(&mut self.bytes);
        self.out.write_all(&self.bytes)?;
        self.len += 1;
        Ok(())
    }

    /// Flushes the records; the table is then `file` with the returned layout.
    fn finish(mut self) -> io::Result<Layout> {
        self.out.flush()?;
        while self.starts.len() <= 1 << self.bits {
            self.starts.push(self.len as u32);
        }
        Ok(Layout {
            len: self.len,
            bits: self.bits,
            starts: self.starts,
        })
    }
}

/// What a [`SpillWriter`] wrote: see [`Spilled`].
struct Layout {
    len: usize,
    bits: u32,
    starts: Vec<u32>,
}

impl Layout {
    fn of(self, file: File) -> Spilled {
        Spilled {
            file,
            len: self.len,
            bits: self.bits,
            starts: self.starts,
        }
    }
}

/// A run of records in a scratch file, read in order a slice at a time. Each record is followed
/// by `tie_bytes` bytes (0 or 1) of tie-break rank.
struct RunReader<'f, R> {
    file: &'f File,
    at: u64,
    left: usize,
    tie_bytes: usize,
    buf: Vec<u8>,
    pos: usize,
    _record: std::marker::PhantomData<R>,
}

impl<'f, R: Record> RunReader<'f, R> {
    fn new(file: &'f File, start: u64, len: usize, tie_bytes: usize) -> Self {
        RunReader {
            file,
            at: start,
            left: len,
            tie_bytes,
            buf: Vec::new(),
            pos: 0,
            _record: std::marker::PhantomData,
        }
    }
}

impl<R: Record> Iterator for RunReader<'_, R> {
    type Item = io::Result<(R, u8)>;

    fn next(&mut self) -> Option<Self::Item> {
        let size = R::SIZE + self.tie_bytes;
        if self.pos == self.buf.len() {
            if self.left == 0 {
                return None;
            }
            let n = self.left.min((STREAM / size).max(1));
            self.buf.resize(n * size, 0);
            if let Err(e) = self.file.read_exact_at(&mut self.buf, self.at) {
                self.left = 0;
                self.buf.clear();
                self.pos = 0;
                return Some(Err(e));
            }
            self.at += (n * size) as u64;
            self.left -= n;
            self.pos = 0;
        }
        let bytes = &self.buf[self.pos..self.pos + size];
        self.pos += size;
        let tie = if self.tie_bytes == 1 {
            bytes[R::SIZE]
        } else {
            0
        };
        Some(Ok((R::decode(&bytes[..R::SIZE]), tie)))
    }
}

type Run<'a, R> = Box<dyn Iterator<Item = io::Result<(R, u8)>> + 'a>;

/// Merges sorted runs (by id, then tie rank) into `out`, each id once: the first of equal ids
/// is kept and every later one handed to `dup` with it.
fn merge_into<R: Record>(
    out: &mut SpillWriter<'_, R>,
    runs: Vec<Run<'_, R>>,
    mut dup: impl FnMut(&R, &R),
) -> io::Result<()> {
    struct Head<R> {
        record: R,
        tie: u8,
        run: usize,
    }
    impl<R: Record> PartialEq for Head<R> {
        fn eq(&self, other: &Self) -> bool {
            self.cmp(other) == Ordering::Equal
        }
    }
    impl<R: Record> Eq for Head<R> {}
    impl<R: Record> PartialOrd for Head<R> {
        fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
            Some(self.cmp(other))
        }
    }
    impl<R: Record> Ord for Head<R> {
        // Reversed: the heap's top is the smallest.
        fn cmp(&self, other: &Self) -> Ordering {
            (other.record.id(), other.tie, other.run).cmp(&(self.record.id(), self.tie, self.run))
        }
    }
    let mut runs = runs;
    let mut heap = BinaryHeap::with_capacity(runs.len());
    for (run, it) in runs.iter_mut().enumerate() {
        if let Some(next) = it.next() {
            let (record, tie) = next?;
            heap.push(Head { record, tie, run });
        }
    }
    let mut last: Option<R> = None;
    while let Some(Head { record, run, .. }) = heap.pop() {
        if let Some(next) = runs[run].next() {
            let (r, tie) = next?;
            heap.push(Head {
                record: r,
                tie,
                run,
            });
        }
        match &last {
            Some(kept) if kept.id() == record.id() => dup(kept, &record),
            _ => {
                out.push(&record)?;
                last = Some(record);
            }
        }
    }
    Ok(())
}

/// Builds a [`Table`] from records in any order, with duplicates: an external sort.
pub struct Builder<R> {
    limit: usize,
    /// The records of the run being gathered, each with its tie-break rank.
    buf: Vec<(R, u8)>,
    /// Runs written so far: (start in `scratch`, records).
    runs: Vec<(u64, usize)>,
    scratch: Option<File>,
    written: u64,
}

impl<R: Record> Builder<R> {
    pub fn new(limit: usize) -> Builder<R> {
        Builder {
            limit: limit.max(1),
            buf: Vec::new(),
            runs: Vec::new(),
            scratch: None,
            written: 0,
        }
    }

    /// Adds a record. Of records with the same id the table keeps the one with the lowest `tie`
    /// (the first pushed among equals).
    pub fn push(&mut self, record: R, tie: u8) -> io::Result<()> {
        self.buf.push((record, tie));
        if self.buf.len() >= self.limit {
            self.write_run()?;
        }
        Ok(())
    }

    fn write_run(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let file = match &mut self.scratch {
            Some(f) => f,
            None => self.scratch.insert(tempfile::tempfile()?),
        };
        // Stable: among equal ids and ranks, the first pushed stays first.
        self.buf
            .sort_by(|a, b| (a.0.id(), a.1).cmp(&(b.0.id(), b.1)));
        let mut out = BufWriter::with_capacity(STREAM, &*file);
        let mut bytes = vec![0u8; R::SIZE];
        for (r, tie) in &self.buf {
            r.encode(&mut bytes);
            out.write_all(&bytes)?;
            out.write_all(&[*tie])?;
        }
        out.flush()?;
        self.runs.push((self.written, self.buf.len()));
        self.written += (self.buf.len() * (R::SIZE + 1)) as u64;
        self.buf.clear();
        Ok(())
    }

    /// The table: each id once, the lowest-ranked record kept and every other handed to `dup`
    /// with the kept one.
    pub fn finish(mut self, mut dup: impl FnMut(&R, &R)) -> io::Result<Table<R>> {
        let mut table = Table::with_limit(self.limit);
        if self.runs.is_empty() {
            self.buf
                .sort_by(|a, b| (a.0.id(), a.1).cmp(&(b.0.id(), b.1)));
            let mut kept: Vec<R> = Vec::with_capacity(self.buf.len());
            for (r, _) in self.buf.drain(..) {
                match kept.last() {
                    Some(k) if k.id() == r.id() => dup(k, &r),
                    _ => kept.push(r),
                }
            }
            kept.shrink_to_fit();
            table.form = Form::Memory(kept);
            return Ok(table);
        }
        self.write_run()?;
        let scratch = self.scratch.take().expect("runs were written");
        let most = self.runs.iter().map(|(_, n)| n).sum();
        let file = tempfile::tempfile()?;
        let mut out = SpillWriter::new(&file, most);
        let runs: Vec<Run<'_, R>> = self
            .runs
            .iter()
            .map(|&(start, n)| Box::new(RunReader::new(&scratch, start, n, 1)) as Run<'_, R>)
            .collect();
        merge_into(&mut out, runs, &mut dup)?;
        let layout = out.finish()?;
        table.form = Form::File(layout.of(file));
        Ok(table)
    }
}

/// A set of blob ids: a table, and a hash set of the ids added since it was last merged (at
/// most [`IN_MEMORY`] / 2 of them).
pub struct IdSet {
    table: Table<Id>,
    added: HashSet<Id>,
}

impl Default for IdSet {
    fn default() -> Self {
        IdSet::with_limit(limit())
    }
}

impl IdSet {
    pub fn with_limit(limit: usize) -> IdSet {
        IdSet {
            table: Table::with_limit(limit),
            added: HashSet::new(),
        }
    }

    pub fn contains(&self, id: &Id) -> bool {
        self.added.contains(id) || self.table.find(id).is_some()
    }

    /// Adds an id; whether it was new.
    pub fn insert(&mut self, id: Id) -> bool {
        if self.table.find(&id).is_some() || !self.added.insert(id) {
            return false;
        }
        if self.added.len() >= (self.table.limit / 2).max(1)
            && self.table.merge(self.added.iter().copied().collect())
        {
            self.added.clear();
            self.added.shrink_to_fit();
        }
        true
    }

    pub fn len(&self) -> usize {
        self.table.len() + self.added.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn trouble(&self) -> Option<String> {
        self.table.trouble()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> Id {
        Id::of_object(&n.to_le_bytes())
    }

    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Tagged(Id, u32);

    impl Record for Tagged {
        const SIZE: usize = 36;
        fn id(&self) -> &Id {
            &self.0
        }
        fn encode(&self, out: &mut [u8]) {
            out[..32].copy_from_slice(&self.0.0);
            out[32..].copy_from_slice(&self.1.to_le_bytes());
        }
        fn decode(bytes: &[u8]) -> Self {
            Tagged(
                Id::decode(&bytes[..32]),
                u32::from_le_bytes(bytes[32..36].try_into().unwrap()),
            )
        }
    }

    #[test]
    fn a_built_table_in_a_file_keeps_the_lowest_rank_and_hands_on_the_rest() {
        for limit in [7, 1000, 100_000] {
            let mut b = Builder::new(limit);
            // Ids 0..3000, each pushed with rank 2, the multiples of 5 again with rank 1 and
            // the multiples of 7 again with rank 2 (later, so it loses to the first rank 2).
            for n in 0..3000u64 {
                b.push(Tagged(id(n), 2), 2).unwrap();
            }
            for n in (0..3000u64).step_by(5) {
                b.push(Tagged(id(n), 1), 1).unwrap();
            }
            for n in (0..3000u64).step_by(7) {
                b.push(Tagged(id(n), 3), 2).unwrap();
            }
            let mut dups = 0;
            let t = b.finish(|kept, later| {
                assert_eq!(kept.0, later.0);
                dups += 1;
            });
            let t = t.unwrap();
            assert_eq!(t.spilled(), limit < 3000, "limit {limit}");
            assert_eq!(t.len(), 3000);
            assert_eq!(dups, 600 + 429);
            for n in 0..3000u64 {
                let want = if n % 5 == 0 { 1 } else { 2 };
                assert_eq!(t.find(&id(n)), Some(Tagged(id(n), want)), "{n}");
            }
            assert_eq!(t.find(&id(5000)), None);
            let all: Vec<Tagged> = t.iter().collect();
            assert_eq!(all.len(), 3000);
            assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
            assert!(t.trouble().is_none());
        }
    }

    #[test]
    fn merges_move_a_table_to_a_file_and_keep_every_record() {
        let mut t: Table<Tagged> = Table::with_limit(500);
        for round in 0..6u64 {
            let new: Vec<Tagged> = (round * 300..round * 300 + 300)
                .map(|n| Tagged(id(n), n as u32))
                .collect();
            assert!(t.merge(new));
            assert_eq!(t.spilled(), (round + 1) * 300 > 500);
        }
        assert_eq!(t.len(), 1800);
        for n in 0..1800u64 {
            assert_eq!(t.find(&id(n)), Some(Tagged(id(n), n as u32)));
        }
        assert_eq!(t.iter().count(), 1800);
    }

    #[test]
    fn large_buckets_are_searched_record_by_record() {
        // Ids that share their first four bytes fill one bucket.
        let ids: Vec<Id> = (0..500u32)
            .map(|n| {
                let mut b = [7u8; 32];
                b[4..8].copy_from_slice(&n.to_be_bytes());
                Id(b)
            })
            .collect();
        let mut t: Table<Id> = Table::with_limit(10);
        assert!(t.merge(ids.clone()));
        assert!(t.spilled());
        for i in &ids {
            assert_eq!(t.find(i), Some(*i));
        }
        let mut other = [7u8; 32];
        other[4..8].copy_from_slice(&9999u32.to_be_bytes());
        assert_eq!(t.find(&Id(other)), None);
    }

    #[test]
    fn an_id_set_answers_across_merges() {
        let mut s = IdSet::with_limit(64);
        for n in 0..1000u64 {
            assert!(s.insert(id(n)));
            assert!(!s.insert(id(n)));
        }
        assert!(s.table.spilled());
        assert_eq!(s.len(), 1000);
        assert!((0..1000).all(|n| s.contains(&id(n))));
        assert!(!s.contains(&id(1000)));
    }
}
