//! One rrdcached connection over TCP (`host:port`) or a unix socket (`unix:/path`), speaking
//! the protocol of `proto`. Every exchange has a deadline so that a hung daemon looks like an
//! unreachable one instead of stalling the poller.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};

use super::proto::{Reply, ReplyDecoder};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// FLUSH waits for the file write; a BATCH of thousands of updates takes a while too.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

type Reader = BufReader<Box<dyn AsyncRead + Unpin + Send>>;
type Writer = BufWriter<Box<dyn AsyncWrite + Unpin + Send>>;

pub(crate) struct Conn {
    reader: Reader,
    writer: Writer,
    line: String,
}

impl Conn {
    pub(crate) async fn connect(address: &str) -> std::io::Result<Conn> {
        let fut = async {
            if let Some(path) = address.strip_prefix("unix:") {
                let s = tokio::net::UnixStream::connect(path).await?;
                let (r, w) = s.into_split();
                Ok::<_, std::io::Error>((
                    Box::new(r) as Box<dyn AsyncRead + Unpin + Send>,
                    Box::new(w) as Box<dyn AsyncWrite + Unpin + Send>,
                ))
            } else {
                let s = tokio::net::TcpStream::connect(address).await?;
                s.set_nodelay(true)?;
                let (r, w) = s.into_split();
                Ok((
                    Box::new(r) as Box<dyn AsyncRead + Unpin + Send>,
                    Box::new(w) as Box<dyn AsyncWrite + Unpin + Send>,
                ))
            }
        };
        let (r, w) = tokio::time::timeout(CONNECT_TIMEOUT, fut)
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
            })??;
        Ok(Conn {
            reader: BufReader::with_capacity(64 * 1024, r),
            writer: BufWriter::with_capacity(64 * 1024, w),
            line: String::new(),
        })
    }

    async fn read_reply(&mut self) -> std::io::Result<Reply> {
        read_reply(&mut self.reader, &mut self.line).await
    }

    /// Sends `commands` back to back and reads their replies, in order, while still writing:
    /// one round trip for all of them instead of one each, and no deadlock when the replies
    /// (INFO is ~100 lines) fill the socket buffers before every command is written.
    pub(crate) async fn pipeline(&mut self, commands: &[String]) -> std::io::Result<Vec<Reply>> {
        let Conn {
            reader,
            writer,
            line,
        } = self;
        let write = async {
            for c in commands {
                writer.write_all(c.as_bytes()).await?;
            }
            writer.flush().await
        };
        let read = async {
            let mut out = Vec::with_capacity(commands.len());
            for _ in 0..commands.len() {
                out.push(read_reply(reader, line).await?);
            }
            Ok(out)
        };
        let (_, out) = tokio::time::timeout(REPLY_TIMEOUT, async { tokio::try_join!(write, read) })
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "rrdcached reply timed out")
            })??;
        Ok(out)
    }

    /// Sends `text` (one or more commands) and reads `replies` replies.
    pub(crate) async fn exchange(
        &mut self,
        text: &str,
        replies: usize,
    ) -> std::io::Result<Vec<Reply>> {
        let fut = async {
            self.writer.write_all(text.as_bytes()).await?;
            self.writer.flush().await?;
            let mut out = Vec::with_capacity(replies);
            for _ in 0..replies {
                out.push(self.read_reply().await?);
            }
            Ok(out)
        };
        tokio::time::timeout(REPLY_TIMEOUT, fut)
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "rrdcached reply timed out")
            })?
    }

    /// One command, one reply.
    pub(crate) async fn command(&mut self, text: &str) -> std::io::Result<Reply> {
        let mut r = self.exchange(text, 1).await?;
        r.pop()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no reply"))
    }

    /// A whole BATCH: returns the final reply (its lines are the failed commands).
    pub(crate) async fn batch(&mut self, text: &str) -> std::io::Result<Reply> {
        let mut r = self.exchange(text, 2).await?;
        let last = r
            .pop()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no reply"))?;
        if let Some(go) = r.first() {
            if go.is_err() {
                return Err(std::io::Error::other(format!(
                    "BATCH refused: {}",
                    go.message
                )));
            }
        }
        Ok(last)
    }
}

async fn read_reply(reader: &mut Reader, line: &mut String) -> std::io::Result<Reply> {
    let mut dec = ReplyDecoder::new();
    loop {
        line.clear();
        let n = reader.read_line(line).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "rrdcached closed the connection",
            ));
        }
        match dec.push_line(line) {
            Ok(Some(reply)) => return Ok(reply),
            Ok(None) => {}
            Err(e) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        }
    }
}
