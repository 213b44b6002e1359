//! The outage queue of the rrdcached backend: updates not yet accepted by rrdcached, in
//! arrival order. Up to `limit` live in memory; beyond that they spill to append-only segment
//! files of at most `limit` lines each under the spill directory, read back oldest first, so
//! memory stays bounded during a long outage and order is kept. Spill files are process-local
//! (named after the pid) and removed once replayed.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::io::{AsyncWriteExt, BufWriter};

use crate::RrdDef;

use super::Item;

struct Segment {
    path: PathBuf,
    lines: usize,
    /// Open while this is the newest segment.
    writer: Option<BufWriter<tokio::fs::File>>,
}

pub(crate) struct Queue {
    mem: VecDeque<Item>,
    limit: usize,
    dir: PathBuf,
    segments: VecDeque<Segment>,
    spilled: usize,
    seq: u64,
    /// Definitions referenced by spilled lines (by index); few distinct ones exist.
    defs: Vec<Arc<RrdDef>>,
}

impl Queue {
    pub(crate) fn new(limit: usize, dir: PathBuf) -> Queue {
        Queue {
            mem: VecDeque::new(),
            limit: limit.max(1),
            dir,
            segments: VecDeque::new(),
            spilled: 0,
            seq: 0,
            defs: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.mem.len() + self.spilled
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
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
    /// order). The item's reply must already have been answered before it is spilled.
    pub(crate) async fn push_back(&mut self, mut item: Item) {
        if self.segments.is_empty() && self.mem.len() < self.limit {
            self.mem.push_back(item);
            return;
        }
        if let Some(reply) = item.reply.take() {
            let _ = reply.send(Ok(()));
        }
        if let Err(e) = self.spill(&item).await {
            // Better over the memory bound than lost.
            tracing::warn!(error = %e, dir = %self.dir.display(), "spilling queued rrd update failed; keeping it in memory");
            self.mem.push_back(item);
        }
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
            Some(s) => s.writer.is_none() || s.lines >= self.limit,
            None => true,
        };
        if need_new {
            if let Some(last) = self.segments.back_mut() {
                if let Some(mut w) = last.writer.take() {
                    w.flush().await?;
                }
            }
            tokio::fs::create_dir_all(&self.dir).await?;
            self.seq += 1;
            let path = self.dir.join(format!(
                "spill-{}-{:08}.journal",
                std::process::id(),
                self.seq
            ));
            let file = tokio::fs::File::create(&path).await?;
            tracing::info!(path = %path.display(), "rrd update queue over its memory bound: spilling to disk");
            self.segments.push_back(Segment {
                path,
                lines: 0,
                writer: Some(BufWriter::new(file)),
            });
        }
        let def = self.def_index(&item.def);
        let line = format!(
            "{def}\t{}\t{}\t{}\t{}\n",
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
        w.write_all(line.as_bytes()).await?;
        seg.lines += 1;
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
        let text = tokio::fs::read_to_string(&seg.path).await?;
        let mut loaded = 0usize;
        for l in text.lines() {
            let mut f = l.splitn(5, '\t');
            let parsed = (|| {
                let def: usize = f.next()?.parse().ok()?;
                let sent = f.next()? == "1";
                let at: i64 = f.next()?.parse().ok()?;
                let path: Arc<str> = Arc::from(f.next()?);
                let line = f.next()?.to_string();
                Some(Item {
                    path,
                    def: self.defs.get(def)?.clone(),
                    at,
                    line,
                    sent,
                    reply: None,
                })
            })();
            match parsed {
                Some(item) => {
                    self.mem.push_back(item);
                    loaded += 1;
                }
                None => tracing::error!(line = l, "unreadable spill line"),
            }
        }
        self.spilled = self.spilled.saturating_sub(seg.lines);
        if loaded != seg.lines {
            tracing::error!(loaded, expected = seg.lines, path = %seg.path.display(), "spill segment short");
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

    /// Items lost at shutdown (for the dropped counter).
    pub(crate) fn abandon(&mut self) -> usize {
        let n = self.len();
        for s in &self.segments {
            tracing::error!(path = %s.path.display(), lines = s.lines, "unreplayed rrd spill journal left behind");
        }
        self.mem.clear();
        self.segments.clear();
        self.spilled = 0;
        n
    }
}
