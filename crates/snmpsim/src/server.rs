//! The UDP edge: sockets spread over `threads` blocking threads, each waiting in one epoll
//! set, draining ready sockets with `recvmmsg` and answering with `sendmmsg` (up to
//! [`BATCH`] datagrams per system call). An eventfd in every epoll set stops them.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::agent::{Agent, Device, Handler, Stats, V3User};
use crate::recording::Recording;
use crate::{synthetic, SimError};

/// Datagrams per recvmmsg/sendmmsg call.
pub const BATCH: usize = 32;
/// Largest UDP payload over IPv4.
const MAX_DATAGRAM: usize = 65_507;

/// What to simulate (the command line maps onto this one to one).
#[derive(Clone, Debug)]
pub struct Config {
    /// Address of the first socket; with `devices`, ports `port..port+devices-1`. Port 0:
    /// every socket gets a free port (see [`SimHandle::addrs`]).
    pub listen: SocketAddr,
    /// Number of port devices (sockets). Default: 1.
    pub devices: Option<usize>,
    /// Serve a synthetic IF-MIB device with this many interfaces on every port.
    pub synthetic_ifmib: Option<u32>,
    /// Every `.snmprec` / `.snmprec.bz2` under it is a device (community / context = path).
    pub data_dir: Option<PathBuf>,
    /// Recordings given directly (named by [`Recording::name`]), as if found in `data_dir`.
    pub recordings: Vec<Arc<Recording>>,
    /// Community (and empty v3 context) of the port devices.
    pub community: String,
    pub v3_users: Vec<V3User>,
    /// SNMPv3 engine ID (default: `80001f8804` + "lookout-snmpsim").
    pub engine_id: Option<Vec<u8>>,
    pub threads: usize,
    /// Counters and sysUpTime stand still (exact comparisons with snmpsim / net-snmp).
    pub freeze_counters: bool,
    /// Largest response (v3: also at most the request's msgMaxSize).
    pub max_msg_size: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            devices: None,
            synthetic_ifmib: None,
            data_dir: None,
            recordings: Vec::new(),
            community: "public".into(),
            v3_users: Vec::new(),
            engine_id: None,
            threads: 1,
            freeze_counters: false,
            max_msg_size: MAX_DATAGRAM,
        }
    }
}

/// Finds `.snmprec` and `.snmprec.bz2` files under `dir`: (name, path), sorted by name.
pub fn find_recordings(dir: &Path) -> Result<Vec<(String, PathBuf)>, SimError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(|e| SimError::Io(d.display().to_string(), e))?;
        for ent in rd {
            let ent = ent.map_err(|e| SimError::Io(d.display().to_string(), e))?;
            let p = ent.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let Some(fname) = p.file_name().and_then(|f| f.to_str()) else {
                continue;
            };
            let stem = fname
                .strip_suffix(".snmprec.bz2")
                .or_else(|| fname.strip_suffix(".snmprec"));
            let Some(stem) = stem else { continue };
            let rel = p.parent().and_then(|par| par.strip_prefix(dir).ok());
            let name = match rel {
                Some(r) if !r.as_os_str().is_empty() => format!("{}/{stem}", r.display()),
                _ => stem.to_string(),
            };
            out.push((name, p));
        }
    }
    out.sort();
    // A plain file wins over its .bz2 twin (both sort under one name).
    out.dedup_by(|a, b| a.0 == b.0);
    Ok(out)
}

/// Loads recordings on all cores (decompressing and parsing 1.5 GB of snmpsim-data takes
/// minutes on one), keeping the listing's order.
fn load_all(list: &[(String, PathBuf)]) -> Result<Vec<Arc<Recording>>, SimError> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(list.len().max(1));
    let mut slots: Vec<Option<Result<Recording, SimError>>> =
        (0..list.len()).map(|_| None).collect();
    let results = std::sync::Mutex::new(&mut slots);
    std::thread::scope(|sc| {
        for _ in 0..workers {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((name, path)) = list.get(i) else { break };
                let r = Recording::load(path, name.clone());
                if let Ok(r) = &r {
                    tracing::info!(recording = %r.name, records = r.stats.records, skipped = r.stats.skipped, "loaded");
                }
                if let Ok(mut slots) = results.lock() {
                    slots[i] = Some(r);
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| Err(SimError::Config("a loader thread failed".into())))
                .map(Arc::new)
        })
        .collect()
}

