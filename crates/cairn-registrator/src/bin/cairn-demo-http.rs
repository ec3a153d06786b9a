//! `cairn-demo-http`: a tiny HTTP server standing in for the sample apps when trying
//! `cairn tasks run` (and used by its tests). It listens on `$PORT` (or the first argument)
//! on every interface and answers `GET /health` with `OK`, `GET /exit` by exiting with code
//! 3 (to exercise restarts), and anything else with its name and port.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

fn main() {
    let port = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PORT").ok())
        .and_then(|p| p.trim().parse::<u16>().ok())
        .unwrap_or_else(|| {
            eprintln!("cairn-demo-http: set PORT or pass the port as the first argument");
            std::process::exit(2)
        });
    let listener = TcpListener::bind(("0.0.0.0", port)).unwrap_or_else(|e| {
        eprintln!("cairn-demo-http: cannot listen on port {port}: {e}");
        std::process::exit(1)
    });
    for conn in listener.incoming().flatten() {
        std::thread::spawn(move || serve(conn, port));
    }
}

fn serve(mut conn: TcpStream, port: u16) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() || request_line.len() > 8192 {
        return;
    }
    // Drain the headers (bounded) so the client sees a clean response.
    let mut line = String::new();
    for _ in 0..100 {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" || line == "\n" => break,
            Ok(_) => {}
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let body = match path {
        "/health" => "OK".to_string(),
        "/exit" => {
            let _ = respond(&mut conn, "bye\n");
            std::process::exit(3);
        }
        _ => format!("cairn-demo-http on port {port}\n"),
    };
    let _ = respond(&mut conn, &body);
}

fn respond(conn: &mut TcpStream, body: &str) -> std::io::Result<()> {
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
}
