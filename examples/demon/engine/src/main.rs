//! engine: the engine. Answers every HTTP request on $PORT (default 8082) with its name and
//! version; std only, so it builds offline with Debian's cargo.
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

const NAME: &str = "engine";
const DEFAULT_PORT: u16 = 8082;

fn answer(stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    // Read the request line and headers up to the blank line.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let body = format!("{} {} ok\n", NAME, env!("CARGO_PKG_VERSION"));
    let mut out = stream;
    write!(
        out,
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{}",
        body.len(),
        body
    )
}

fn main() {
    let port = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(DEFAULT_PORT);
    let listener = TcpListener::bind(("0.0.0.0", port)).expect("bind");
    eprintln!("{} listening on {}", NAME, port);
    for stream in listener.incoming().flatten() {
        if let Err(e) = answer(stream) {
            eprintln!("{}: {}", NAME, e);
        }
    }
}