/// A running simulator. Dropping it stops the threads.
pub struct SimHandle {
    agent: Arc<Agent>,
    addrs: Vec<SocketAddr>,
    devices: usize,
    threads: Vec<JoinHandle<()>>,
    wake: OwnedFd,
}

/// Entry point of the library.
pub struct Simulator;

impl Simulator {
    /// Loads what `config` names, binds the sockets and starts the threads.
    pub fn start(config: Config) -> Result<SimHandle, SimError> {
        let mut recordings = config.recordings.clone();
        if let Some(dir) = &config.data_dir {
            recordings.extend(load_all(&find_recordings(dir)?)?);
            if recordings.is_empty() {
                return Err(SimError::Config(format!(
                    "no .snmprec files under {}",
                    dir.display()
                )));
            }
        }
        let mut named = HashMap::new();
        for r in &recordings {
            named.insert(
                r.name.as_bytes().to_vec(),
                Arc::new(Device {
                    rec: r.clone(),
                    offset_ms: 0,
                }),
            );
        }
        let nports = config.devices.unwrap_or(1).max(1);
        let synthetic = config
            .synthetic_ifmib
            .map(|k| Arc::new(synthetic::ifmib(k)));
        let mut port_devices = Vec::with_capacity(nports);
        for i in 0..nports {
            // Devices sharing a recording start at different points of their counters.
            let offset_ms = if config.freeze_counters {
                0
            } else {
                (i as u64 * 7_919_993) % 86_400_000
            };
            let rec = match &synthetic {
                Some(s) => Some(s.clone()),
                None if config.devices.is_some() && !recordings.is_empty() => {
                    Some(recordings[i % recordings.len()].clone())
                }
                None => None,
            };
            port_devices.push(rec.map(|rec| Arc::new(Device { rec, offset_ms })));
        }
        if synthetic.is_none() && recordings.is_empty() {
            return Err(SimError::Config(
                "nothing to serve: give --synthetic-ifmib, --data-dir or recordings".into(),
            ));
        }
        let devices = if port_devices.iter().any(|d| d.is_some()) {
            nports
        } else {
            named.len()
        };
        let engine_id = config
            .engine_id
            .clone()
            .unwrap_or_else(|| [&[0x80, 0x00, 0x1f, 0x88, 0x04][..], b"lookout-snmpsim"].concat());

        raise_fd_limit(nports + 64);
        let mut sockets = Vec::with_capacity(nports);
        let mut addrs = Vec::with_capacity(nports);
        for i in 0..nports {
            let mut a = config.listen;
            if a.port() != 0 {
                let p = usize::from(a.port()) + i;
                let p = u16::try_from(p)
                    .map_err(|_| SimError::Config(format!("port {p} is past 65535")))?;
                a.set_port(p);
            }
            let s = UdpSocket::bind(a).map_err(|e| SimError::Io(format!("bind {a}"), e))?;
            s.set_nonblocking(true)
                .map_err(|e| SimError::Io(format!("{a}"), e))?;
            addrs.push(
                s.local_addr()
                    .map_err(|e| SimError::Io(format!("{a}"), e))?,
            );
            sockets.push(s);
        }
        let agent = Arc::new(Agent::new(
            port_devices,
            named,
            config.community.as_bytes().to_vec(),
            config.freeze_counters,
            config.max_msg_size.min(MAX_DATAGRAM),
            engine_id,
            &config.v3_users,
        ));

        // SAFETY: eventfd has no memory arguments; the result is checked.
        let efd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if efd < 0 {
            return Err(SimError::Io(
                "eventfd".into(),
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: efd is a fresh descriptor we own.
        let wake = unsafe { OwnedFd::from_raw_fd(efd) };

        let nthreads = config.threads.max(1).min(nports);
        let mut groups: Vec<Vec<(usize, UdpSocket)>> = (0..nthreads).map(|_| Vec::new()).collect();
        for (i, s) in sockets.into_iter().enumerate() {
            groups[i % nthreads].push((i, s));
        }
        let mut threads = Vec::with_capacity(nthreads);
        for (t, group) in groups.into_iter().enumerate() {
            let agent = agent.clone();
            let wake_fd = wake.as_raw_fd();
            let h = std::thread::Builder::new()
                .name(format!("snmpsim-{t}"))
                .spawn(move || {
                    if let Err(e) = serve(agent, group, wake_fd) {
                        tracing::error!(error = %e, "simulator thread failed");
                    }
                })
                .map_err(|e| SimError::Io("spawn".into(), e))?;
            threads.push(h);
        }
        tracing::info!(
            sockets = nports,
            threads = nthreads,
            devices,
            "simulator running"
        );
        Ok(SimHandle {
            agent,
            addrs,
            devices,
            threads,
            wake,
        })
    }
}

impl SimHandle {
    /// Address of socket `i` (port device `i`).
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.addrs[i]
    }

    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Devices served: port devices, or else the named recordings.
    pub fn devices(&self) -> usize {
        self.devices
    }

    pub fn stats(&self) -> Stats {
        self.agent.stats()
    }

    /// The SNMPv3 engine ID.
    pub fn engine_id(&self) -> &[u8] {
        self.agent.engine_id()
    }

    /// Stops the threads and waits for them.
    pub fn stop(mut self) -> Stats {
        self.stop_threads();
        self.agent.stats()
    }

    fn stop_threads(&mut self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our eventfd.
        unsafe {
            libc::write(self.wake.as_raw_fd(), (&one as *const u64).cast(), 8);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

/// Raises the soft open-file limit (10,000 sockets need more than the usual 1,024).
fn raise_fd_limit(need: usize) {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read/write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && (l.rlim_cur as usize) < need {
            l.rlim_cur = l.rlim_max.min(need as libc::rlim_t + 1024);
            if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                tracing::warn!(need, "could not raise the open-file limit");
            }
        }
    }
}

fn os_err(what: &str) -> SimError {
    SimError::Io(what.into(), std::io::Error::last_os_error())
}

/// One thread: epoll over its sockets and the wake-up eventfd.
fn serve(
    agent: Arc<Agent>,
    group: Vec<(usize, UdpSocket)>,
    wake_fd: RawFd,
) -> Result<(), SimError> {
    // SAFETY: plain system call; result checked.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(os_err("epoll_create1"));
    }
    // SAFETY: ep is a fresh descriptor we own.
    let ep = unsafe { OwnedFd::from_raw_fd(ep) };
    const WAKE: u64 = u64::MAX;
    let add = |fd: RawFd, data: u64| -> Result<(), SimError> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: data,
        };
        // SAFETY: ev outlives the call; fds are open.
        if unsafe { libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) } != 0 {
            return Err(os_err("epoll_ctl"));
        }
        Ok(())
    };
    add(wake_fd, WAKE)?;
    for (k, (_, s)) in group.iter().enumerate() {
        add(s.as_raw_fd(), k as u64)?;
    }

    let mut handler = Handler::new(agent);
    let mut io = Batch::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    loop {
        // SAFETY: events has room for the length we pass.
        let n = unsafe {
            libc::epoll_wait(ep.as_raw_fd(), events.as_mut_ptr(), events.len() as i32, -1)
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(SimError::Io("epoll_wait".into(), e));
        }
        for ev in &events[..n as usize] {
            if ev.u64 == WAKE {
                handler.flush_stats();
                handler.agent().add_server_cpu(thread_cpu_us());
                return Ok(());
            }
            let Some((port, sock)) = group.get(ev.u64 as usize) else {
                continue;
            };
            io.drain(sock.as_raw_fd(), *port, &mut handler);
        }
        handler.flush_stats();
    }
}

