//! The outage queue of the rrdcached backend: updates not yet accepted by rrdcached, in
//! arrival order. Up to `limit` live in memory; beyond that they spill to append-only segment
//! files of at most `limit` updates each under the spill directory, read back oldest first, so
//! memory stays bounded during a long outage and order is kept.
//!
//! Segment format (text, one record a line, tab-separated), self-contained so that a segment
//! left behind by a process that died can be replayed by the next one:
//! `D <def#> <step> <DS:... RRA:...>` defines a definition before its first use in the
//! segment; `U <def#> <sent 0|1> <at> <path> <at:v1:v2...>` is one update.
//! Files are named `spill-<pid>-<instance>-<seq>.journal`. At start-up, segments of processes
//! that no longer run are adopted (renamed, so that only one process takes them) and replayed
//! before anything new.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncWriteExt, BufWriter};

use crate::{format, RrdDef};

use super::Item;

/// Distinguishes several handles of one process in file names.
static INSTANCE: AtomicU64 = AtomicU64::new(0);

struct Segment {
    path: PathBuf,
    /// Updates (not lines) in the segment.
    updates: usize,
    /// Open while this is the newest segment.
    writer: Option<BufWriter<tokio::fs::File>>,
    /// Definitions already described in this segment (by queue-wide index).
    described: Vec<usize>,
}

pub(crate) struct Queue {
    mem: VecDeque<Item>,
    limit: usize,
    dir: PathBuf,
    segments: VecDeque<Segment>,
    spilled: usize,
    instance: u64,
    seq: u64,
    /// Definitions referenced by spilled updates (by index); few distinct ones exist.
    defs: Vec<Arc<RrdDef>>,
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// `spill-<pid>-<instance>-<seq>.journal` → (pid, instance, seq)
fn parse_name(name: &str) -> Option<(u32, u64, u64)> {
    let rest = name.strip_prefix("spill-")?.strip_suffix(".journal")?;
    let mut it = rest.split('-');
    let pid = it.next()?.parse().ok()?;
    let instance = it.next()?.parse().ok()?;
    let seq = it.next()?.parse().ok()?;
    if it.next().is_some() {
        return None;
    }
    Some((pid, instance, seq))
}

impl Queue {
    pub(crate) fn new(limit: usize, dir: PathBuf) -> Queue {
        Queue {
            mem: VecDeque::new(),
            limit: limit.max(1),
            dir,
            segments: VecDeque::new(),
            spilled: 0,
            instance: INSTANCE.fetch_add(1, Ordering::Relaxed),
            seq: 0,
            defs: Vec::new(),
        }
    }

    fn next_path(&mut self) -> PathBuf {
        self.seq += 1;
        self.dir.join(format!(
            "spill-{}-{}-{:010}.journal",
            std::process::id(),
            self.instance,
            self.seq
        ))
    }

