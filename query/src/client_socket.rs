//! The client's end of an HTTP connection, so that a long request notices the client going
//! away. hyper notices only when it writes, and an evidence export writes nothing until its
//! bundle is built: without this, a cancelled export kept reading the lake and growing its
//! `.zip.partial` until `evidence.timeout_seconds`.

use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::net::TcpListener;

/// How often a waiting request looks at its connection.
const LOOK_EVERY: Duration = Duration::from_millis(250);

/// The socket of the connection a request came on (axum's connect info: serve the router
/// with `into_make_service_with_connect_info::<ClientSocket>()`).
#[derive(Clone, Copy, Debug)]
pub struct ClientSocket {
    // Only looked at, never read or closed: the descriptor stays hyper's, and it is open
    // for as long as a request on it is being answered.
    fd: RawFd,
}

impl Connected<IncomingStream<'_, TcpListener>> for ClientSocket {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        Self { fd: stream.io().as_raw_fd() }
    }
}

impl ClientSocket {
    /// Resolves once the client has closed its side of the connection (or it broke).
    pub async fn closed(self) {
        while !self.peer_closed() {
            tokio::time::sleep(LOOK_EVERY).await;
        }
    }

    fn peer_closed(&self) -> bool {
        let mut poll = libc::pollfd { fd: self.fd, events: libc::POLLRDHUP, revents: 0 };
        // SAFETY: one valid pollfd, a zero timeout; poll only reads the descriptor's state.
        let ready = unsafe { libc::poll(&mut poll, 1, 0) };
        ready > 0 && poll.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_connection_is_noticed_and_an_open_one_is_not() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let socket = ClientSocket { fd: server.as_raw_fd() };
        // Bytes waiting to be read are not a close.
        std::io::Write::write_all(&mut &client, b"GET / HTTP/1.1\r\n\r\n").unwrap();
        assert!(!socket.peer_closed());
        drop(client);
        tokio::time::timeout(Duration::from_secs(5), socket.closed()).await.expect("the close is noticed");
    }
}
