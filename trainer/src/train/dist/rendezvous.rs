//! The rendezvous that hands NCCL's unique id from rank 0 to every other rank over TCP, at
//! `MASTER_ADDR:MASTER_PORT` as `torchrun` sets them (and as a SLURM or `mpirun` script
//! exports them), the way PyTorch's `env://` initialisation does. Rank 0 listens on the
//! port; every other rank connects, says who it is, and receives the bytes.
//!
//! The exchange, all integers little-endian:
//! - peer → rank 0: `RUACRDV1`, rank (u32), world size (u32);
//! - rank 0 → peer: status (u8: 0 accepted, 1 refused), length (u32), the id or the reason.
//!
//! Only the NCCL backend calls it; without `--features nccl` its tests still run.
#![cfg_attr(not(feature = "nccl"), allow(dead_code))]
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

const MAGIC: &[u8; 8] = b"RUACRDV1";
/// Longest reply accepted (an NCCL id is 128 bytes).
const MAX_PAYLOAD: usize = 1 << 16;

/// Where rank 0 waits and how long everyone waits for the others.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendezvous {
    pub host: String,
    pub port: u16,
    pub timeout: Duration,
}

impl Rendezvous {
    /// `MASTER_ADDR` (default 127.0.0.1: one machine), `MASTER_PORT` (default 29500, as
    /// torchrun) and `RUAC_RENDEZVOUS_TIMEOUT` in seconds (default 300).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let host = var("MASTER_ADDR").unwrap_or_else(|| "127.0.0.1".into());
        let port = match var("MASTER_PORT") {
            Some(p) => p.trim().parse::<u16>().map_err(|_| anyhow::anyhow!("MASTER_PORT={p:?} is not a port number"))?,
            None => 29500,
        };
        let timeout = match var("RUAC_RENDEZVOUS_TIMEOUT") {
            Some(s) => match s.trim().parse::<f64>() {
                Ok(v) if v > 0.0 && v.is_finite() => Duration::from_secs_f64(v),
                _ => bail!("RUAC_RENDEZVOUS_TIMEOUT={s:?} is not a positive number of seconds"),
            },
            None => Duration::from_secs(300),
        };
        Ok(Self { host, port, timeout })
    }

    pub fn from_env() -> Result<Self> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Rank 0: makes the bytes with `make`, then serves them to the `world - 1` other ranks.
    /// Other ranks: fetch them from rank 0. Every rank returns the same bytes, or an error
    /// that names the address and what was missing.
    pub fn share(&self, rank: usize, world: usize, make: impl FnOnce() -> Result<Vec<u8>>) -> Result<Vec<u8>> {
        if rank == 0 {
            let payload = make()?;
            if payload.len() > MAX_PAYLOAD {
                bail!("rendezvous payload of {} bytes is larger than {MAX_PAYLOAD}", payload.len());
            }
            self.serve(world, &payload)?;
            Ok(payload)
        } else {
            self.fetch(rank, world)
        }
    }

    fn serve(&self, world: usize, payload: &[u8]) -> Result<()> {
        if world == 1 {
            return Ok(());
        }
        let listener = TcpListener::bind(("0.0.0.0", self.port))
            .with_context(|| format!("rank 0 cannot listen on port {} (MASTER_PORT) for the rendezvous", self.port))?;
        listener.set_nonblocking(true)?;
        let deadline = Instant::now() + self.timeout;
        let mut served = BTreeSet::new();
        while served.len() + 1 < world {
            match listener.accept() {
                Ok((mut stream, peer)) => {
                    stream.set_nonblocking(false)?;
                    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
                    match read_hello(&mut stream) {
                        Ok((r, w)) => {
                            let refusal = if w != world {
                                Some(format!("rank 0 was started with {world} processes, rank {r} with {w}"))
                            } else if r == 0 || r >= world {
                                Some(format!("rank {r} is not a rank of {world} processes"))
                            } else if served.contains(&r) {
                                Some(format!("two processes say they are rank {r}"))
                            } else {
                                None
                            };
                            match refusal {
                                None => {
                                    reply(&mut stream, 0, payload)?;
                                    served.insert(r);
                                }
                                Some(why) => {
                                    let _ = reply(&mut stream, 1, why.as_bytes());
                                    bail!("rendezvous at port {}: {why}", self.port);
                                }
                            }
                        }
                        // Not one of ours (a port scanner, a stale client): ignore it.
                        Err(e) => eprintln!("rendezvous: ignored a connection from {peer}: {e}"),
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        let missing: Vec<String> = (1..world).filter(|r| !served.contains(r)).map(|r| r.to_string()).collect();
                        bail!(
                            "rendezvous: rank 0 waited {:.0} s on port {} and ranks {} never arrived (is MASTER_ADDR this machine's address for them? RUAC_RENDEZVOUS_TIMEOUT sets the wait)",
                            self.timeout.as_secs_f64(),
                            self.port,
                            missing.join(", ")
                        );
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(e).context("rendezvous: accepting a connection"),
            }
        }
        Ok(())
    }

    fn fetch(&self, rank: usize, world: usize) -> Result<Vec<u8>> {
        let deadline = Instant::now() + self.timeout;
        let addr = self.addr();
        let mut last = String::from("no address");
        loop {
            let addrs = addr.to_socket_addrs().with_context(|| format!("MASTER_ADDR:MASTER_PORT = {addr} does not resolve"))?;
            for a in addrs {
                let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
                match TcpStream::connect_timeout(&a, left) {
                    Ok(mut stream) => {
                        stream.set_read_timeout(Some(left.max(Duration::from_secs(1))))?;
                        let mut hello = MAGIC.to_vec();
                        hello.extend_from_slice(&(rank as u32).to_le_bytes());
                        hello.extend_from_slice(&(world as u32).to_le_bytes());
                        stream.write_all(&hello)?;
                        let (status, body) = read_reply(&mut stream).with_context(|| format!("rendezvous: reading rank 0's reply from {addr}"))?;
                        if status != 0 {
                            bail!("rendezvous at {addr}: rank 0 refused rank {rank}: {}", String::from_utf8_lossy(&body));
                        }
                        return Ok(body);
                    }
                    Err(e) => last = e.to_string(),
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "rendezvous: rank {rank} could not reach rank 0 at {addr} (MASTER_ADDR:MASTER_PORT) within {:.0} s: {last}",
                    self.timeout.as_secs_f64()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn read_hello(stream: &mut TcpStream) -> Result<(usize, usize)> {
    let mut buf = [0u8; 16];
    stream.read_exact(&mut buf)?;
    if &buf[..8] != MAGIC {
        bail!("not a rendezvous greeting");
    }
    let num = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    Ok((num(&buf[8..12]), num(&buf[12..16])))
}

fn reply(stream: &mut TcpStream, status: u8, body: &[u8]) -> Result<()> {
    let mut msg = vec![status];
    msg.extend_from_slice(&(body.len() as u32).to_le_bytes());
    msg.extend_from_slice(body);
    stream.write_all(&msg)?;
    Ok(())
}

fn read_reply(stream: &mut TcpStream) -> Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    stream.read_exact(&mut head)?;
    let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_PAYLOAD {
        bail!("a reply of {len} bytes is not a rendezvous reply");
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body)?;
    Ok((head[0], body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    fn rdv(port: u16, secs: f64) -> Rendezvous {
        Rendezvous { host: "127.0.0.1".into(), port, timeout: Duration::from_secs_f64(secs) }
    }

    #[test]
    fn variables_and_defaults() {
        let r = Rendezvous::from_vars(|_| None).unwrap();
        assert_eq!((r.host.as_str(), r.port, r.timeout), ("127.0.0.1", 29500, Duration::from_secs(300)));
        let r = Rendezvous::from_vars(|k| match k {
            "MASTER_ADDR" => Some("node-7".into()),
            "MASTER_PORT" => Some("1234".into()),
            "RUAC_RENDEZVOUS_TIMEOUT" => Some("2.5".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!((r.host.as_str(), r.port, r.timeout), ("node-7", 1234, Duration::from_millis(2500)));
        let e = Rendezvous::from_vars(|k| (k == "MASTER_PORT").then(|| "70000".into())).unwrap_err().to_string();
        assert!(e.contains("MASTER_PORT=\"70000\""), "{e}");
        let e = Rendezvous::from_vars(|k| (k == "RUAC_RENDEZVOUS_TIMEOUT").then(|| "-1".into())).unwrap_err().to_string();
        assert!(e.contains("positive number"), "{e}");
    }

    #[test]
    fn every_rank_gets_rank_zeros_bytes() {
        let port = free_port();
        let world = 4;
        // Peers start first: they retry until rank 0 listens.
        let peers: Vec<_> = (1..world).map(|r| std::thread::spawn(move || rdv(port, 20.0).share(r, world, || unreachable!()))).collect();
        std::thread::sleep(Duration::from_millis(200));
        let id: Vec<u8> = (0..128u8).map(|i| i.wrapping_mul(37)).collect();
        let expect = id.clone();
        let got0 = rdv(port, 20.0).share(0, world, move || Ok(id)).unwrap();
        assert_eq!(got0, expect);
        for p in peers {
            assert_eq!(p.join().unwrap().unwrap(), expect);
        }
    }

    #[test]
    fn a_lone_process_needs_no_network() {
        // world 1 binds nothing: the same port may be taken by anything else.
        let busy = TcpListener::bind("0.0.0.0:0").unwrap();
        let port = busy.local_addr().unwrap().port();
        assert_eq!(rdv(port, 0.1).share(0, 1, || Ok(vec![7])).unwrap(), vec![7]);
    }

    #[test]
    fn missing_ranks_time_out_with_their_names() {
        let port = free_port();
        let e = rdv(port, 0.3).share(0, 3, || Ok(vec![1])).unwrap_err().to_string();
        assert!(e.contains("ranks 1, 2 never arrived"), "{e}");
        let e = rdv(free_port(), 0.3).share(2, 3, || unreachable!()).unwrap_err().to_string();
        assert!(e.contains("rank 2 could not reach rank 0 at 127.0.0.1:"), "{e}");
    }

    #[test]
    fn a_mismatched_world_is_refused_on_both_sides() {
        let port = free_port();
        let peer = std::thread::spawn(move || rdv(port, 10.0).share(1, 3, || unreachable!()));
        let e0 = rdv(port, 10.0).share(0, 2, || Ok(vec![1])).unwrap_err().to_string();
        assert!(e0.contains("rank 0 was started with 2 processes, rank 1 with 3"), "{e0}");
        let e1 = peer.join().unwrap().unwrap_err().to_string();
        assert!(e1.contains("refused rank 1"), "{e1}");
    }
}