    pub(crate) fn len(&self) -> usize {
        self.mem.len() + self.spilled
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes over the segments of processes that died with updates spilled; they are
    /// replayed before anything queued later. Returns the number of updates adopted.
    pub(crate) async fn adopt_orphans(&mut self) -> usize {
        let Ok(mut rd) = tokio::fs::read_dir(&self.dir).await else {
            return 0;
        };
        let mut found: Vec<((u32, u64, u64), PathBuf)> = Vec::new();
        while let Ok(Some(entry)) = rd.next_entry().await {
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some(key) = parse_name(&name) {
                if key.0 != std::process::id() && !pid_alive(key.0) {
                    found.push((key, entry.path()));
                }
            }
        }
        found.sort();
        let mut adopted = 0;
        for (_, old) in found {
            let new = self.next_path();
            // Renaming is atomic: if another process adopted it first, this fails.
            if tokio::fs::rename(&old, &new).await.is_err() {
                continue;
            }
            let updates = match tokio::fs::read_to_string(&new).await {
                Ok(text) => text.lines().filter(|l| l.starts_with("U\t")).count(),
                Err(e) => {
                    tracing::error!(path = %new.display(), error = %e, "cannot read adopted rrd spill journal");
                    continue;
                }
            };
            tracing::info!(from = %old.display(), updates, "adopting rrd updates spilled by a process that died");
            adopted += updates;
            self.spilled += updates;
            self.segments.push_back(Segment {
                path: new,
                updates,
                writer: None,
                described: Vec::new(),
            });
        }
        adopted
    }

    /// Replies of waiting callers: answered when the queue turns into an outage queue.
    pub(crate) fn waiting_replies(&mut self) -> impl Iterator<Item = &mut Item> {
        self.mem.iter_mut().filter(|i| i.reply.is_some())
    }

    pub(crate) fn push_front(&mut self, items: Vec<Item>) {
        for item in items.into_iter().rev() {
            self.mem.push_front(item);
        }
    }

    /// Appends an item; spills it when memory is full (or earlier items are spilled, to keep
    /// order). A spilled item's caller is answered (queued) first: returns true then.
    pub(crate) async fn push_back(&mut self, mut item: Item) -> bool {
        if self.segments.is_empty() && self.mem.len() < self.limit {
            self.mem.push_back(item);
            return false;
        }
        let answered = match item.reply.take() {
            Some(reply) => {
                let _ = reply.send(Ok(()));
                true
            }
            None => false,
        };
        if let Err(e) = self.spill(&item).await {
            // Better over the memory bound than lost.
            tracing::warn!(error = %e, dir = %self.dir.display(), "spilling queued rrd update failed; keeping it in memory");
            self.mem.push_back(item);
        }
        answered
    }

    fn def_index(&mut self, def: &Arc<RrdDef>) -> usize {
        if let Some(i) = self
            .defs
            .iter()
            .position(|d| Arc::ptr_eq(d, def) || **d == **def)
        {
            return i;
        }
        self.defs.push(def.clone());
        self.defs.len() - 1
    }

    async fn spill(&mut self, item: &Item) -> std::io::Result<()> {
        let need_new = match self.segments.back() {
            Some(s) => s.writer.is_none() || s.updates >= self.limit,
            None => true,
        };
        if need_new {
            if let Some(last) = self.segments.back_mut() {
                if let Some(mut w) = last.writer.take() {
                    w.flush().await?;
                }
            }
            tokio::fs::create_dir_all(&self.dir).await?;
            let path = self.next_path();
            let file = tokio::fs::File::create(&path).await?;
            tracing::info!(path = %path.display(), "rrd update queue over its memory bound: spilling to disk");
            self.segments.push_back(Segment {
                path,
                updates: 0,
                writer: Some(BufWriter::new(file)),
                described: Vec::new(),
            });
        }
        let def = self.def_index(&item.def);
        let header = format!(
            "D\t{def}\t{}\t{}\n",
            item.def.step_secs,
            format::ds_rra_args(&item.def, None)
        );
        let line = format!(
            "U\t{def}\t{}\t{}\t{}\t{}\n",
            u8::from(item.sent),
            item.at,
            item.path,
            item.line
        );
        let Some(seg) = self.segments.back_mut() else {
            return Err(std::io::Error::other("no spill segment"));
        };
        let Some(w) = seg.writer.as_mut() else {
            return Err(std::io::Error::other("spill segment closed"));
        };
        if !seg.described.contains(&def) {
            w.write_all(header.as_bytes()).await?;
            seg.described.push(def);
        }
        w.write_all(line.as_bytes()).await?;
        seg.updates += 1;
        self.spilled += 1;
        Ok(())
    }

    /// Loads the oldest spill segment into memory.
    async fn unspill(&mut self) -> std::io::Result<()> {
        let Some(mut seg) = self.segments.pop_front() else {
            return Ok(());
        };
        if let Some(mut w) = seg.writer.take() {
            w.flush().await?;
        }
        self.spilled = self.spilled.saturating_sub(seg.updates);
        let text = tokio::fs::read_to_string(&seg.path).await?;
        let mut defs: HashMap<&str, Arc<RrdDef>> = HashMap::new();
        let mut loaded = 0usize;
        for l in text.lines() {
            let f: Vec<&str> = l.splitn(6, '\t').collect();
            match f.as_slice() {
                ["D", idx, step, args] => {
                    let def = step
                        .parse()
                        .map_err(|_| format!("bad step {step:?}"))
                        .and_then(|step| format::parse_def(step, args));
                    match def {
                        Ok(d) => {
                            defs.insert(idx, Arc::new(d));
                        }
                        Err(e) => {
                            tracing::error!(line = l, error = %e, "bad definition in spill journal")
                        }
                    }
                }
                ["U", idx, sent, at, path, line] => {
                    let item = (|| {
                        Some(Item {
                            path: Arc::from(*path),
                            def: defs.get(idx)?.clone(),
                            at: at.parse().ok()?,
                            line: line.to_string(),
                            sent: *sent == "1",
                            reply: None,
                        })
                    })();
                    match item {
                        Some(item) => {
                            self.mem.push_back(item);
                            loaded += 1;
                        }
                        None => tracing::error!(line = l, "unreadable spill journal line"),
                    }
                }
                // A process killed mid-write leaves a torn last line.
                _ => tracing::error!(line = l, "unreadable spill journal line"),
            }
        }
        if loaded != seg.updates {
            tracing::error!(loaded, expected = seg.updates, path = %seg.path.display(), "spill journal segment short");
        }
        let _ = tokio::fs::remove_file(&seg.path).await;
        Ok(())
    }

    /// Takes up to `n` items from the front; loads spilled ones when memory is empty.
    pub(crate) async fn pop_batch(&mut self, n: usize) -> Vec<Item> {
        if self.mem.is_empty() && !self.segments.is_empty() {
            if let Err(e) = self.unspill().await {
                tracing::error!(error = %e, "reading the rrd spill journal failed");
            }
        }
        let k = n.min(self.mem.len());
        self.mem.drain(..k).collect()
    }

    /// At shutdown: flushes spill segments so that the next process can adopt them; returns
    /// the number of in-memory updates that are lost.
    pub(crate) async fn abandon(&mut self) -> usize {
        for s in self.segments.iter_mut() {
            if let Some(mut w) = s.writer.take() {
                let _ = w.flush().await;
            }
            tracing::warn!(path = %s.path.display(), updates = s.updates, "rrd spill journal left for the next start");
        }
        let lost = self.mem.len();
        self.mem.clear();
        self.segments.clear();
        self.spilled = 0;
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            parse_name("spill-12-0-0000000003.journal"),
            Some((12, 0, 3))
        );
        assert_eq!(parse_name("spill-12-0.journal"), None);
        assert_eq!(parse_name("other.txt"), None);
    }
}
