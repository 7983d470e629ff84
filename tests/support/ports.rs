//! Loopback ports for tests that need one without a server behind it.
//!
//! Binding a listener to port 0 and dropping it hands back a port that is free only for a
//! moment: any test running at the same time (in this process or in another `cargo test`)
//! can be given the same port by the kernel for its own server. A test that wanted "nothing
//! listens there" then talks to someone else's server (a codex pointed at a dead model
//! endpoint got another test's scripted model, and both tests failed). [`DeadPort`] keeps the
//! port: a TCP socket bound to it and never listening, so connections are refused and no other
//! socket can be bound to it while the guard lives.

use std::os::fd::{FromRawFd, OwnedFd};

/// A loopback port that refuses connections for as long as this lives.
#[derive(Debug)]
pub struct DeadPort {
    _socket: OwnedFd,
    port: u16,
}

impl DeadPort {
    pub fn new() -> DeadPort {
        // SAFETY: plain socket(2), bind(2) and getsockname(2) on a descriptor this function
        // owns from creation (wrapped in an OwnedFd at once); the sockaddr structs are
        // zero-initialised locals of the sizes passed.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let socket = OwnedFd::from_raw_fd(fd);
            let mut address: libc::sockaddr_in = std::mem::zeroed();
            address.sin_family = libc::AF_INET as libc::sa_family_t;
            address.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
            address.sin_port = 0;
            let size = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let bound = libc::bind(fd, (&raw const address).cast(), size);
            assert_eq!(bound, 0, "bind: {}", std::io::Error::last_os_error());
            let mut got: libc::sockaddr_in = std::mem::zeroed();
            let mut length = size;
            let named = libc::getsockname(fd, (&raw mut got).cast(), &mut length);
            assert_eq!(named, 0, "getsockname: {}", std::io::Error::last_os_error());
            DeadPort {
                _socket: socket,
                port: u16::from_be(got.sin_port),
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

/// A loopback port that was free a moment ago, for a server the test starts later (a daemon's
/// endpoint, an sshd): that server fails loudly if another took the port meanwhile. Never use
/// it for "nothing listens there"; that is [`DeadPort`].
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.local_addr().expect("local addr").port()
}

#[test]
fn a_dead_port_refuses_connections_and_cannot_be_taken() {
    let dead = DeadPort::new();
    let refused = std::net::TcpStream::connect(("127.0.0.1", dead.port())).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(std::net::TcpListener::bind(("127.0.0.1", dead.port())).is_err());
}