/// CPU time of the calling thread in µs.
fn thread_cpu_us() -> u64 {
    // SAFETY: getrusage fills the struct we pass; all-zero is a valid rusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) } != 0 {
        return 0;
    }
    let t = |v: libc::timeval| v.tv_sec as u64 * 1_000_000 + v.tv_usec as u64;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// Buffers and message headers for one recvmmsg/sendmmsg round.
struct Batch {
    rbufs: Vec<Vec<u8>>,
    wbufs: Vec<Vec<u8>>,
    addrs: Vec<libc::sockaddr_storage>,
    riov: Vec<libc::iovec>,
    rhdr: Vec<libc::mmsghdr>,
    wiov: Vec<libc::iovec>,
    whdr: Vec<libc::mmsghdr>,
}

impl Batch {
    fn new() -> Batch {
        // SAFETY: these C structs are plain data for which all-zero is a valid value.
        let zero_addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let zero_hdr: libc::mmsghdr = unsafe { std::mem::zeroed() };
        Batch {
            rbufs: (0..BATCH).map(|_| vec![0u8; MAX_DATAGRAM + 1]).collect(),
            wbufs: (0..BATCH).map(|_| Vec::with_capacity(4096)).collect(),
            addrs: vec![zero_addr; BATCH],
            riov: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                BATCH
            ],
            rhdr: vec![zero_hdr; BATCH],
            wiov: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                BATCH
            ],
            whdr: vec![zero_hdr; BATCH],
        }
    }

    /// Reads and answers datagrams on `fd` until it has none left (or a batch came back
    /// short, which means the queue is empty; epoll is level-triggered anyway).
    fn drain(&mut self, fd: RawFd, port: usize, h: &mut Handler) {
        loop {
            for k in 0..BATCH {
                self.riov[k] = libc::iovec {
                    iov_base: self.rbufs[k].as_mut_ptr().cast(),
                    iov_len: self.rbufs[k].len(),
                };
                let m = &mut self.rhdr[k].msg_hdr;
                m.msg_name = (&mut self.addrs[k] as *mut libc::sockaddr_storage).cast();
                m.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
                m.msg_iov = &mut self.riov[k];
                m.msg_iovlen = 1;
                m.msg_control = std::ptr::null_mut();
                m.msg_controllen = 0;
                m.msg_flags = 0;
                self.rhdr[k].msg_len = 0;
            }
            // SAFETY: every header points at live buffers owned by self for BATCH entries.
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    self.rhdr.as_mut_ptr(),
                    BATCH as u32,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if n <= 0 {
                return;
            }
            let n = n as usize;
            let mut w = 0;
            for k in 0..n {
                let len = self.rhdr[k].msg_len as usize;
                let truncated = self.rhdr[k].msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
                let req = &self.rbufs[k][..len.min(MAX_DATAGRAM + 1)];
                if truncated || len > MAX_DATAGRAM {
                    // Cannot happen with a 64 KiB buffer, but never answer a partial read.
                    let _ = h.handle(port, &[], &mut self.wbufs[w]);
                    continue;
                }
                if h.handle(port, req, &mut self.wbufs[w]) {
                    self.wiov[w] = libc::iovec {
                        iov_base: self.wbufs[w].as_mut_ptr().cast(),
                        iov_len: self.wbufs[w].len(),
                    };
                    let m = &mut self.whdr[w].msg_hdr;
                    m.msg_name = (&mut self.addrs[k] as *mut libc::sockaddr_storage).cast();
                    m.msg_namelen = self.rhdr[k].msg_hdr.msg_namelen;
                    m.msg_iov = &mut self.wiov[w];
                    m.msg_iovlen = 1;
                    m.msg_control = std::ptr::null_mut();
                    m.msg_controllen = 0;
                    m.msg_flags = 0;
                    w += 1;
                }
            }
            // Counted before the replies leave, so a client that got its answer sees it in
            // the stats.
            h.flush_stats();
            let mut sent = 0;
            while sent < w {
                // SAFETY: headers sent..w point at live buffers and addresses.
                let r = unsafe {
                    libc::sendmmsg(fd, self.whdr[sent..].as_mut_ptr(), (w - sent) as u32, 0)
                };
                if r <= 0 {
                    let e = std::io::Error::last_os_error();
                    if e.kind() == std::io::ErrorKind::Interrupted {
                        continue;
                    }
                    // A full socket buffer or an unreachable peer: drop the rest, as UDP may.
                    tracing::debug!(error = %e, dropped = w - sent, "sendmmsg");
                    break;
                }
                sent += r as usize;
            }
            if n < BATCH {
                return;
            }
        }
    }
}
