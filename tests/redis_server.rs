//! The `redis-server` harness of the tests ([`oauth_grpc_tests::redis`]): it answers on its
//! port, goes down when stopped, comes back on the same port when restarted, and keeps its
//! password across the restart. Spoken to in raw RESP over TCP, without a Redis client.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use oauth_grpc_tests::redis::RedisServer;

/// The first reply line, without CRLF, to each of `commands` (inline commands, one
/// connection).
fn send(port: u16, commands: &[&str]) -> std::io::Result<Vec<String>> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut replies = Vec::new();
    for command in commands {
        writer.write_all(format!("{command}\r\n").as_bytes())?;
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        replies.push(line.trim_end().to_owned());
    }
    Ok(replies)
}

fn ping(port: u16) -> std::io::Result<String> {
    Ok(send(port, &["PING"])?.remove(0))
}

#[test]
fn answers_stops_and_restarts_on_the_same_port() {
    let mut server = RedisServer::start();
    let port = server.port();
    assert!(server.is_running());
    assert_eq!(server.url(), format!("redis://127.0.0.1:{port}"));
    assert_eq!(ping(port).unwrap(), "+PONG");
    assert_eq!(
        send(port, &["SET k v", "GET k"]).unwrap(),
        ["+OK", "$1"],
        "a plain key-value store"
    );

    server.stop();
    assert!(!server.is_running());
    assert!(ping(port).is_err(), "the port refuses while stopped");
    server.stop(); // stopping twice is harmless

    server.restart();
    assert!(server.is_running());
    assert_eq!(server.port(), port);
    assert_eq!(ping(port).unwrap(), "+PONG");
    assert_eq!(
        send(port, &["GET k"]).unwrap(),
        ["$-1"],
        "nothing survives a restart (no persistence)"
    );

    server.restart(); // restarting a running server restarts it
    assert_eq!(ping(port).unwrap(), "+PONG");
}

#[test]
fn with_password_answers_noauth_until_auth() {
    let mut server = RedisServer::with_password("s3cret");
    let port = server.port();
    let reply = ping(port).unwrap();
    assert!(reply.starts_with("-NOAUTH"), "{reply}");
    assert_eq!(
        send(port, &["AUTH s3cret", "PING"]).unwrap(),
        ["+OK", "+PONG"]
    );
    let wrong = send(port, &["AUTH nope"]).unwrap().remove(0);
    assert!(wrong.starts_with("-WRONGPASS"), "{wrong}");

    server.stop();
    assert!(ping(port).is_err());
    server.restart();
    let reply = ping(port).unwrap();
    assert!(
        reply.starts_with("-NOAUTH"),
        "the password is kept: {reply}"
    );
    assert_eq!(
        send(port, &["AUTH s3cret", "PING"]).unwrap(),
        ["+OK", "+PONG"]
    );
}

#[test]
fn servers_are_independent() {
    let a = RedisServer::start();
    let b = RedisServer::start();
    assert_ne!(a.port(), b.port());
    send(a.port(), &["SET only-in-a 1"]).unwrap();
    assert_eq!(send(b.port(), &["EXISTS only-in-a"]).unwrap(), [":0"]);
    drop(a);
    assert_eq!(ping(b.port()).unwrap(), "+PONG");
}

#[test]
fn restart_waits_out_a_briefly_busy_port() {
    let mut server = RedisServer::start();
    let port = server.port();
    server.stop();
    // Another listener holds the port for a moment: the first attempts exit, a later one binds.
    let squatter = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(squatter);
    });
    server.restart();
    release.join().unwrap();
    assert!(server.is_running());
    assert_eq!(ping(port).unwrap(), "+PONG");
}
